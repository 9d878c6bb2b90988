"""The engine: the business clock, the loans, parked orphans and the step that ties them.

Feed it decoded events in order (``process``); it ages the portfolio through every transition
date before applying an event (SPEC §2) and returns the alerts and dead letters of that event.
It holds state in memory and does no I/O: replay, the live agents and the tests all drive it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from loanwatch.ledger import loan as ops
from loanwatch.ledger.alerts import Alert
from loanwatch.ledger.borrowers import BorrowerPort, LocalBorrowers
from loanwatch.ledger.clock import jumps_too_far
from loanwatch.ledger.history import (
    HistoryPort,
    MemoryHistory,
    Paid,
    PaymentRecord,
    Reversal,
    Revised,
    replay_entries,
)
from loanwatch.ledger.index import TransitionIndex
from loanwatch.ledger.loan import LoanState
from loanwatch.ledger.money import format_cents
from loanwatch.ledger.orphans import Orphans, Parked, Source
from loanwatch.ledger.parse import business_date_of, decode, parse_event
from loanwatch.ledger.policy import Policy
from loanwatch.ledger.records import (
    BorrowerSignal,
    ClockTick,
    ContactLogged,
    Event,
    LoanClosed,
    LoanEvent,
    LoanOpened,
    PaymentReceived,
    PaymentReversed,
    PromiseToPay,
    Rejection,
    RiskSignal,
    ScheduleRevised,
)
from loanwatch.ledger.step import Step
from loanwatch.ledger.terms import make_terms
from loanwatch.ledger.view import LoanView

#: Where a record stands in a partition's merged input: (timestamp ms, topic rank, offset).
Position = tuple[int, int, int]


class SeenIds(Protocol):
    """The ids of applied events (a set in replay, a table live)."""

    def __contains__(self, event_id: object) -> bool: ...

    def add(self, event_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str
    message: str
    event: Any  # the decoded object, or the raw text when it was not JSON
    source: Source | None = None  # where a parked event came from (live), not in to_json

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "message": self.message, "event": self.event}


@dataclass(slots=True)
class Output:
    """What one call produced; ``result`` is applied, parked, duplicate or rejected."""

    alerts: list[Alert] = field(default_factory=list)
    rejects: list[DeadLetter] = field(default_factory=list)
    result: str = "applied"
    kept_promises: list[str] = field(default_factory=list)  # loan ids, one per kept promise


class Engine:
    """In-memory engine over one set of loans (the portfolio in replay, a partition live)."""

    def __init__(
        self,
        policy: Policy,
        *,
        naive_aging: bool = False,
        loans: MutableMapping[str, LoanState] | None = None,
        seen: SeenIds | None = None,
        borrowers: BorrowerPort | None = None,
        parked: MutableMapping[str, list[Parked]] | None = None,
        clock_follows_events: bool = True,
        today: Callable[[], date] | None = None,
        history: HistoryPort | None = None,
    ) -> None:
        self.policy = policy
        self.naive_aging = naive_aging  # reference mode: evaluate every loan every day
        self.clock_follows_events = clock_follows_events  # False with ``clock: wall``
        self.today = today  # ``clock: wall``: the wall clock's business date, for the guard
        self.clock: date | None = None
        self.loans: MutableMapping[str, LoanState] = loans if loans is not None else {}
        self.seen: SeenIds = seen if seen is not None else set()
        # Per-loan payments, revisions, terms and applied ids, apart from the hot state.
        self.history: HistoryPort = history if history is not None else MemoryHistory()
        self.borrowers: BorrowerPort = borrowers or LocalBorrowers(policy.cross_default_share)
        self.index = TransitionIndex()
        self.views = ops.LoanViews(policy)  # latest view of each loan a step touched
        # Live only: the merge position of the record being processed, and the position up
        # to which everything is stored (the partition's meta, written after every loan).
        self.position: Position | None = None
        self.stored_through: Position | None = None
        self.orphans = Orphans(policy.orphan_ttl_days, parked)
        # Called when an event moved the clock to a later day, after the aging and before the
        # event is applied: a layer that judges a day's opening state (early warning) sees the
        # same state whichever event opens the day (replay's log, or a partition's records).
        self.on_advanced: Callable[[Output], None] | None = None

    # --- input ---

    def process_raw(self, raw: bytes | str) -> Output:
        obj = decode(raw)
        if isinstance(obj, Rejection):
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            return Output(rejects=[DeadLetter(obj.reason, obj.message, text)], result="rejected")
        return self.process(obj)

    def process(
        self, obj: dict[str, Any], source: Source | None = None, position: Position | None = None
    ) -> Output:
        """Apply one decoded event; ``source`` (live: its record) stays with it if parked.

        ``position`` (live: the record's merge position) makes a record read again after a
        crash a no-op wherever its effect is already stored (see :meth:`_already_had`).
        """
        self.position = position
        stored = self.stored_through
        if position is not None and stored is not None and position <= stored:
            return Output(result="duplicate")  # everything up to it is stored
        eid = obj.get("event_id")
        if isinstance(eid, str) and self._already_applied(obj, eid):
            return Output(result="duplicate")
        out = Output()
        day = business_date_of(obj, self.policy.tz)
        if day is not None and obj.get("type") != "clock_tick" and self._too_far(day):
            limit = self.policy.max_clock_jump_days
            message = f"business date {day} is more than {limit} days after the clock"
            out.rejects.append(DeadLetter("future_date", message, obj))
            out.result = "rejected"
            return out
        if day is not None and (self.clock_follows_events or self.clock is None):
            before = self.clock
            self.advance(day, out)
            if self.on_advanced is not None and self.clock != before:
                self.on_advanced(out)
        event = parse_event(obj, self.policy.tz)
        if isinstance(event, Rejection):
            out.rejects.append(DeadLetter(event.reason, event.message, obj))
            out.result = "rejected"
            return out
        if not isinstance(event, ClockTick):
            self._dispatch(event, obj, out, source)
        if out.result != "rejected" and isinstance(event, (ClockTick, BorrowerSignal)):
            self.seen.add(event.event_id)
        # Only applied (or parked) ids count as seen: a re-delivered rejected event is
        # rejected again, so the dead letters show every delivery.
        return out

    def _too_far(self, day: date) -> bool:
        """SPEC §2's clock-jump guard: against the clock, or today with ``clock: wall``."""
        limit = self.policy.max_clock_jump_days
        if limit is None:
            return False  # the SPEC default: no guard (and no wall-clock read per event)
        reference = self.today() if self.today is not None else self.clock
        return jumps_too_far(reference, day, limit)

    def _already_applied(self, obj: dict[str, Any], event_id: str) -> bool:
        loan_id = obj.get("loan_id")
        if isinstance(loan_id, str) and loan_id:
            loan = self.loans.get(loan_id)
            if loan is not None:
                at = self.history.applied_at(loan_id, event_id)
                if at is None:
                    return False
                # This very record, read again after a crash that stored its id (written
                # before the loan's record) but not the loan: its effect is not stored yet.
                return not (at and at == self.position and not self._already_had(loan))
            return self.orphans.holds(loan_id, event_id)
        return event_id in self.seen

    # --- time ---

    def advance(self, day: date, out: Output | None = None) -> Output:
        """Age every open loan through ``day`` (SPEC §2); the clock never goes backwards."""
        out = out if out is not None else Output()
        if self.clock is None:
            self.clock = day
            return out
        while self.clock < day:
            nxt = self.clock + timedelta(days=1) if self.naive_aging else self._next_date()
            if nxt is None or nxt > day:
                break
            self.clock = nxt
            self._age_day(nxt, out)
        self.clock = max(self.clock, day)
        return out

    def _next_date(self) -> date | None:
        candidates = [d for d in (self.index.peek(), self.orphans.next_expiry()) if d is not None]
        return min(candidates) if candidates else None

    def _age_day(self, day: date, out: Output) -> None:
        due = self.index.pop_through(day)
        if self.naive_aging:
            due = sorted(k for k, v in self.loans.items() if v.active)
        step = Step(self, day, "age")
        for loan_id in due:
            loan = step.load(loan_id)
            self._settle_promises(step, loan, day, out)
            step.store(loan, changed=False)
        out.alerts.extend(step.finish())
        self._expire_orphans(day, out)

    def _settle_promises(self, step: Step, loan: LoanState, day: date, out: Output) -> None:
        """Judge the promises whose promised date has passed: short ones are broken."""
        for promise in ops.due_promises(loan, day):
            paid = promise.paid
            if paid >= promise.amount:
                out.kept_promises.append(loan.loan_id)  # no alert; counted by the metrics
            else:
                step.alert(
                    loan.loan_id,
                    "promise_broken",
                    promise_id=promise.promise_id,
                    promised_amount=_money(promise.amount),
                    paid_amount=_money(paid),
                )

    # --- orphans ---

    def _expire_orphans(self, day: date, out: Output) -> None:
        for p in self.orphans.expire(day):
            if self.loans.get(p.event.loan_id) is not None:
                # Its loan's opening took every parked event (applied or dead-lettered then):
                # one still here is what a crash left between the two writes.
                continue
            msg = (
                f"loan {p.event.loan_id!r} was not opened within {self.policy.orphan_ttl_days} days"
            )
            out.rejects.append(DeadLetter("unknown_loan", msg, p.obj, p.source))

    # --- events ---

    def _dispatch(
        self, event: Event, obj: dict[str, Any], out: Output, source: Source | None = None
    ) -> None:
        if isinstance(event, BorrowerSignal):
            self._borrower_signal(event, out)
            return
        assert not isinstance(event, ClockTick)
        loan = self.loans.get(event.loan_id)
        if isinstance(event, LoanOpened):
            if loan is not None and self._already_had(loan):
                out.result = "duplicate"  # read again after a crash: it opened this loan
                return
            if loan is not None:
                out.rejects.append(
                    DeadLetter("duplicate_loan", f"loan {event.loan_id!r} is already open", obj)
                )
                out.result = "rejected"
                return
            self._open(event, out)
            return
        if loan is None:
            assert self.clock is not None
            self.orphans.park(event, obj, self.clock, source)
            out.result = "parked"
            return
        if self._already_had(loan):  # read again after a crash: its effect is stored
            out.result = "duplicate"
            return
        reject = self._apply(event, out)
        if reject is not None:
            out.rejects.append(DeadLetter(reject.reason, reject.message, obj))
            out.result = "rejected"

    def _open(self, event: LoanOpened, out: Output) -> None:
        assert self.clock is not None
        step = Step(self, self.clock, event.event_id)
        loan = ops.open_loan(event)
        self.history.put_terms(loan.loan_id, 0, loan.terms)
        self._mark_applied(loan.loan_id, event.event_id)
        step.store(loan)
        out.alerts.extend(step.finish())
        for parked in self.orphans.take(event.loan_id):
            reject = self._apply(parked.event, out)
            if reject is not None:
                letter = DeadLetter(reject.reason, reject.message, parked.obj, parked.source)
                out.rejects.append(letter)

    def _already_had(self, loan: LoanState) -> bool:
        """Is the current record's effect on ``loan`` already in its stored state?

        After a crash the store can be ahead of the committed offsets: a record read again
        may have been rejected for a loan that exists now (an orphan that expired before its
        loan opened), so its id proves nothing; the loan's stored position does.
        """
        pos = self.position
        return pos is not None and loan.position is not None and loan.position >= pos

    def _mark_applied(self, loan_id: str, event_id: str) -> None:
        self.history.mark_applied(loan_id, event_id, self.position or ())

    def _apply(self, event: LoanEvent, out: Output) -> Rejection | None:
        """Apply one event to an opened loan as one step; a rejection changes nothing."""
        assert self.clock is not None and not isinstance(event, LoanOpened)
        day, policy, history = self.clock, self.policy, self.history
        current = self.loans[event.loan_id]
        if not current.active:
            return Rejection("loan_closed", f"loan {event.loan_id!r} is {current.status}")
        reversed_now: list[PaymentRecord] = []
        if isinstance(event, PaymentReversed):
            payments, _ = replay_entries(history.entries(current.loan_id, current.entries))
            pid = event.payment_id
            reversed_now = [p for p in payments if p.payment_id == pid and not p.reversed]
            if not reversed_now:
                return Rejection("unknown_payment", f"no applied payment {pid!r} on this loan")
        step = Step(self, day, event.event_id)
        loan = step.load(event.loan_id)
        self._mark_applied(loan.loan_id, event.event_id)
        changed = True
        if isinstance(event, PaymentReceived):
            ops.receive_payment(loan, event.amount, day, policy)
            self._record(loan, Paid(event.payment_id, event.amount, loan.step, day))
        elif isinstance(event, PaymentReversed):
            self._reverse(loan, event.payment_id, reversed_now)
            step.alert(loan.loan_id, "payment_reversed", payment_id=event.payment_id)
        elif isinstance(event, ScheduleRevised):
            rev = loan.rev + 1
            terms = make_terms(event.installments)
            history.put_terms(loan.loan_id, rev, terms)
            ops.revise_schedule(loan, terms, rev, event.reason == "restructure", day, policy)
            self._record(loan, Revised(rev))
        elif isinstance(event, LoanClosed):
            ops.close(loan, event.reason, day)
        elif isinstance(event, PromiseToPay):
            ops.add_promise(loan, event.promise_id, event.amount, event.promised_date)
            self._settle_promises(step, loan, day, out)  # a promised date already past
        elif isinstance(event, RiskSignal):
            self._signal(step, loan, event)
        elif isinstance(event, ContactLogged):
            changed = False  # counted by the caller's metrics; no state rule reads contacts
        step.store(loan, changed)
        out.alerts.extend(step.finish())
        return None

    def _record(self, loan: LoanState, entry: Paid | Revised | Reversal) -> None:
        """Append to the loan's history (its next entry number is in the hot state)."""
        self.history.append(loan.loan_id, loan.entries, entry)
        loan.entries += 1

    def _reverse(self, loan: LoanState, payment_id: str, reversed_now: list[PaymentRecord]) -> None:
        """SPEC §3: the ledger recomputed as if the payment had never been received."""
        loan.step += 1
        self._record(loan, Reversal(payment_id))
        _, ledger_ops = replay_entries(self.history.entries(loan.loan_id, loan.entries))
        loan_id = loan.loan_id
        ops.rebuild(loan, lambda rev: self.history.terms(loan_id, rev), ledger_ops, self.policy)
        for p in reversed_now:
            ops.discount_reversed(loan, p.amount, p.step, p.day)

    def _signal(self, step: Step, loan: LoanState, event: RiskSignal | BorrowerSignal) -> None:
        step.alert(loan.loan_id, "risk_signal", signal=event.signal, signal_severity=event.severity)
        if event.severity == "high":
            assert self.clock is not None
            ops.flag_watchlist(loan, self.clock, self.policy)

    def _borrower_signal(self, event: BorrowerSignal, out: Output) -> None:
        assert self.clock is not None
        step = Step(self, self.clock, event.event_id)
        self.borrowers.on_borrower_signal(event)
        for loan_id in self.borrowers.loans_of(event.borrower_id):
            if not self._already_had(self.loans[loan_id]):
                loan = step.load(loan_id)
                self._signal(step, loan, event)
                step.store(loan)
        out.alerts.extend(step.finish())

    def reindex(self, loans: Iterable[LoanState]) -> None:
        """Re-derive the transition index from the loans (after a restart or rebalance)."""
        self.index = TransitionIndex()
        for loan in loans:
            self.index.set(loan.loan_id, ops.next_transition(loan, self.policy))

    # --- the small per-partition state beside the loans: the clock and the orphans' expiry ---

    def export_meta(self) -> dict[str, Any]:
        """The clock, and the position through which every effect is stored (live)."""
        return {
            "clock": self.clock.isoformat() if self.clock else None,
            "position": list(self.position) if self.position is not None else None,
        }

    def import_meta(self, meta: dict[str, Any]) -> None:
        self.clock = date.fromisoformat(meta["clock"]) if meta.get("clock") else None
        found = meta.get("position")
        self.stored_through = (int(found[0]), int(found[1]), int(found[2])) if found else None

    def reindex_parked(self, waiting: Iterable[tuple[str, list[date]]]) -> None:
        """Re-derive the orphans' expiry queue from what is parked (after a restart)."""
        self.orphans.reindex(waiting)

    # --- output ---

    def states(self, on: date | None = None) -> list[LoanView]:
        day = on or self.clock
        if day is None:
            return []
        return [ops.view(self.loans[k], day, self.policy) for k in sorted(self.loans)]


def _money(cents: int) -> str:
    return format_cents(cents)
