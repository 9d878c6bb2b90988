"""A loan's state hash: SHA-256 of the canonical JSON of its SPEC view on the partition's clock.

The view is what ``GET /loans/{id}`` and ``loanwatch replay --state-out`` print for the loan
(:func:`loanwatch.ledger.loan.view`, SPEC §7 fields), so an auditor can recompute a hash from
either. It never depends on how the state is stored (the table codec may change freely).
"""

from __future__ import annotations

from datetime import date

from loanwatch.audit.chain import canonical, sha256_hex
from loanwatch.ledger.loan import LoanState, view
from loanwatch.ledger.policy import Policy
from loanwatch.ledger.view import LoanView


def view_hash(loan_view: LoanView) -> str:
    return sha256_hex(canonical(loan_view.to_json()))


def state_hash(loan: LoanState, clock: date, policy: Policy) -> str:
    return view_hash(view(loan, clock, policy))
