"""The treatment layer beside one engine: segments, arms and path actions of its loans.

It hooks in at one point: after each engine call (an event, or an advance of the clock), the
caller hands it the engine, the event and the engine's output. It then updates each loan's
context (broken promises, contact outcomes), re-evaluates the loans the call touched and the
ones whose wake date has come (a DPD mark of a rule, the next action of a path), appends a
``segment_changed`` alert for each loan whose segment changed and a ``treatment_action``
alert for each action due, and stamps segment and arm on the engine's alerts of those loans.

Deterministic: it reads only the engine's state and the log's order, never a clock, so replay,
backtest and the live worker give the same segments and the same alert ids. Wake dates inside
a multi-day jump of the clock are judged on the day the clock lands on (documented in
docs/strategies.md). Pure: no I/O; the live worker persists :attr:`dirty` states itself.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import MutableMapping
from datetime import date, timedelta
from typing import Any, Protocol

from loanwatch.ledger.alerts import Alert, make_alert
from loanwatch.ledger.loan import LoanState, view
from loanwatch.ledger.policy import Policy
from loanwatch.ledger.view import LoanView
from loanwatch.treatment.arms import arm_of
from loanwatch.treatment.model import Step, Strategies
from loanwatch.treatment.segments import REACHED, UNANSWERED, LoanContext, segment_of
from loanwatch.treatment.state import TreatmentState


class EnginePort(Protocol):
    """What the tracker reads of an engine (``loanwatch.ledger.engine.Engine``)."""

    @property
    def clock(self) -> date | None: ...

    @property
    def loans(self) -> MutableMapping[str, LoanState]: ...


class OutputPort(Protocol):
    alerts: list[Alert]
    result: str


class Treatment:
    """Segments and treatment paths for the loans of one engine."""

    def __init__(
        self,
        strategies: Strategies,
        policy: Policy,
        states: MutableMapping[str, TreatmentState] | None = None,
    ) -> None:
        self.strategies = strategies
        self.policy = policy
        self.states: MutableMapping[str, TreatmentState] = states if states is not None else {}
        self.dirty: set[str] = set()  # loans whose state changed since the caller last took them
        self._wakes: list[tuple[date, str]] = []  # (date, loan id) heap; stale entries skipped
        for state in self.states.values():
            if state.wake is not None:
                heapq.heappush(self._wakes, (state.wake, state.loan_id))

    # --- the hook ---

    def observe(self, engine: EnginePort, obj: dict[str, Any] | None, out: OutputPort) -> None:
        """After one engine call: re-evaluate what it touched, add and annotate alerts."""
        day = engine.clock
        if day is None:
            return
        key = obj.get("event_id") if obj is not None else None
        step_key = key if isinstance(key, str) and key else "age"
        touched: set[str] = set()
        if obj is not None and out.result == "applied":
            loan_id = obj.get("loan_id")
            if isinstance(loan_id, str) and loan_id in engine.loans:
                touched.add(loan_id)
                if obj.get("type") == "contact_logged":
                    self._contact(engine.loans[loan_id], obj)
        for alert in out.alerts:
            touched.add(alert.loan_id)
            if alert.kind == "promise_broken":
                self._update(alert.view.loan_id, alert.view.borrower_id, promise_broken=True)
            elif alert.kind == "cured":
                self._update(alert.view.loan_id, alert.view.borrower_id, cured=True)
        touched |= self._due(day)
        added: list[Alert] = []
        for loan_id in sorted(touched):
            loan = engine.loans.get(loan_id)
            if loan is not None:
                added.extend(self._evaluate(loan, day, step_key))
        out.alerts = [self._stamp(a) for a in out.alerts] + added

    # --- context ---

    def _state(self, loan_id: str, borrower_id: str) -> TreatmentState:
        found = self.states.get(loan_id)
        return found if found is not None else TreatmentState(loan_id, borrower_id)

    def _put(self, state: TreatmentState) -> None:
        self.states[state.loan_id] = state
        self.dirty.add(state.loan_id)

    def _update(
        self, loan_id: str, borrower_id: str, *, promise_broken: bool = False, cured: bool = False
    ) -> None:
        state = self._state(loan_id, borrower_id)
        ctx = state.ctx
        if promise_broken:
            ctx = dataclasses.replace(ctx, broken_promises=ctx.broken_promises + 1)
        if cured:  # a new episode starts from what collectors learn anew
            ctx = LoanContext(broken_promises=ctx.broken_promises, early_warning=ctx.early_warning)
        self._put(dataclasses.replace(state, ctx=ctx))

    def _contact(self, loan: LoanState, obj: dict[str, Any]) -> None:
        outcome = obj.get("outcome")
        state = self._state(loan.loan_id, loan.borrower_id)
        ctx = state.ctx
        if outcome == "hardship":
            ctx = dataclasses.replace(ctx, hardship=True, reached=True, unanswered=0)
        elif outcome in UNANSWERED and obj.get("channel") in ("call", "visit"):
            ctx = dataclasses.replace(ctx, unanswered=ctx.unanswered + 1)
        elif outcome in REACHED:
            ctx = dataclasses.replace(ctx, reached=True, unanswered=0)
        else:
            return  # sent, delivered, an action's outcome, ...: nothing the rules read
        self._put(dataclasses.replace(state, ctx=ctx))

    # --- evaluation ---

    def _due(self, day: date) -> set[str]:
        due: set[str] = set()
        while self._wakes and self._wakes[0][0] <= day:
            when, loan_id = heapq.heappop(self._wakes)
            state = self.states.get(loan_id)
            if state is not None and state.wake == when:
                due.add(loan_id)
        return due

    def _evaluate(self, loan: LoanState, day: date, step_key: str) -> list[Alert]:
        state = self.states.get(loan.loan_id)
        if not loan.active:
            if state is not None:
                del self.states[loan.loan_id]  # closed: no more treatment, no alert (SPEC §3)
                self.dirty.add(loan.loan_id)
            return []
        seen = view(loan, day, self.policy)
        state = state or TreatmentState(loan.loan_id, loan.borrower_id)
        target = segment_of(seen, state.ctx, self.strategies)
        alerts: list[Alert] = []
        if target != state.segment:
            state = self._enter(state, target, day)
            alerts.append(self._changed(seen, state, day, step_key))
        state, actions = self._actions(state, seen, day, step_key)
        alerts.extend(actions)
        wake = self._next_wake(state, seen, day)
        if wake != state.wake:
            state = dataclasses.replace(state, wake=wake)
            if wake is not None:
                heapq.heappush(self._wakes, (wake, loan.loan_id))
        if state != self.states.get(loan.loan_id):
            self._put(state)
        return alerts

    def _enter(self, state: TreatmentState, target: str | None, day: date) -> TreatmentState:
        previous = state.segment
        if target is None:
            # experiment and arm stay: the exit (a cure) is an outcome of the arm
            return dataclasses.replace(
                state, segment=None, previous=previous, since=None, path=None, done=0
            )
        segment = self.strategies.segment(target)
        experiment = self.strategies.experiment_of(target)
        arm = arm_of(experiment, state.loan_id) if experiment is not None else None
        path = arm.path if arm is not None and arm.path is not None else segment.path
        return dataclasses.replace(
            state, segment=target, previous=previous, since=day,
            experiment=experiment.experiment_id if experiment else None,
            arm=arm.name if arm else None, path=path, done=0,
        )  # fmt: skip

    def _steps(self, state: TreatmentState) -> tuple[Step, ...]:
        return self.strategies.paths.get(state.path, ()) if state.path else ()

    def _actions(
        self, state: TreatmentState, seen: LoanView, day: date, step_key: str
    ) -> tuple[TreatmentState, list[Alert]]:
        if state.segment is None or state.since is None:
            return state, []
        steps, done, alerts = self._steps(state), state.done, []
        in_segment = (day - state.since).days
        while done < len(steps) and steps[done].day <= in_segment:
            step = steps[done]
            extra = self._labels(state) | {
                "action": step.action,
                "day_in_segment": in_segment,
                "path_day": step.day,
                "call_priority": step.priority,
            }
            key = f"{step_key}|{state.segment}|{state.since.isoformat()}|{done}"
            alerts.append(make_alert("treatment_action", day, key, seen, **extra))
            done += 1
        return dataclasses.replace(state, done=done), alerts

    def _next_wake(self, state: TreatmentState, seen: LoanView, day: date) -> date | None:
        if state.segment is None or state.since is None:
            return None
        candidates: list[date] = []
        steps = self._steps(state)
        if state.done < len(steps):
            candidates.append(state.since + timedelta(days=steps[state.done].day))
        for mark in self.strategies.dpd_marks:
            if mark > seen.dpd:  # DPD grows by one a day until something touches the loan
                candidates.append(day + timedelta(days=mark - seen.dpd))
                break
        return min(candidates) if candidates else None

    # --- alerts ---

    @staticmethod
    def _labels(state: TreatmentState) -> dict[str, Any]:
        return {
            "segment": state.segment,
            "experiment": state.experiment,
            "arm": state.arm,
            "path": state.path,
        }

    def _changed(self, seen: LoanView, state: TreatmentState, day: date, step_key: str) -> Alert:
        extra = self._labels(state) | {
            "from_segment": state.previous,
            "to_segment": state.segment,
        }
        key = f"{step_key}|{state.segment or '-'}"
        return make_alert("segment_changed", day, key, seen, **extra)

    def _stamp(self, alert: Alert) -> Alert:
        """The engine's alert with the loan's segment and arm (when it is in one)."""
        state = self.states.get(alert.loan_id)
        if state is None:
            return alert
        if state.segment is not None:
            return dataclasses.replace(alert, extra=self._labels(state) | alert.extra)
        if alert.kind == "cured" and state.previous is not None:  # the segment it was cured in
            labels = self._labels(state) | {"segment": state.previous}
            return dataclasses.replace(alert, extra=labels | alert.extra)
        return alert

    # --- read side ---

    def describe(self, loan_id: str) -> dict[str, Any]:
        """The loan's treatment fields for its state object and ``GET /loans/{id}``."""
        state = self.states.get(loan_id)
        if state is None:
            return {"segment": None, "experiment": None, "arm": None}
        return {
            "segment": state.segment,
            "segment_since": state.since.isoformat() if state.since else None,
            "experiment": state.experiment,
            "arm": state.arm,
            "path": state.path,
            "actions_taken": state.done,
            "broken_promises": state.ctx.broken_promises,
            "contact": state.ctx.contact_state(self.strategies.unreachable_after),
        }
