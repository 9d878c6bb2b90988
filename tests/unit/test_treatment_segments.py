"""Segment rules and the tracker: ordered rules, exactly one segment, paths by day in segment."""

from __future__ import annotations

import io
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from loanwatch.ledger.engine import Engine
from loanwatch.ledger.policy import Policy
from loanwatch.ledger.view import LoanView
from loanwatch.replay.runner import replay
from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.generator import generate
from loanwatch.simulate.writer import write_jsonl
from loanwatch.treatment.config import load_strategies, strategies_from_mapping
from loanwatch.treatment.segments import LoanContext, delinquent, segment_of
from loanwatch.treatment.tracker import Treatment

from .ledger_helpers import event, opened, paid, tick

REPO = Path(__file__).resolve().parents[2]
SHIPPED = load_strategies(REPO / "config" / "strategies.yaml")
VIEW = LoanView(
    loan_id="L1", borrower_id="B1", product="consumer", region="east", currency="CNY",
    status="active", as_of="2026-02-01", dpd=5, bucket="M1", overdue_amount=Decimal("100.00"),
    outstanding_principal=Decimal("1000.00"), classification="special_mention",
    own_class="special_mention", ifrs9_stage=1, restructured=False, watchlist=False,
    cross_default=False,
)  # fmt: skip
RULES = strategies_from_mapping(
    {
        "segments": [
            {"name": "ews", "when": {"early_warning_min": 700}},
            {"name": "big-sme", "when": {"product": "sme", "exposure_min": "50000.00"}},
            {"name": "promises", "when": {"broken_promises_min": 2}},
            {"name": "hardship", "when": {"contact": "hardship"}},
            {"name": "unreachable", "when": {"contact": ["unreachable"]}},
            {"name": "npl", "when": {"class": ["substandard", "doubtful", "loss"]}},
            {"name": "m2", "when": {"bucket": "M2"}},
            {"name": "xd", "when": {"cross_default": True}},
            {"name": "early", "when": {"dpd_max": 10}},
            {"name": "rest"},
        ]
    }
)


@pytest.mark.parametrize(
    ("change", "ctx", "expected"),
    [
        ({}, LoanContext(), "early"),
        ({"dpd": 11}, LoanContext(), "rest"),
        ({"dpd": 35, "bucket": "M2"}, LoanContext(), "m2"),
        ({"dpd": 11, "cross_default": True}, LoanContext(), "xd"),
        ({"classification": "substandard", "bucket": "M2"}, LoanContext(), "npl"),
        ({}, LoanContext(unanswered=3), "unreachable"),
        ({}, LoanContext(unanswered=2), "early"),
        ({}, LoanContext(hardship=True, unanswered=5), "hardship"),
        ({}, LoanContext(broken_promises=2, hardship=True), "promises"),
        (
            {"product": "sme", "outstanding_principal": Decimal("50000.00")},
            LoanContext(),
            "big-sme",
        ),
        ({"product": "sme", "outstanding_principal": Decimal("49999.99")}, LoanContext(), "early"),
        ({}, LoanContext(early_warning=700), "ews"),
        ({}, LoanContext(early_warning=699), "early"),
        ({"dpd": 0, "bucket": "M0"}, LoanContext(hardship=True), None),
        ({"status": "closed"}, LoanContext(), None),
    ],
)
def test_the_first_matching_rule_wins(
    change: dict[str, Any], ctx: LoanContext, expected: str | None
) -> None:
    assert segment_of(replace(VIEW, **change), ctx, RULES) == expected


def test_a_rule_on_a_score_never_matches_a_loan_without_one() -> None:
    assert LoanContext().early_warning is None
    assert segment_of(VIEW, LoanContext(), RULES) == "early"


# --- the tracker beside an engine ---


