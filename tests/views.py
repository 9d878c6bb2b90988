"""A loan view to build test portfolios from (metrics, console, dashboards tests)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from loanwatch.ledger.view import LoanView

_BASE = LoanView(
    loan_id="L-1",
    borrower_id="B-1",
    product="consumer",
    region="east",
    currency="CNY",
    status="active",
    as_of="2026-03-05",
    dpd=0,
    bucket="M0",
    overdue_amount=Decimal("0.00"),
    outstanding_principal=Decimal("1000.00"),
    classification="normal",
    own_class="normal",
    ifrs9_stage=1,
    restructured=False,
    watchlist=False,
    cross_default=False,
)


def loan_view(**changes: object) -> LoanView:
    """A current, performing consumer loan (1,000.00 outstanding) with ``changes`` applied."""
    return replace(_BASE, **changes)  # type: ignore[arg-type]
