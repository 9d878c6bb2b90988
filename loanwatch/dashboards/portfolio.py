"""The *Portfolio quality* dashboard: what the risk desk watches all day.

Headline ratios (PAR30, PAR90, NPL) are computed from the portfolio gauges so the product and
region variables filter them; the per-product/region trends and the flow panels use the
recording rules of ``config/prometheus/rules/loanwatch-portfolio.yml``.

This module must never query anything; it only describes panels.
"""

from __future__ import annotations

from loanwatch.dashboards.model import (
    DPD_OVER_30,
    DPD_OVER_90,
    NPL_CLASSES,
    Json,
    Layout,
    bars,
    dashboard,
    panel,
    query_variable,
    row,
    selector,
    stat,
    target,
    timeseries,
)

UID = "loanwatch-portfolio"
FILTER = ("portfolio", "product", "region")


def _ratio(metric: str, **fixed: str) -> str:
    part = selector(*FILTER, **fixed)
    whole = selector(*FILTER)
    return f"sum({metric}{part}) / sum({metric}{whole})"


def _headline() -> list[Json]:
    principal = "loanwatch_portfolio_outstanding_principal"
    classes = "loanwatch_portfolio_class_outstanding_principal"
    pct = {"unit": "percentunit", "decimals": 2}
    return [
        row("Headline"),
        stat(
            "PAR30",
            _ratio(principal, bucket=f"~{DPD_OVER_30}"),
            description="Outstanding principal more than 30 days past due (M2..M7+) / total.",
            **pct,
        ),
        stat(
            "PAR90",
            _ratio(principal, bucket=f"~{DPD_OVER_90}"),
            description="Outstanding principal more than 90 days past due (M4..M7+) / total.",
            **pct,
        ),
        stat(
            "NPL ratio",
            _ratio(classes, classification=f"~{NPL_CLASSES}"),
            description="Outstanding principal classified substandard, doubtful or loss / total.",
            **pct,
        ),
        stat(
            "Outstanding principal",
            f"sum({principal}{selector(*FILTER)})",
            description="Active loans only, in currency units.",
        ),
        stat("Active loans", f"sum(loanwatch_portfolio_loans{selector(*FILTER)})"),
        stat(
            "Overdue amount",
            f"sum(loanwatch_portfolio_overdue_amount{selector(*FILTER)})",
            description="Past-due principal, interest and fees, in currency units.",
        ),
    ]


def _trends() -> list[Json]:
    by_product = selector("portfolio", "product")
    by_region = selector("portfolio", "region")
    return [
        row("Portfolio at risk"),
        timeseries(
            "PAR30 by product",
            [target(f"loanwatch:par30_by_product:ratio{by_product}", "{{product}}")],
            unit="percentunit",
            width=8,
        ),
        timeseries(
            "PAR30 by region",
            [target(f"loanwatch:par30_by_region:ratio{by_region}", "{{region}}")],
            unit="percentunit",
            width=8,
        ),
        timeseries(
            "PAR30, PAR90 and NPL (whole portfolio)",
            [
                target('loanwatch:par30:ratio{portfolio=~"$portfolio"}', "PAR30"),
                target('loanwatch:par90:ratio{portfolio=~"$portfolio"}', "PAR90"),
                target('loanwatch:npl:ratio{portfolio=~"$portfolio"}', "NPL"),
            ],
            unit="percentunit",
            width=8,
        ),
        timeseries(
            "PAR90 by product",
            [target(f"loanwatch:par90_by_product:ratio{by_product}", "{{product}}")],
            unit="percentunit",
        ),
        timeseries(
            "PAR90 by region",
            [target(f"loanwatch:par90_by_region:ratio{by_region}", "{{region}}")],
            unit="percentunit",
        ),
    ]


def _composition() -> list[Json]:
    sel = selector(*FILTER)
    return [
        row("Composition"),
        timeseries(
            "Outstanding principal by bucket",
            [
                target(
                    f"sum by (bucket) (loanwatch_portfolio_outstanding_principal{sel})",
                    "{{bucket}}",
                )
            ],
            stacked=True,
        ),
        timeseries(
            "Overdue amount by bucket",
            [target(f"sum by (bucket) (loanwatch_portfolio_overdue_amount{sel})", "{{bucket}}")],
            stacked=True,
        ),
        bars(
            "Active loans by bucket",
            f"sum by (bucket) (loanwatch_portfolio_loans{sel})",
            "{{bucket}}",
            width=8,
        ),
        bars(
            "Classification mix (outstanding principal)",
            f"sum by (classification) (loanwatch_portfolio_class_outstanding_principal{sel})",
            "{{classification}}",
            width=8,
        ),
        bars(
            "IFRS 9 stage mix (outstanding principal)",
            f"sum by (stage) (loanwatch_portfolio_stage_outstanding_principal{sel})",
            "stage {{stage}}",
            width=8,
        ),
    ]


def _flows() -> list[Json]:
    matrix = panel(
        "table",
        "Roll-rate matrix (last 24h)",
        [
            target(
                'loanwatch:roll_rate:ratio{portfolio=~"$portfolio"}',
                instant=True,
                table=True,
            )
        ],
        description="Transitions from -> to in the last day / average loans in `from` "
        "(rows: from bucket, columns: to bucket).",
        unit="percentunit",
        decimals=2,
        transformations=[
            {
                "id": "groupingToMatrix",
                "options": {
                    "rowField": "from_bucket",
                    "columnField": "to_bucket",
                    "valueField": "Value",
                },
            }
        ],
    )
    product = selector("portfolio", "product")
    return [
        row("Flows"),
        matrix,
        timeseries(
            "Cures per day by bucket left",
            [
                target(
                    f"sum by (from_bucket) (increase(loanwatch_cures_total{product}[1d]))",
                    "{{from_bucket}}",
                )
            ],
            stacked=True,
        ),
        timeseries(
            "New delinquencies per day by product",
            [
                target(
                    f"loanwatch:new_delinquencies_by_product:increase1d{product}",
                    "{{product}}",
                )
            ],
            stacked=True,
        ),
        timeseries(
            "Cure rate (per day)",
            [target('loanwatch:cure_rate:ratio{portfolio=~"$portfolio"}', "cure rate")],
            unit="percentunit",
        ),
    ]


def build() -> Json:
    layout = Layout().add(*_headline(), *_trends(), *_composition(), *_flows())
    variables = [
        query_variable(
            "portfolio", "Portfolio", "label_values(loanwatch_portfolio_loans, portfolio)"
        ),
        query_variable(
            "product",
            "Product",
            'label_values(loanwatch_portfolio_loans{portfolio=~"$portfolio"}, product)',
        ),
        query_variable(
            "region",
            "Region",
            'label_values(loanwatch_portfolio_loans{portfolio=~"$portfolio"}, region)',
        ),
    ]
    return dashboard(
        UID,
        "loanwatch / Portfolio quality",
        "Delinquency and credit quality of the active portfolio, balance-weighted.",
        variables,
        layout,
    )
