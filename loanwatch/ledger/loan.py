"""One loan's hot state and how it moves: opening, events, and evaluation on a business date.

A loan is its immutable :class:`~loanwatch.ledger.terms.Terms` (the schedule of its opening or
latest revision) plus a small position that events move: the cursor to the oldest installment
that owes anything, what is paid on it, the credit, and the rule memory (observation period,
non-performing cure, watchlist, open promises, cross-default flag, the last snapshot). The
state is updated in place, field by field: no copy of the whole state per event. What a
reversal needs to rebuild (payments, revisions) is the loan's history
(:mod:`loanwatch.ledger.history`), kept apart and read only by reversals.

Derived values (DPD, bucket, class, stage) are computed for a date: :func:`evaluate` brings the
rule memory to a date and returns the arrears there, which the view and the next transition
reuse (one evaluation per loan per step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta

from loanwatch.ledger.allocation import Ledger, Row
from loanwatch.ledger.delinquency import Arrears, arrears, next_due_after
from loanwatch.ledger.money import cents_to_decimal
from loanwatch.ledger.policy import CLASS_RANK, SUBSTANDARD, Policy, worse
from loanwatch.ledger.records import LoanOpened
from loanwatch.ledger.terms import Cursor, Terms, first_unpaid, make_terms, pay
from loanwatch.ledger.terms import outstanding_principal as terms_outstanding
from loanwatch.ledger.view import LoanView

ACTIVE = "active"
CLOSE_STATUS = {"repaid": "closed", "written_off": "written_off", "sold": "sold"}


@dataclass(frozen=True, slots=True)
class Promise:
    promise_id: str
    amount: int
    promised_date: date
    step: int  # payments applied after this step count towards it
    paid: int = 0  # received since the promise, on or before its date, reversals deducted


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The values alerts compare before and after a step."""

    dpd: int
    bucket: str
    own_class: str
    cross_default: bool


@dataclass(slots=True)
class LoanState:
    """A loan's hot state (what every event may touch); small and independent of its age."""

    loan_id: str
    borrower_id: str
    product: str
    region: str
    currency: str
    terms: Terms  # the schedule in force (stored once per opening or revision)
    rev: int = 0  # which terms: 0 the opening's, k the k-th revision's
    cursor: int = 0  # the first installment that owes anything (len(terms): none)
    paid_principal: int = 0  # what is paid on the cursor's installment
    paid_interest: int = 0
    paid_fee: int = 0
    credit: int = 0
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
    last_dpd: int = 0  # the snapshot of the last evaluation
    last_bucket: str = "M0"
    last_class: str = "normal"
    evaluated_on: date | None = None
    entries: int = 0  # entries in the loan's history (the next one's number)
    # Live only: the merge position (timestamp ms, topic rank, offset) of the last input
    # record whose step touched the loan, stored with it; a record read again after a crash
    # at or before it has already had its effect here (even one that was a rejection).
    position: tuple[int, int, int] | None = None

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    @property
    def at(self) -> Cursor:
        return (self.cursor, self.paid_principal, self.paid_interest, self.paid_fee)

    @property
    def outstanding_principal(self) -> int:
        return terms_outstanding(self.terms, self.at)

    @property
    def ledger(self) -> Ledger:
        """The installments in force with what is paid on each, as rows (O(n): for tests and
        inspection only; the engine never builds it)."""
        t, cursor = self.terms, self.cursor
        rows: list[Row] = []
        for i in range(len(t)):
            due, p, it, f = date.fromordinal(t.dues[i]), t.principal[i], t.interest[i], t.fee[i]
            if i < cursor:
                rows.append((due, p, it, f, p, it, f))
            elif i == cursor:
                rows.append((due, p, it, f, self.paid_principal, self.paid_interest, self.paid_fee))
            else:
                rows.append((due, p, it, f, 0, 0, 0))
        return Ledger(tuple(rows), self.credit)

    @property
    def last(self) -> Snapshot:
        return Snapshot(self.last_dpd, self.last_bucket, self.last_class, self.cross_default)


def open_loan(event: LoanOpened) -> LoanState:
    terms = make_terms(event.installments)
    return LoanState(
        loan_id=event.loan_id,
        borrower_id=event.borrower_id,
        product=event.product,
        region=event.region,
        currency=event.currency,
        terms=terms,
        cursor=first_unpaid(terms, 0),
    )


def in_observation(loan: LoanState, on: date) -> bool:
    return loan.obs_end is not None and on <= loan.obs_end


