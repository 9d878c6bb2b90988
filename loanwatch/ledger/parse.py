"""Decode and validate wire events (SPEC §1) into domain records, or say why not.

Never raises on bad input: every failure is a :class:`Rejection` with a SPEC reason code
(``malformed_json``, ``unknown_type``, ``missing_field``, ``bad_amount``, ``bad_date``,
``bad_schedule``, ``bad_field``) and a message naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from loanwatch.ledger.money import MoneyError, canonical_cents, parse_cents_checked
from loanwatch.ledger.records import (
    BorrowerSignal,
    ClockTick,
    ContactLogged,
    Event,
    InstallmentTerms,
    LoanClosed,
    LoanOpened,
    PaymentReceived,
    PaymentReversed,
    PromiseToPay,
    Rejection,
    RiskSignal,
    ScheduleRevised,
)

CLOSE_REASONS = frozenset({"repaid", "written_off", "sold"})
CONTACT_CHANNELS = frozenset({"sms", "call", "email", "visit", "letter"})
SEVERITIES = frozenset({"low", "medium", "high"})
_CURRENCY = re.compile(r"[A-Z]{3}")  # fullmatch: "$" would accept a trailing newline
# Business dates outside this range are rejected: date arithmetic near date.max (aging,
# deadlines) would overflow, and no loan book has real dates there.
EARLIEST, LATEST = date(1900, 1, 1), date(2199, 12, 31)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # fullmatch, ASCII digits only


class Invalid(Exception):
    """Internal: carries a rejection out of the field readers."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.rejection = Rejection(reason, message)


def decode(raw: bytes | str) -> dict[str, Any] | Rejection:
    """Decode one wire message into a JSON object."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection("malformed_json", f"not valid JSON: {exc}")
    if not isinstance(obj, dict):
        return Rejection("malformed_json", f"expected a JSON object, got {type(obj).__name__}")
    return obj


# Date strings that passed :func:`parse_date_checked`, and their dates. Only canonical
# ``YYYY-MM-DD`` strings in EARLIEST..LATEST ever pass, so this holds at most ~110k entries
# (300 years of days); a hit returns the very date the checked path gave for that string.
_VALID_DATES: dict[str, date] = {}


def parse_date(value: object, name: str) -> date:
    if type(value) is str:
        day = _VALID_DATES.get(value)
        if day is not None:
            return day
    return parse_date_checked(value, name)


def parse_date_checked(value: object, name: str) -> date:
    """The validated path of :func:`parse_date` (every rejection); remembers what passed."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise Invalid("bad_date", f"{name} must be a YYYY-MM-DD string, got {value!r}")
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise Invalid("bad_date", f"{name} {value!r} is not a calendar date") from exc
    day = _in_range(day, name, value)
    if type(value) is str:
        _VALID_DATES[value] = day
    return day


def _in_range(day: date, name: str, value: str) -> date:
    if not EARLIEST <= day <= LATEST:
        raise Invalid("bad_date", f"{name} {value!r} is outside {EARLIEST}..{LATEST}")
    return day


# The last timestamp read and its business date: an event's ``occurred_at`` is read up to
# three times (the replay's --as-of check, the clock, the event) and is the same string each time.
_last_stamp: tuple[str, ZoneInfo, date] = ("", ZoneInfo("UTC"), EARLIEST)


def local_date(value: object, tz: ZoneInfo) -> date:
    """The business date of an RFC 3339 timestamp (which must carry an offset)."""
    last = _last_stamp
    if value == last[0] and tz is last[1] and type(value) is str:
        return last[2]
    return _local_date_checked(value, tz)


def _local_date_checked(value: object, tz: ZoneInfo) -> date:
    global _last_stamp
    if not isinstance(value, str):
        raise Invalid("bad_date", f"occurred_at must be an RFC 3339 string, got {value!r}")
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Invalid("bad_date", f"occurred_at {value!r} is not an RFC 3339 timestamp") from exc
    if stamp.tzinfo is None:
        raise Invalid("bad_date", f"occurred_at {value!r} has no UTC offset")
    try:
        local = stamp.astimezone(tz).date()
    except OverflowError as exc:
        raise Invalid("bad_date", f"occurred_at {value!r} is out of range") from exc
    day = _in_range(local, "occurred_at", value)
    if type(value) is str:
        _last_stamp = (value, tz, day)
    return day


