"""What early warning reads of a loan's ledger: its installments' due dates and what they owe.

The one module that knows the engine's internal loan layout (``LoanState.ledger.rows``,
``LoanState.opening``), so a change of the engine's internals touches this file only. Reads
only; each function costs what it scans from a given due date, never the loan's history.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import date

from loanwatch.ledger.allocation import row_paid, row_remaining
from loanwatch.ledger.delinquency import arrears
from loanwatch.ledger.loan import LoanState


def principal_at_opening(loan: LoanState) -> int:
    return sum(row[1] for row in loan.opening)


def settled_since(
    loan: LoanState, since: date | None, tolerance: int
) -> tuple[date | None, list[date]]:
    """(due date of the oldest owing installment, due dates settled from ``since`` up to it).

    Starts at the first installment due on or after ``since`` (the oldest owing one when the
    caller last looked): the cost is the installments settled since, not the schedule.
    """
    rows = loan.ledger.rows
    start = 0 if since is None else bisect_left(rows, since, key=lambda r: r[0])
    settled: list[date] = []
    for row in rows[start:]:
        if row_remaining(row) > tolerance:
            return row[0], settled
        settled.append(row[0])
    return None, settled


def oldest_owing(loan: LoanState, tolerance: int) -> date | None:
    """The oldest owing installment's due date, from the start (after a reversal or revision)."""
    return settled_since(loan, None, tolerance)[0]


def paid_in_part(loan: LoanState, due: date | None) -> bool:
    """Is the installment due on ``due`` partly paid (something paid, something owing)?"""
    if due is None:
        return False
    rows = loan.ledger.rows
    i = bisect_left(rows, due, key=lambda r: r[0])
    return i < len(rows) and rows[i][0] == due and row_paid(rows[i]) > 0 < row_remaining(rows[i])


def next_owing(loan: LoanState, on_or_after: date, tolerance: int) -> date | None:
    """The first installment due on or after ``on_or_after`` that still owes money."""
    rows = loan.ledger.rows
    for row in rows[bisect_left(rows, on_or_after, key=lambda r: r[0]) :]:
        if row_remaining(row) > tolerance:
            return row[0]
    return None


def owes(loan: LoanState, due: date, tolerance: int) -> bool | None:
    """Does the installment due on ``due`` still owe money? None: no such installment."""
    rows = loan.ledger.rows
    i = bisect_left(rows, due, key=lambda r: r[0])
    if i < len(rows) and rows[i][0] == due:
        return row_remaining(rows[i]) > tolerance
    return None


def dpd_on(loan: LoanState, on: date, tolerance: int) -> int:
    """The loan's DPD on ``on`` (SPEC §4), without building its view."""
    return arrears(loan.ledger, on, tolerance).dpd
