"""The reference ledger (SPEC §3): every installment as a row with what was paid on it.

The engine does not run on it any more: it keeps a loan as immutable terms and a small
position (:mod:`loanwatch.ledger.terms`), where a payment walks only what it pays. This module
is the direct, row-by-row reading of the SPEC that the property tests compare the engine
against (``tests/unit/test_ledger_properties.py``), and the shape
:attr:`~loanwatch.ledger.loan.LoanState.ledger` shows a loan in for inspection.

Pure functions over immutable values, in integer cents. Payments go to installments oldest
first (by due date, due or not), inside one installment in the policy's ``allocation_order``;
what is left is credit. A reversal rebuilds the ledger from its history without the payment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from typing import NamedTuple

from loanwatch.ledger.records import InstallmentTerms

# (due_date, principal, interest, fee, paid_principal, paid_interest, paid_fee), in cents.
Row = tuple[date, int, int, int, int, int, int]


class Slot(NamedTuple):
    """One installment of the current schedule with what has been paid on it (a named Row)."""

    due_date: date
    principal: int
    interest: int
    fee: int
    paid_principal: int = 0
    paid_interest: int = 0
    paid_fee: int = 0

    @property
    def remaining(self) -> int:
        return self.principal + self.interest + self.fee - self.paid_total

    @property
    def paid_total(self) -> int:
        return self.paid_principal + self.paid_interest + self.paid_fee

    @property
    def principal_left(self) -> int:
        return self.principal - self.paid_principal


def row_remaining(row: Row) -> int:
    """Principal + interest + fee still unpaid on one installment."""
    return row[1] + row[2] + row[3] - row[4] - row[5] - row[6]


def row_paid(row: Row) -> int:
    return row[4] + row[5] + row[6]


def unpaid_row(terms: InstallmentTerms) -> Row:
    return (terms.due_date, terms.principal, terms.interest, terms.fee, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Ledger:
    """The installments (sorted by due date) and the credit balance.

    ``principal_left`` is derived from the rows when not given; the functions below pass it
    when they already know it (an opening, a payment) and save a pass over the rows.
    """

    rows: tuple[Row, ...]
    credit: int = 0
    principal_left: int = field(default=-1, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Read on every step (views, borrower exposure): computed once per ledger value.
        if self.principal_left < 0:
            left = sum([row[1] - row[4] for row in self.rows])
            object.__setattr__(self, "principal_left", left)

    @property
    def slots(self) -> tuple[Slot, ...]:
        """The installments as named values."""
        return tuple(map(Slot._make, self.rows))


@dataclass(frozen=True, slots=True)
class Pay:
    """A payment in the ledger history."""

    payment_id: str
    amount: int


@dataclass(frozen=True, slots=True)
class Revise:
    """A schedule revision in the ledger history."""

    installments: tuple[InstallmentTerms, ...]


LedgerOp = Pay | Revise


def open_ledger(terms: tuple[InstallmentTerms, ...]) -> Ledger:
    rows = tuple([(t.due_date, t.principal, t.interest, t.fee, 0, 0, 0) for t in terms])
    return Ledger(rows, 0, sum([t.principal for t in terms]))


def _pay_row(row: Row, amount: int, order: tuple[str, ...]) -> tuple[Row, int]:
    """Pay up to ``amount`` into one installment; return it and what is left of the amount."""
    due_date, principal, interest, fee, paid_principal, paid_interest, paid_fee = row
    for part in order:
        if amount == 0:
            break
        if part == "fee":
            take = min(amount, fee - paid_fee)
            paid_fee += take
        elif part == "interest":
            take = min(amount, interest - paid_interest)
            paid_interest += take
        elif part == "principal":
            take = min(amount, principal - paid_principal)
            paid_principal += take
        else:
            raise KeyError(part)  # the policy file only allows these three parts
        amount -= take
    return (due_date, principal, interest, fee, paid_principal, paid_interest, paid_fee), amount


def apply_amount(ledger: Ledger, amount: int, order: tuple[str, ...]) -> Ledger:
    """Allocate ``amount`` (plus nothing else) oldest first; the rest becomes credit."""
    rows = list(ledger.rows)
    principal_left = ledger.principal_left
    for i, row in enumerate(rows):
        if amount == 0:
            break
        if row_remaining(row) > 0:
            paid, amount = _pay_row(row, amount, order)
            principal_left -= paid[4] - row[4]
            rows[i] = paid
    return Ledger(tuple(rows), ledger.credit + amount, principal_left)


def revise(ledger: Ledger, terms: tuple[InstallmentTerms, ...], order: tuple[str, ...]) -> Ledger:
    """Drop installments with something left; what was paid on them, plus credit, is reapplied."""
    kept = tuple(r for r in ledger.rows if row_remaining(r) <= 0)
    credit = ledger.credit + sum(row_paid(r) for r in ledger.rows if row_remaining(r) > 0)
    fresh = tuple(unpaid_row(t) for t in terms)
    # Rows stay sorted by due date (stable): allocation is oldest first, and the delinquency
    # scans stop at the first installment not yet due.
    rows = tuple(sorted(kept + fresh, key=itemgetter(0)))
    return apply_amount(Ledger(rows, 0), credit, order)


def rebuild(
    opening: tuple[Row, ...], history: tuple[LedgerOp, ...], order: tuple[str, ...]
) -> Ledger:
    """Replay a ledger from its opening rows and history (used after a reversal)."""
    ledger = Ledger(opening)
    for op in history:
        if isinstance(op, Pay):
            ledger = apply_amount(ledger, op.amount, order)
        else:
            ledger = revise(ledger, op.installments, order)
    return ledger


def outstanding_principal(ledger: Ledger) -> int:
    return ledger.principal_left
