"""Domain records of the incoming events (SPEC §1), converted once from the wire.

Frozen, slotted, exact: money in integer cents, dates as ``datetime.date``. Nothing here knows
JSON or Kafka; :mod:`loanwatch.ledger.parse` builds these from decoded objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import NamedTuple


class InstallmentTerms(NamedTuple):
    """One contractual installment of a schedule.

    A named tuple rather than a frozen dataclass: just as immutable, and built 3x faster (a
    mortgage opening carries 360 of them, and every decoded loan state its whole schedule).
    """

    seq: int
    due_date: date
    principal: int
    interest: int
    fee: int


@dataclass(frozen=True, slots=True)
class LoanOpened:
    event_id: str
    business_date: date
    loan_id: str
    borrower_id: str
    product: str
    region: str
    currency: str
    principal: int
    installments: tuple[InstallmentTerms, ...]


@dataclass(frozen=True, slots=True)
class ScheduleRevised:
    event_id: str
    business_date: date
    loan_id: str
    reason: str
    installments: tuple[InstallmentTerms, ...]


@dataclass(frozen=True, slots=True)
class LoanClosed:
    event_id: str
    business_date: date
    loan_id: str
    reason: str  # repaid | written_off | sold


@dataclass(frozen=True, slots=True)
class PaymentReceived:
    event_id: str
    business_date: date
    loan_id: str
    payment_id: str
    amount: int
    channel: str | None


@dataclass(frozen=True, slots=True)
class PaymentReversed:
    event_id: str
    business_date: date
    loan_id: str
    payment_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PromiseToPay:
    event_id: str
    business_date: date
    loan_id: str
    promise_id: str
    amount: int
    promised_date: date


@dataclass(frozen=True, slots=True)
class ContactLogged:
    event_id: str
    business_date: date
    loan_id: str
    channel: str
    outcome: str
    collector_id: str | None


@dataclass(frozen=True, slots=True)
class RiskSignal:
    """A risk signal for one loan."""

    event_id: str
    business_date: date
    loan_id: str
    signal: str
    severity: str  # low | medium | high
    detail: str | None


@dataclass(frozen=True, slots=True)
class BorrowerSignal:
    """A risk signal for every active loan of a borrower (keyed by ``borrower_id``)."""

    event_id: str
    business_date: date
    borrower_id: str
    signal: str
    severity: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class ClockTick:
    event_id: str
    business_date: date


LoanEvent = (
    LoanOpened
    | ScheduleRevised
    | LoanClosed
    | PaymentReceived
    | PaymentReversed
    | PromiseToPay
    | ContactLogged
    | RiskSignal
)
Event = LoanEvent | BorrowerSignal | ClockTick


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an event cannot be applied: a SPEC reason code and a message for humans."""

    reason: str
    message: str
