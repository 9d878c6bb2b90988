"""Exact money: amounts are ``Decimal`` quantised to cents, parsed only from strings.

Never converts through ``float``; a JSON number for an amount is rejected by the parser.
"""

from __future__ import annotations

import re
from decimal import Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
_MONEY_RE = re.compile(r"^-?\d{1,15}(\.\d{1,2})?$")


class MoneyError(ValueError):
    """An amount is not a decimal string with at most two fractional digits."""


def parse_money(value: object) -> Decimal:
    """Parse a wire amount (a JSON string such as ``"1500.00"``) into cents-exact Decimal."""
    if not isinstance(value, str):
        raise MoneyError(f"amount must be a decimal string, got {type(value).__name__} {value!r}")
    if not _MONEY_RE.match(value):
        raise MoneyError(f"amount {value!r} is not a decimal with at most 2 fractional digits")
    return Decimal(value).quantize(CENT)


def format_money(value: Decimal) -> str:
    """Write an amount as a string with exactly two decimals."""
    return str(value.quantize(CENT))


def parse_cents(value: object) -> int:
    """Parse a wire amount into integer minor units (cents), exactly (no Decimal, no float)."""
    if not isinstance(value, str):
        raise MoneyError(f"amount must be a decimal string, got {type(value).__name__} {value!r}")
    if not _MONEY_RE.match(value):
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
