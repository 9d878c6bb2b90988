"""Contact compliance: quiet hours defer (never drop), CN daily caps, US Reg F 7-in-7 and
post-conversation cool-off, do-not-contact; every decision under a controllable clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from loanwatch.routing.compliance import (
    Allowed,
    ContactRecord,
    ContactRequest,
    Deferred,
    check,
    parse_compliance,
)
from loanwatch.routing.config import load_compliance
from loanwatch.routing.errors import ConfigError

from ..pre_due import PRE_DUE as TEMPLATE_PRE_DUE

RULES = load_compliance()


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: str) -> None:
        self.now = datetime.fromisoformat(start)

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


def cn(channel: str = "call", number: str | None = "n1", **kw: object) -> ContactRequest:
    return ContactRequest("L1", "D1", channel, number, "CN", None, **kw)  # type: ignore[arg-type]


def us(channel: str = "call") -> ContactRequest:
    return ContactRequest("L9", "D9", channel, "n9", "US", "America/Chicago")


def rec(
    at: datetime,
    outcome: str,
    *,
    loan: str = "L1",
    debtor: str = "D1",
    number: str | None = "n1",
    channel: str = "call",
) -> ContactRecord:
    return ContactRecord(at, loan, debtor, channel, outcome, number)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_cn_quiet_hours_defer_to_eight_not_drop() -> None:
    clock = FakeClock("2026-03-05T21:59:59+08:00")
    assert check(RULES, cn(), [], clock.now) == Allowed(clock.now)
    decision = check(RULES, cn("sms"), [], clock.advance(seconds=1))
    assert isinstance(decision, Deferred)
    assert decision.until == at("2026-03-06T08:00:00+08:00")
    assert decision.rule == "cn_quiet_hours" and "22:00-08:00" in decision.reason
    early = check(RULES, cn(), [], at("2026-03-06T07:30:00+08:00"))
    assert isinstance(early, Deferred) and early.until == at("2026-03-06T08:00:00+08:00")
    # An instant given in UTC is judged in the borrower's local time (13:30Z = 21:30 Shanghai).
    assert isinstance(check(RULES, cn(), [], at("2026-03-05T13:30:00+00:00")), Allowed)
    # Email is not under the CN quiet-hours rule in the shipped config.
    assert isinstance(check(RULES, cn("email"), [], at("2026-03-05T23:00:00+08:00")), Allowed)


def test_cn_three_connected_calls_per_debtor_per_day() -> None:
    day = at("2026-03-05T09:00:00+08:00")
    history = [rec(day + timedelta(hours=h), "reached", number=f"n{h}") for h in range(3)]
    # Unanswered calls and other debtors do not count toward the connected cap.
    history += [rec(day, "no_answer", number="x"), rec(day, "reached", debtor="D2", loan="L2")]
    assert isinstance(check(RULES, cn(), history[:2], day + timedelta(hours=5)), Allowed)
    decision = check(RULES, cn(), history, day + timedelta(hours=5))
    assert isinstance(decision, Deferred)
    assert decision.rule == "cn_conversations_per_debtor_per_day"
    assert decision.until == at("2026-03-06T08:00:00+08:00")  # next day, after quiet hours
    # SMS is not capped by a calls rule.
    assert isinstance(check(RULES, cn("sms"), history, day + timedelta(hours=5)), Allowed)


def test_cn_six_unanswered_calls_per_number_per_day() -> None:
    day = at("2026-03-05T08:00:00+08:00")
    history = [rec(day + timedelta(minutes=10 * i), "no_answer") for i in range(6)]
    blocked = check(RULES, cn(number="n1"), history, day + timedelta(hours=3))
    assert isinstance(blocked, Deferred)
    assert blocked.rule == "cn_unanswered_calls_per_number_per_day"
    assert blocked.until == at("2026-03-06T08:00:00+08:00")
    # Another number of the same debtor may still be tried today.
    assert isinstance(check(RULES, cn(number="n2"), history, day + timedelta(hours=3)), Allowed)


def test_us_reg_f_inconvenient_times_in_borrower_zone() -> None:
    # 21:30 in Chicago is 22:30 in New York; the borrower's zone decides.
    decision = check(RULES, us(), [], at("2026-03-05T21:30:00-06:00"))
    assert isinstance(decision, Deferred)
    assert decision.until == at("2026-03-06T08:00:00-06:00")
    assert isinstance(check(RULES, us(), [], at("2026-03-05T20:59:00-06:00")), Allowed)


def test_us_reg_f_seven_calls_in_seven_days() -> None:
    start = at("2026-03-02T10:00:00-06:00")
    history = [
        rec(start + timedelta(days=i), "no_answer", loan="L9", debtor="D9", number="n9")
        for i in range(7)
    ]
    now = start + timedelta(days=6, hours=2)  # 7 attempts in the last 7 days
    decision = check(RULES, us(), history, now)
    assert isinstance(decision, Deferred) and decision.rule == "us_reg_f_7_in_7"
    # The oldest attempt leaves the 7-day window at start + 7 days.
    assert decision.until == start + timedelta(days=7)
    assert isinstance(check(RULES, us(), history, start + timedelta(days=7)), Allowed)
    # Calls about another debt do not count.
    other = [ContactRecord(r.at, "L10", "D9", "call", r.outcome, "n9") for r in history]
    assert isinstance(check(RULES, us(), other, now), Allowed)


def test_us_reg_f_no_call_within_seven_days_after_conversation() -> None:
    talk = at("2026-03-02T15:00:00-06:00")
    history = [rec(talk, "reached", loan="L9", debtor="D9", number="n9")]
    clock = FakeClock("2026-03-05T10:00:00-06:00")
    decision = check(RULES, us(), history, clock.now)
    assert isinstance(decision, Deferred) and decision.rule == "us_reg_f_after_conversation"
    assert decision.until == talk + timedelta(days=7)
    # An SMS is not a telephone call: allowed during the cool-off.
    assert isinstance(check(RULES, us("sms"), history, clock.now), Allowed)
    assert isinstance(check(RULES, us(), history, talk + timedelta(days=7)), Allowed)


def test_cooloff_ending_in_quiet_hours_moves_to_morning() -> None:
    talk = at("2026-03-02T21:00:00-06:00")  # conversation right at 21:00 local
    history = [rec(talk, "reached", loan="L9", debtor="D9", number="n9")]
    decision = check(RULES, us(), history, at("2026-03-05T10:00:00-06:00"))
    assert isinstance(decision, Deferred)
    assert decision.until == at("2026-03-10T08:00:00-05:00")  # after DST starts on 03-08


def test_do_not_contact_holds_without_end_and_is_channel_specific() -> None:
    flagged = cn("sms", do_not_contact=frozenset({"sms"}))
    decision = check(RULES, flagged, [], at("2026-03-05T10:00:00+08:00"))
    assert isinstance(decision, Deferred)
    assert decision.until is None and decision.rule == "do_not_contact"
    assert isinstance(
        check(
            RULES, cn("email", do_not_contact=frozenset({"sms"})), [], at("2026-03-05T10:00+08:00")
        ),
        Allowed,
    )
    everything = cn("email", do_not_contact=frozenset({"all"}))
    assert isinstance(check(RULES, everything, [], at("2026-03-05T10:00:00+08:00")), Deferred)


def test_unknown_jurisdiction_uses_default_and_naive_now_is_refused() -> None:
    req = ContactRequest("L1", "D1", "call", "n1", "XX")
    assert isinstance(check(RULES, req, [], at("2026-03-05T23:00:00+08:00")), Deferred)
    with pytest.raises(ValueError, match="aware"):
        check(RULES, req, [], datetime(2026, 3, 5, 10))


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"default_jurisdiction": "CN", "jurisdictions": {}}, "'CN' is not under"),
        (
            {"default_jurisdiction": "CN", "jurisdictions": {"CN": {"timezone": "Nowhere/X"}}},
            "unknown timezone",
        ),
        (
            {
                "default_jurisdiction": "CN",
                "jurisdictions": {
                    "CN": {
                        "timezone": "Asia/Shanghai",
                        "caps": [{"name": "c", "per": "household", "max": 3}],
                    }
                },
            },
            r"caps\[0\].per",
        ),
        (
            {
                "default_jurisdiction": "CN",
                "jurisdictions": {
                    "CN": {
                        "timezone": "Asia/Shanghai",
                        "caps": [{"name": "c", "per": "debtor", "max": 0}],
                    }
                },
            },
            r"caps\[0\].max",
        ),
        (
            {
                "default_jurisdiction": "CN",
                "jurisdictions": {
                    "CN": {
                        "timezone": "Asia/Shanghai",
                        "quiet_hours": [{"from": "22:00", "to": "8am"}],
                    }
                },
            },
            r"quiet_hours\[0\].to",
        ),
        (
            {
                "default_jurisdiction": "CN",
                "jurisdictions": {
                    "CN": {
                        "timezone": "Asia/Shanghai",
                        "quiet_hours": [{"from": "22:00", "to": "08:00", "channels": ["fax"]}],
                    }
                },
            },
            "unknown channel 'fax'",
        ),
    ],
)
def test_compliance_validation(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_compliance(doc)


PRE_DUE = TEMPLATE_PRE_DUE | {"loan_id": "L1", "borrower_id": "D1"}


def pre_due_sms() -> ContactRequest:
    """The pre-due alert routed by the shipped config; its borrower SMS as the worker asks."""
    from loanwatch.routing.alert import parse_alert
    from loanwatch.routing.config import load_routing
    from loanwatch.routing.contacts import Debtor
    from loanwatch.routing.notify.plan import alert_entries

    alert = parse_alert(PRE_DUE)
    routes = load_routing().routes_for(alert)
    assert [r.name for r in routes] == ["pre-due-risk"] and not routes[0].work_item
    entries = alert_entries(alert, routes, "", None)
    [sms] = [e for e in entries if e["target"] == "borrower"]
    [hook] = [e for e in entries if e["channel"] == "webhook"]
    assert sms["channel"] == "sms" and sms["due_date"] == PRE_DUE["due_date"]
    # the collectors' tool gets the score and its reasons
    assert hook["probability"] == "0.4127" and hook["model_version"] == "ew-1"
    assert hook["reason_codes"] == "late_1>3,2<dpd_now<=5,reversals>0"
    debtor = Debtor(
        sms["borrower_id"], "+8613800000000", None, None, "CN", "zh-CN", frozenset(), "n1"
    )
    return debtor.request(sms["loan_id"], sms["channel"])


def test_the_pre_due_sms_is_held_by_quiet_hours_caps_and_do_not_contact() -> None:
    request = pre_due_sms()
    assert check(RULES, request, [], at("2026-03-05T10:00:00+08:00")) == Allowed(
        at("2026-03-05T10:00:00+08:00")
    )
    quiet = check(RULES, request, [], at("2026-03-05T22:30:00+08:00"))
    assert quiet == Deferred(at("2026-03-06T08:00:00+08:00"), quiet.reason, "cn_quiet_hours")  # type: ignore[union-attr]
    capped = parse_compliance(
        {
            "default_jurisdiction": "CN",
            "jurisdictions": {
                "CN": {
                    "timezone": "Asia/Shanghai",
                    "caps": [
                        {"name": "sms_per_day", "channels": ["sms"], "per": "debtor", "max": 2}
                    ],
                }
            },
        }
    )
    sent = [
        rec(at("2026-03-05T09:00:00+08:00"), "sent", loan=f"L{i}", channel="sms") for i in (2, 3)
    ]
    held = check(capped, request, sent, at("2026-03-05T10:00:00+08:00"))
    assert isinstance(held, Deferred) and held.rule == "sms_per_day"
    assert held.until == at("2026-03-06T00:00:00+08:00")  # the borrower's next local day
    flagged = ContactRequest(
        request.loan_id, request.debtor_id, "sms", "n1", "CN", None, frozenset({"sms"})
    )
    dnc = check(RULES, flagged, [], at("2026-03-05T10:00:00+08:00"))
    assert isinstance(dnc, Deferred) and dnc.until is None
