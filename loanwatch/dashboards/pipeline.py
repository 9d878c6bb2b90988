"""The *Pipeline health* dashboard: is loanwatch keeping up and telling the truth?

Throughput, consumer lag, event-time lag and alert latency quantiles, batch sizes, dead
letters, the engine clock and the workers' scrape status, rebalances and partitions per
worker, and the records held by timestamp alignment.

This module must never query anything; it only describes panels.
"""

from __future__ import annotations

from loanwatch.dashboards.model import (
    Json,
    Layout,
    dashboard,
    query_variable,
    row,
    selector,
    stat,
    target,
    timeseries,
)

UID = "loanwatch-pipeline"
SEL = selector("portfolio")


def _quantiles(metric: str) -> list[Json]:
    return [
        target(
            f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{SEL}[$__rate_interval])))",
            f"p{round(q * 100)}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


def _status() -> list[Json]:
    return [
        row("Status"),
        stat(
            "Workers up",
            'sum(up{job="loanwatch",portfolio=~"$portfolio"})',
            description="loanwatch targets Prometheus scrapes successfully.",
        ),
        stat(
            "Business date",
            f"max(loanwatch_business_date_timestamp_seconds{SEL}) * 1000",
            description="The engine clock (local midnight of the business date).",
            unit="dateTimeAsIsoNoDateIfToday",
            width=6,
        ),
        stat(
            "Since last event",
            f"time() - max(loanwatch_last_event_timestamp_seconds{SEL})",
            unit="s",
        ),
        stat(
            "Events/s",
            f"sum(rate(loanwatch_events_total{SEL}[$__rate_interval]))",
            unit="ops",
        ),
        stat(
            "Consumer lag",
            f"sum(loanwatch_consumer_lag_messages{SEL})",
            description="Messages not yet consumed, all topics.",
            width=6,
        ),
    ]


def _throughput() -> list[Json]:
    return [
        row("Throughput"),
        timeseries(
            "Events/s by topic and result",
            [
                target(
                    f"sum by (topic, result) (rate(loanwatch_events_total{SEL}[$__rate_interval]))",
                    "{{topic}} {{result}}",
                )
            ],
            unit="ops",
            stacked=True,
        ),
        timeseries(
            "Consumer lag by topic",
            [target(f"sum by (topic) (loanwatch_consumer_lag_messages{SEL})", "{{topic}}")],
        ),
        timeseries(
            "Dead letters per minute by reason",
            [
                target(
                    "sum by (reason) "
                    f"(rate(loanwatch_dead_letters_total{SEL}[$__rate_interval])) * 60",
                    "{{reason}}",
                )
            ],
            stacked=True,
        ),
        timeseries(
            "Rebalances and owned partitions",
            [
                target(
                    f"sum(increase(loanwatch_rebalances_total{SEL}[$__rate_interval]))",
                    "rebalances",
                ),
                target(
                    f"sum by (instance) (loanwatch_assigned_partitions{SEL})",
                    "partitions {{instance}}",
                ),
            ],
            description="Assignments received by the workers (a worker joining, leaving or "
            "crashing makes one per worker) and the input partitions each owns.",
        ),
        timeseries(
            "Held for alignment",
            [
                target(f"sum(loanwatch_input_held_messages{SEL})", "held"),
                target(
                    f"sum(increase(loanwatch_alignment_forced_total{SEL}[$__rate_interval]))",
                    "forced releases",
                ),
            ],
            description="Input records waiting until every input topic is known up to their "
            "timestamp; forced releases mean an input stayed silent for ALIGN_MAX_IDLE.",
        ),
        timeseries(
            "Batch size",
            _quantiles("loanwatch_batch_size")[:2],
            description="Events per batch taken from a stream (median and p95).",
        ),
    ]


def _latency() -> list[Json]:
    return [
        row("Latency"),
        timeseries(
            "Event-time lag (wall clock - occurred_at)",
            _quantiles("loanwatch_event_time_lag_seconds"),
            unit="s",
        ),
        timeseries(
            "Alert latency (event received -> alert sent)",
            _quantiles("loanwatch_alert_latency_seconds"),
            unit="s",
        ),
        timeseries(
            "Batch processing time",
            _quantiles("loanwatch_batch_processing_seconds"),
            unit="s",
            description="One released batch: processing, sending its changelog records and "
            "outputs, acking. The worker's other tasks wait meanwhile.",
        ),
    ]


def build() -> Json:
    layout = Layout().add(*_status(), *_throughput(), *_latency())
    variables = [
        query_variable("portfolio", "Portfolio", 'label_values(up{job="loanwatch"}, portfolio)'),
    ]
    return dashboard(
        UID,
        "loanwatch / Pipeline health",
        "Throughput, lag, latency and errors of the loanwatch workers.",
        variables,
        layout,
    )
