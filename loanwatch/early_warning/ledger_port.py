"""What early warning reads of a loan's ledger: its installments' due dates and what they owe.

The one module that knows the engine's internal loan layout (issue 16: the loan's immutable
:class:`~loanwatch.ledger.terms.Terms` and its position, the cursor to the oldest installment
that owes anything and what is paid on it; earlier terms and the payments in the loan's
history), so a change of the engine's internals touches this file only. Reads only; each
function costs what it scans from a given due date, never the loan's history, except the two
that need an earlier schedule (the opening's principal, and an installment a revision has
taken out of the terms), which read the history's terms of that loan.

The engine's terms after a revision hold the revision's installments only; the installments
paid in full before it (kept as paid rows by the engine before issue 16) owe nothing, so every
function answers as before for them: they are never owing, and :func:`owes` finds them by
replaying the loan's history to the revision.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import date

from loanwatch.ledger.delinquency import arrears
from loanwatch.ledger.history import HistoryPort, replay_entries
from loanwatch.ledger.loan import LoanState
from loanwatch.ledger.terms import Cursor, Terms, first_unpaid, pay, remaining_at


def _remaining(loan: LoanState, i: int) -> int:
    """What installment ``i`` of the terms in force still owes."""
    return 0 if i < loan.cursor else remaining_at(loan.terms, loan.at, i)


def _paid(loan: LoanState, i: int) -> int:
    terms = loan.terms
    if i < loan.cursor:
        return terms.total(i)
    if i == loan.cursor:
        return loan.paid_principal + loan.paid_interest + loan.paid_fee
    return 0


def _index(terms: Terms, due: date) -> int | None:
    """The installment due on ``due`` in ``terms``, if there is one."""
    day = due.toordinal()
    i = bisect_left(terms.dues, day)
    return i if i < len(terms.dues) and terms.dues[i] == day else None


def principal_at_opening(loan: LoanState, history: HistoryPort) -> int:
    terms = loan.terms if loan.rev == 0 else history.terms(loan.loan_id, 0)
    return terms.cum_principal[len(terms)]


def settled_since(
    loan: LoanState, since: date | None, tolerance: int
) -> tuple[date | None, list[date]]:
    """(due date of the oldest owing installment, due dates settled from ``since`` up to it).

    Starts at the first installment due on or after ``since`` (the oldest owing one when the
    caller last looked): the cost is the installments settled since, not the schedule.
    """
    dues = loan.terms.dues
    start = 0 if since is None else bisect_left(dues, since.toordinal())
    settled: list[date] = []
    for i in range(start, len(dues)):
        if _remaining(loan, i) > tolerance:
            return date.fromordinal(dues[i]), settled
        settled.append(date.fromordinal(dues[i]))
    return None, settled


def oldest_owing(loan: LoanState, tolerance: int) -> date | None:
    """The oldest owing installment's due date (after a reversal or revision)."""
    # Every installment before the cursor is paid in full: the scan starts there.
    dues = loan.terms.dues
    for i in range(loan.cursor, len(dues)):
        if _remaining(loan, i) > tolerance:
            return date.fromordinal(dues[i])
    return None


def paid_in_part(loan: LoanState, due: date | None) -> bool:
    """Is the installment due on ``due`` partly paid (something paid, something owing)?"""
    if due is None:
        return False
    i = _index(loan.terms, due)
    return i is not None and _paid(loan, i) > 0 < _remaining(loan, i)


def next_owing(loan: LoanState, on_or_after: date, tolerance: int) -> date | None:
    """The first installment due on or after ``on_or_after`` that still owes money."""
    dues = loan.terms.dues
    start = max(loan.cursor, bisect_left(dues, on_or_after.toordinal()))
    for i in range(start, len(dues)):
        if _remaining(loan, i) > tolerance:
            return date.fromordinal(dues[i])
    return None


def owes(loan: LoanState, due: date, tolerance: int, history: HistoryPort) -> bool | None:
    """Does the installment due on ``due`` still owe money? None: no such installment.

    An installment paid in full before a revision still exists (and owes nothing); one a
    revision replaced while it owed something does not.
    """
    if loan.rev > 0 and due.toordinal() in _paid_before_revisions(loan, history):
        return False
    i = _index(loan.terms, due)
    if i is None:
        return None
    return _remaining(loan, i) > tolerance


def _paid_before_revisions(loan: LoanState, history: HistoryPort) -> set[int]:
    """Due dates (ordinals) of the installments paid in full when a revision replaced their
    terms: the loan's payments and revisions replayed from the opening (O(history))."""
    _, ops = replay_entries(history.entries(loan.loan_id, loan.entries))
    order = _ORDER_OF_REBUILD
    terms = history.terms(loan.loan_id, 0)
    at: Cursor = (first_unpaid(terms, 0), 0, 0, 0)
    credit = 0
    kept: set[int] = set()
    for op in ops:
        if isinstance(op, int):
            # paid in full: before the cursor, or owing nothing at all (zero installments)
            kept.update(
                d for k, d in enumerate(terms.dues) if k < at[0] or remaining_at(terms, at, k) <= 0
            )
            credit += at[1] + at[2] + at[3]
            terms = history.terms(loan.loan_id, op)
            at, credit, _ = pay(terms, (first_unpaid(terms, 0), 0, 0, 0), credit, order)
        else:
            at, left, _ = pay(terms, at, op[1], order)
            credit += left
    return kept


#: Which part of an installment a replayed amount pays first does not change which
#: installments it pays in full (they are paid oldest first, each in full before the next).
_ORDER_OF_REBUILD = ("fee", "interest", "principal")


def dpd_on(loan: LoanState, on: date, tolerance: int) -> int:
    """The loan's DPD on ``on`` (SPEC §4), without building its view."""
    return arrears(loan.terms, loan.at, on, tolerance).dpd