class Run:
    def __init__(self, strategies: Any = SHIPPED) -> None:
        self.engine = Engine(Policy())
        self.treatment = Treatment(strategies, Policy())
        self.alerts: list[dict[str, Any]] = []

    def feed(self, *events: dict[str, Any]) -> list[dict[str, Any]]:
        new: list[dict[str, Any]] = []
        for obj in events:
            out = self.engine.process(obj)
            self.treatment.observe(self.engine, obj, out)
            new.extend(a.to_json() for a in out.alerts)
        self.alerts.extend(new)
        return new

    def days(self, first: int, last: int, month: str = "2026-02") -> list[dict[str, Any]]:
        return self.feed(*(tick(f"{month}-{d:02d}") for d in range(first, last + 1)))


def _kinds(alerts: list[dict[str, Any]], *kinds: str) -> list[tuple[Any, ...]]:
    return [
        (a["business_date"], a["kind"], a.get("to_segment") or a.get("action"))
        for a in alerts
        if a["kind"] in kinds
    ]


def _loan(run: Run, loan: str = "L1", borrower: str = "B1") -> None:
    schedule = [("2026-02-01", "1000.00", "10.00", "0.00"), ("2026-03-01", "1000.00", "10.00", "0")]
    run.feed(opened(loan, "2026-01-15", schedule, borrower=borrower))


def _early_champion() -> str:
    from loanwatch.treatment.arms import arm_of

    experiment = SHIPPED.experiment_of("early")
    assert experiment is not None
    return next(f"L{i}" for i in range(100) if arm_of(experiment, f"L{i}").name == "champion")


def test_a_loan_enters_a_segment_and_follows_its_path_by_day_in_segment() -> None:
    run, loan = Run(), _early_champion()
    _loan(run, loan)
    run.days(1, 12)
    got = _kinds(run.alerts, "segment_changed", "treatment_action")
    assert got == [
        ("2026-02-02", "segment_changed", "early"),
        ("2026-02-02", "treatment_action", "sms_reminder"),
        ("2026-02-07", "treatment_action", "email"),
        ("2026-02-12", "treatment_action", "call_priority"),
    ]
    entered = next(a for a in run.alerts if a["kind"] == "segment_changed")
    assert (entered["from_segment"], entered["experiment"], entered["arm"]) == (
        None, "early-2026q2", "champion",
    )  # fmt: skip
    overdue = next(a for a in run.alerts if a["kind"] == "overdue")
    assert (overdue["segment"], overdue["arm"]) == ("early", "champion")  # stamped
    call = run.alerts[-1]
    assert (call["call_priority"], call["day_in_segment"], call["path"]) == (
        "P3", 10, "early-standard",
    )  # fmt: skip


def test_a_dpd_mark_moves_the_loan_on_the_day_without_any_event_of_its_own() -> None:
    run, loan = Run(), _early_champion()
    _loan(run, loan)
    run.days(1, 28)
    run.days(1, 5, month="2026-03")  # DPD 31 on 2026-03-04 (due 2026-02-01, 28-day February)
    moves = _kinds(run.alerts, "segment_changed")
    assert moves == [
        ("2026-02-02", "segment_changed", "early"),
        ("2026-03-04", "segment_changed", "late"),
    ]
    late = [a for a in run.alerts if a["kind"] == "treatment_action" and a["segment"] == "late"]
    assert [(a["business_date"], a["action"]) for a in late] == [("2026-03-04", "call_priority")]


def test_contacts_move_a_loan_to_hardship_and_unreachable() -> None:
    run, loan = Run(), _early_champion()
    _loan(run, loan)
    run.days(1, 3)
    for _ in range(3):
        run.feed(event("contact_logged", loan, "2026-02-03", channel="call", outcome="no_answer"))
    assert run.treatment.describe(loan)["segment"] == "unreachable"
    run.feed(event("contact_logged", loan, "2026-02-04", channel="call", outcome="hardship"))
    state = run.treatment.describe(loan)
    assert (state["segment"], state["contact"]) == ("hardship", "hardship")
    got = _kinds(run.alerts, "segment_changed", "treatment_action")[2:]
    assert got == [
        ("2026-02-03", "segment_changed", "unreachable"),
        ("2026-02-03", "treatment_action", "field_visit"),
        ("2026-02-04", "segment_changed", "hardship"),
        ("2026-02-04", "treatment_action", "restructure_offer"),
    ]


