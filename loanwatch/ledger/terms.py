"""A loan's terms (its schedule, immutable) and the arithmetic of a position over them (SPEC §3).

The terms of an opening or a revision never change: due dates (as ordinals) and amounts per
installment, with running sums of what falls due and of principal. What payments move is a
small position: the **cursor** (the first installment with something left to pay), what is
paid on that installment (fee, interest, principal) and the credit balance. Payments go oldest
first, so every installment before the cursor is paid in full and every one after it is
untouched: a payment walks only the installments it pays, and what is overdue on a date is
one bisect over the due dates and a subtraction of two running sums.

Pure integer arithmetic in cents; arrays rather than objects per installment (no garbage
collector work, 8 bytes per amount).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import accumulate

from loanwatch.ledger.records import InstallmentTerms


@dataclass(frozen=True, slots=True, eq=False)
class Terms:
    """One schedule, sorted by due date (strictly increasing, as validated)."""

    dues: array[int]  # due dates as proleptic ordinals ("i")
    principal: array[int]  # cents ('q'), one per installment
    interest: array[int]
    fee: array[int]
    cum_total: array[int]  # cum_total[i]: what falls due on installments 0..i-1 (len n + 1)
    cum_principal: array[int]  # the same for principal only

    def __len__(self) -> int:
        return len(self.dues)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Terms):
            return NotImplemented
        return (
            self.dues == other.dues
            and self.principal == other.principal
            and self.interest == other.interest
            and self.fee == other.fee
        )

    def __hash__(self) -> int:  # pragma: no cover - terms are never dict keys
        return hash((bytes(self.dues), bytes(self.principal)))

    def total(self, i: int) -> int:
        """What installment ``i`` owes in all (principal + interest + fee)."""
        return self.cum_total[i + 1] - self.cum_total[i]

    def installments(self) -> tuple[InstallmentTerms, ...]:
        """The schedule as domain records (seq 1..n)."""
        return tuple(
            InstallmentTerms(i + 1, date.fromordinal(d), p, it, f)
            for i, (d, p, it, f) in enumerate(
                zip(self.dues, self.principal, self.interest, self.fee, strict=True)
            )
        )


def terms_from_arrays(
    dues: array[int], principal: array[int], interest: array[int], fee: array[int]
) -> Terms:
    """Terms from their per-installment arrays (the running sums are derived)."""
    totals = [p + i + f for p, i, f in zip(principal, interest, fee, strict=True)]
    cum_total = array("q", [0])
    cum_total.extend(accumulate(totals))
    cum_principal = array("q", [0])
    cum_principal.extend(accumulate(principal))
    return Terms(dues, principal, interest, fee, cum_total, cum_principal)


def make_terms(installments: Sequence[InstallmentTerms]) -> Terms:
    """Terms of an opening's or a revision's installments (already validated)."""
    return terms_from_arrays(
        array("i", [t.due_date.toordinal() for t in installments]),
        array("q", [t.principal for t in installments]),
        array("q", [t.interest for t in installments]),
        array("q", [t.fee for t in installments]),
    )


def first_unpaid(terms: Terms, start: int) -> int:
    """The first installment from ``start`` that owes anything (skips zero installments)."""
    cum, n = terms.cum_total, len(terms.dues)
    while start < n and cum[start + 1] == cum[start]:
        start += 1
    return start


#: (cursor, paid principal, paid interest, paid fee) on the cursor's installment.
Cursor = tuple[int, int, int, int]


def pay(terms: Terms, at: Cursor, amount: int, order: tuple[str, ...]) -> tuple[Cursor, int, int]:
    """Allocate ``amount`` oldest first from the cursor, inside an installment in ``order``.

    Returns the new cursor, what is left of the amount (credit) and the principal paid.
    Walks only the installments the amount reaches.
    """
    cursor, pp, pi, pf = at
    n = len(terms.dues)
    principal, interest, fee = terms.principal, terms.interest, terms.fee
    principal_paid = 0
    while amount > 0 and cursor < n:
        p, i, f = principal[cursor], interest[cursor], fee[cursor]
        for part in order:
            if part == "fee":
                take = min(amount, f - pf)
                pf += take
            elif part == "interest":
                take = min(amount, i - pi)
                pi += take
            elif part == "principal":
                take = min(amount, p - pp)
                pp += take
                principal_paid += take
            else:
                raise KeyError(part)  # the policy file only allows these three parts
            amount -= take
            if amount == 0:
                break
        if pp == p and pi == i and pf == f:
            cursor = first_unpaid(terms, cursor + 1)
            pp = pi = pf = 0
    return (cursor, pp, pi, pf), amount, principal_paid


def outstanding_principal(terms: Terms, at: Cursor) -> int:
    """Principal not yet paid: the running sum from the cursor, less what is paid on it."""
    cum = terms.cum_principal
    return cum[len(terms.dues)] - cum[at[0]] - at[1]


def remaining_at(terms: Terms, at: Cursor, i: int) -> int:
    """What installment ``i`` still owes, for ``i`` at or after the cursor."""
    owed = terms.cum_total[i + 1] - terms.cum_total[i]
    if i == at[0]:
        owed -= at[1] + at[2] + at[3]
    return owed
