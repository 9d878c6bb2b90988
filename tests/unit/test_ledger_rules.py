"""One test per domain rule of SPEC §1-6, each small enough to read as the rule itself."""

from __future__ import annotations

import pytest

from loanwatch.ledger.policy import Policy

from .ledger_helpers import Harness, event, opened, paid, tick

ONE = [("2026-02-01", "100.00", "10.00", "5.00"), ("2026-03-01", "100.00", "10.00", "0.00")]


def test_allocation_goes_fee_then_interest_then_principal_oldest_first() -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", ONE), paid("A", "2026-01-20", "12.00"))
    slot = h.engine.loans["A"].ledger.slots[0]
    assert (slot.paid_fee, slot.paid_interest, slot.paid_principal) == (500, 700, 0)


def test_allocation_order_is_a_policy_setting() -> None:
    h = Harness(Policy(allocation_order=("principal", "interest", "fee")))
    h.feed(opened("A", "2026-01-01", ONE), paid("A", "2026-01-20", "12.00"))
    slot = h.engine.loans["A"].ledger.slots[0]
    assert (slot.paid_fee, slot.paid_interest, slot.paid_principal) == (0, 0, 1200)


def test_overpayment_becomes_credit_balance() -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", ONE), paid("A", "2026-01-20", "300.00"))
    assert h.engine.loans["A"].ledger.credit == 300_00 - 225_00
    assert h.state("A")["outstanding_principal"] == "0.00"


def test_dpd_is_zero_on_the_due_date_and_one_the_day_after() -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", ONE), tick("2026-02-01"))
    assert h.state("A")["dpd"] == 0
    h.feed(tick("2026-02-02"))
    assert h.state("A")["dpd"] == 1 and h.state("A")["bucket"] == "M1"
    assert h.kinds("A") == [("overdue", "2026-02-02"), ("classification_changed", "2026-02-02")]


def test_utc_timestamp_falls_on_the_next_local_day() -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", ONE), paid("A", "2026-02-01", "115.00", time="16:30:00Z"))
    # 16:30Z is 00:30 on 2026-02-02 in Shanghai: the installment was one day late.
    assert ("overdue", "2026-02-02") in h.kinds("A")
    assert ("cured", "2026-02-02") in h.kinds("A")


def test_reversal_recomputes_the_ledger_and_alerts() -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", ONE), paid("A", "2026-02-01", "115.00", pid="P1"))
    h.feed(event("payment_reversed", "A", "2026-02-05", payment_id="P1", reason="nsf"))
    state = h.state("A")
    assert state["dpd"] == 4 and state["overdue_amount"] == "115.00"
    assert [k for k, _ in h.kinds("A")] == ["overdue", "classification_changed", "payment_reversed"]


def test_reversal_of_unknown_or_already_reversed_payment_is_dead_lettered() -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", ONE), paid("A", "2026-01-10", "5.00", pid="P1"))
    h.feed(event("payment_reversed", "A", "2026-01-11", payment_id="P1", reason="x"))
    h.feed(event("payment_reversed", "A", "2026-01-12", payment_id="P1", reason="x"))
    h.feed(event("payment_reversed", "A", "2026-01-12", payment_id="nope", reason="x"))
    assert h.reasons() == ["unknown_payment", "unknown_payment"]


def test_broken_promise_fires_the_day_after_the_promised_date() -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", ONE), tick("2026-02-10"))
    h.feed(
        event(
            "promise_to_pay",
            "A",
            "2026-02-10",
            promise_id="PR",
            amount="115.00",
            promised_date="2026-02-15",
        )
    )
    h.feed(paid("A", "2026-02-12", "50.00"), tick("2026-02-15"))
    assert "promise_broken" not in [k for k, _ in h.kinds("A")]
    h.feed(tick("2026-02-16"))
    broken = [a for a in h.alerts if a["kind"] == "promise_broken"]
    assert len(broken) == 1 and broken[0]["business_date"] == "2026-02-16"
    assert (broken[0]["promised_amount"], broken[0]["paid_amount"]) == ("115.00", "50.00")


