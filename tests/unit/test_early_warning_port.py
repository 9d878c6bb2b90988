"""Early warning's port onto the engine's loan layout (terms, cursor, history).

Its answers are checked against the installments as rows (``LoanState.ledger``, the engine's
inspection view) and, after a revision, against what the rows said before issue 16 (an
installment paid in full before a revision still exists and owes nothing; one the revision
replaced while it owed something is gone).
"""

from __future__ import annotations

from datetime import date

import pytest

from loanwatch.early_warning import ledger_port as lp
from loanwatch.ledger.allocation import row_paid, row_remaining
from loanwatch.ledger.loan import LoanState

from .ledger_helpers import Harness, event, opened, paid, tick

pytestmark = pytest.mark.unit

D = date.fromisoformat
SCHEDULE = [
    ("2026-02-01", "100.00", "10.00", "0.00"),
    ("2026-03-01", "100.00", "10.00", "0.00"),
    ("2026-04-01", "0.00", "0.00", "0.00"),  # owes nothing: settled from the start
    ("2026-05-01", "100.00", "10.00", "0.00"),
]


def _by_rows(loan: LoanState) -> dict[date, tuple[int, int]]:
    return {row[0]: (row_paid(row), row_remaining(row)) for row in loan.ledger.rows}


@pytest.mark.parametrize("amounts", [[], ["50.00"], ["110.00"], ["110.00", "60.00"], ["400.00"]])
def test_port_answers_as_the_rows_do(amounts: list[str]) -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", SCHEDULE), *(paid("A", "2026-02-10", a) for a in amounts))
    h.feed(tick("2026-03-20"))
    loan, tol = h.engine.loans["A"], h.engine.policy.tolerance_cents
    rows = _by_rows(loan)
    owing = [d for d, (_, left) in sorted(rows.items()) if left > tol]
    assert lp.oldest_owing(loan, tol) == (owing[0] if owing else None)
    assert lp.principal_at_opening(loan, h.engine.history) == 300_00
    for since in (None, *sorted(rows)):
        start = [d for d in sorted(rows) if since is None or d >= since]
        first = next((d for d in start if d in owing), None)
        expected = [d for d in start if first is None or d < first]
        assert lp.settled_since(loan, since, tol) == (first, expected)
    for due, (done, left) in rows.items():
        assert lp.owes(loan, due, tol, h.engine.history) is (left > tol)
        assert lp.paid_in_part(loan, due) is (done > 0 < left)
        later = [d for d in owing if d >= due]
        assert lp.next_owing(loan, due, tol) == (later[0] if later else None)
    assert lp.owes(loan, D("2026-02-02"), tol, h.engine.history) is None
    assert lp.dpd_on(loan, D("2026-03-20"), tol) == h.state("A")["dpd"]


def test_after_a_revision_paid_installments_still_exist_and_replaced_ones_do_not() -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", SCHEDULE), paid("A", "2026-02-01", "110.00"))
    h.feed(paid("A", "2026-02-20", "30.00"))
    loan, tol, history = h.engine.loans["A"], h.engine.policy.tolerance_cents, h.engine.history
    assert lp.paid_in_part(loan, D("2026-03-01"))
    h.feed(
        event(
            "schedule_revised",
            "A",
            "2026-02-25",
            reason="restructure",
            installments=[
                {"seq": 1, "due_date": "2026-06-01", "principal": "100.00", "interest": "0.00"},
                {"seq": 2, "due_date": "2026-07-01", "principal": "100.00", "interest": "0.00"},
            ],
        )
    )
    loan = h.engine.loans["A"]
    assert loan.rev == 1
    assert lp.principal_at_opening(loan, history) == 300_00  # the opening's, not the terms'
    assert lp.owes(loan, D("2026-02-01"), tol, history) is False  # paid in full before
    assert lp.owes(loan, D("2026-04-01"), tol, history) is False  # owed nothing
    assert lp.owes(loan, D("2026-03-01"), tol, history) is None  # replaced while owing
    assert lp.owes(loan, D("2026-06-01"), tol, history) is True  # 30.00 of credit paid on it
    assert lp.paid_in_part(loan, D("2026-06-01"))
    assert lp.oldest_owing(loan, tol) == D("2026-06-01")
    assert lp.next_owing(loan, D("2026-06-02"), tol) == D("2026-07-01")
    h.feed(paid("A", "2026-06-01", "70.00"))
    loan = h.engine.loans["A"]
    assert lp.settled_since(loan, D("2026-06-01"), tol) == (D("2026-07-01"), [D("2026-06-01")])
    assert lp.owes(loan, D("2026-06-01"), tol, history) is False
