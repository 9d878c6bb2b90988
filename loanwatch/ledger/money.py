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
