"""The loan ledger (SPEC §3): installments, what was paid on each, and a credit balance.

Pure functions over immutable values, in integer cents. Payments go to installments oldest
first (by due date, due or not), inside one installment in the policy's ``allocation_order``;
what is left is credit. A reversal rebuilds the ledger from its history without the payment.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from loanwatch.ledger.records import InstallmentTerms


@dataclass(frozen=True, slots=True)
class Slot:
    """One installment of the current schedule with what has been paid on it."""

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


@dataclass(frozen=True, slots=True)
class Ledger:
    slots: tuple[Slot, ...]
    credit: int = 0
    principal_left: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Read on every step (views, borrower exposure): computed once per ledger value.
        object.__setattr__(self, "principal_left", sum(s.principal_left for s in self.slots))


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
    return Ledger(tuple(Slot(t.due_date, t.principal, t.interest, t.fee) for t in terms))


def _pay_slot(slot: Slot, amount: int, order: tuple[str, ...]) -> tuple[Slot, int]:
    """Pay up to ``amount`` into one installment; return it and what is left of the amount."""
    paid = {"fee": slot.paid_fee, "interest": slot.paid_interest, "principal": slot.paid_principal}
    owed = {"fee": slot.fee, "interest": slot.interest, "principal": slot.principal}
    for part in order:
        if amount == 0:
            break
        take = min(amount, owed[part] - paid[part])
        paid[part] += take
        amount -= take
    new = replace(
        slot, paid_fee=paid["fee"], paid_interest=paid["interest"], paid_principal=paid["principal"]
    )
    return new, amount


def apply_amount(ledger: Ledger, amount: int, order: tuple[str, ...]) -> Ledger:
    """Allocate ``amount`` (plus nothing else) oldest first; the rest becomes credit."""
    slots = list(ledger.slots)
    for i, slot in enumerate(slots):
        if amount == 0:
            break
        if slot.remaining > 0:
            slots[i], amount = _pay_slot(slot, amount, order)
    return Ledger(tuple(slots), ledger.credit + amount)


def revise(ledger: Ledger, terms: tuple[InstallmentTerms, ...], order: tuple[str, ...]) -> Ledger:
    """Drop installments with something left; what was paid on them, plus credit, is reapplied."""
    kept = tuple(s for s in ledger.slots if s.remaining <= 0)
    credit = ledger.credit + sum(s.paid_total for s in ledger.slots if s.remaining > 0)
    fresh = tuple(Slot(t.due_date, t.principal, t.interest, t.fee) for t in terms)
    # Slots stay sorted by due date (stable): allocation is oldest first, and the delinquency
    # scans stop at the first installment not yet due.
    slots = tuple(sorted(kept + fresh, key=lambda s: s.due_date))
    return apply_amount(Ledger(slots, 0), credit, order)


def rebuild(
    terms: tuple[InstallmentTerms, ...], history: tuple[LedgerOp, ...], order: tuple[str, ...]
) -> Ledger:
    """Replay a ledger from its opening schedule and history (used after a reversal)."""
    ledger = open_ledger(terms)
    for op in history:
        if isinstance(op, Pay):
            ledger = apply_amount(ledger, op.amount, order)
        else:
            ledger = revise(ledger, op.installments, order)
    return ledger


def outstanding_principal(ledger: Ledger) -> int:
    return ledger.principal_left
