"""The fast paths of amount and date parsing give exactly what the validated paths give.

``money.canonical_cents`` / ``parse_cents`` and ``parse.parse_date`` / ``local_date`` /
``_installments`` take shortcuts for canonical input; for every input (canonical or not) the
result, or the rejection reason and message, must equal the checked path's (the oracle below is
the pre-fast-path implementation, written with the checked readers only).
"""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loanwatch.ledger import parse
from loanwatch.ledger.money import MoneyError, canonical_cents, parse_cents, parse_cents_checked
from loanwatch.ledger.parse import Invalid, parse_date, parse_date_checked, parse_event
from loanwatch.ledger.records import InstallmentTerms, Rejection

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")

# Characters that make near-canonical strings: ASCII digits, separators, signs, whitespace,
# non-ASCII digits (which ``\d`` accepts), a fullwidth digit, an exponent and an underscore.
AMOUNT_CHARS = "0123456789..-+ \n\t_e\u0661\u0662\uff13"
DATE_CHARS = "0123456789---- \n\u0661\uff13W"

near_amounts = st.text(alphabet=AMOUNT_CHARS, max_size=20)
canonical_amounts = st.builds(
    lambda whole, frac: whole + frac,
    st.text(alphabet="0123456789", min_size=1, max_size=17),
    st.sampled_from(["", ".", ".5", ".50", ".05", ".123", ".0"]),
)
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=2),
    st.text(max_size=12),
)


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    """A call's result, or its error's reason (or type) and message."""
    try:
        return "ok", fn(*args)
    except Invalid as exc:
        return exc.rejection.reason, exc.rejection.message
    except MoneyError as exc:
        return "MoneyError", str(exc)


@settings(max_examples=600, deadline=None)
@given(st.one_of(near_amounts, canonical_amounts, odd_values))
def test_parse_cents_equals_the_checked_path(value: object) -> None:
    expected = outcome(parse_cents_checked, value)
    assert outcome(parse_cents, value) == expected
    fast = canonical_cents(value)
    if fast >= 0:  # the fast path only answers for what the checked path accepts, identically
        assert expected == ("ok", fast)
    else:
        assert fast == -1


@pytest.mark.parametrize(
    ("value", "cents"),
    [
        ("123.45", 12345),
        ("100", 10000),
        ("0.5", 50),
        ("0.05", 5),
        ("007.10", 710),
        ("0", 0),
        ("9" * 15 + ".99", 10**17 - 1),
    ],
)
def test_canonical_amounts_take_the_fast_path(value: str, cents: int) -> None:
    assert canonical_cents(value) == cents == parse_cents_checked(value)


@pytest.mark.parametrize(
    "value",
    [
        "-1.00",
        "1.5\n",
        "100\n",
        "\u0661\u0662\u0663.\u0664",
        "1.",
        ".5",
        "1.234",
        "1_000",
        " 1",
        "+1",
        "9" * 16,
    ],
)
def test_unusual_amounts_fall_back_to_the_checked_path(value: str) -> None:
    assert canonical_cents(value) == -1
    assert outcome(parse_cents, value) == outcome(parse_cents_checked, value)


near_dates = st.text(alphabet=DATE_CHARS, min_size=8, max_size=12)
real_dates = st.dates(date(1800, 1, 1), date(2300, 12, 31)).map(date.isoformat)


@settings(max_examples=600, deadline=None)
@given(st.one_of(near_dates, real_dates, odd_values), st.sampled_from(["due", "promised_date"]))
def test_parse_date_equals_the_checked_path(value: object, name: str) -> None:
    first = outcome(parse_date, value, name)  # remembered from an earlier example, or not
    expected = outcome(parse_date_checked, value, name)
    assert first == expected
    assert outcome(parse_date, value, name) == expected  # now remembered, if it is a date


def test_parse_date_keeps_its_rejections_and_messages() -> None:
    for value, reason in [
        ("2026-02-30", "is not a calendar date"),
        ("1899-12-31", "is outside 1900-01-01..2199-12-31"),
        ("2026-1-01", "must be a YYYY-MM-DD string"),
        ("2026-01-01\n", "must be a YYYY-MM-DD string"),  # no trailing newline accepted
    ]:
        with pytest.raises(Invalid, match=reason) as err:
            parse_date(value, "due")
        assert err.value.rejection.reason == "bad_date"
    assert parse_date("2199-12-31", "due") == date(2199, 12, 31)


@pytest.mark.parametrize(
    ("stamp", "tz", "day"),
    [
        ("2026-02-01T16:30:00Z", SHANGHAI, date(2026, 2, 2)),
        ("2026-02-01T16:30:00Z", UTC, date(2026, 2, 1)),
        ("2026-02-01T16:30:00Z", SHANGHAI, date(2026, 2, 2)),
        ("2026-02-01T10:00:00+08:00", SHANGHAI, date(2026, 2, 1)),
    ],
)
def test_local_date_remembers_only_the_same_stamp_and_zone(
    stamp: str, tz: ZoneInfo, day: date
) -> None:
    assert parse.local_date(stamp, tz) == day
    assert parse.local_date(stamp, tz) == day


