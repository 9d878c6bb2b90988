"""Borrowers that respond (issue 18): each reaction, the closed loop, and the plain log unchanged.

Small books only (a few hundred loans). The reaction table is docs/strategies.md's.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from random import Random

import pytest
from click.testing import CliRunner

from loanwatch.backtest.runner import load_folder
from loanwatch.cli import main
from loanwatch.ledger.alerts import Alert
from loanwatch.ledger.engine import Output
from loanwatch.ledger.policy import Policy
from loanwatch.replay.runner import replay
from loanwatch.simulate.closed_loop import ClosedLoop
from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.generator import generate
from loanwatch.simulate.profiles import CHRONIC, DEFAULTER, OCCASIONAL, ON_TIME, PARTIAL
from loanwatch.simulate.respond import ACTION_CHANNELS, Reaction, reaction
from loanwatch.simulate.writer import write_jsonl
from loanwatch.treatment.config import strategies_from_mapping
from loanwatch.treatment.model import Strategies

REPO = Path(__file__).resolve().parents[2]
# sha256 of the plain simulator's log before the responding borrowers existed (main at f73fbf4)
DIGESTS = {
    (3, 300, 120): "7013e53d474027df23fae44490b08280257329b31a6063a170bfbcffbc3d1c15",
    (11, 500, 200): "58109f5467a3c790409156ebf90545a8f2ffae19a38da9199fdfb64947b5f4cc",
}


class Fixed(Random):
    """A draw that always gives ``u`` (and the low end of every range)."""

    def __init__(self, u: float) -> None:
        super().__init__(0)
        self.u = u

    def random(self) -> float:
        return self.u

    def randint(self, a: int, b: int) -> int:
        return a


YES, NO = Fixed(0.0), Fixed(0.999)


def _log(items: object) -> bytes:
    buf = io.BytesIO()
    write_jsonl(items, buf)  # type: ignore[arg-type]
    return buf.getvalue()


def _one_segment(path: list[dict[str, object]]) -> Strategies:
    doc: dict[str, object] = {"segments": [{"name": "all", "path": "p"}], "paths": {"p": path}}
    if not path:
        doc = {"segments": [{"name": "all"}]}
    return strategies_from_mapping(doc, Policy())


# --- the plain simulator is untouched ---


@pytest.mark.parametrize(("seed", "loans", "days"), sorted(DIGESTS))
def test_without_strategies_the_log_is_byte_identical(seed: int, loans: int, days: int) -> None:
    data = _log(generate(SimulationConfig(loans=loans, days=days, seed=seed)))
    assert hashlib.sha256(data).hexdigest() == DIGESTS[(seed, loans, days)]


def test_a_loop_whose_strategy_takes_no_action_writes_the_plain_log() -> None:
    config = SimulationConfig(loans=300, days=120, seed=3)
    loop = ClosedLoop(config, _one_segment([]), Policy())
    data = _log(loop)
    assert hashlib.sha256(data).hexdigest() == DIGESTS[(3, 300, 120)]
    assert not any(k.startswith("action_") for k in loop.stats)


# --- each reaction (pure: profile, reachable, action, draw) ---


@pytest.mark.parametrize("action", ["sms_reminder", "email"])
def test_a_forgetful_payer_pays_after_a_reminder(action: str) -> None:
    assert reaction(OCCASIONAL, True, action, YES) == Reaction("sent", pays_in=1)
    assert reaction(OCCASIONAL, True, action, NO) == Reaction("sent")  # 75 %, not always


def test_without_a_reminder_a_forgetful_payer_does_not_pay_early() -> None:
    config = SimulationConfig(loans=300, days=120, seed=4)
    seen = Alerts(), Alerts()
    plain = ClosedLoop(config, _one_segment([]), Policy(), seen[0])
    path = [{"day": 0, "action": "sms_reminder"}]
    reminded = ClosedLoop(config, _one_segment(path), Policy(), seen[1])
    for loop in (plain, reminded):
        for _ in loop:
            pass
    assert plain.stats["reaction_payment"] == 0 and plain.stats["action_sms_reminder"] == 0
    assert reminded.stats["action_sms_reminder"] > 50
    assert reminded.stats["reaction_payment"] > 20
    cured = [sum(1 for a in alerts if a.kind == "cured") for alerts in seen]
    assert cured[1] > cured[0]


class Alerts(list[Alert]):
    """A closed-loop observer keeping every alert in firing order."""

    def __call__(self, obj: object, before: object, out: Output) -> None:
        self.extend(out.alerts)


def test_reminders_to_the_unreachable_do_nothing() -> None:
    for profile in (ON_TIME, OCCASIONAL, PARTIAL, CHRONIC, DEFAULTER):
        for action in ("sms_reminder", "email"):
            assert reaction(profile, False, action, YES) == Reaction("sent")
        assert reaction(profile, False, "call_priority", YES) == Reaction("no_answer")
        assert reaction(profile, False, "restructure_offer", YES) == Reaction("action_refused")


def test_a_field_visit_may_find_the_unreachable() -> None:
    found = reaction(OCCASIONAL, False, "field_visit", YES)
    assert found.found and found.outcome == "reached" and found.pays_in == 1
    assert reaction(OCCASIONAL, False, "field_visit", NO) == Reaction("no_answer")


@pytest.mark.parametrize("profile", [PARTIAL, CHRONIC])
def test_a_hardship_borrower_reports_hardship_and_accepts_a_restructure(profile: int) -> None:
    assert reaction(profile, True, "call_priority", YES) == Reaction("hardship")
    offer = reaction(profile, True, "restructure_offer", YES)
    assert offer == Reaction("action_taken", restructure=True, becomes=OCCASIONAL)
    assert reaction(profile, True, "restructure_offer", NO) == Reaction("action_refused")
    assert reaction(profile, True, "sms_reminder", NO).pays_in is None


def test_a_strategic_defaulter_moves_on_a_legal_letter_only() -> None:
    for action in ("sms_reminder", "email"):
        assert reaction(DEFAULTER, True, action, YES).pays_in is None
    assert reaction(DEFAULTER, True, "call_priority", NO) == Reaction("refused")
    legal = reaction(DEFAULTER, True, "legal_referral", YES)
    assert legal == Reaction("action_taken", pays_in=3, becomes=OCCASIONAL)
    assert reaction(DEFAULTER, False, "legal_referral", YES).pays_in == 3  # letters reach all
    assert reaction(DEFAULTER, True, "legal_referral", NO) == Reaction("action_taken")


def test_an_unknown_action_is_refused_loudly() -> None:
    with pytest.raises(ValueError, match="unknown treatment action"):
        reaction(ON_TIME, True, "carrier_pigeon", YES)


def test_actions_are_logged_on_the_collector_apis_channels() -> None:
    from loanwatch.routing.api import ACTION_CHANNELS as API
    from loanwatch.treatment.model import ACTIONS

    assert ACTION_CHANNELS == API and set(ACTION_CHANNELS) == set(ACTIONS)


# --- the closed loop ---


def test_outcomes_depend_on_the_strategy_and_replay_sees_the_same_alerts() -> None:
    config = SimulationConfig(loans=300, days=120, seed=5)
    logs = {}
    for name in ("standard", "early-call"):
        folder = REPO / "config" / "examples" / name
        loaded = load_folder(folder)
        assert loaded.strategies is not None
        seen = Alerts()
        logs[name] = _log(ClosedLoop(config, loaded.strategies, loaded.policy, seen))
        again = replay(iter(logs[name].splitlines()), loaded.policy, strategies=loaded.strategies)
        assert len(seen) > 100
        assert [a.to_json() for a in again.alerts] == [a.to_json() for a in seen]
    assert logs["standard"] != logs["early-call"]
    assert b'"action":"legal_referral"' in logs["early-call"]


def test_simulate_strategies_cli_writes_the_loops_log(tmp_path: Path) -> None:
    folder = REPO / "config" / "examples" / "early-call"
    out = tmp_path / "closed.jsonl"
    args = ["simulate", "--loans", "150", "--days", "60", "--seed", "2", "--no-progress"]
    args += ["--strategies", str(folder / "strategies.yaml"), "--config", str(folder)]
    done = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert done.exit_code == 0, done.output
    loaded = load_folder(folder)
    assert loaded.strategies is not None
    config = SimulationConfig(loans=150, days=60, seed=2)
    assert out.read_bytes() == _log(ClosedLoop(config, loaded.strategies, loaded.policy))
    refused = CliRunner().invoke(main, [*args, "--live"])
    assert refused.exit_code != 0 and "not --live" in refused.output


def test_nothing_outside_the_simulator_reads_the_hidden_profile() -> None:
    pattern = re.compile(r"loanwatch\.simulate|from loanwatch import simulate")
    offenders = [
        str(p.relative_to(REPO))
        for pkg in ("ledger", "treatment", "agents", "routing", "streams", "metrics")
        for p in (REPO / "loanwatch" / pkg).rglob("*.py")
        if pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
