"""Early warning: features kept incrementally, the scorecard's scoring, pre-due alerts."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import pytest

from loanwatch.early_warning import evaluate as ev
from loanwatch.early_warning import features as fx
from loanwatch.early_warning.binning import fit_bins
from loanwatch.early_warning.config import EarlyWarningPolicy
from loanwatch.early_warning.scorecard import ModelError, reason_code, scorecard_from_json
from loanwatch.early_warning.state import decode_state, encode_state
from loanwatch.early_warning.tracker import EarlyWarning
from loanwatch.ledger.engine import Engine
from loanwatch.ledger.policy import Policy
from tests.unit.ledger_helpers import event, opened, paid, tick

pytestmark = pytest.mark.unit

D = date.fromisoformat


def card_doc(**overrides: Any) -> dict[str, Any]:
    """A two-feature scorecard: DPD now and the last installment's days late."""
    doc: dict[str, Any] = {
        "format": 1,
        "version": "test-1",
        "intercept": -2.0,
        "features": [
            {"name": "dpd_now", "coef": -1.0, "bins": [
                {"upper": 0, "woe": 0.5, "points": 40, "label": "<=0"},
                {"upper": None, "woe": -1.5, "points": 10, "label": ">0"},
            ]},
            {"name": "late_1", "coef": -1.0, "bins": [
                {"upper": 3, "woe": 0.4, "points": 35, "label": "<=3"},
                {"upper": None, "woe": -2.0, "points": 5, "label": ">3"},
                {"upper": None, "missing": True, "woe": 0.0, "points": 20, "label": "missing"},
            ]},
        ],
    }  # fmt: skip
    return doc | overrides


def test_scorecard_probability_points_and_reasons_by_hand() -> None:
    card = scorecard_from_json(card_doc())
    s = card.score({"dpd_now": 4.0, "late_1": 10.0})
    assert s.probability == round(1 / (1 + math.exp(-(-2.0 + 1.5 + 2.0))), 6)
    assert s.points == 15
    assert s.reasons == ("dpd_now>0", "late_1>3")  # 30 points lost each: feature order
    assert card.score({"dpd_now": 0.0, "late_1": None}).reasons == ("late_1=missing",)
    assert card.score({"dpd_now": 0.0, "late_1": 1.0}).reasons == ()


def test_a_model_of_another_format_is_refused() -> None:
    with pytest.raises(ModelError):
        scorecard_from_json(card_doc(format=99))
    with pytest.raises(ModelError):
        scorecard_from_json(card_doc(features=[{"name": "x"}]))


def test_unanswered_streak_resets_on_a_conversation_only() -> None:
    s = fx.opened("L1", "B1", D("2026-01-01"), 100)
    for outcome in ("no_answer", "busy", "sent", "delivered"):
        s = fx.contact(s, outcome)
    assert s.unanswered == 2
    assert fx.contact(s, "reached").unanswered == 0
    assert fx.signal(fx.signal(s, "high"), "bogus").signals == (0, 0, 1)


def test_worst_bucket_of_the_last_six_months_is_bounded_and_carries_the_held_bucket() -> None:
    s = fx.opened("L1", "B1", D("2026-01-01"), 100)
    s = fx.bucket_seen(s, D("2026-01-10"), 1)
    s = fx.bucket_seen(s, D("2026-02-10"), 3)  # M3 held from February
    assert fx.worst_bucket(s, D("2026-03-01"), 3) == 3
    s = fx.bucket_seen(s, D("2026-03-05"), 0)  # cured in March
    assert fx.worst_bucket(s, D("2026-08-31"), 0) == 3  # March is still inside the window
    assert fx.worst_bucket(s, D("2026-09-01"), 0) == 0
    for month in range(1, 13):
        s = fx.bucket_seen(s, date(2027, month, 2), month % 4)
    assert len(s.months) <= 6
    assert fx.worst_bucket(s, D("2027-12-20"), 0) == 3


def test_settled_installments_push_their_days_late_newest_first() -> None:
    s = fx.opened("L1", "B1", D("2026-01-01"), 100)
    s = fx.settle(s, [D("2026-02-01")], D("2026-03-01"), D("2026-02-05"))
    s = fx.settle(s, [D("2026-03-01"), D("2026-04-01")], None, D("2026-02-20"))
    assert s.late == (0, 0, 4)
    values = fx.vector(s, D("2026-03-01"), dpd=0, bucket_rank=0, outstanding=25,
                       others=(0, None))  # fmt: skip
    assert values["late_3"] == 4.0 and values["repaid_share"] == 0.75
    assert values["other_worst_dpd"] is None and set(values) == set(fx.FEATURES)


def _book() -> list[dict[str, Any]]:
    rows = [("2026-02-01", "100.00", "0.00", "0.00"), ("2026-03-01", "100.00", "0.00", "0.00"),
            ("2026-04-01", "100.00", "0.00", "0.00")]  # fmt: skip
    return [
        tick("2026-01-01"),
        opened("L1", "2026-01-01", rows),
        opened("L2", "2026-01-01", rows),  # the same borrower's second loan
        tick("2026-01-27"),  # L1 and L2 scored for 2026-02-01 (5 days ahead)
        paid("L1", "2026-02-05", "100.00"),  # 4 days late
        paid("L1", "2026-02-20", "40.00"),  # part of March's installment
        event(
            "promise_to_pay",
            "L1",
            "2026-02-21",
            promise_id="p1",
            amount="60.00",
            promised_date="2026-02-22",
        ),
        event("contact_logged", "L1", "2026-02-22", channel="call", outcome="no_answer"),
        tick("2026-02-24"),  # the promise is broken; L1 scored for 2026-03-01
        tick("2026-03-30"),
    ]