def test_local_date_rejections_are_unchanged() -> None:
    parse.local_date("2026-02-01T10:00:00+08:00", SHANGHAI)  # something remembered
    for value, message in [
        ("2026-02-01T10:00:00", "has no UTC offset"),
        ("2026-02-01", "has no UTC offset"),
        ("yesterday", "is not an RFC 3339 timestamp"),
        ("9999-12-31T23:00:00-10:00", "is out of range"),
        (None, "must be an RFC 3339 string"),
    ]:
        with pytest.raises(Invalid, match=message):
            parse.local_date(value, SHANGHAI)


# --- installments: the inline loop against the original implementation ---


def reference_installments(obj: dict[str, Any]) -> tuple[InstallmentTerms, ...]:
    """``parse._installments`` as it was before the fast paths (checked readers only)."""
    raw = obj.get("installments")
    if raw is None:
        raise Invalid("missing_field", "field 'installments' is required")
    if not isinstance(raw, list) or not raw:
        raise Invalid("bad_schedule", "installments must be a non-empty list")
    terms: list[InstallmentTerms] = []
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
        fee = parse._amount_checked(item, "fee", positive=False) if "fee" in item else 0
        terms.append(
            InstallmentTerms(
                seq=position,
                due_date=parse_date_checked(item["due_date"], f"installments[{position}].due_date"),
                principal=parse._amount_checked(item, "principal", positive=False),
                interest=parse._amount_checked(item, "interest", positive=False),
                fee=fee,
            )
        )
    for earlier, later in pairwise(terms):
        if later.due_date <= earlier.due_date:
            raise Invalid("bad_schedule", f"due dates must strictly increase (seq {later.seq})")
    return tuple(terms)


def result_of(fn: Any, obj: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", fn(obj)
    except Invalid as exc:
        return exc.rejection.reason, exc.rejection.message


amount_values = st.one_of(
    canonical_amounts,
    st.sampled_from(["0.00", "1.5\n", "-1.00", "1.234", "\u0661\u0662", "", "1e3"]),
    st.none(),
    st.integers(-5, 5),
)
seq_values = st.one_of(st.none(), st.just(True), st.floats(0, 4), st.integers(0, 5))


@st.composite
def installment_lists(draw: st.DrawFn) -> object:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([None, [], "x", [1], [[]]]))
    start = date(2026, 1, 1)
    rows: list[object] = []
    offset = 0
    for position in range(1, draw(st.integers(1, 5)) + 1):
        offset += draw(st.sampled_from([30, 30, 30, 0, -5]))
        item: dict[str, object] = {
            "seq": position if draw(st.integers(0, 5)) else draw(seq_values),
            "due_date": (start + timedelta(days=offset)).isoformat()
            if draw(st.integers(0, 5))
            else draw(st.one_of(near_dates, st.none(), st.just("2300-01-01"))),
        }
        for name in ("principal", "interest", "fee"):
            if draw(st.integers(0, 7)):
                item[name] = draw(amount_values) if draw(st.integers(0, 2)) == 0 else "10.00"
        for name in ("seq", "due_date"):
            if draw(st.integers(0, 19)) == 0:
                del item[name]
        rows.append(item)
    return rows


@settings(max_examples=500, deadline=None)
@given(installment_lists())
def test_installments_equal_the_original_loop(rows: object) -> None:
    obj = {"installments": rows} if rows is not None else {}
    assert result_of(parse._installments, obj) == result_of(reference_installments, obj)


@settings(max_examples=200, deadline=None)
@given(installment_lists(), st.sampled_from(["30.00", "10.00", "1.5\n", "0.00"]))
def test_parse_event_of_an_opening_is_unchanged(rows: object, principal: str) -> None:
    obj = {
        "event_id": "e1",
        "type": "loan_opened",
        "occurred_at": "2026-01-01T10:00:00+08:00",
        "loan_id": "L1",
        "borrower_id": "B1",
        "product": "p",
        "region": "r",
        "currency": "CNY",
        "principal": principal,
        "installments": rows,
    }
    got = parse_event(obj, SHANGHAI)
    expected: object
    try:  # _loan_opened's order: the principal, the installments, then their sum
        cents = parse._amount_checked(obj, "principal", positive=True)
        terms = reference_installments(obj)
        total = sum(t.principal for t in terms)
        if total != cents:
            message = f"installment principals sum to {total / 100:.2f}, not the principal"
            raise Invalid("bad_schedule", message)
        expected = terms
    except Invalid as exc:
        expected = exc.rejection
    if isinstance(got, Rejection):
        assert got == expected
    else:
        assert got.installments == expected  # type: ignore[union-attr]
