"""One loan's state and how it moves: opening, events, and evaluation on a business date.

A pure fold: every function takes a :class:`LoanState` (and a date, and the policy) and returns
a new one. Derived values (DPD, bucket, class, stage) are computed for a date by
:func:`evaluate`; the state keeps only the ledger and the memory the rules need (observation
period, non-performing cure, watchlist, promises, cross-default flag).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date, timedelta
from operator import attrgetter
from typing import Any

from loanwatch.ledger.allocation import (
    Ledger,
    LedgerOp,
    Pay,
    Revise,
    Row,
    apply_amount,
    open_ledger,
    rebuild,
    revise,
)
from loanwatch.ledger.allocation import outstanding_principal as ledger_outstanding
from loanwatch.ledger.delinquency import arrears, next_due_after
from loanwatch.ledger.money import cents_to_decimal
from loanwatch.ledger.policy import CLASS_RANK, SUBSTANDARD, Policy, worse
from loanwatch.ledger.records import InstallmentTerms, LoanOpened
from loanwatch.ledger.view import LoanView

ACTIVE = "active"
CLOSE_STATUS = {"repaid": "closed", "written_off": "written_off", "sold": "sold"}


@dataclass(frozen=True, slots=True)
class Payment:
    payment_id: str
    amount: int
    step: int  # the loan's step counter when it was applied
    applied_on: date
    reversed: bool = False


@dataclass(frozen=True, slots=True)
class Promise:
    promise_id: str
    amount: int
    promised_date: date
    step: int  # payments applied after this step count towards it


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The values alerts compare before and after a step."""

    dpd: int
    bucket: str
    own_class: str
    cross_default: bool


# Snapshots are few distinct values shared by many loans: one instance per value (bounded)
# means one less object per loan for the garbage collector to scan, and no allocation.
_SNAPSHOTS: dict[tuple[int, str, str, bool], Snapshot] = {}
SNAPSHOTS_KEPT = 4096


def snapshot(dpd: int, bucket: str, own_class: str, cross_default: bool) -> Snapshot:
    """``Snapshot(...)``, the same instance for the same values."""
    key = (dpd, bucket, own_class, cross_default)
    found = _SNAPSHOTS.get(key)
    if found is None:
        if len(_SNAPSHOTS) >= SNAPSHOTS_KEPT:
            _SNAPSHOTS.clear()
        found = _SNAPSHOTS[key] = Snapshot(dpd, bucket, own_class, cross_default)
    return found


@dataclass(frozen=True, slots=True)
class LoanState:
    loan_id: str
    borrower_id: str
    product: str
    region: str
    currency: str
    opening: tuple[Row, ...]  # the ledger's rows at opening (nothing paid), for a rebuild
    history: tuple[LedgerOp, ...]
    ledger: Ledger
    payments: tuple[Payment, ...] = ()
    promises: tuple[Promise, ...] = ()
    status: str = ACTIVE
    closed_on: date | None = None
    step: int = 0
    watch_until: date | None = None
    obs_end: date | None = None
    restructure_floor: str | None = None
    npl: bool = False
    current_since: date | None = None
    cross_default: bool = False
    last: Snapshot = Snapshot(0, "M0", "normal", False)
    evaluated_on: date | None = None
    # Ids of the events applied to this loan: kept in the loan's own record so that the
    # dedupe and the state it protects are written together (one changelog message).
    applied: frozenset[str] = frozenset()
    # Live only: the merge position (timestamp ms, topic rank, offset) of the last input
    # record whose step touched the loan, stored with it; a record read again after a crash
    # at or before it has already had its effect here (even one that was a rejection).
    position: tuple[int, int, int] | None = None

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    @property
    def outstanding_principal(self) -> int:
        return ledger_outstanding(self.ledger)


_FIELDS = tuple(f.name for f in fields(LoanState))
_SETTERS = tuple(getattr(LoanState, name).__set__ for name in _FIELDS)  # slot descriptors
_SETTER = dict(zip(_FIELDS, _SETTERS, strict=True))
_VALUES = attrgetter(*_FIELDS)
if hasattr(LoanState, "__post_init__"):  # evolve() does not run __init__
    raise TypeError("evolve() must learn to run LoanState.__post_init__")


def evolve(loan: LoanState, **changes: Any) -> LoanState:
    """``dataclasses.replace`` for a loan, 3x faster (it runs several times per event).

    Copies the slots straight into a new instance and sets the changed ones; an unknown field
    name raises KeyError. The result equals ``replace(loan, **changes)`` (a unit test checks).
    """
    new = object.__new__(LoanState)
    for set_slot, value in zip(_SETTERS, _VALUES(loan), strict=True):
        set_slot(new, value)
    for name, value in changes.items():
        _SETTER[name](new, value)
    return new


