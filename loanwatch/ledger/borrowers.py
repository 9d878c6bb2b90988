"""Borrower-level exposure (SPEC §5 cross-default): the NPL share of a borrower's active loans.

Pure arithmetic plus a small book of exposures keyed by borrower. The live pipeline keeps the
same book in a table partitioned by borrower; replay keeps it in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

SHARE_PLACES = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class Exposure:
    """What one active loan contributes: is it non-performing, and its outstanding principal."""

    npl: bool
    outstanding: int  # cents


def npl_share(exposures: dict[str, Exposure]) -> tuple[int, int]:
    """(NPL outstanding, total outstanding) in cents."""
    npl = sum(e.outstanding for e in exposures.values() if e.npl)
    total = sum(e.outstanding for e in exposures.values())
    return npl, total


def floor_applies(npl: int, total: int, threshold: Decimal) -> bool:
    """True while the share is strictly above the threshold (exact, no division)."""
    return total > 0 and Decimal(npl) > threshold * Decimal(total)


def format_share(npl: int, total: int) -> str:
    if total == 0:
        return "0.0000"
    return str((Decimal(npl) / Decimal(total)).quantize(SHARE_PLACES, rounding=ROUND_HALF_UP))


class BorrowerBook:
    """Exposures of active loans by borrower."""

    def __init__(self) -> None:
        self._book: dict[str, dict[str, Exposure]] = {}

    def set(self, borrower_id: str, loan_id: str, exposure: Exposure | None) -> bool:
        """Record (or with None remove) a loan's exposure; True when it changed."""
        loans = self._book.setdefault(borrower_id, {})
        if exposure is None:
            changed = loans.pop(loan_id, None) is not None
            if not loans:
                del self._book[borrower_id]
            return changed
        if loans.get(loan_id) == exposure:
            return False
        loans[loan_id] = exposure
        return True

    def loans(self, borrower_id: str) -> list[str]:
        return sorted(self._book.get(borrower_id, {}))

    def share(self, borrower_id: str) -> tuple[int, int]:
        return npl_share(self._book.get(borrower_id, {}))
