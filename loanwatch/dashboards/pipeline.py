"""The *Pipeline health* dashboard: is loanwatch keeping up and telling the truth?

Throughput, consumer lag, event-time lag and alert latency quantiles, batch sizes, dead
letters, the engine clock and the workers' scrape status. Faust's own sensor metrics
(``<app>_total_rebalances`` ...) are named after the Faust app id; they get panels once the
worker's composition root fixes that id and registers the sensor.

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
