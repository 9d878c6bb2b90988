"""Exact money: amounts are ``Decimal`` quantised to cents, parsed only from strings.

Never converts through ``float``; a JSON number for an amount is rejected by the parser.
"""

from __future__ import annotations

import re
from decimal import Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# ASCII digits only, matched in full: ``$`` would accept a trailing newline and ``\d`` any
# Unicode digit ("1.5\n" once parsed as 1.05).
_MONEY_RE = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,2})?")


class MoneyError(ValueError):
    """An amount is not a decimal string with at most two fractional digits."""


def parse_money(value: object) -> Decimal:
    """Parse a wire amount (a JSON string such as ``"1500.00"``) into cents-exact Decimal."""
    if not isinstance(value, str):
        raise MoneyError(f"amount must be a decimal string, got {type(value).__name__} {value!r}")
    if not _MONEY_RE.fullmatch(value):
        raise MoneyError(f"amount {value!r} is not a decimal with at most 2 fractional digits")
    return Decimal(value).quantize(CENT)


def format_money(value: Decimal) -> str:
    """Write an amount as a string with exactly two decimals."""
    return str(value.quantize(CENT))


def canonical_cents(value: object) -> int:
    """Fast path: cents of a canonical non-negative amount, else -1 (never raises).

    Canonical is ASCII ``D{1,15}`` or ``D{1,15}.D{1,2}`` (``"100"``, ``"0.5"``, ``"123.45"``):
    exactly what :func:`parse_cents` accepts without a sign, minus the odd inputs its regex
    also lets through (non-ASCII digits, a trailing newline). For those, and for anything it
    rejects, this returns -1 and the caller takes the validated path, so results and error
    messages are the same whichever path an amount takes.
    """
    if type(value) is str and value.isascii():
        whole, dot, frac = value.partition(".")
        if whole.isdigit() and len(whole) <= 15:
            if not dot:
                return int(whole) * 100
            if frac.isdigit():  # ASCII here, so only 0-9; "" is not a digit string
                if len(frac) == 2:
                    return int(whole + frac)
                if len(frac) == 1:
                    return int(whole + frac) * 10
    return -1


def parse_cents(value: object) -> int:
    """Parse a wire amount into integer minor units (cents), exactly (no Decimal, no float)."""
    cents = canonical_cents(value)
    if cents >= 0:
        return cents
    return parse_cents_checked(value)


def parse_cents_checked(value: object) -> int:
    """The fully validated path of :func:`parse_cents` (any input, every rejection)."""
    if not isinstance(value, str):
        raise MoneyError(f"amount must be a decimal string, got {type(value).__name__} {value!r}")
    if not _MONEY_RE.fullmatch(value):
        raise MoneyError(f"amount {value!r} is not a decimal with at most 2 fractional digits")
    negative = value.startswith("-")
    whole, _, frac = value.lstrip("-").partition(".")
    cents = int(whole) * 100 + int((frac + "00")[:2])
    return -cents if negative else cents


def cents_to_decimal(cents: int) -> Decimal:
    """Integer cents as a two-decimal Decimal."""
    return (Decimal(cents) / 100).quantize(CENT)


def format_cents(cents: int) -> str:
    """Integer cents as a string with two decimals (``-1234`` -> ``"-12.34"``)."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"
