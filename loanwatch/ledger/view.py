"""The read model of one loan on one business date: what replay writes, the HTTP API
returns, metrics aggregate and alerts quote. Pure data, no behaviour beyond formatting."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from loanwatch.ledger.money import format_money


@dataclass(frozen=True, slots=True)
class LoanView:
    """A loan's delinquency and risk state as of ``as_of`` (or its closing day)."""

    loan_id: str
    borrower_id: str
    product: str
    region: str
    currency: str
    status: str  # active | closed | written_off | sold
    as_of: str  # ISO business date the values hold for
    dpd: int
    bucket: str  # M0 .. M7+
    overdue_amount: Decimal
    outstanding_principal: Decimal
    classification: str  # effective class: normal, special_mention, substandard, doubtful, loss
    own_class: str
    ifrs9_stage: int  # 1, 2, 3
    restructured: bool  # inside a restructure observation period
    watchlist: bool
    cross_default: bool

    def to_json(self) -> dict[str, Any]:
        """The SPEC §7 state object: amounts as strings with two decimals."""
        return {
            "loan_id": self.loan_id,
            "borrower_id": self.borrower_id,
            "product": self.product,
            "region": self.region,
            "currency": self.currency,
            "status": self.status,
            "as_of": self.as_of,
            "dpd": self.dpd,
            "bucket": self.bucket,
            "overdue_amount": format_money(self.overdue_amount),
            "outstanding_principal": format_money(self.outstanding_principal),
            "classification": self.classification,
            "own_class": self.own_class,
            "ifrs9_stage": self.ifrs9_stage,
            "restructured": self.restructured,
            "watchlist": self.watchlist,
            "cross_default": self.cross_default,
        }