def business_date_of(obj: dict[str, Any], tz: ZoneInfo) -> date | None:
    """The event's business date if it can be read, else None (SPEC §2: it moves the clock)."""
    try:
        if obj.get("type") == "clock_tick":
            return parse_date(obj.get("business_date"), "business_date")
        return local_date(obj.get("occurred_at"), tz)
    except Invalid:
        return None


def _text(obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if value is None:
        raise Invalid("missing_field", f"field {name!r} is required")
    if not isinstance(value, str) or not value:
        raise Invalid("bad_field", f"field {name!r} must be a non-empty string, got {value!r}")
    return value


def _optional_text(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid("bad_field", f"field {name!r} must be a string, got {value!r}")
    return value


def _choice(obj: dict[str, Any], name: str, allowed: frozenset[str]) -> str:
    value = _text(obj, name)
    if value not in allowed:
        raise Invalid(
            "bad_field", f"field {name!r} must be one of {sorted(allowed)}, got {value!r}"
        )
    return value


def _amount(obj: dict[str, Any], name: str, *, positive: bool) -> int:
    cents = canonical_cents(obj.get(name))  # -1 when absent or not canonical
    if cents > 0 or (cents == 0 and not positive):
        return cents
    return _amount_checked(obj, name, positive=positive)


def _amount_checked(obj: dict[str, Any], name: str, *, positive: bool) -> int:
    if name not in obj:
        raise Invalid("missing_field", f"field {name!r} is required")
    try:
        cents = parse_cents_checked(obj[name])
    except MoneyError as exc:
        raise Invalid("bad_amount", f"field {name!r}: {exc}") from exc
    if cents < 0 or (positive and cents == 0):
        bound = "> 0" if positive else ">= 0"
        raise Invalid("bad_amount", f"field {name!r} must be {bound}, got {obj[name]!r}")
    return cents


def _installments(obj: dict[str, Any]) -> tuple[InstallmentTerms, ...]:
    raw = obj.get("installments")
    if raw is None:
        raise Invalid("missing_field", "field 'installments' is required")
    if not isinstance(raw, list) or not raw:
        raise Invalid("bad_schedule", "installments must be a non-empty list")
    # The hot loop of an opening (a mortgage has 360 installments x 3 amounts): canonical
    # amounts and already-validated dates take the fast paths inline; anything else goes
    # through the checked readers, which raise the same reasons and messages as ever.
    terms: list[InstallmentTerms] = []
    append = terms.append
    dates = _VALID_DATES
    fast = canonical_cents
    new = tuple.__new__  # a named tuple without its Python-level __new__
    unordered = 0  # seq of the first installment not due after the one before it
    previous: date | None = None
    for position, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise Invalid("bad_schedule", f"installment {position} is not an object")
        seq = item.get("seq")
        if seq is None or "due_date" not in item:
            raise Invalid("missing_field", f"installment {position} needs seq and due_date")
        if seq != position or isinstance(seq, bool):
            raise Invalid(
                "bad_schedule", f"installment seq must run 1..n, got {seq!r} at {position}"
            )
        # "123.45": the amounts of a simulated or bank-written schedule, read inline (a call
        # per amount was a third of an opening's parse); anything else: canonical_cents.
        fee = item.get("fee", "0.00")
        if type(fee) is str and 3 < len(fee) <= 18 and fee[-3] == "." and fee.isascii():
            whole, frac = fee[:-3], fee[-2:]
            fee = int(whole + frac) if whole.isdigit() and frac.isdigit() else fast(fee)
        else:
            fee = fast(fee)
        if fee < 0:
            fee = _amount_checked(item, "fee", positive=False)
        value = item["due_date"]
        due = dates.get(value) if type(value) is str else None
        if due is None:
            due = parse_date_checked(value, f"installments[{position}].due_date")
        principal = item.get("principal")
        if (
            type(principal) is str
            and 3 < len(principal) <= 18
            and principal[-3] == "."
            and principal.isascii()
        ):
            whole, frac = principal[:-3], principal[-2:]
            ok = whole.isdigit() and frac.isdigit()
            principal = int(whole + frac) if ok else fast(principal)
        else:
            principal = fast(principal)
        if principal < 0:
            principal = _amount_checked(item, "principal", positive=False)
        interest = item.get("interest")
        if (
            type(interest) is str
            and 3 < len(interest) <= 18
            and interest[-3] == "."
            and interest.isascii()
        ):
            whole, frac = interest[:-3], interest[-2:]
            ok = whole.isdigit() and frac.isdigit()
            interest = int(whole + frac) if ok else fast(interest)
        else:
            interest = fast(interest)
        if interest < 0:
            interest = _amount_checked(item, "interest", positive=False)
        if not unordered and previous is not None and due <= previous:
            unordered = position
        previous = due
        append(new(InstallmentTerms, (position, due, principal, interest, fee)))
    if unordered:
        raise Invalid("bad_schedule", f"due dates must strictly increase (seq {unordered})")
    return tuple(terms)


def _loan_opened(obj: dict[str, Any], eid: str, day: date) -> LoanOpened:
    currency = _text(obj, "currency")
    if not _CURRENCY.fullmatch(currency):
        raise Invalid("bad_field", f"currency must be an ISO 4217 code, got {currency!r}")
    principal = _amount(obj, "principal", positive=True)
    terms = _installments(obj)
    total = sum(t.principal for t in terms)
    if total != principal:
        raise Invalid(
            "bad_schedule", f"installment principals sum to {total / 100:.2f}, not the principal"
        )
    return LoanOpened(
        eid,
        day,
        _text(obj, "loan_id"),
        _text(obj, "borrower_id"),
        _text(obj, "product"),
        _text(obj, "region"),
        currency,
        principal,
        terms,
    )


def _risk_signal(obj: dict[str, Any], eid: str, day: date) -> RiskSignal | BorrowerSignal:
    loan_id = _optional_text(obj, "loan_id")
    borrower_id = _optional_text(obj, "borrower_id")
    signal, severity = _text(obj, "signal"), _choice(obj, "severity", SEVERITIES)
    detail = _optional_text(obj, "detail")
    if loan_id:
        return RiskSignal(eid, day, loan_id, signal, severity, detail)
    if borrower_id:
        return BorrowerSignal(eid, day, borrower_id, signal, severity, detail)
    raise Invalid("missing_field", "a risk_signal needs loan_id or borrower_id")


_BUILDERS: dict[str, Callable[[dict[str, Any], str, date], Event]] = {
    "loan_opened": _loan_opened,
    "schedule_revised": lambda o, e, d: ScheduleRevised(
        e, d, _text(o, "loan_id"), _text(o, "reason"), _installments(o)
    ),
    "loan_closed": lambda o, e, d: LoanClosed(
        e, d, _text(o, "loan_id"), _choice(o, "reason", CLOSE_REASONS)
    ),
    "payment_received": lambda o, e, d: PaymentReceived(
        e,
        d,
        _text(o, "loan_id"),
        _text(o, "payment_id"),
        _amount(o, "amount", positive=True),
        _optional_text(o, "channel"),
    ),
    "payment_reversed": lambda o, e, d: PaymentReversed(
        e, d, _text(o, "loan_id"), _text(o, "payment_id"), _text(o, "reason")
    ),
    "promise_to_pay": lambda o, e, d: PromiseToPay(
        e,
        d,
        _text(o, "loan_id"),
        _text(o, "promise_id"),
        _amount(o, "amount", positive=True),
        parse_date(o.get("promised_date"), "promised_date"),
    ),
    "contact_logged": lambda o, e, d: ContactLogged(
        e,
        d,
        _text(o, "loan_id"),
        _choice(o, "channel", CONTACT_CHANNELS),
        _text(o, "outcome"),
        _optional_text(o, "collector_id"),
    ),
    "risk_signal": _risk_signal,
}
EVENT_TYPES = frozenset(_BUILDERS) | {"clock_tick"}


def parse_event(obj: dict[str, Any], tz: ZoneInfo) -> Event | Rejection:
    """Validate a decoded object into a domain event, or the reason it is rejected."""
    try:
        eid = _text(obj, "event_id")
        kind = _text(obj, "type")
        if kind not in EVENT_TYPES:
            raise Invalid("unknown_type", f"unknown event type {kind!r}")
        if kind == "clock_tick":
            if "business_date" not in obj:
                raise Invalid("missing_field", "field 'business_date' is required")
            return ClockTick(eid, parse_date(obj["business_date"], "business_date"))
        if "occurred_at" not in obj:
            raise Invalid("missing_field", "field 'occurred_at' is required")
        return _BUILDERS[kind](obj, eid, local_date(obj["occurred_at"], tz))
    except Invalid as exc:
        return exc.rejection
