"""Borrower-level exposure (SPEC §5 cross-default): the NPL share of a borrower's active loans.

Pure arithmetic plus a small book of exposures keyed by borrower. A borrower's loans are all in
one engine (replay: the portfolio; live: the borrower's partition), so the book is in memory,
re-derived from the loans after a restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Protocol

from loanwatch.ledger.loan import LoanState, is_npl_exposure, set_cross_default
from loanwatch.ledger.records import BorrowerSignal

if TYPE_CHECKING:
    from loanwatch.ledger.step import Step

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

    def borrowers(self) -> list[str]:
        return list(self._book)

    def share(self, borrower_id: str) -> tuple[int, int]:
        return npl_share(self._book.get(borrower_id, {}))


def exposure_of(loan: LoanState) -> Exposure | None:
    """What a loan contributes to its borrower's share (None once it is closed)."""
    if not loan.active:
        return None
    return Exposure(is_npl_exposure(loan), loan.outstanding_principal)


class BorrowerPort(Protocol):
    """How a step reaches across a borrower's loans."""

    def settle(self, step: Step) -> None:
        """Called once per step, before alerts are derived, with the loans the step touched."""

    def loans_of(self, borrower_id: str) -> list[str]:
        """The borrower's active loans this engine can reach now."""
        ...

    def on_borrower_signal(self, event: BorrowerSignal) -> None:
        """A borrower-keyed risk signal was accepted."""


class LocalBorrowers:
    """Every loan of a borrower is in this engine, so the floor applies within the same step."""

    def __init__(self, threshold: Decimal) -> None:
        self.book = BorrowerBook()
        self.threshold = threshold

    def loans_of(self, borrower_id: str) -> list[str]:
        return self.book.loans(borrower_id)

    def on_borrower_signal(self, event: BorrowerSignal) -> None:
        pass  # every loan is here: the engine applies the signal to loans_of() at once

    def reconcile(self, loans: Mapping[str, LoanState]) -> dict[str, LoanState]:
        """Every active loan whose floor disagrees with its borrower's share, repaired.

        Reads ``loans`` only (the caller stores what comes back).


        After a restart from a state that a crash cut between two loans of one step (the
        floor of a sibling not yet stored): the step's alerts were sent before any state, so
        only the state is repaired, silently.
        """
        repaired: dict[str, LoanState] = {}
        for borrower_id in self.book.borrowers():
            npl, total = self.book.share(borrower_id)
            floor = floor_applies(npl, total, self.threshold)
            for loan_id in self.book.loans(borrower_id):
                loan = loans[loan_id]
                if loan.cross_default != floor:
                    repaired[loan_id] = set_cross_default(loan, floor)
        return repaired

    def settle(self, step: Step) -> None:
        loans = step.engine.loans
        borrowers: list[str] = []
        for loan_id in list(step.order):
            loan = loans[loan_id]
            self.book.set(loan.borrower_id, loan_id, exposure_of(loan))
            if loan.borrower_id not in borrowers:
                borrowers.append(loan.borrower_id)
        for borrower_id in borrowers:
            npl, total = self.book.share(borrower_id)
            floor = floor_applies(npl, total, self.threshold)
            step.shares[borrower_id] = (npl, total)  # formatted only for an alert
            for loan_id in self.book.loans(borrower_id):
                if loans[loan_id].cross_default != floor:
                    loans[loan_id] = set_cross_default(step.load(loan_id), floor)
