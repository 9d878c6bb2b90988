"""Templates: zh-CN and en texts with amount, due date and loan reference, never personal data."""

from __future__ import annotations

from decimal import Decimal

from loanwatch.routing.alert import parse_alert
from loanwatch.routing.templates import MessageContext, context_for, render

from ..pre_due import PRE_DUE

ALERT = {
    "alert_id": "a1",
    "kind": "overdue",
    "severity": "warning",
    "loan_id": "LN-2026-0042",
    "borrower_id": "B-77",
    "business_date": "2026-02-02",
    "dpd": 1,
    "bucket": "M1",
    "due_date": "2026-02-01",
    "overdue_amount": "12345.60",
    "currency": "CNY",
}


def test_borrower_sms_in_both_locales() -> None:
    ctx = context_for(parse_alert(ALERT))
    zh = render(ctx, "borrower", "zh-CN")
    assert "LN-2026-0042" in zh.body and "12,345.60 CNY" in zh.body and "2026-02-01" in zh.body
    assert "逾期1天" in zh.body
    en = render(ctx, "borrower", "en-US")
    assert en.body.startswith("Your loan LN-2026-0042 is 1 days past due")
    assert "12,345.60 CNY" in en.body and "due on 2026-02-01" in en.body
    assert en.subject == "Payment reminder: loan LN-2026-0042"


def test_oncall_page_and_cured_text() -> None:
    ctx = context_for(parse_alert(ALERT), priority="P2", item_id="wi-a1")
    page = render(ctx, "oncall", "en")
    assert page.subject == "[P2] overdue loan LN-2026-0042"
    assert "Work item wi-a1" in page.body
    cured = parse_alert(ALERT | {"kind": "cured", "overdue_amount": "0.00"})
    assert "已恢复正常" in render(context_for(cured), "borrower", "zh").body


def test_missing_due_date_and_no_personal_fields() -> None:
    ctx = MessageContext("L1", "promise_broken", Decimal("5"), "CNY", None, 3, "M1")
    assert "n/a" in render(ctx, "borrower", "en").body
    assert "未知" in render(ctx, "borrower", "zh-CN").body
    # The context type is the only input: it has no field for a name, id number or phone.
    assert set(MessageContext.__slots__) == {
        "loan_ref",
        "kind",
        "amount",
        "currency",
        "due_date",
        "dpd",
        "bucket",
        "priority",
        "item_id",
    }


def test_pre_due_reminder_in_both_locales_without_the_score() -> None:
    ctx = context_for(parse_alert(PRE_DUE | {"loan_id": "LN-2026-0042"}))
    zh = render(ctx, "borrower", "zh-CN")
    assert zh.subject == "还款日提醒：贷款 LN-2026-0042"  # noqa: RUF001
    assert "LN-2026-0042" in zh.body and "应还日期为 2026-03-10" in zh.body
    en = render(ctx, "borrower", "en")
    assert en.subject == "Upcoming payment: loan LN-2026-0042"
    assert en.body.startswith("Your loan LN-2026-0042 has an installment due on 2026-03-10.")
    for text in (zh.body, en.body, zh.subject, en.subject):
        # not the overdue text, and nothing of the score reaches the borrower
        assert "逾期" not in text and "past due" not in text
        assert "0.41" not in text and "541" not in text and "late_1" not in text
