"""One step of the engine: an event or one day of aging, over the loans it touches.

A step records each loan's snapshot before it, lets the caller change loans, then applies the
borrower cross-default floor and turns the differences into alerts (at most one per kind,
loan and step). It is the only place where loans, borrowers and alerts meet.

Each loan is evaluated on the step's day once when it is loaded (if it was not already) and
once after a change; the view, the next transition and the alerts read that evaluation's
arrears (one computation of the arrears per loan in :meth:`Step.finish`, O(1) on the terms).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from loanwatch.ledger.alerts import Alert, diff_alerts, make_alert
from loanwatch.ledger.borrowers import format_share
from loanwatch.ledger.loan import (
    LoanState,
    Snapshot,
    arrears_on,
    evaluate,
    next_transition,
    view,
)

if TYPE_CHECKING:
    from loanwatch.ledger.engine import Engine

OPENING = Snapshot(0, "M0", "normal", False)


class Step:
    def __init__(self, engine: Engine, day: date, key: str, alert_day: date | None = None) -> None:
        self.engine = engine
        self.day = day
        self.key = key
        # Borrower effects applied live after a repartition hop carry their cause's date.
        self.alert_day = alert_day or day
        self.before: dict[str, Snapshot] = {}
        self.order: list[str] = []
        self.event_alerts: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self.shares: dict[str, tuple[int, int]] = {}  # borrower: (NPL, total) outstanding

    def load(self, loan_id: str) -> LoanState:
        """The loan brought to the step's day; remembers its snapshot before the step."""
        loans = self.engine.loans
        loan = loans[loan_id]
        if loan_id not in self.before:
            self.before[loan_id] = loan.last if loan.evaluated_on is not None else OPENING
            self.order.append(loan_id)
        if loan.active and loan.evaluated_on != self.day:
            evaluate(loan, self.day, self.engine.policy)
            loans[loan_id] = loan
        return loan

    def store(self, loan: LoanState, changed: bool = True) -> None:
        """Save a loan; re-evaluated on the step's day when the caller ``changed`` it."""
        if loan.loan_id not in self.before:
            self.before[loan.loan_id] = OPENING
            self.order.append(loan.loan_id)
        if changed or loan.evaluated_on != self.day:
            evaluate(loan, self.day, self.engine.policy)
        self.engine.loans[loan.loan_id] = loan

    def alert(self, loan_id: str, kind: str, **fields: Any) -> None:
        """An event-driven alert (payment_reversed, risk_signal, promise_broken)."""
        self.event_alerts.setdefault(loan_id, []).append((kind, fields))

    def finish(self) -> list[Alert]:
        self.engine.borrowers.settle(self)
        engine, policy = self.engine, self.engine.policy
        loans, index, views = engine.loans, engine.index, engine.views
        alerts: list[Alert] = []
        # A day of aging reports loans in id order, whichever of them the index woke up, so
        # index aging and naive daily aging give the same sequence; an event reports its own
        # loan first, then the siblings the borrower floor reached.
        order = sorted(self.order) if self.key == "age" else self.order
        position = engine.position
        for loan_id in order:
            loan = loans[loan_id]
            if position is not None and loan.position != position:
                loan.position = position  # live only
                loans[loan_id] = loan
            if not loan.active:
                index.set(loan_id, None)
                views.note(loan, self.day)  # a closed loan's view says so
                continue
            due = arrears_on(loan, self.day, policy)  # evaluated on the step's day
            index.set(loan_id, next_transition(loan, policy, due))
            before, after = self.before[loan_id], loan.last
            events = self.event_alerts.get(loan_id)
            if before == after and not events:
                views.note(loan, self.day)  # no alert: the view is made when someone reads it
                continue
            current = view(loan, self.day, policy, due)
            views.put(loan_id, current, loan, self.day)
            found = self.shares.get(loan.borrower_id)
            share = format_share(*found) if found is not None else None
            day = self.alert_day
            # An effect that crossed partitions describes the loan on its cause's date.
            seen = current if day == self.day else view(loan, day, policy)
            alerts.extend(diff_alerts(before, after, seen, day, self.key, due.oldest_due, share))
            for kind, fields in events or ():
                alerts.append(make_alert(kind, day, self.key, seen, **fields))
        return alerts
