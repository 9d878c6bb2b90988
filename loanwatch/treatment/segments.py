"""Which segment a delinquent loan is in: a pure function of its SPEC view plus context.

The context is what the view does not carry: the loan's broken promises, what collectors
learned from contacts (``hardship`` reported, ``unreachable`` after N unanswered attempts),
and the borrower's early-warning score where one exists. Segments are tried in order and the
first whose condition holds wins; the last one has no condition, so every delinquent loan is
in exactly one. A loan that is not delinquent (DPD 0, or not active) is in none.
"""

from __future__ import annotations

from dataclasses import dataclass

from loanwatch.ledger import contact_outcomes
from loanwatch.ledger.view import LoanView
from loanwatch.treatment.model import Condition, Strategies

#: Outcomes of ``contact_logged`` that count as an unanswered attempt, and those that mean the
#: borrower was reached (ending a run of unanswered attempts): the one vocabulary's.
UNANSWERED = contact_outcomes.UNANSWERED
REACHED = contact_outcomes.CONVERSATION


@dataclass(frozen=True, slots=True)
class LoanContext:
    """What the segment rules know beyond the view (kept by the tracker per loan)."""

    broken_promises: int = 0  # over the loan's life
    hardship: bool = False  # a collector reported hardship in the current delinquency episode
    unanswered: int = 0  # unanswered attempts in a row since the borrower was last reached
    reached: bool = False  # reached at least once in the current episode
    early_warning: int | None = None  # the borrower's early-warning score, where one exists

    def contact_state(self, unreachable_after: int) -> str:
        if self.hardship:
            return "hardship"
        if self.unanswered >= unreachable_after:
            return "unreachable"
        return "reached" if self.reached else "none"


def delinquent(view: LoanView) -> bool:
    return view.status == "active" and view.dpd > 0


def holds(cond: Condition, view: LoanView, ctx: LoanContext, unreachable_after: int) -> bool:
    """Does every field of ``cond`` hold for this loan?"""
    if cond.dpd_min is not None and view.dpd < cond.dpd_min:
        return False
    if cond.dpd_max is not None and view.dpd > cond.dpd_max:
        return False
    if cond.buckets is not None and view.bucket not in cond.buckets:
        return False
    if cond.classes is not None and view.classification not in cond.classes:
        return False
    if cond.products is not None and view.product not in cond.products:
        return False
    exposure = int(view.outstanding_principal * 100)
    if cond.exposure_min_cents is not None and exposure < cond.exposure_min_cents:
        return False
    if cond.exposure_max_cents is not None and exposure > cond.exposure_max_cents:
        return False
    if cond.broken_promises_min is not None and ctx.broken_promises < cond.broken_promises_min:
        return False
    if cond.contact is not None and ctx.contact_state(unreachable_after) not in cond.contact:
        return False
    if cond.cross_default is not None and view.cross_default != cond.cross_default:
        return False
    if cond.restructured is not None and view.restructured != cond.restructured:
        return False
    if cond.early_warning_min is not None or cond.early_warning_max is not None:
        score = ctx.early_warning
        if score is None:
            return False  # the rule asks for a score this loan does not have
        if cond.early_warning_min is not None and score < cond.early_warning_min:
            return False
        if cond.early_warning_max is not None and score > cond.early_warning_max:
            return False
    return True


def segment_of(view: LoanView, ctx: LoanContext, strategies: Strategies) -> str | None:
    """The loan's segment: the first whose condition holds; None when not delinquent."""
    if not delinquent(view):
        return None
    for segment in strategies.segments:
        if holds(segment.when, view, ctx, strategies.unreachable_after):
            return segment.name
    raise AssertionError("the last segment has no condition: validated at load")
