"""Prometheus metrics of loanwatch: the pipeline catalog and the portfolio collector.

Importing this package creates no metric; the composition root calls
:func:`register_pipeline_metrics` and registers a :class:`PortfolioCollector` on its registry.
"""

from loanwatch.metrics.catalog import PipelineMetrics, register_pipeline_metrics
from loanwatch.metrics.labels import DEFAULT_LABELS, OTHER, LabelAllowList, load_labels
from loanwatch.metrics.portfolio import (
    BUCKETS,
    CLASSES,
    STAGES,
    PortfolioCollector,
    PortfolioSnapshot,
    aggregate,
)

__all__ = [
    "BUCKETS",
    "CLASSES",
    "DEFAULT_LABELS",
    "OTHER",
    "STAGES",
    "LabelAllowList",
    "PipelineMetrics",
    "PortfolioCollector",
    "PortfolioSnapshot",
    "aggregate",
    "load_labels",
    "register_pipeline_metrics",
]
