"""Metrics of classified treatment: segment moves, path actions, and outcomes per arm.

Created only when strategies are configured, on the registry the composition root passes in.
Every label value comes from ``strategies.yaml`` (segment, experiment and arm names, validated
at load) or the closed action list; anything else is counted as ``other``. Never a loan id.
Per arm: entries, cures, rolls (a move to a worse bucket), contacts and the recovered amount,
from which the dashboard derives cure rate, roll rate and contacts per cure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from loanwatch.ledger.alerts import Alert
from loanwatch.ledger.money import parse_money
from loanwatch.treatment.model import ACTIONS, Strategies
from loanwatch.treatment.tracker import Treatment

NONE = "none"
OTHER = "other"


@dataclass(frozen=True, slots=True)
class TreatmentMetrics:
    segment_changes: Counter
    actions: Counter
    arm_entries: Counter
    arm_cures: Counter
    arm_rolls: Counter
    arm_contacts: Counter
    arm_recovered: Counter


def register_treatment_metrics(registry: CollectorRegistry) -> TreatmentMetrics:
    r = registry
    arm = ["experiment", "arm"]
    return TreatmentMetrics(
        segment_changes=Counter(
            "loanwatch_segment_changes_total",
            "segment_changed alerts, by segment left and entered (none: not delinquent).",
            ["from_segment", "to_segment"],
            registry=r,
        ),
        actions=Counter(
            "loanwatch_treatment_actions_total",
            "treatment_action alerts, by segment, action and arm (none outside experiments).",
            ["segment", "action", "experiment", "arm"],
            registry=r,
        ),
        arm_entries=Counter(
            "loanwatch_arm_entries_total",
            "Loans entering an experiment's segment, by arm.",
            arm,
            registry=r,
        ),
        arm_cures=Counter(
            "loanwatch_arm_cures_total",
            "cured alerts of loans in an experiment, by arm.",
            arm,
            registry=r,
        ),
        arm_rolls=Counter(
            "loanwatch_arm_rolls_total",
            "bucket_changed alerts to a worse bucket of loans in an experiment, by arm.",
            arm,
            registry=r,
        ),
        arm_contacts=Counter(
            "loanwatch_arm_contacts_total",
            "contact_logged events applied to loans in an experiment, by arm.",
            arm,
            registry=r,
        ),
        arm_recovered=Counter(
            "loanwatch_arm_recovered_amount_total",
            "Payments received on loans in an experiment, by arm (currency units).",
            [*arm, "currency"],
            registry=r,
        ),
    )


class TreatmentCounters:
    """Updates :class:`TreatmentMetrics` from alerts and applied events, labels bounded."""

    def __init__(self, metrics: TreatmentMetrics, strategies: Strategies) -> None:
        self.m = metrics
        self.segments = frozenset(strategies.names())
        self.arms = frozenset(strategies.arm_names())
        self.experiments = frozenset(e for e, _ in strategies.arm_names())
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        # Every configured arm's series exists from the start at 0: an arm with no roll yet
        # reads a roll rate of 0, not "no data" (and a first roll is an increase).
        m = metrics
        for arm in sorted(self.arms):
            for metric in (m.arm_entries, m.arm_cures, m.arm_rolls, m.arm_contacts):
                self._child(metric, *arm)

    def _child(self, metric: Any, *values: str) -> Any:
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def _segment(self, value: Any) -> str:
        if value is None:
            return NONE
        return value if value in self.segments else OTHER

    def _arm(self, experiment: Any, arm: Any) -> tuple[str, str] | None:
        if experiment is None or arm is None:
            return None
        return (experiment, arm) if (experiment, arm) in self.arms else (OTHER, OTHER)

    def alert(self, alert: Alert) -> None:
        extra, m = alert.extra, self.m
        arm = self._arm(extra.get("experiment"), extra.get("arm"))
        if alert.kind == "segment_changed":
            frm, to = (
                self._segment(extra.get("from_segment")),
                self._segment(extra.get("to_segment")),
            )
            self._child(m.segment_changes, frm, to).inc()
            if arm is not None and extra.get("to_segment") is not None:
                self._child(m.arm_entries, *arm).inc()
        elif alert.kind == "treatment_action":
            action = extra.get("action")
            action = action if action in ACTIONS else OTHER
            experiment, name = arm or (NONE, NONE)
            segment = self._segment(extra.get("segment"))
            self._child(m.actions, segment, action, experiment, name).inc()
        elif arm is not None and alert.kind == "cured":
            self._child(m.arm_cures, *arm).inc()
        elif arm is not None and alert.kind == "bucket_changed" and _worse(extra):
            self._child(m.arm_rolls, *arm).inc()

    def applied(self, treatment: Treatment, kind: str, obj: dict[str, Any], currency: str) -> None:
        """An applied event of a loan in an experiment: contacts and recovered amounts."""
        if kind not in ("contact_logged", "payment_received"):
            return
        state = treatment.states.get(str(obj.get("loan_id")))
        if state is None or state.segment is None:
            return
        arm = self._arm(state.experiment, state.arm)
        if arm is None:
            return
        if kind == "contact_logged":
            self._child(self.m.arm_contacts, *arm).inc()
        else:
            # exact until here; Prometheus samples are floats, converted at the edge only
            self._child(self.m.arm_recovered, *arm, currency).inc(float(parse_money(obj["amount"])))


def _worse(extra: dict[str, Any]) -> bool:
    """A move to a later bucket (names sort by age: M1 < M2 < ... < M7+)."""
    return str(extra.get("to_bucket")) > str(extra.get("from_bucket"))