def on_watchlist(loan: LoanState, on: date) -> bool:
    return loan.watch_until is not None and on <= loan.watch_until


def arrears_on(loan: LoanState, on: date, policy: Policy) -> Arrears:
    return arrears(loan.terms, loan.at, on, policy.tolerance_cents)


def evaluate(loan: LoanState, on: date, policy: Policy) -> Arrears:
    """Bring the loan's rule memory to ``on``, record its snapshot there; the arrears on ``on``.

    Idempotent for one date and independent of how many days were skipped since the last
    evaluation, as long as no transition date (see :func:`next_transition`) was skipped.
    """
    due = arrears_on(loan, on, policy)
    if not loan.active:
        return due
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
            loan.last_dpd > 0 and loan.evaluated_on is not None and loan.evaluated_on <= obs_end
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
    loan.current_since = current_since
    loan.obs_end = obs_end
    loan.npl = npl
    loan.last_dpd = due.dpd
    loan.last_bucket = policy.bucket(due.dpd)
    loan.last_class = own
    loan.evaluated_on = on
    return due


def next_transition(loan: LoanState, policy: Policy, due: Arrears | None = None) -> date | None:
    """The first date after the last evaluation on which aging may change something.

    ``due``: the arrears on the evaluation date when the caller has them.
    """
    on = loan.evaluated_on
    if not loan.active or on is None:
        return None
    if due is None:
        due = arrears_on(loan, on, policy)
    candidates: list[date] = []
    upcoming = next_due_after(loan.terms, loan.at, on, policy.tolerance_cents)
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


def view(loan: LoanState, on: date, policy: Policy, due: Arrears | None = None) -> LoanView:
    """The read model on ``on`` (a closed loan keeps the values of its closing day).

    ``due``: the arrears on ``on`` when the caller has them (the loan evaluated on ``on``).
    Never changes ``loan``: a loan not evaluated on ``on`` is evaluated as a copy.
    """
    if loan.closed_on is not None:
        on = loan.closed_on
        due = None
    elif loan.evaluated_on != on:
        loan = replace(loan)
        due = evaluate(loan, on, policy)
    if due is None:
        due = arrears_on(loan, on, policy)
    own = loan.last_class
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


class LoanViews:
    """The latest view of each loan a step touched, made when first read (metrics, API).

    A step notes the loan and its day; most steps change nothing anyone reads before the
    next one, so the view (Decimals, strings) is built on the first read and kept until the
    loan's next step. Sound because a loan changes only inside a step, which notes it again.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._noted: dict[str, tuple[LoanState, date]] = {}
        self._made: dict[str, LoanView] = {}

    def note(self, loan: LoanState, on: date) -> None:
        self._noted[loan.loan_id] = (loan, on)
        self._made.pop(loan.loan_id, None)

    def put(self, loan_id: str, made: LoanView, loan: LoanState, on: date) -> None:
        """A view the caller has already made for ``loan`` on ``on``."""
        self._noted[loan_id] = (loan, on)
        self._made[loan_id] = made

    def get(self, loan_id: str) -> LoanView | None:
        made = self._made.get(loan_id)
        if made is None:
            noted = self._noted.get(loan_id)
            if noted is None:
                return None
            made = self._made[loan_id] = view(noted[0], noted[1], self.policy)
        return made

    def current(self, loan_id: str, loan: LoanState, on: date) -> LoanView | None:
        """The view of ``loan`` on ``on``, if that is the loan and day its last step noted
        (then equal to ``view(loan, on, policy)``: made once, kept); else None."""
        noted = self._noted.get(loan_id)
        if noted is None or noted[0] is not loan or noted[1] != on:
            return None
        return self.get(loan_id)

    def __len__(self) -> int:
        return len(self._noted)

    def values(self) -> list[LoanView]:
        return [v for v in map(self.get, list(self._noted)) if v is not None]

    def active_buckets(self) -> list[str]:
        """The bucket of every active loan, as :meth:`values` would say, without making the
        views: a loan evaluated on the day it was noted has its bucket in its snapshot."""
        out: list[str] = []
        made = self._made
        for loan_id, (loan, on) in list(self._noted.items()):
            seen = made.get(loan_id)
            if seen is not None:
                if seen.status == ACTIVE:
                    out.append(seen.bucket)
            elif loan.status == ACTIVE:
                if loan.closed_on is None and loan.evaluated_on == on:
                    out.append(loan.last_bucket)
                else:
                    found = self.get(loan_id)
                    if found is not None and found.status == ACTIVE:
                        out.append(found.bucket)
        return out


# --- events on one loan (the caller evaluates the loan on ``on`` before and after, and
# --- writes the loan's history: these functions change only the hot state) ---


def _set_cursor(loan: LoanState, at: Cursor) -> None:
    loan.cursor, loan.paid_principal, loan.paid_interest, loan.paid_fee = at


def receive_payment(loan: LoanState, amount: int, on: date, policy: Policy) -> None:
    """Allocate a payment from the cursor on; open promises due on or after ``on`` count it."""
    loan.step += 1
    at, left, _ = pay(loan.terms, loan.at, amount, policy.allocation_order)
    _set_cursor(loan, at)
    loan.credit += left
    if loan.promises:
        loan.promises = tuple(
            replace(p, paid=p.paid + amount) if on <= p.promised_date else p for p in loan.promises
        )


def rebuild(
    loan: LoanState,
    terms_of: Callable[[int], Terms],
    ops: list[tuple[str, int] | int],
    policy: Policy,
) -> None:
    """Recompute the position from the opening by the ledger's operations (after a reversal)."""
    order = policy.allocation_order
    terms = terms_of(0)
    at: Cursor = (first_unpaid(terms, 0), 0, 0, 0)
    credit = 0
    for op in ops:
        if isinstance(op, int):
            terms, at, credit = _revised(terms, at, credit, terms_of(op), order)
        else:
            at, left, _ = pay(terms, at, op[1], order)
            credit += left
    _set_cursor(loan, at)
    loan.credit = credit


