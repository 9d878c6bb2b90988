"""Strategy outcomes of one closed-loop run: cure rate, roll rate, recovered, PAR30, contacts.

An observer of :class:`loanwatch.simulate.closed_loop.ClosedLoop` (pure: it reads only the
events, the treatment states and the engine's alerts). Counted per group: ``all`` (the whole
book) and ``EXPERIMENT/ARM``: a loan counts for its arm from the day it first entered the
experiment's segment, in every later segment too (intention to treat: the arm's treatment
shapes what happens to the loan later; a loan's arm never changes, docs/strategies.md).

- entries: a loan entering treatment (``segment_changed`` from no segment);
- cures: ``cured`` alerts of loans in a segment; cure rate = cures / entries;
- rolls: ``bucket_changed`` to a later bucket while in a segment; roll rate = rolls / entries;
- recovered: payments received while the loan was in a segment (its state before the payment);
- contacts: ``contact_logged`` events applied while in a segment; contacts per cure;
- PAR30: at the end, outstanding principal of active loans with DPD > 30 over all outstanding
  (an arm: over its loans).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from loanwatch.ledger.alerts import Alert
from loanwatch.ledger.engine import Output
from loanwatch.ledger.money import parse_cents
from loanwatch.ledger.view import LoanView
from loanwatch.treatment.state import TreatmentState

ALL = "all"
KPIS: tuple[str, ...] = ("cure rate", "roll rate", "recovered", "PAR30", "contacts per cure")


@dataclass(slots=True)
class Tally:
    entries: int = 0
    cures: int = 0
    rolls: int = 0
    contacts: int = 0
    recovered_cents: int = 0
    outstanding: Decimal = Decimal(0)
    par30: Decimal = Decimal(0)

    def kpis(self) -> dict[str, float]:
        return {
            "cure rate": self.cures / self.entries if self.entries else 0.0,
            "roll rate": self.rolls / self.entries if self.entries else 0.0,
            "recovered": self.recovered_cents / 100,
            "PAR30": float(self.par30 / self.outstanding) if self.outstanding else 0.0,
            "contacts per cure": self.contacts / self.cures if self.cures else 0.0,
        }


def _group(experiment: Any, arm: Any) -> str | None:
    return f"{experiment}/{arm}" if experiment is not None and arm is not None else None


def _worse(extra: dict[str, Any]) -> bool:
    """A move to a later bucket (names sort by age: M1 < M2 < ... < M7+)."""
    return str(extra.get("to_bucket")) > str(extra.get("from_bucket"))


class Outcomes:
    """Feed it as the loop runs (``observe``), then the final views (``finish``)."""

    def __init__(self) -> None:
        self.tallies: dict[str, Tally] = {ALL: Tally()}
        self._arm_of: dict[str, str] = {}  # loan id -> the arm it was first in

    def _add(self, groups: Iterable[str | None], field: str, amount: int = 1) -> None:
        for group in groups:
            if group is not None:
                tally = self.tallies.setdefault(group, Tally())
                setattr(tally, field, getattr(tally, field) + amount)

    def observe(self, obj: dict[str, Any], before: TreatmentState | None, out: Output) -> None:
        if out.result == "applied" and before is not None and before.segment is not None:
            groups = (ALL, self._arm_of.get(before.loan_id))
            if obj.get("type") == "contact_logged":
                self._add(groups, "contacts")
            elif obj.get("type") == "payment_received":
                self._add(groups, "recovered_cents", parse_cents(str(obj["amount"])))
        for alert in out.alerts:
            self._alert(alert)

    def _alert(self, alert: Alert) -> None:
        extra = alert.extra
        arm = _group(extra.get("experiment"), extra.get("arm"))
        if arm is not None:
            self._arm_of.setdefault(alert.loan_id, arm)
        groups = (ALL, self._arm_of.get(alert.loan_id))
        if alert.kind == "segment_changed" and extra.get("to_segment") is not None:
            if extra.get("from_segment") is None:
                self._add(groups, "entries")
        elif alert.kind == "cured" and extra.get("segment") is not None:
            self._add(groups, "cures")
        elif alert.kind == "bucket_changed" and extra.get("segment") is not None and _worse(extra):
            self._add(groups, "rolls")

    def finish(self, views: Iterable[LoanView]) -> dict[str, dict[str, float]]:
        for v in views:
            if v.status != "active":
                continue
            for group in (ALL, self._arm_of.get(v.loan_id)):
                if group is None:
                    continue
                tally = self.tallies.setdefault(group, Tally())
                tally.outstanding += v.outstanding_principal
                if v.dpd > 30:
                    tally.par30 += v.outstanding_principal
        return {name: tally.kpis() for name, tally in sorted(self.tallies.items())}
