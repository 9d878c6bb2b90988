"""Portfolio gauges computed at scrape time from the loans a worker owns right now.

:class:`PortfolioCollector` is a custom ``prometheus_client`` collector: each scrape calls the
``views`` callable (which yields the :class:`LoanView` of every loan in the partitions the
worker actively owns), aggregates the *active* loans by product and region (bounded by a
:class:`~loanwatch.metrics.labels.LabelAllowList`: unlisted values count as ``other``), and
exposes loan counts and balances per bucket, risk class and IFRS 9 stage. Because nothing is
cached, a rebalance cannot leave stale series behind, and summing over all workers gives the
portfolio.

Balances are summed as ``Decimal`` and converted to ``float`` only when exposed. Every bucket,
class and stage is emitted for every product x region seen (zeros included), so ratios built
on these series never lose a term.

This module must never label a series with a loan or borrower id, never keep state between
scrapes, and never mutate the views it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from loanwatch.ledger.view import LoanView
from loanwatch.metrics.labels import DEFAULT_LABELS, LabelAllowList

# Defaults of SPEC §4/§5; the worker passes the configured ones when the policy differs.
BUCKETS: Final = ("M0", "M1", "M2", "M3", "M4", "M5", "M6", "M7+")
CLASSES: Final = ("normal", "special_mention", "substandard", "doubtful", "loss")
STAGES: Final = ("1", "2", "3")

_ZERO = Decimal("0")


@dataclass(slots=True)
class _Tally:
    """Loan count and balances of one (product, region, dimension value) cell."""

    loans: int = 0
    outstanding: Decimal = field(default_factory=lambda: _ZERO)
    overdue: Decimal = field(default_factory=lambda: _ZERO)

    def add(self, view: LoanView) -> None:
        self.loans += 1
        self.outstanding += view.outstanding_principal
        self.overdue += view.overdue_amount


# (product, region) -> dimension value -> tally
_Cells = dict[tuple[str, str], dict[str, _Tally]]


@dataclass(frozen=True, slots=True)
class PortfolioSnapshot:
    """Exact aggregates of the active loans, by product, region and bucket/class/stage."""

    by_bucket: _Cells
    by_class: _Cells
    by_stage: _Cells


def aggregate(
    views: Iterable[LoanView],
    buckets: Sequence[str] = BUCKETS,
    classes: Sequence[str] = CLASSES,
    stages: Sequence[str] = STAGES,
    labels: LabelAllowList = DEFAULT_LABELS,
) -> PortfolioSnapshot:
    """Tally the active loans; every known bucket/class/stage starts at zero per cell.

    Products and regions outside ``labels`` are tallied together under ``other``.
    """
    snapshot = PortfolioSnapshot(by_bucket={}, by_class={}, by_stage={})
    dims = (
        (snapshot.by_bucket, buckets),
        (snapshot.by_class, classes),
        (snapshot.by_stage, stages),
    )
    for view in views:
        if view.status != "active":
            continue
        key = (labels.product(view.product), labels.region(view.region))
        values = (view.bucket, view.classification, str(view.ifrs9_stage))
        for (cells, known), value in zip(dims, values, strict=True):
            cell = cells.get(key)
            if cell is None:
                cell = cells[key] = {name: _Tally() for name in known}
            # A value outside the configured set is still counted, never dropped.
            cell.setdefault(value, _Tally()).add(view)
    return snapshot


class PortfolioCollector(Collector):
    """Exposes the ``loanwatch_portfolio_*`` gauges; register it once per worker registry."""

    def __init__(
        self,
        views: Callable[[], Iterable[LoanView]],
        *,
        buckets: Sequence[str] = BUCKETS,
        classes: Sequence[str] = CLASSES,
        stages: Sequence[str] = STAGES,
        labels: LabelAllowList = DEFAULT_LABELS,
    ) -> None:
        self._views = views
        self._labels = labels
        self._buckets = tuple(buckets)
        self._classes = tuple(classes)
        self._stages = tuple(stages)

    def describe(self) -> Iterable[Metric]:
        """The families without samples, so registering never reads the tables."""
        return list(_families(PortfolioSnapshot({}, {}, {})))

    def collect(self) -> Iterable[Metric]:
        snapshot = aggregate(
            self._views(), self._buckets, self._classes, self._stages, self._labels
        )
        return list(_families(snapshot))


def _families(snapshot: PortfolioSnapshot) -> Iterator[Metric]:
    yield from _dimension(snapshot.by_bucket, "", "bucket", with_overdue=True)
    yield from _dimension(snapshot.by_class, "class_", "classification", with_overdue=False)
    yield from _dimension(snapshot.by_stage, "stage_", "stage", with_overdue=False)


def _dimension(cells: _Cells, infix: str, label: str, *, with_overdue: bool) -> Iterator[Metric]:
    labels = ["product", "region", label]
    loans = GaugeMetricFamily(
        f"loanwatch_portfolio_{infix}loans",
        f"Active loans by product, region and {label}.",
        labels=labels,
    )
    outstanding = GaugeMetricFamily(
        f"loanwatch_portfolio_{infix}outstanding_principal",
        f"Outstanding principal of active loans by product, region and {label}, in currency units.",
        labels=labels,
    )
    overdue = GaugeMetricFamily(
        "loanwatch_portfolio_overdue_amount",
        "Overdue amount (past-due principal, interest and fees) of active loans by product, "
        "region and bucket, in currency units.",
        labels=labels,
    )
    for (product, region), tallies in sorted(cells.items()):
        for value, tally in tallies.items():
            key = [product, region, value]
            loans.add_metric(key, float(tally.loans))
            outstanding.add_metric(key, float(tally.outstanding))
            overdue.add_metric(key, float(tally.overdue))
    yield loans
    yield outstanding
    if with_overdue:
        yield overdue
