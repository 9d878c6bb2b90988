"""SPEC §2 clock-jump guard: a far-future event is a `future_date` dead letter, the clock stays."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from loanwatch.ledger.engine import Engine
from loanwatch.ledger.policy import Policy
from loanwatch.ledger.policy_file import PolicyError, load_policy, policy_from_mapping
from loanwatch.replay.runner import replay
from tests.unit.ledger_helpers import opened, paid, tick

GUARDED = Policy(max_clock_jump_days=31)
ROWS = [("2026-02-01", "100.00", "1.00", "0.00"), ("2026-03-01", "100.00", "1.00", "0.00")]


def test_a_mistyped_year_is_dead_lettered_and_ages_nothing() -> None:
    engine = Engine(GUARDED)
    engine.process(opened("A", "2026-01-05", ROWS))
    out = engine.process(paid("A", "2062-01-06", "10.00"))
    assert [r.reason for r in out.rejects] == ["future_date"]
    assert out.result == "rejected" and not out.alerts
    assert engine.clock == date(2026, 1, 5)
    (state,) = engine.states()
    assert state.dpd == 0 and state.overdue_amount == 0
    # a payment dated correctly is then applied: nothing moved
    again = engine.process(paid("A", "2026-01-06", "10.00"))
    assert again.result == "applied"


def test_the_limit_itself_is_allowed_and_one_day_more_is_not() -> None:
    engine = Engine(GUARDED)
    engine.process(opened("A", "2026-01-01", ROWS))
    assert engine.process(paid("A", "2026-02-01", "1.00")).result == "applied"  # 31 days
    assert engine.process(paid("A", "2026-03-05", "1.00")).rejects[0].reason == "future_date"
    assert engine.clock == date(2026, 2, 1)


def test_ticks_always_move_the_clock_and_the_first_event_is_never_guarded() -> None:
    engine = Engine(GUARDED)
    first = engine.process(opened("A", "2030-01-01", ROWS))
    assert not first.rejects and engine.clock == date(2030, 1, 1)
    engine.process(tick("2031-06-01"))
    assert engine.clock == date(2031, 6, 1)


def test_without_a_limit_nothing_is_guarded() -> None:
    engine = Engine(Policy())
    engine.process(opened("A", "2026-01-05", ROWS))
    out = engine.process(paid("A", "2062-01-06", "10.00"))
    assert out.result == "applied" and engine.clock == date(2062, 1, 6)


def test_with_a_wall_clock_the_guard_measures_from_today() -> None:
    today = date(2026, 1, 10)
    engine = Engine(GUARDED, clock_follows_events=False, today=lambda: today)
    engine.process(tick("2026-01-10"))
    engine.process(opened("A", "2026-01-09", ROWS))
    assert engine.process(paid("A", "2026-02-10", "1.00")).result == "applied"
    assert engine.process(paid("A", "2026-02-11", "1.00")).rejects[0].reason == "future_date"


def test_replay_dead_letters_the_far_future_event() -> None:
    lines = [
        b'{"event_id":"t","type":"clock_tick","business_date":"2026-01-01"}',
        b'{"event_id":"x","type":"payment_received","occurred_at":"2099-01-01T10:00:00+08:00",'
        b'"loan_id":"A","payment_id":"p","amount":"1.00"}',
    ]
    result = replay(lines, GUARDED)
    assert [r.reason for r in result.rejects] == ["future_date"]


def test_the_shipped_policy_sets_31_and_a_bad_value_names_the_key(tmp_path: Path) -> None:
    assert load_policy().max_clock_jump_days == 31
    assert policy_from_mapping({}).max_clock_jump_days is None
    assert policy_from_mapping({"max_clock_jump_days": None}).max_clock_jump_days is None
    for bad in (0, -3, "31", 2.5, True):
        with pytest.raises(PolicyError, match="max_clock_jump_days"):
            policy_from_mapping({"max_clock_jump_days": bad})