def _revised(
    old: Terms, at: Cursor, credit: int, new: Terms, order: tuple[str, ...]
) -> tuple[Terms, Cursor, int]:
    """SPEC §3: what was paid on the installments removed (only the cursor's can have been
    paid on), plus credit, becomes credit and is applied to the new installments oldest first.
    Installments paid in full are dropped from the terms: they owe nothing and change nothing.
    """
    credit += at[1] + at[2] + at[3]
    start: Cursor = (first_unpaid(new, 0), 0, 0, 0)
    at, left, _ = pay(new, start, credit, order)
    return new, at, left


def revise_schedule(
    loan: LoanState, terms: Terms, rev: int, restructure: bool, on: date, policy: Policy
) -> None:
    """Replace the unpaid installments; a restructure opens an observation period on ``on``."""
    loan.step += 1
    loan.terms, at, loan.credit = _revised(
        loan.terms, loan.at, loan.credit, terms, policy.allocation_order
    )
    _set_cursor(loan, at)
    loan.rev = rev
    if not restructure or not len(terms):
        return
    days = timedelta(days=policy.restructure_observation_days)
    first = date.fromordinal(terms.dues[0])
    end = first + days
    if len(terms) > 1:
        end = max(end, date.fromordinal(terms.dues[1]))
    loan.obs_end = end
    loan.restructure_floor = worse("special_mention", loan.last_class)


def discount_reversed(loan: LoanState, amount: int, step: int, day: date) -> None:
    """A payment (applied at ``step`` on ``day``) is reversed: open promises stop counting it."""
    if loan.promises:
        loan.promises = tuple(
            replace(p, paid=p.paid - amount) if step > p.step and day <= p.promised_date else p
            for p in loan.promises
        )


def add_promise(loan: LoanState, promise_id: str, amount: int, promised_date: date) -> None:
    kept = tuple(p for p in loan.promises if p.promise_id != promise_id)
    loan.promises = (*kept, Promise(promise_id, amount, promised_date, loan.step))
    loan.step += 1


def due_promises(loan: LoanState, on: date) -> tuple[Promise, ...]:
    """Take the promises whose deadline (the day after the promised date) is ``on`` or earlier."""
    due = tuple(p for p in loan.promises if p.promised_date < on)
    if due:
        loan.promises = tuple(p for p in loan.promises if p.promised_date >= on)
    return due


def flag_watchlist(loan: LoanState, on: date, policy: Policy) -> None:
    until = on + timedelta(days=policy.watchlist_days)
    if loan.watch_until is not None and loan.watch_until > until:
        return
    loan.watch_until = until


def close(loan: LoanState, reason: str, on: date) -> None:
    loan.status = CLOSE_STATUS[reason]
    loan.closed_on = on
    loan.step += 1


def set_cross_default(loan: LoanState, flag: bool) -> LoanState:
    loan.cross_default = flag
    return loan


def is_npl_exposure(loan: LoanState) -> bool:
    """Counts towards the borrower's NPL share: own class substandard or worse."""
    return CLASS_RANK[loan.last_class] >= SUBSTANDARD
