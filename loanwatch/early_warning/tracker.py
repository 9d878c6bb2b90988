"""The early-warning layer beside one engine: features, scores and ``pre_due_risk`` alerts.

It hooks in at one point, after each engine call (an event, or an advance of the clock), like
the treatment layer (:mod:`loanwatch.treatment.tracker`): it updates the behaviour counters of
the loans the call touched, then scores each loan whose scoring date (``lead_days`` before its
next owing installment's due date) has come, and appends a ``pre_due_risk`` alert when the
probability of missing is at or above the threshold.

Deterministic: it reads only the engine's state and the log's order, never a clock; an alert's
id hashes the loan, the due date scored and the scoring date, never the event that woke it.
A scoring date inside a multi-day jump of the clock is judged on the day the clock lands on
(still before the due date), or skipped once the due date has passed (docs/early-warning.md).
Pure: no I/O; the live worker persists :attr:`dirty` states itself.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, MutableMapping
from datetime import date, timedelta
from typing import Any, Protocol

from loanwatch.early_warning import features as fx
from loanwatch.early_warning import ledger_port as lp
from loanwatch.early_warning.config import EarlyWarningPolicy
from loanwatch.early_warning.state import EWState, Scored, evolve
from loanwatch.ledger.alerts import Alert, make_alert
from loanwatch.ledger.borrowers import BorrowerPort
from loanwatch.ledger.history import HistoryPort
from loanwatch.ledger.loan import LoanState, view
from loanwatch.ledger.policy import Policy

#: (state, scoring date, due date scored, features): what training collects.
OnScore = Callable[[EWState, date, date, dict[str, float | None]], None]
BUCKET_ALERTS = frozenset({"overdue", "bucket_changed", "cured"})


class EnginePort(Protocol):
    @property
    def clock(self) -> date | None: ...

    @property
    def loans(self) -> MutableMapping[str, LoanState]: ...

    @property
    def borrowers(self) -> BorrowerPort: ...

    @property
    def history(self) -> HistoryPort: ...


class OutputPort(Protocol):
    alerts: list[Alert]
    result: str


class EarlyWarning:
    """Behaviour features and pre-due scores for the loans of one engine."""

    def __init__(
        self,
        settings: EarlyWarningPolicy,
        policy: Policy,
        states: MutableMapping[str, EWState] | None = None,
        on_score: OnScore | None = None,
        keep_scores: bool = False,
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.on_score = on_score
        self.keep_scores = keep_scores  # the worker's metrics take them (replay keeps none)
        self.states: MutableMapping[str, EWState] = states if states is not None else {}
        self.dirty: set[str] = set()  # loans whose state changed since the caller took them
        # (alert or None, loan, bucket on the scoring date, probability): the metrics take them
        self.scores: list[tuple[Alert | None, LoanState, str, float]] = []
        self._ranks = {name: i for i, (name, _) in enumerate(policy.buckets)}
        self._wakes: list[tuple[date, str]] = []  # (date, loan id) heap; stale entries skipped
        self._opened: tuple[OutputPort, int] | None = None  # alerts day_started already took
        for state in self.states.values():
            if state.wake is not None:
                heapq.heappush(self._wakes, (state.wake, state.loan_id))

    # --- the hooks ---

    def attach(self, engine: Any) -> None:
        """Score at the opening of each day: ``engine.on_advanced`` calls :meth:`day_started`."""
        engine.on_advanced = lambda out: self.day_started(engine, out)

    def day_started(self, engine: EnginePort, out: OutputPort) -> None:
        """An event moved the clock to a new day, before it is applied: the loans whose scoring
        date has come are scored on the day's opening state, so the event that opens the day
        (the log's next line in replay, a partition's record or clock tick live) never
        changes a score. The event's own :meth:`observe` skips the alerts taken here."""
        self.observe(engine, None, out)
        self._opened = (out, len(out.alerts))

    def observe(self, engine: EnginePort, obj: dict[str, Any] | None, out: OutputPort) -> None:
        day = engine.clock
        opened, self._opened = self._opened, None
        if day is None:
            return
        if obj is not None and out.result == "applied":
            loan_id = obj.get("loan_id")
            loan = engine.loans.get(loan_id) if isinstance(loan_id, str) else None
            if loan is not None:
                self._event(engine, loan, obj, day)
        alerts = out.alerts
        if opened is not None and opened[0] is out:
            alerts = alerts[opened[1] :]
        for alert in alerts:
            self._alert(engine, alert, day)
        added: list[Alert] = []
        while self._wakes and self._wakes[0][0] <= day:
            when, loan_id = heapq.heappop(self._wakes)
            state = self.states.get(loan_id)
            if state is not None and state.wake == when:
                added.extend(self._score(engine, state, day))
        out.alerts.extend(added)

    # --- behaviour ---

    def _put(self, state: EWState) -> None:
        self.states[state.loan_id] = state
        self.dirty.add(state.loan_id)

    def _state(self, engine: EnginePort, loan: LoanState, day: date) -> EWState:
        found = self.states.get(loan.loan_id)
        if found is not None:
            return found
        # A loan opened here (or before early warning was configured): counters start now.
        state = fx.opened(
            loan.loan_id, loan.borrower_id, day, lp.principal_at_opening(loan, engine.history)
        )
        state = evolve(state, open_due=lp.oldest_owing(loan, self._tolerance))
        return self._schedule(state, loan, day)

    @property
    def _tolerance(self) -> int:
        return self.policy.tolerance_cents

    def _event(self, engine: EnginePort, loan: LoanState, obj: dict[str, Any], day: date) -> None:
        if not loan.active:
            if self.states.pop(loan.loan_id, None) is not None:  # closed: no more scores
                self.dirty.add(loan.loan_id)
            return
        kind = obj.get("type")
        state = self._state(engine, loan, day)
        if kind == "payment_received":
            open_due, dues = lp.settled_since(loan, state.open_due, self._tolerance)
            partial = lp.paid_in_part(loan, open_due)
            state = fx.settle_payment(state, dues, open_due, day, partial)
        elif kind == "loan_opened":  # an opening applies parked payments
            open_due, dues = lp.settled_since(loan, state.open_due, self._tolerance)
            state = fx.settle(state, dues, open_due, day)
        elif kind in ("payment_reversed", "schedule_revised"):
            state = evolve(state, open_due=lp.oldest_owing(loan, self._tolerance))
            if kind == "payment_reversed":
                state = fx.reversal(state)
            else:  # the next due date may be earlier now
                state = self._schedule(state, loan, day)
        elif kind == "promise_to_pay":
            state = fx.promise_made(state)
        elif kind == "contact_logged":
            state = fx.contact(state, obj.get("outcome"))
        if state is not self.states.get(loan.loan_id):  # an update that changes nothing: same
            self._put(state)

    def _alert(self, engine: EnginePort, alert: Alert, day: date) -> None:
        kind = alert.kind
        if kind not in BUCKET_ALERTS and kind not in ("promise_broken", "risk_signal"):
            return
        loan = engine.loans.get(alert.loan_id)
        if loan is None or not loan.active:
            return
        state = self._state(engine, loan, day)
        if kind == "promise_broken":
            state = fx.promise_broken(state)
        elif kind == "risk_signal":
            state = fx.signal(state, alert.extra.get("signal_severity"))
        else:
            rank = self._ranks.get(alert.view.bucket, 0)
            state = fx.bucket_seen(state, alert.business_date, rank)
        self._put(state)

    # --- scoring ---

    def _wake(self, loan: LoanState, start: date, day: date) -> date | None:
        """``lead_days`` before the first installment owing on or after ``start``, not before
        ``day``; None when none owes."""
        due = lp.next_owing(loan, start, self._tolerance)
        return None if due is None else max(day, due - timedelta(days=self.settings.lead_days))

    def _schedule(self, state: EWState, loan: LoanState, day: date) -> EWState:
        """Set the next scoring date: ``lead_days`` before the next owing installment."""
        start = day if state.scored_due is None else max(day, state.scored_due + timedelta(1))
        wake = self._wake(loan, start, day)
        if wake != state.wake:
            state = evolve(state, wake=wake)
            if wake is not None:
                heapq.heappush(self._wakes, (wake, state.loan_id))
        self._put(state)
        return state

    def _score(self, engine: EnginePort, state: EWState, day: date) -> list[Alert]:
        loan = engine.loans.get(state.loan_id)
        if loan is None or not loan.active:
            return []
        due = lp.next_owing(
            loan, day if state.scored_due is None else max(day, state.scored_due + timedelta(1)),
            self._tolerance,
        )  # fmt: skip
        if due is None or due - timedelta(days=self.settings.lead_days) > day:
            self._schedule(evolve(state, wake=None), loan, day)
            return []  # paid ahead, or revised: wait for the next one
        dpd = lp.dpd_on(loan, day, self._tolerance)
        bucket = self.policy.bucket(dpd)
        values = fx.vector(
            state,
            day,
            dpd=dpd,
            bucket_rank=self._ranks.get(bucket, 0),
            outstanding=loan.outstanding_principal,
            others=self._others(engine, loan, day),
        )
        if self.on_score is not None:
            self.on_score(state, day, due, values)
        alerts: list[Alert] = []
        # The next scoring date (what _schedule(state, loan, day + 1) gives once ``due`` is
        # scored), set in the same copy of the state.
        tomorrow = day + timedelta(days=1)
        wake = self._wake(loan, max(tomorrow, due + timedelta(days=1)), tomorrow)
        card = self.settings.scorecard
        if card is None:
            state = evolve(state, scored_due=due, wake=wake)
        else:
            score = card.score(values)
            last = Scored(day, due, score.probability, score.points, score.reasons, card.version)
            state = evolve(state, scored_due=due, wake=wake, last=last)
            alert = None
            if score.probability >= self.settings.threshold:
                seen = view(loan, day, self.policy)
                alert = make_alert(
                    "pre_due_risk", day, f"pre_due|{due.isoformat()}", seen,
                    due_date=due.isoformat(), lead_days=(due - day).days,
                    probability=score.probability, score_points=score.points,
                    model_version=card.version, reason_codes=list(score.reasons),
                )  # fmt: skip
                alerts.append(alert)
            if self.keep_scores:
                self.scores.append((alert, loan, bucket, score.probability))
        if wake is not None:
            heapq.heappush(self._wakes, (wake, state.loan_id))
        self._put(state)
        return alerts

    def _others(self, engine: EnginePort, loan: LoanState, day: date) -> tuple[int, int | None]:
        count, worst = 0, None
        for other_id in engine.borrowers.loans_of(loan.borrower_id):
            other = engine.loans.get(other_id) if other_id != loan.loan_id else None
            if other is not None and other.active:
                count += 1
                dpd = lp.dpd_on(other, day, self._tolerance)
                worst = dpd if worst is None else max(worst, dpd)
        return count, worst

    # --- read side ---

    def describe(self, loan_id: str) -> dict[str, Any]:
        """The loan's early-warning fields for its state object and ``GET /loans/{id}``."""
        state = self.states.get(loan_id)
        last = state.last if state is not None else None
        if last is None:
            return {"early_warning": None}
        return {
            "early_warning": {
                "probability": last.probability,
                "score_points": last.points,
                "reason_codes": list(last.reasons),
                "model_version": last.model_version,
                "due_date": last.due_date.isoformat(),
                "scored_on": last.on.isoformat(),
            }
        }
