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


def arrears(ledger: Ledger, on: date, tolerance: int) -> Arrears:
    """DPD = ``on`` minus the oldest past-due due date: 0 on the due date, 1 the day after."""
    oldest: date | None = None
    overdue = 0
    for slot in ledger.slots:  # sorted by due date (see allocation.revise)
        if slot.due_date >= on:
            break
        remaining = slot.principal + slot.interest + slot.fee - slot.paid_total
        if remaining > tolerance:
            overdue += remaining
            if oldest is None:
                oldest = slot.due_date
    if oldest is None:
        return Arrears(None, 0, 0)
    return Arrears(oldest, (on - oldest).days, overdue)


def next_due_after(ledger: Ledger, on: date, tolerance: int) -> date | None:
    """The earliest due date on or after ``on`` of an installment that still owes money."""
    for slot in ledger.slots:  # sorted by due date
        if slot.due_date >= on and slot.remaining > tolerance:
            return slot.due_date
    return None