def _run(tracker: EarlyWarning, events: list[dict[str, Any]]) -> tuple[Engine, list[Any]]:
    engine = Engine(tracker.policy)
    alerts = []
    for obj in events:
        out = engine.process(obj)
        tracker.observe(engine, obj, out)
        alerts += out.alerts
    return engine, alerts


def test_the_tracker_keeps_the_features_and_sends_pre_due_alerts() -> None:
    policy = Policy()
    seen: list[tuple[str, date, date, dict[str, float | None]]] = []
    tracker = EarlyWarning(
        EarlyWarningPolicy(lead_days=5, threshold=0.5, scorecard=scorecard_from_json(card_doc())),
        policy,
        on_score=lambda s, day, due, values: seen.append((s.loan_id, day, due, values)),
    )
    _, alerts = _run(tracker, _book())
    state = tracker.states["L1"]
    assert state.late == (4,)
    assert (state.payments, state.partial_payments) == (2, 1)
    assert (state.promises_made, state.promises_broken, state.unanswered) == (1, 1, 1)
    assert [(x[0], x[1], x[2]) for x in seen[:3]] == [
        ("L1", D("2026-01-27"), D("2026-02-01")),
        ("L2", D("2026-01-27"), D("2026-02-01")),
        ("L1", D("2026-02-24"), D("2026-03-01")),
    ]
    assert seen[0][3]["other_loans"] == 1.0 and seen[0][3]["late_1"] is None
    assert seen[2][3]["late_1"] == 4.0
    pre_due = [(a.loan_id, a.business_date) for a in alerts if a.kind == "pre_due_risk"]
    # On 2026-02-24 L1 (4 days late last time, current) and L2 (23 DPD, nothing settled) both
    # have p = sigmoid(-2 - 0.5 + 2) = 0.38 < 0.5. The clock lands on 2026-03-30 (after the
    # 2026-03-27 scoring date, before the due date): L1 is 29 DPD then, p = sigmoid(1.5).
    assert pre_due == [("L1", D("2026-03-30"))]
    low = EarlyWarning(
        EarlyWarningPolicy(lead_days=5, threshold=0.3, scorecard=scorecard_from_json(card_doc())),
        policy,
    )
    _, alerts = _run(low, _book())
    pre_due = [a.to_json() for a in alerts if a.kind == "pre_due_risk"]
    assert [(a["loan_id"], a["business_date"], a["due_date"]) for a in pre_due] == [
        ("L1", "2026-02-24", "2026-03-01"),
        ("L2", "2026-02-24", "2026-03-01"),
        ("L1", "2026-03-30", "2026-04-01"),
        ("L2", "2026-03-30", "2026-04-01"),
    ]
    assert pre_due[0]["model_version"] == "test-1" and pre_due[0]["lead_days"] == 5
    assert pre_due[0]["reason_codes"] == ["late_1>3"]
    assert low.describe("L1")["early_warning"]["due_date"] == "2026-04-01"
    again = EarlyWarning(low.settings, policy)
    _, alerts2 = _run(again, _book())
    assert [a.alert_id for a in alerts2 if a.kind == "pre_due_risk"] == [
        a["alert_id"] for a in pre_due
    ]


def test_state_round_trips_through_its_codec() -> None:
    tracker = EarlyWarning(
        EarlyWarningPolicy(lead_days=5, threshold=0.3, scorecard=scorecard_from_json(card_doc())),
        Policy(),
    )
    _run(tracker, _book())
    for state in tracker.states.values():
        assert decode_state(encode_state(state, 3)) == state


def test_bins_and_woe() -> None:
    values = [float(i % 10) for i in range(1000)] + [None] * 100
    targets = [int(v is not None and v >= 7) for v in values]
    b = fit_bins(values, targets)
    assert b.has_missing and b.labels[-1] == "missing"
    assert b.woe[0] > 0 > b.woe[len(b.uppers) - 1]  # high values are bad
    assert all(u is None or u == int(u) for u in b.uppers)


def test_evaluation_figures() -> None:
    probs = [0.9, 0.8, 0.7, 0.2, 0.1, 0.05]
    targets = [1, 1, 0, 0, 0, 0]
    assert ev.auc(probs, targets) == 1.0
    assert ev.ks(probs, targets) == 1.0
    assert ev.auc([0.5] * 4, [1, 0, 1, 0]) == 0.5
    assert ev.brier([1.0, 0.0], [1, 0]) == 0.0
    ds = ev.deciles(probs * 10, targets * 10)
    assert len(ds) == 10 and ds[0].lift == 3.0 and ds[-1].capture == 1.0
    assert ev.psi(probs, probs, [0.3, 0.75]) == 0.0
    assert ev.coverage(probs, targets, 0.75) == (2, 0, 2, 2)


def test_a_reason_code_reads_as_a_condition_on_the_feature() -> None:
    assert reason_code("reversals", "<=0") == "reversals<=0"
    assert reason_code("late_1", ">3") == "late_1>3"
    assert reason_code("dpd_now", "(2,5]") == "2<dpd_now<=5"
    assert reason_code("contacts", "missing") == "contacts=missing"
    assert reason_code("x", "any") == "x=any"