def open_loan(event: LoanOpened) -> LoanState:
    ledger = open_ledger(event.installments)
    return LoanState(
        applied=frozenset({event.event_id}),
        loan_id=event.loan_id,
        borrower_id=event.borrower_id,
        product=event.product,
        region=event.region,
        currency=event.currency,
        opening=ledger.rows,  # the same row tuples: shared until an installment is paid
        history=(),
        ledger=ledger,
    )


def in_observation(loan: LoanState, on: date) -> bool:
    return loan.obs_end is not None and on <= loan.obs_end


def on_watchlist(loan: LoanState, on: date) -> bool:
    return loan.watch_until is not None and on <= loan.watch_until


def evaluate(loan: LoanState, on: date, policy: Policy) -> LoanState:
    """Bring the loan's rule memory to ``on`` and record its snapshot there.

    Idempotent for one date and independent of how many days were skipped since the last
    evaluation, as long as no transition date (see :func:`next_transition`) was skipped.
    """
    if not loan.active:
        return loan
    due = arrears(loan.ledger, on, policy.tolerance_cents)
    current_since = loan.current_since
    if due.dpd > 0:
        current_since = None
    elif current_since is None:
        current_since = on
    obs_end = loan.obs_end
    if obs_end is not None and due.dpd > 0:
        # Each past-due day inside the period pushes its end to that day + N. Days skipped
        # since the last evaluation were all past due if the loan was past due then (only an
        # event can cure it, and events evaluate), so the chain of extensions is unbroken.
        still_in = on <= obs_end or (
            loan.last.dpd > 0 and loan.evaluated_on is not None and loan.evaluated_on <= obs_end
        )
        if still_in:
            obs_end = max(obs_end, on + timedelta(days=policy.restructure_observation_days))
    npl = loan.npl
    if (
        npl
        and current_since is not None
        and on >= current_since + timedelta(days=policy.npl_cure_days)
    ):
        npl = False
    own = policy.dpd_class(due.dpd)
    if obs_end is not None and on <= obs_end and loan.restructure_floor is not None:
        own = worse(own, loan.restructure_floor)
    if npl:
        own = worse(own, "substandard")
    if on_watchlist(loan, on):
        own = worse(own, "special_mention")
    if CLASS_RANK[own] >= SUBSTANDARD:
        npl = True
    last = snapshot(due.dpd, policy.bucket(due.dpd), own, loan.cross_default)
    return evolve(
        loan, current_since=current_since, obs_end=obs_end, npl=npl, last=last, evaluated_on=on
    )


def next_transition(loan: LoanState, policy: Policy) -> date | None:
    """The first date after the last evaluation on which aging may change something."""
    on = loan.evaluated_on
    if not loan.active or on is None:
        return None
    candidates: list[date] = []
    due = arrears(loan.ledger, on, policy.tolerance_cents)
    upcoming = next_due_after(loan.ledger, on, policy.tolerance_cents)
    if upcoming is not None:  # the overdue amount grows the day after each due date
        candidates.append(upcoming + timedelta(days=1))
    if due.oldest_due is None:
        if loan.obs_end is not None and on <= loan.obs_end:
            candidates.append(loan.obs_end + timedelta(days=1))
        if loan.npl and loan.current_since is not None:
            candidates.append(loan.current_since + timedelta(days=policy.npl_cure_days))
    else:
        mark = policy.next_boundary(due.dpd)
        if mark is not None:
            candidates.append(due.oldest_due + timedelta(days=mark))
    if loan.watch_until is not None and on <= loan.watch_until:
        candidates.append(loan.watch_until + timedelta(days=1))
    candidates.extend(p.promised_date + timedelta(days=1) for p in loan.promises)
    later = [d for d in candidates if d > on]
    return min(later) if later else None


def view(loan: LoanState, on: date, policy: Policy) -> LoanView:
    """The read model on ``on`` (a closed loan keeps the values of its closing day)."""
    if loan.closed_on is not None:
        on = loan.closed_on
    elif loan.evaluated_on != on:
        loan = evaluate(loan, on, policy)
    due = arrears(loan.ledger, on, policy.tolerance_cents)
    own = loan.last.own_class
    effective = worse(own, "substandard") if loan.cross_default else own
    restructured = in_observation(loan, on)
    watch = on_watchlist(loan, on)
    stage = 1
    if due.dpd > policy.stage3_dpd_over or CLASS_RANK[effective] >= SUBSTANDARD:
        stage = 3
    elif due.dpd > policy.stage2_dpd_over or restructured or watch:
        stage = 2
    return LoanView(
        loan_id=loan.loan_id,
        borrower_id=loan.borrower_id,
        product=loan.product,
        region=loan.region,
        currency=loan.currency,
        status=loan.status,
        as_of=on.isoformat(),
        dpd=due.dpd,
        bucket=policy.bucket(due.dpd),
        overdue_amount=cents_to_decimal(due.overdue),
        outstanding_principal=cents_to_decimal(loan.outstanding_principal),
        classification=effective,
        own_class=own,
        ifrs9_stage=stage,
        restructured=restructured,
        watchlist=watch,
        cross_default=loan.cross_default,
    )


