"""Metrics of early warning: the distribution of pre-due scores and the alerts' reason codes.

Created only when early warning is configured, on the registry the composition root passes in.
Label values are bounded: ``bucket`` is one of the policy's buckets (the loan's on its scoring
date), ``product`` goes through the configured allow-list (:mod:`loanwatch.metrics.labels`),
``reason_code`` is one of the model's bins (every reason the scorecard can give; anything else
counts as ``other``). Never a loan id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from loanwatch.early_warning.scorecard import Scorecard, reason_code
from loanwatch.ledger.alerts import Alert
from loanwatch.ledger.loan import LoanState
from loanwatch.metrics.labels import DEFAULT_LABELS, OTHER, LabelAllowList

#: Upper edges of the probability histogram (the shipped threshold, 0.30, is one of them).
PROBABILITY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


@dataclass(frozen=True, slots=True)
class EarlyWarningMetrics:
    probability: Histogram
    pre_due_alerts: Counter


def register_early_warning_metrics(registry: CollectorRegistry) -> EarlyWarningMetrics:
    return EarlyWarningMetrics(
        probability=Histogram(
            "loanwatch_ew_score_probability",
            "Pre-due scores (probability of missing the installment), by the loan's bucket on "
            "the scoring date and product.",
            ["bucket", "product"],
            buckets=PROBABILITY_BUCKETS,
            registry=registry,
        ),
        pre_due_alerts=Counter(
            "loanwatch_ew_pre_due_alerts_total",
            "pre_due_risk alerts by reason code (each alert counts once for each of its reasons).",
            ["reason_code"],
            registry=registry,
        ),
    )


def reason_codes(card: Scorecard) -> frozenset[str]:
    """Every reason code the scorecard can give: one per bin of each feature."""
    return frozenset(reason_code(f.name, b.label) for f in card.features for b in f.bins)


class EarlyWarningCounters:
    """Updates :class:`EarlyWarningMetrics` from the scores a tracker kept, labels bounded."""

    def __init__(
        self,
        metrics: EarlyWarningMetrics,
        card: Scorecard | None,
        labels: LabelAllowList = DEFAULT_LABELS,
    ) -> None:
        self.m = metrics
        self.labels = labels
        self.reasons = reason_codes(card) if card is not None else frozenset()
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def scored(self, scores: Iterable[tuple[Alert | None, LoanState, str, float]]) -> None:
        """``EarlyWarning.scores`` items: (alert or None, loan, bucket, probability)."""
        for alert, loan, bucket, probability in scores:
            self._child(self.m.probability, bucket, self.labels.product(loan.product)).observe(
                probability
            )
            if alert is None:
                continue
            for reason in alert.extra.get("reason_codes") or ():
                code = reason if reason in self.reasons else OTHER
                self._child(self.m.pre_due_alerts, code).inc()
