"""Delinquency on a date (SPEC §4): past-due installments, DPD, overdue amount, bucket.

Pure functions of a ledger, a date and the tolerance; nothing is stored that a date changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from loanwatch.ledger.allocation import Ledger


@dataclass(frozen=True, slots=True)
class Arrears:
    """What is past due on one date."""

    oldest_due: date | None  # due date of the oldest past-due installment
    dpd: int
    overdue: int  # cents


NO_ARREARS = Arrears(None, 0, 0)


def arrears(ledger: Ledger, on: date, tolerance: int) -> Arrears:
    """DPD = ``on`` minus the oldest past-due due date: 0 on the due date, 1 the day after."""
    oldest: date | None = None
    overdue = 0
    for due_date, principal, interest, fee, paid_p, paid_i, paid_f in ledger.rows:
        if due_date >= on:  # rows are sorted by due date (see allocation.revise)
            break
        remaining = principal + interest + fee - paid_p - paid_i - paid_f
        if remaining > tolerance:
            overdue += remaining
            if oldest is None:
                oldest = due_date
    if oldest is None:
        return NO_ARREARS
    return Arrears(oldest, (on - oldest).days, overdue)


def next_due_after(ledger: Ledger, on: date, tolerance: int) -> date | None:
    """The earliest due date on or after ``on`` of an installment that still owes money."""
    for due_date, principal, interest, fee, paid_p, paid_i, paid_f in ledger.rows:
        if due_date >= on and principal + interest + fee - paid_p - paid_i - paid_f > tolerance:
            return due_date
    return None
