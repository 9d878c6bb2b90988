"""The *Collections* dashboard: alert flow, work queues, promises to pay, contacts, payments.

The work queues come from the router (``loanwatch routes serve --register-target``, job
``loanwatch-router``): ``loanwatch_workitems_open{team}`` is read from Redis at scrape time, so
every router of a portfolio reports the same numbers. Queries therefore take the ``max`` over
the routers of one portfolio and only then add portfolios or teams: a second router never
doubles a queue.

This module must never query anything; it only describes panels.
"""

from __future__ import annotations

from loanwatch.dashboards.model import (
    Json,
    Layout,
    bars,
    dashboard,
    query_variable,
    row,
    selector,
    stat,
    target,
    timeseries,
)

UID = "loanwatch-collections"


def _alerts() -> list[Json]:
    sel = selector("portfolio")
    return [
        row("Alerts"),
        timeseries(
            "Alerts per hour by kind",
            [
                target(
                    f"sum by (kind) (rate(loanwatch_alerts_total{sel}[$__rate_interval])) * 3600",
                    "{{kind}}",
                )
            ],
            stacked=True,
        ),
        timeseries(
            "Alerts per hour by severity",
            [
                target(
                    f"sum by (severity) (rate(loanwatch_alerts_total{sel}[$__rate_interval]))"
                    " * 3600",
                    "{{severity}}",
                )
            ],
            stacked=True,
        ),
        bars(
            "Alerts in the selected range by kind and severity",
            f"sum by (kind, severity) (increase(loanwatch_alerts_total{sel}[$__range]))",
            "{{kind}} / {{severity}}",
            width=24,
            height=7,
        ),
    ]


ROUTER_JOB = "loanwatch-router"


def _work_queues() -> list[Json]:
    sel = selector("portfolio")
    # One value per (portfolio, team) whatever the number of routers reading the same Redis.
    per_team = f"max by (portfolio, team) (loanwatch_workitems_open{sel})"
    return [
        row("Work queues"),
        stat(
            "Open work items",
            f"sum({per_team})",
            description="Work items triggered or acknowledged, not yet resolved (all teams).",
            decimals=0,
            height=8,
        ),
        timeseries(
            "Open work items by team",
            [target(f"sum by (team) ({per_team})", "{{team}}")],
            description="Queue depth of each team: items it owns that are triggered or "
            "acknowledged (read from the router's Redis at every scrape).",
            stacked=True,
            width=16,
        ),
        stat(
            "Routers up",
            f'sum(up{{job="{ROUTER_JOB}",portfolio=~"$portfolio"}})',
            description="Routers Prometheus scrapes successfully; 0 means the queues above "
            "are not current.",
            decimals=0,
            height=8,
        ),
    ]


def _promises() -> list[Json]:
    sel = selector("portfolio", "product")
    return [
        row("Promises to pay"),
        timeseries(
            "Promises per day by outcome",
            [
                target(
                    f"sum by (outcome) (increase(loanwatch_promises_total{sel}[1d]))",
                    "{{outcome}}",
                )
            ],
            width=16,
        ),
        stat(
            "Promise-kept rate (7d)",
            'loanwatch:promise_kept:ratio{portfolio=~"$portfolio"}',
            description="Kept / (kept + broken) among promises resolved in the last 7 days.",
            unit="percentunit",
            decimals=1,
            width=8,
            height=8,
        ),
    ]


def _contacts_and_payments() -> list[Json]:
    port = selector("portfolio")
    prod = selector("portfolio", "product")
    return [
        row("Contacts and payments"),
        timeseries(
            "Contacts per hour by channel",
            [
                target(
                    f"sum by (channel) (rate(loanwatch_contacts_total{port}[$__rate_interval]))"
                    " * 3600",
                    "{{channel}}",
                )
            ],
            stacked=True,
            width=8,
        ),
        timeseries(
            "Payments per hour by product",
            [
                target(
                    f"sum by (product) (rate(loanwatch_payments_total{prod}[$__rate_interval]))"
                    " * 3600",
                    "{{product}}",
                )
            ],
            stacked=True,
            width=8,
        ),
        timeseries(
            "Amount paid per hour by currency",
            [
                target(
                    "sum by (currency) "
                    f"(rate(loanwatch_payment_amount_total{prod}[$__rate_interval])) * 3600",
                    "{{currency}}",
                )
            ],
            width=8,
        ),
    ]


def _arms() -> list[Json]:
    """Champion-challenger (docs/strategies.md): outcomes per experiment arm over the range.

    The series exist only on workers with strategies configured; elsewhere the panels are
    empty. Rates divide two counters of the same arm, both increased over the range.
    """
    sel = selector("portfolio")

    def per_arm(metric: str) -> str:
        return f"sum by (experiment, arm) (increase({metric}{sel}[$__range]))"

    entries = per_arm("loanwatch_arm_entries_total")
    cures = per_arm("loanwatch_arm_cures_total")
    legend = "{{experiment}} / {{arm}}"
    return [
        row("Experiments: outcomes per arm"),
        bars("Cure rate per arm", f"{cures} / {entries}", legend, width=6, height=6),
        bars(
            "Roll rate per arm",
            f"{per_arm('loanwatch_arm_rolls_total')} / {entries}",
            legend,
            width=6,
            height=6,
        ),
        bars(
            "Recovered amount per arm",
            f"{per_arm('loanwatch_arm_recovered_amount_total')}",
            legend,
            width=6,
            height=6,
        ),
        bars(
            "Contacts per cure per arm",
            f"{per_arm('loanwatch_arm_contacts_total')} / {cures}",
            legend,
            width=6,
            height=6,
        ),
    ]


def _early_warning() -> list[Json]:
    """Pre-due risk (docs/early-warning.md): why loans are flagged before their due date.

    The series exist only on workers with early warning configured. An alert counts once for
    each of its three reason codes (the model's bins that cost most points).
    """
    sel = selector("portfolio")
    return [
        row("Early warning"),
        bars(
            "Pre-due risk alerts in the selected range by reason code (top 10)",
            "topk(10, sum by (reason_code) "
            f"(increase(loanwatch_ew_pre_due_alerts_total{sel}[$__range])))",
            "{{reason_code}}",
            description="pre_due_risk alerts by the reasons they give: what to talk about in "
            "the reminder call.",
            width=24,
            height=7,
        ),
    ]


def build() -> Json:
    layout = Layout().add(
        *_alerts(),
        *_work_queues(),
        *_promises(),
        *_contacts_and_payments(),
        *_arms(),
        *_early_warning(),
    )
    variables = [
        query_variable("portfolio", "Portfolio", "label_values(loanwatch_alerts_total, portfolio)"),
        query_variable(
            "product",
            "Product",
            'label_values(loanwatch_promises_total{portfolio=~"$portfolio"}, product)',
        ),
    ]
    return dashboard(
        UID,
        "loanwatch / Collections",
        "What the collectors are dealing with: alerts, work queues, promises to pay, contacts, "
        "payments.",
        variables,
        layout,
    )
