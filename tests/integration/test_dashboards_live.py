"""The metrics, recording rules and dashboards end to end against the stack's Prometheus.

A ``prometheus_client`` HTTP server on a free loopback port exposes the pipeline catalog and a
``PortfolioCollector`` fed with hand-built ``LoanView`` objects (the real worker replaces them
later). Prometheus scrapes it through file_sd with a unique ``portfolio`` label, so this test
only ever reads its own series next to anything else on the shared stack.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, start_http_server

from loanwatch.dashboards.build import load_all
from loanwatch.dashboards.check import run_queries
from loanwatch.dashboards.cli import dashboards
from loanwatch.ledger.view import LoanView
from loanwatch.metrics import PipelineMetrics, PortfolioCollector, register_pipeline_metrics

BASE = LoanView(
    loan_id="L",
    borrower_id="B",
    product="consumer",
    region="east",
    currency="CNY",
    status="active",
    as_of="2026-03-05",
    dpd=0,
    bucket="M0",
    overdue_amount=Decimal("0.00"),
    outstanding_principal=Decimal("0.00"),
    classification="normal",
    own_class="normal",
    ifrs9_stage=1,
    restructured=False,
    watchlist=False,
    cross_default=False,
)

# (product, region, status, dpd, bucket, outstanding, overdue, class, stage)
LOANS = [
    ("consumer", "east", "active", 0, "M0", "12000.00", "0.00", "normal", 1),
    ("consumer", "east", "active", 0, "M0", "8333.33", "0.00", "normal", 1),
    ("consumer", "east", "active", 12, "M1", "4100.10", "410.01", "special_mention", 1),
    ("consumer", "north", "active", 45, "M2", "2999.99", "905.50", "special_mention", 2),
    ("consumer", "north", "active", 95, "M4", "1500.00", "1200.00", "substandard", 3),
    ("consumer", "north", "active", 400, "M7+", "777.77", "777.77", "loss", 3),
    ("mortgage", "east", "active", 0, "M0", "250000.00", "0.00", "normal", 1),
    ("mortgage", "east", "active", 0, "M0", "180000.01", "0.00", "special_mention", 2),
    ("mortgage", "north", "active", 70, "M3", "99000.00", "6100.00", "special_mention", 2),
    ("mortgage", "north", "active", 200, "M7+", "120000.00", "30000.00", "doubtful", 3),
    # Not in the portfolio: a closed loan and a written-off one.
    ("mortgage", "east", "closed", 0, "M0", "0.00", "0.00", "normal", 1),
    ("consumer", "north", "written_off", 300, "M7+", "5000.00", "5000.00", "loss", 3),
]
DPD_OVER_30 = {"M2", "M3", "M4", "M5", "M6", "M7+"}


def portfolio() -> list[LoanView]:
    return [
        replace(
            BASE,
            loan_id=f"L{i}",
            borrower_id=f"B{i}",
            product=product,
            region=region,
            status=status,
            dpd=dpd,
            bucket=bucket,
            outstanding_principal=Decimal(outstanding),
            overdue_amount=Decimal(overdue),
            classification=cls,
            own_class=cls,
            ifrs9_stage=stage,
        )
        for i, (
            product,
            region,
            status,
            dpd,
            bucket,
            outstanding,
            overdue,
            cls,
            stage,
        ) in enumerate(LOANS)
    ]


def expected_par30(views: list[LoanView]) -> Decimal:
    active = [v for v in views if v.status == "active"]
    total = sum((v.outstanding_principal for v in active), Decimal(0))
    at_risk = sum((v.outstanding_principal for v in active if v.bucket in DPD_OVER_30), Decimal(0))
    return at_risk / total


def activity(m: PipelineMetrics) -> None:
    """One round of pipeline activity touching every series a panel reads."""
    m.events.labels(topic="loan.payments", type="payment_received", result="applied").inc(5)
    m.events.labels(topic="loan.accounts", type="loan_opened", result="rejected").inc()
    # Created at 0, not incremented: the panel has a series, and LoanwatchDeadLetters (which
    # would notify the shared Alertmanager's on-call webhook) stays quiet.
    m.dead_letters.labels(reason="bad_amount")
    m.alerts.labels(kind="overdue", severity="warning").inc(2)
    m.alerts.labels(kind="bucket_changed", severity="critical").inc()
    for a, b, product in (("M0", "M1", "consumer"), ("M1", "M2", "consumer"),
                          ("M2", "M0", "consumer"), ("M0", "M1", "mortgage")):  # fmt: skip
        m.bucket_transitions.labels(from_bucket=a, to_bucket=b, product=product).inc()
    m.cures.labels(from_bucket="M2", product="consumer").inc()
    for outcome in ("made", "kept", "broken"):
        m.promises.labels(outcome=outcome, product="consumer").inc()
    m.payments.labels(product="consumer", region="east").inc(3)
    m.payment_amount.labels(product="consumer", region="east", currency="CNY").inc(1500.25)
    m.contacts.labels(channel="sms").inc(4)
    m.contacts.labels(channel="call").inc()
    for lag in (0.2, 1.5, 40.0):
        m.event_time_lag.observe(lag)
    m.alert_latency.observe(0.03)
    m.batch_size.observe(120)
    m.consumer_lag.labels(topic="loan.payments", partition="0").set(42)
    m.business_date.set(1_772_640_000)  # 2026-03-05 00:00 Asia/Shanghai
    m.last_event.set(time.time())


def query(prometheus_url: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(1.0)


@pytest.fixture
def served() -> Iterator[tuple[int, PipelineMetrics, list[LoanView]]]:
    registry = CollectorRegistry()
    metrics = register_pipeline_metrics(registry)
    views = portfolio()
    registry.register(PortfolioCollector(lambda: views))
    httpd, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    yield httpd.server_port, metrics, views
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def test_recording_rules_and_every_dashboard_panel_see_real_metrics(
    prometheus_url: str,
    prometheus_target: Callable[[str, dict[str, str]], None],
    unique_name: Callable[[str], str],
    served: tuple[int, PipelineMetrics, list[LoanView]],
) -> None:
    port, metrics, views = served
    name = unique_name("dash")
    activity(metrics)
    prometheus_target(f"127.0.0.1:{port}", {"portfolio": name, "job_hint": "dashboards-live"})

    up = f'up{{job="loanwatch",portfolio="{name}"}} == 1'
    wait_for(lambda: query(prometheus_url, up), 60, "the first scrape of the test target")
    # Counters must move between scrapes for rates, increases and quantiles to have values.
    for _ in range(2):
        time.sleep(6)  # > scrape interval (5s)
        activity(metrics)

    par30 = f'loanwatch:par30:ratio{{portfolio="{name}"}}'
    result = wait_for(lambda: query(prometheus_url, par30), 60, "loanwatch:par30:ratio")
    got, want = float(result[0]["value"][1]), float(expected_par30(views))
    assert abs(got - want) <= 1e-9, (got, want)
    assert 0.05 < want < 0.5  # the test portfolio really has loans at risk

    boards = load_all()

    def all_panels_have_data() -> bool:
        _, problems = run_queries(boards, prometheus_url, overrides={"portfolio": name})
        all_panels_have_data.problems = problems  # type: ignore[attr-defined]
        return not problems

    deadline = time.monotonic() + 90
    while not all_panels_have_data():
        if time.monotonic() > deadline:
            problems = all_panels_have_data.problems  # type: ignore[attr-defined]
            pytest.fail("panels without data:\n" + "\n".join(map(str, problems)))
        time.sleep(3)

    # The same through the command line, as an operator would run it.
    cli = CliRunner().invoke(
        dashboards, ["check", "--prometheus-url", prometheus_url, "--var", f"portfolio={name}"]
    )
    assert cli.exit_code == 0, cli.output
    assert "queries returned data" in cli.output
