"""Behaviour features of one loan, kept incrementally in its :class:`~.state.EWState`.

Pure functions: each update takes a state and what one engine call showed (a settled
installment, a payment, a contact, an alert) and returns a new state; :func:`vector` reads the
features on a scoring date. Only behaviour the event log shows is used (never the simulator's
hidden borrower profiles). Every update costs O(what the event touches).
"""

from __future__ import annotations

from datetime import date

from loanwatch.early_warning.state import LATE_KEPT, MONTHS_KEPT, EWState, evolve
from loanwatch.ledger.contact_outcomes import CONVERSATION, UNANSWERED

#: The features, in the order the scorecard reads them (None: not known yet, its own bin).
FEATURES: tuple[str, ...] = (
    "late_1",  # days late of the most recently settled installment
    "late_2",
    "late_3",
    "dpd_now",
    "worst_bucket_6m",  # rank in the policy's buckets (0: M0)
    "partial_share",  # payments that left an installment paid in part / payments
    "reversals",
    "promises_made",
    "promises_broken",
    "unanswered_streak",
    "signals_low",
    "signals_medium",
    "signals_high",
    "months_on_book",
    "repaid_share",  # share of the opening principal repaid
    "other_loans",  # the borrower's other active loans
    "other_worst_dpd",  # the worst DPD among them (None: no other loan)
)

SEVERITIES = ("low", "medium", "high")


def month_of(day: date) -> int:
    return day.year * 12 + day.month - 1


def opened(loan_id: str, borrower_id: str, day: date, principal: int) -> EWState:
    return EWState(loan_id, borrower_id, opened_on=day, principal=principal)


def settle(state: EWState, dues: list[date], open_due: date | None, day: date) -> EWState:
    """Installments fully paid on ``day``: their days late (0 when paid by the due date)."""
    late = state.late
    for due in dues:
        late = (max(0, (day - due).days), *late)[:LATE_KEPT]
    if late == state.late and open_due == state.open_due:
        return state
    return evolve(state, late=late, open_due=open_due)


def settle_payment(
    state: EWState, dues: list[date], open_due: date | None, day: date, partial: bool
) -> EWState:
    """:func:`settle` then :func:`payment` (a payment received), in one copy of the state."""
    late = state.late
    for due in dues:
        late = (max(0, (day - due).days), *late)[:LATE_KEPT]
    return evolve(
        state,
        late=late,
        open_due=open_due,
        payments=state.payments + 1,
        partial_payments=state.partial_payments + partial,
    )


def payment(state: EWState, partial: bool) -> EWState:
    return evolve(
        state, payments=state.payments + 1, partial_payments=state.partial_payments + partial
    )


def reversal(state: EWState) -> EWState:
    return evolve(state, reversals=state.reversals + 1)


def promise_made(state: EWState) -> EWState:
    return evolve(state, promises_made=state.promises_made + 1)


def promise_broken(state: EWState) -> EWState:
    return evolve(state, promises_broken=state.promises_broken + 1)


def contact(state: EWState, outcome: object) -> EWState:
    """A streak of unanswered attempts; a conversation ends it; anything else leaves it."""
    if outcome in UNANSWERED:
        return evolve(state, unanswered=state.unanswered + 1)
    if outcome in CONVERSATION and state.unanswered:
        return evolve(state, unanswered=0)
    return state


def signal(state: EWState, severity: object) -> EWState:
    if severity not in SEVERITIES:
        return state
    counts = list(state.signals)
    counts[SEVERITIES.index(str(severity))] += 1
    return evolve(state, signals=(counts[0], counts[1], counts[2]))


def bucket_seen(state: EWState, day: date, rank: int) -> EWState:
    """The loan's bucket changed to ``rank`` on ``day`` (an overdue, bucket or cure alert)."""
    month = month_of(day)
    months, carry = list(state.months), state.carry
    if months and months[-1][0] == month:
        m, worst, _ = months[-1]
        months[-1] = (m, max(worst, rank), rank)
    else:
        held = months[-1][2] if months else carry  # the bucket the month started in
        months.append((month, max(held, rank), rank))
    while len(months) > MONTHS_KEPT or months[0][0] <= month - MONTHS_KEPT:
        carry = months.pop(0)[2]
    return evolve(state, months=tuple(months), carry=carry)


def worst_bucket(state: EWState, day: date, current: int) -> int:
    """The worst bucket rank held in the last six calendar months (this one included)."""
    first = month_of(day) - MONTHS_KEPT + 1
    worst, held = current, state.carry
    for month, month_worst, end in state.months:
        if month < first:
            held = end  # still in it when the window opened
        else:
            worst = max(worst, month_worst)
    return max(worst, held)


def vector(
    state: EWState,
    day: date,
    *,
    dpd: int,
    bucket_rank: int,
    outstanding: int,
    others: tuple[int, int | None],
) -> dict[str, float | None]:
    """The features on ``day``; ``others``: (the borrower's other active loans, their worst DPD)."""
    late: list[float | None] = [float(x) for x in state.late[:3]]
    late += [None] * (3 - len(late))
    low, medium, high = state.signals
    repaid = 1.0 - outstanding / state.principal if state.principal > 0 else None
    return {
        "late_1": late[0],
        "late_2": late[1],
        "late_3": late[2],
        "dpd_now": float(dpd),
        "worst_bucket_6m": float(worst_bucket(state, day, bucket_rank)),
        "partial_share": state.partial_payments / state.payments if state.payments else None,
        "reversals": float(state.reversals),
        "promises_made": float(state.promises_made),
        "promises_broken": float(state.promises_broken),
        "unanswered_streak": float(state.unanswered),
        "signals_low": float(low),
        "signals_medium": float(medium),
        "signals_high": float(high),
        "months_on_book": float((day - state.opened_on).days // 30),
        "repaid_share": None if repaid is None else round(repaid, 6),
        "other_loans": float(others[0]),
        "other_worst_dpd": None if others[1] is None else float(others[1]),
    }
