# ruff: noqa: RUF001  (full-width punctuation is correct in the zh-CN texts)
"""SMS and email texts, in zh-CN and en, for borrowers (reminders) and collectors (pages).

Borrowers get one of three texts by the alert's kind: the overdue reminder, the cured
confirmation, and the pre-due reminder of ``pre_due_risk`` (early warning).

A message is built only from :class:`MessageContext`, which holds the loan reference, amounts,
dates and classes, and never a borrower's name, id-card number or phone: personal data cannot
reach a template (or a log line printed from one) by construction. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from loanwatch.routing.alert import AlertRecord

Locale = Literal["zh-CN", "en"]
Audience = Literal["borrower", "oncall"]
LOCALES: tuple[Locale, ...] = ("zh-CN", "en")


@dataclass(frozen=True, slots=True)
class MessageContext:
    loan_ref: str
    kind: str
    amount: Decimal
    currency: str
    due_date: date | None
    dpd: int
    bucket: str
    priority: str = "P3"
    item_id: str = ""


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    body: str


_BORROWER: dict[Locale, tuple[str, str]] = {
    "zh-CN": (
        "还款提醒：贷款 {loan_ref}",
        "【还款提醒】您的贷款 {loan_ref} 已逾期{dpd}天，逾期金额 {amount} {currency}，"
        "应还日期 {due_date}。请尽快还款，如已还款请忽略。",
    ),
    "en": (
        "Payment reminder: loan {loan_ref}",
        "Your loan {loan_ref} is {dpd} days past due. Overdue amount: {amount} {currency}, "
        "due on {due_date}. Please pay as soon as possible; ignore this if you have paid.",
    ),
}
_BORROWER_CURED: dict[Locale, tuple[str, str]] = {
    "zh-CN": ("还款确认：贷款 {loan_ref}", "您的贷款 {loan_ref} 已恢复正常，感谢您的还款。"),
    "en": ("Payment received: loan {loan_ref}", "Your loan {loan_ref} is up to date. Thank you."),
}
# pre_due_risk (docs/early-warning.md): before the due date, so no arrears to state, and never
# the score or its reasons (a borrower is reminded, not told how the lender rates them).
_BORROWER_PRE_DUE: dict[Locale, tuple[str, str]] = {
    "zh-CN": (
        "还款日提醒：贷款 {loan_ref}",
        "【还款日提醒】您的贷款 {loan_ref} 下一期应还日期为 {due_date}，"
        "请提前准备资金，按时还款。如已还款请忽略。",
    ),
    "en": (
        "Upcoming payment: loan {loan_ref}",
        "Your loan {loan_ref} has an installment due on {due_date}. Please make sure it is paid "
        "on time; ignore this if you have already paid.",
    ),
}
_BORROWER_BY_KIND = {"cured": _BORROWER_CURED, "pre_due_risk": _BORROWER_PRE_DUE}
_ONCALL: dict[Locale, tuple[str, str]] = {
    "zh-CN": (
        "[{priority}] {kind} 贷款 {loan_ref}",
        "[{priority}] {kind}：贷款 {loan_ref}，{bucket}，逾期{dpd}天，"
        "逾期金额 {amount} {currency}，应还日期 {due_date}。工单 {item_id}",
    ),
    "en": (
        "[{priority}] {kind} loan {loan_ref}",
        "[{priority}] {kind}: loan {loan_ref}, {bucket}, DPD {dpd}, overdue {amount} {currency}, "
        "due {due_date}. Work item {item_id}",
    ),
}


def context_for(alert: AlertRecord, priority: str = "P3", item_id: str = "") -> MessageContext:
    due = alert.due_date
    return MessageContext(
        loan_ref=alert.loan_id,
        kind=alert.kind,
        amount=alert.overdue_amount,
        currency=alert.label("currency") or "CNY",
        due_date=date.fromisoformat(due) if due else None,
        dpd=int(alert.number("dpd") or 0),
        bucket=alert.label("bucket") or "",
        priority=priority,
        item_id=item_id,
    )


def render(ctx: MessageContext, audience: Audience, locale: str) -> Message:
    """The subject and body for ``audience`` in ``locale`` (unknown locales fall back to en)."""
    loc: Locale = "zh-CN" if locale.lower().startswith("zh") else "en"
    table = _ONCALL if audience == "oncall" else _BORROWER_BY_KIND.get(ctx.kind, _BORROWER)
    subject, body = table[loc]
    unknown = "未知" if loc == "zh-CN" else "n/a"
    values = {
        "loan_ref": ctx.loan_ref,
        "kind": ctx.kind,
        "amount": f"{ctx.amount:,.2f}",
        "currency": ctx.currency,
        "due_date": ctx.due_date.isoformat() if ctx.due_date else unknown,
        "dpd": str(ctx.dpd),
        "bucket": ctx.bucket,
        "priority": ctx.priority,
        "item_id": ctx.item_id or unknown,
    }
    return Message(subject.format_map(values), body.format_map(values))
