"""Training and evaluation rows: a log replayed, features on each scoring date, the target.

A row is one installment scored by the tracker (``lead_days`` before its due date, while it
still owes money); its target is 1 when the installment still owes more than the tolerance at
the end of its due date + :data:`HORIZON_DAYS` (it reached 31 DPD), or when it was revised
away or written off unpaid; ``overdue`` is the same judged the day after the due date. Rows
whose horizon is beyond the log's last date are left out (their outcome is not known).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from loanwatch.early_warning import ledger_port as lp
from loanwatch.early_warning.config import EarlyWarningPolicy
from loanwatch.early_warning.state import EWState
from loanwatch.early_warning.tracker import EarlyWarning
from loanwatch.ledger.engine import Engine
from loanwatch.ledger.history import HistoryPort
from loanwatch.ledger.loan import LoanState
from loanwatch.ledger.parse import business_date_of, decode
from loanwatch.ledger.policy import Policy
from loanwatch.ledger.records import Rejection

HORIZON_DAYS = 30


@dataclass(slots=True)
class Row:
    loan_id: str
    product: str
    scored_on: date
    due_date: date
    values: dict[str, float | None]
    target: int = -1
    overdue: int = -1


def _outcome(loan: LoanState | None, due: date, tolerance: int, history: HistoryPort) -> int:
    if loan is None:
        return 1
    owes = lp.owes(loan, due, tolerance, history)
    if owes is None:  # revised away: unpaid unless the loan was repaid
        return 0 if loan.status == "closed" else 1
    return int(owes and loan.status != "closed")


def build_rows(lines: Iterable[bytes], policy: Policy, lead_days: int) -> list[Row]:
    """Replay one log and return its labelled rows, in the order they were scored."""
    engine = Engine(policy)
    rows: list[Row] = []
    pending: list[tuple[date, int, int]] = []  # (judge after this date, 0 overdue / 1 target, row)

    def collect(state: EWState, day: date, due: date, values: dict[str, float | None]) -> None:
        loan = engine.loans[state.loan_id]
        rows.append(Row(state.loan_id, loan.product, day, due, values))
        heapq.heappush(pending, (due, 0, len(rows) - 1))
        heapq.heappush(pending, (due + timedelta(days=HORIZON_DAYS), 1, len(rows) - 1))

    tracker = EarlyWarning(EarlyWarningPolicy(lead_days=lead_days), policy, on_score=collect)
    tracker.attach(engine)  # features read at each day's opening, as replay and the worker score
    tol = policy.tolerance_cents
    for line in lines:
        obj = decode(line)
        if isinstance(obj, Rejection):
            continue
        day = business_date_of(obj, policy.tz)
        while pending and day is not None and pending[0][0] < day:  # judged before day's events
            _, which, i = heapq.heappop(pending)
            row = rows[i]
            outcome = _outcome(engine.loans.get(row.loan_id), row.due_date, tol, engine.history)
            if which:
                row.target = outcome
            else:
                row.overdue = outcome
        tracker.observe(engine, obj, engine.process(obj))
    return [r for r in rows if r.target >= 0 and r.overdue >= 0]