# --- events on one loan (the caller evaluates the loan on ``on`` before and after) ---


def receive_payment(
    loan: LoanState, payment_id: str, amount: int, on: date, policy: Policy
) -> LoanState:
    step = loan.step + 1
    return evolve(
        loan,
        step=step,
        ledger=apply_amount(loan.ledger, amount, policy.allocation_order),
        history=(*loan.history, Pay(payment_id, amount)),
        payments=(*loan.payments, Payment(payment_id, amount, step, on)),
    )


def find_payment(loan: LoanState, payment_id: str) -> Payment | None:
    """An applied, not yet reversed payment of this loan."""
    for payment in loan.payments:
        if payment.payment_id == payment_id and not payment.reversed:
            return payment
    return None


def reverse_payment(loan: LoanState, payment_id: str, policy: Policy) -> LoanState:
    """Recompute the ledger as if the payment had never been received."""
    history: list[LedgerOp] = []
    dropped = False
    for op in loan.history:
        if not dropped and isinstance(op, Pay) and op.payment_id == payment_id:
            dropped = True
            continue
        history.append(op)
    payments = tuple(
        replace(p, reversed=True) if p.payment_id == payment_id and not p.reversed else p
        for p in loan.payments
    )
    return evolve(
        loan,
        step=loan.step + 1,
        history=tuple(history),
        payments=payments,
        ledger=rebuild(loan.opening, tuple(history), policy.allocation_order),
    )


def revise_schedule(
    loan: LoanState,
    terms: tuple[InstallmentTerms, ...],
    restructure: bool,
    on: date,
    policy: Policy,
) -> LoanState:
    """Replace the unpaid installments; a restructure opens an observation period on ``on``."""
    revised = evolve(
        loan,
        step=loan.step + 1,
        ledger=revise(loan.ledger, terms, policy.allocation_order),
        history=(*loan.history, Revise(terms)),
    )
    if not restructure:
        return revised
    days = timedelta(days=policy.restructure_observation_days)
    end = terms[0].due_date + days
    if len(terms) > 1:
        end = max(end, terms[1].due_date)
    floor = worse("special_mention", loan.last.own_class)
    return evolve(revised, obs_end=end, restructure_floor=floor)


def add_promise(loan: LoanState, promise_id: str, amount: int, promised_date: date) -> LoanState:
    kept = tuple(p for p in loan.promises if p.promise_id != promise_id)
    promise = Promise(promise_id, amount, promised_date, loan.step)
    return evolve(loan, step=loan.step + 1, promises=(*kept, promise))


def paid_towards(loan: LoanState, promise: Promise) -> int:
    """Payments received from the promise to the end of its date, reversed ones excluded."""
    return sum(
        p.amount
        for p in loan.payments
        if p.step > promise.step and p.applied_on <= promise.promised_date and not p.reversed
    )


def due_promises(loan: LoanState, on: date) -> tuple[tuple[Promise, ...], LoanState]:
    """Promises whose deadline (the day after the promised date) is ``on`` or earlier."""
    due = tuple(p for p in loan.promises if p.promised_date < on)
    if not due:
        return (), loan
    return due, evolve(loan, promises=tuple(p for p in loan.promises if p.promised_date >= on))


def flag_watchlist(loan: LoanState, on: date, policy: Policy) -> LoanState:
    until = on + timedelta(days=policy.watchlist_days)
    if loan.watch_until is not None and loan.watch_until > until:
        return loan
    return evolve(loan, watch_until=until)


def close(loan: LoanState, reason: str, on: date) -> LoanState:
    return evolve(loan, status=CLOSE_STATUS[reason], closed_on=on, step=loan.step + 1)


def mark_applied(loan: LoanState, event_id: str) -> LoanState:
    return evolve(loan, applied=loan.applied | {event_id})


def set_cross_default(loan: LoanState, flag: bool) -> LoanState:
    if loan.cross_default == flag:
        return loan
    last = loan.last
    return evolve(
        loan, cross_default=flag, last=snapshot(last.dpd, last.bucket, last.own_class, flag)
    )


def is_npl_exposure(loan: LoanState) -> bool:
    """Counts towards the borrower's NPL share: own class substandard or worse."""
    return CLASS_RANK[loan.last.own_class] >= SUBSTANDARD