def test_kept_promise_fires_nothing() -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", ONE), tick("2026-02-10"))
    h.feed(
        event(
            "promise_to_pay",
            "A",
            "2026-02-10",
            promise_id="PR",
            amount="115.00",
            promised_date="2026-02-15",
        )
    )
    h.feed(paid("A", "2026-02-15", "115.00"), tick("2026-03-01"))
    assert "promise_broken" not in [k for k, _ in h.kinds("A")]


def test_duplicate_event_id_is_ignored() -> None:
    h = Harness()
    pay = paid("A", "2026-01-10", "5.00")
    h.feed(opened("A", "2026-01-01", ONE), pay, pay)
    assert h.results[-1] == "duplicate"
    assert h.engine.loans["A"].ledger.slots[0].paid_fee == 500


def test_orphan_is_parked_then_applied_when_the_loan_opens() -> None:
    h = Harness()
    h.feed(paid("A", "2026-01-03", "115.00"))
    assert h.results == ["parked"]
    h.feed(opened("A", "2026-01-05", ONE), tick("2026-02-20"))
    assert h.state("A")["dpd"] == 0 and h.rejects == []


def test_orphan_expires_on_the_first_day_past_the_ttl() -> None:
    h = Harness()
    h.feed(paid("A", "2026-01-10", "115.00"), tick("2026-01-17"))
    assert h.rejects == []
    h.feed(tick("2026-01-18"))
    assert h.reasons() == ["unknown_loan"]


def test_late_loan_opened_is_already_past_due() -> None:
    h = Harness()
    h.feed(tick("2026-02-20"), opened("A", "2026-01-01", ONE))
    assert h.kinds("A")[0] == ("overdue", "2026-02-20") and h.state("A")["dpd"] == 19


def test_late_payment_is_applied_on_the_clock_date() -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", ONE), tick("2026-02-10"), paid("A", "2026-01-20", "115.00"))
    assert ("cured", "2026-02-10") in h.kinds("A")


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        (1.5, "bad_amount"),
        ("1.234", "bad_amount"),
        ("-5.00", "bad_amount"),
        ("0.00", "bad_amount"),
        ("abc", "bad_amount"),
    ],
)
def test_bad_amounts_are_dead_lettered(amount: object, reason: str) -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", ONE))
    bad = paid("A", "2026-01-10", "1.00")
    bad["amount"] = amount
    h.feed(bad)
    assert h.reasons() == [reason]


def test_every_kind_of_bad_input_gets_its_reason_and_never_raises() -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", ONE))
    bad_schedule = opened(
        "B", "2026-01-01", [("2026-03-01", "1.00", "0", "0"), ("2026-02-01", "1.00", "0", "0")]
    )
    bad_sum = opened("C", "2026-01-01", ONE)
    bad_sum["principal"] = "999.00"
    h.feed(
        '{"type": "payment_received", ',
        "[1, 2]",
        {"event_id": "x1", "type": "loan_exploded", "occurred_at": "2026-01-02T00:00:00+08:00"},
        {
            "event_id": "x2",
            "type": "payment_received",
            "occurred_at": "2026-01-02T00:00:00+08:00",
            "loan_id": "A",
        },
        {
            "event_id": "x3",
            "type": "payment_received",
            "occurred_at": "yesterday",
            "loan_id": "A",
            "payment_id": "p",
            "amount": "1.00",
        },
        {
            "event_id": "x4",
            "type": "payment_received",
            "occurred_at": "2026-01-02T10:00:00",
            "loan_id": "A",
            "payment_id": "p",
            "amount": "1.00",
        },
        bad_schedule,
        bad_sum,
        opened("A", "2026-01-03", ONE),
        event("loan_closed", "A", "2026-01-04", reason="repaid"),
        paid("A", "2026-01-05", "1.00"),
        event("loan_closed", "A", "2026-01-05", reason="exploded"),
    )
    assert h.reasons() == [
        "malformed_json",
        "malformed_json",
        "unknown_type",
        "missing_field",
        "bad_date",
        "bad_date",
        "bad_schedule",
        "bad_schedule",
        "duplicate_loan",
        "loan_closed",
        "bad_field",
    ]