def test_a_cure_leaves_the_segment_and_resets_what_contacts_taught() -> None:
    run, loan = Run(), _early_champion()
    _loan(run, loan)
    run.days(1, 3)
    run.feed(event("contact_logged", loan, "2026-02-03", channel="call", outcome="hardship"))
    new = run.feed(paid(loan, "2026-02-04", "1010.00"))
    kinds = [a["kind"] for a in new]
    assert kinds == ["cured", "classification_changed", "segment_changed"]
    assert (new[0]["segment"], new[2]["from_segment"], new[2]["to_segment"]) == (
        "hardship", "hardship", None,
    )  # fmt: skip
    assert run.treatment.describe(loan)["contact"] == "none"
    run.days(5, 28)
    run.days(1, 3, month="2026-03")  # overdue again from 2026-03-02: a fresh episode
    assert run.treatment.describe(loan)["segment"] == "early"


def test_no_strategies_no_treatment_alerts_and_engine_alerts_unchanged() -> None:
    log = _simulated(seed=5)
    plain = replay(iter(log), Policy())
    treated = replay(iter(log), Policy(), strategies=SHIPPED)
    ours = {"segment_changed", "treatment_action"}
    assert not {a.kind for a in plain.alerts} & ours
    engine_alerts = [a for a in treated.alerts if a.kind not in ours]
    assert [a.alert_id for a in engine_alerts] == [a.alert_id for a in plain.alerts]
    assert [a.view for a in engine_alerts] == [a.view for a in plain.alerts]
    assert {a.kind for a in treated.alerts} >= ours


def _simulated(seed: int, loans: int = 400, days: int = 150) -> list[bytes]:
    out = io.BytesIO()
    write_jsonl(generate(SimulationConfig(loans=loans, days=days, seed=seed)), out)
    return [line for line in out.getvalue().splitlines() if line.strip()]


def test_every_delinquent_loan_is_in_exactly_one_segment_and_the_segment_is_the_rules() -> None:
    result = replay(iter(_simulated(seed=7)), Policy(), strategies=SHIPPED)
    treatment = result.treatment
    assert treatment is not None
    delinquent_loans = 0
    for view in result.states:
        state = treatment.states.get(view.loan_id)
        segment = state.segment if state else None
        if delinquent(view):
            delinquent_loans += 1
            assert state is not None
            assert segment == segment_of(view, state.ctx, SHIPPED), view.loan_id
        else:
            assert segment is None, view.loan_id
    assert delinquent_loans > 20
    segments = {s.segment for s in treatment.states.values() if s.segment}
    assert len(segments) >= 2


def test_the_segment_trail_of_every_loan_is_consistent_and_deterministic() -> None:
    log = _simulated(seed=9)
    first = replay(iter(log), Policy(), strategies=SHIPPED)
    again = replay(iter(log), Policy(), strategies=SHIPPED)
    assert [a.to_json() for a in first.alerts] == [a.to_json() for a in again.alerts]
    ids = [a.alert_id for a in first.alerts]
    assert len(ids) == len(set(ids))
    where: dict[str, str | None] = {}
    for alert in first.alerts:
        body = alert.to_json()
        if alert.kind == "segment_changed":
            assert body["from_segment"] == where.get(alert.loan_id)
            assert body["from_segment"] != body["to_segment"]
            where[alert.loan_id] = body["to_segment"]
        elif alert.kind == "treatment_action":
            assert body["segment"] == where.get(alert.loan_id)
    assert first.treatment is not None
    for loan_id, segment in where.items():
        state = first.treatment.states.get(loan_id)
        assert (state.segment if state else None) == segment or state is None


def test_state_json_round_trips() -> None:
    from loanwatch.treatment.state import decode_state, encode_state

    result = replay(iter(_simulated(seed=3, loans=150, days=90)), Policy(), strategies=SHIPPED)
    assert result.treatment is not None
    states = list(result.treatment.states.values())
    assert states
    for state in states:
        assert decode_state(encode_state(state, 3)) == state
    assert orjson.loads(encode_state(states[0], 3))["partition"] == 3
