"""Delinquency on a date (SPEC §4): past-due installments, DPD, overdue amount.

Pure functions of a loan's terms, its position and a date; nothing is stored that a date
changes. With the cursor at the oldest installment that owes anything, the oldest past-due
installment is the cursor's (DPD a subtraction) and the overdue amount is a difference of two
running sums up to the first installment not yet due (a galloping search from the cursor: its
cost follows the past-due installments, not the schedule). A tolerance above zero
makes an installment owing at most that much not past due: then the past-due installments
are walked (only those).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from dataclasses import dataclass
from datetime import date

from loanwatch.ledger.terms import Cursor, Terms, remaining_at


@dataclass(frozen=True, slots=True)
class Arrears:
    """What is past due on one date."""

    oldest_due: date | None  # due date of the oldest past-due installment
    dpd: int
    overdue: int  # cents


NO_ARREARS = Arrears(None, 0, 0)


def first_due_from(dues: array[int], day: int, lo: int) -> int:
    """The first index from ``lo`` whose due ordinal is ``day`` or later (``len`` if none).

    A galloping search from ``lo`` (the cursor): its cost follows the number of installments
    between the cursor and the answer (the past-due ones), not the schedule's length.
    """
    n = len(dues)
    if lo >= n or dues[lo] >= day:
        return lo
    step = 1
    while lo + step < n and dues[lo + step] < day:
        lo += step
        step *= 2
    return bisect_left(dues, day, lo + 1, min(lo + step, n))


def arrears(terms: Terms, at: Cursor, on: date, tolerance: int) -> Arrears:
    """DPD = ``on`` minus the oldest past-due due date: 0 on the due date, 1 the day after."""
    cursor = at[0]
    dues = terms.dues
    day = on.toordinal()
    if cursor >= len(dues) or dues[cursor] >= day:
        return NO_ARREARS
    end = first_due_from(dues, day, cursor)  # the first installment not yet past due
    if tolerance == 0:
        cum = terms.cum_total
        overdue = cum[end] - cum[cursor] - at[1] - at[2] - at[3]
        return Arrears(date.fromordinal(dues[cursor]), day - dues[cursor], overdue)
    oldest = -1
    overdue = 0
    for i in range(cursor, end):
        owed = remaining_at(terms, at, i)
        if owed > tolerance:
            overdue += owed
            if oldest < 0:
                oldest = dues[i]
    if oldest < 0:
        return NO_ARREARS
    return Arrears(date.fromordinal(oldest), day - oldest, overdue)


def next_due_after(terms: Terms, at: Cursor, on: date, tolerance: int) -> date | None:
    """The earliest due date on or after ``on`` of an installment that still owes money."""
    dues = terms.dues
    i = first_due_from(dues, on.toordinal(), at[0])
    while i < len(dues):
        if remaining_at(terms, at, i) > tolerance:
            return date.fromordinal(dues[i])
        i += 1
    return None