def test_rejected_event_still_moves_the_clock() -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", ONE))
    bad = paid("A", "2026-02-05", "1.00")
    bad["amount"] = 1
    h.feed(bad)
    assert h.engine.clock is not None and h.engine.clock.isoformat() == "2026-02-05"
    assert h.state("A")["dpd"] == 4


def test_restructure_floor_holds_through_the_observation_period() -> None:
    h = Harness()
    h.feed(
        opened("A", "2026-01-01", [("2026-01-31", "200.00", "0.00", "0.00")]), tick("2026-03-15")
    )
    h.feed(
        event(
            "schedule_revised",
            "A",
            "2026-03-15",
            reason="restructure",
            installments=[
                {"seq": 1, "due_date": "2026-04-01", "principal": "200.00", "interest": "0.00"}
            ],
        )
    )
    state = h.state("A")
    assert state["dpd"] == 0 and state["restructured"] and state["own_class"] == "special_mention"
    h.feed(paid("A", "2026-04-01", "200.00"), tick("2027-04-01"))
    assert h.state("A")["own_class"] == "special_mention"  # observation ends 2026-04-01 + 365
    h.feed(tick("2027-04-02"))
    assert h.state("A")["own_class"] == "normal" and not h.state("A")["restructured"]


def test_extension_is_not_a_restructure() -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", ONE), tick("2026-02-05"))
    h.feed(
        event(
            "schedule_revised",
            "A",
            "2026-02-05",
            reason="extension",
            installments=[
                {"seq": 1, "due_date": "2026-06-01", "principal": "200.00", "interest": "20.00"}
            ],
        )
    )
    assert h.state("A")["restructured"] is False and h.state("A")["own_class"] == "normal"


def test_non_performing_loan_stays_substandard_until_cured_for_180_days() -> None:
    h = Harness()
    h.feed(
        opened("A", "2026-01-01", [("2026-01-31", "100.00", "0.00", "0.00")]), tick("2026-05-02")
    )
    assert h.state("A")["own_class"] == "substandard"
    h.feed(paid("A", "2026-05-10", "100.00"))
    assert h.state("A")["own_class"] == "substandard" and h.state("A")["dpd"] == 0
    h.feed(tick("2026-11-05"))  # 2026-05-10 + 179 days
    assert h.state("A")["own_class"] == "substandard"
    h.feed(tick("2026-11-06"))
    assert h.state("A")["own_class"] == "normal"


def test_high_risk_signal_puts_the_loan_on_the_watchlist_for_90_days() -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", [("2026-12-31", "100.00", "0.00", "0.00")]))
    h.feed(event("risk_signal", "A", "2026-02-01", signal="litigation", severity="high"))
    assert h.state("A")["watchlist"] and h.state("A")["ifrs9_stage"] == 2
    h.feed(tick("2026-05-02"))
    assert h.state("A")["watchlist"]
    h.feed(tick("2026-05-03"))
    assert not h.state("A")["watchlist"] and h.state("A")["own_class"] == "normal"


def test_low_signal_alerts_without_watchlist_and_borrower_signal_reaches_every_active_loan() -> (
    None
):
    h = Harness()
    h.feed(
        opened("A", "2026-01-01", ONE, borrower="B"), opened("C", "2026-01-01", ONE, borrower="B")
    )
    h.feed(
        event(
            "risk_signal",
            None,
            "2026-01-10",
            borrower_id="B",
            signal="bureau_score_drop",
            severity="low",
        )
    )
    assert sorted(a["loan_id"] for a in h.alerts if a["kind"] == "risk_signal") == ["A", "C"]
    assert not h.state("A")["watchlist"]
    h.feed(
        event("risk_signal", None, "2026-01-10", borrower_id="nobody", signal="x", severity="high")
    )
    assert h.rejects == []


def test_cross_default_floors_every_loan_of_the_borrower_above_the_share() -> None:
    h = Harness()
    h.feed(opened("S", "2026-01-01", [("2026-01-31", "100.00", "0.00", "0.00")], borrower="G"))
    h.feed(opened("L", "2026-01-01", [("2027-01-31", "800.00", "0.00", "0.00")], borrower="G"))
    h.feed(tick("2026-05-02"))  # S reaches DPD 91: share 100/900 = 0.1111 > 0.10
    assert h.state("L")["classification"] == "substandard" and h.state("L")["own_class"] == "normal"
    cross = [a for a in h.alerts if a["kind"] == "cross_default"]
    assert (
        sorted(a["loan_id"] for a in cross) == ["L", "S"]
        and cross[0]["borrower_npl_share"] == "0.1111"
    )
    h.feed(event("loan_closed", "S", "2026-05-03", reason="written_off"))
    assert h.state("L")["cross_default"] is False
    assert [a["loan_id"] for a in h.alerts if a["kind"] == "cross_default_cleared"] == ["L"]


def test_closed_loan_keeps_its_closing_values_and_stops_aging() -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", ONE), tick("2026-02-10"))
    h.feed(event("loan_closed", "A", "2026-02-10", reason="sold"), tick("2026-06-01"))
    state = h.state("A")
    assert (state["status"], state["dpd"], state["bucket"]) == ("sold", 9, "M1")
    assert all(d <= "2026-02-10" for _, d in h.kinds("A"))


def test_alert_ids_are_deterministic_and_unique() -> None:
    def run() -> list[str]:
        h = Harness()
        h.feed(opened("A", "2026-01-01", ONE), tick("2026-09-01"))
        return [a["alert_id"] for a in h.alerts]

    first, second = run(), run()
    assert first == second and len(set(first)) == len(first) > 3


def test_dedupe_travels_with_the_loan_state() -> None:
    """A worker restored from the loans table alone (no separate seen-ids) still ignores a
    re-delivery: a loan's applied ids are keyed parts of the same table (one changelog)."""
    from loanwatch.agents.state import LoanStore
    from loanwatch.ledger.engine import Engine

    table: dict[str, bytes] = {}
    store = LoanStore(table)
    h = Harness()
    h.engine = Engine(Policy(), loans=store, history=store)
    pay = paid("A", "2026-01-10", "5.00")
    h.feed(opened("A", "2026-01-01", ONE), pay)
    store.flush()
    restored = LoanStore(dict(table))
    engine = Engine(Policy(), loans=restored, history=restored, seen=set())
    assert engine.process(pay).result == "duplicate"
    assert restored["A"].ledger.slots[0].paid_fee == 500


@pytest.mark.parametrize(
    "bad",
    [
        {"occurred_at": "9999-12-31T23:00:00-10:00"},
        {"occurred_at": "0001-01-01T00:00:00+14:00"},
        {
            "installments": [
                {"seq": 1, "due_date": "9999-12-31", "principal": "1.00", "interest": "0"}
            ]
        },
        {
            "promised_date": "9999-12-31",
            "type": "promise_to_pay",
            "promise_id": "P",
            "amount": "1.00",
        },
    ],
)
def test_dates_out_of_range_are_bad_dates_not_crashes(bad: dict[str, object]) -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", ONE))
    base = opened("N", "2026-01-02", [("2026-03-01", "1.00", "0.00", "0.00")])
    base.update(bad)
    if base["type"] == "promise_to_pay":
        base["loan_id"] = "A"
    h.feed(base)
    assert h.reasons() == ["bad_date"]
    h.feed(tick("2026-12-31"))  # the worker goes on aging
    assert h.state("A")["dpd"] > 0


@pytest.mark.parametrize("amount", ["1.5\n", "10\n", "\u0661\u0662.\u0660\u0660", "1.5 ", "\n1.5"])
def test_an_amount_with_a_newline_or_non_ascii_digits_is_bad_amount(amount: str) -> None:
    from loanwatch.ledger.money import MoneyError, parse_cents, parse_money

    with pytest.raises(MoneyError):
        parse_cents(amount)
    with pytest.raises(MoneyError):
        parse_money(amount)
