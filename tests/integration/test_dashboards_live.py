"""The metrics, recording rules and dashboards end to end against the stack's Prometheus.

A ``prometheus_client`` HTTP server on a free loopback port exposes the pipeline catalog and a
``PortfolioCollector`` fed with hand-built ``LoanView`` objects (the real worker replaces them
later). Prometheus scrapes it through file_sd with a unique ``portfolio`` label, so this test
only ever reads its own series next to anything else on the shared stack.

The work-queue panels read the router: a real ``loanwatch routes serve --register-target`` (its
own alerts topic, consumer group and Redis prefix) routes three overdue alerts and registers
itself as a ``loanwatch-router`` target with the same ``portfolio`` label (:func:`serve_router`,
also used by ``test_metrics_live``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, start_http_server

from loanwatch.dashboards.build import load_all
from loanwatch.dashboards.check import queries, run_queries, substitute, substitutions
from loanwatch.dashboards.cli import dashboards
from loanwatch.ledger.view import LoanView
from loanwatch.metrics import PipelineMetrics, PortfolioCollector, register_pipeline_metrics
from loanwatch.metrics.early_warning import EarlyWarningMetrics, register_early_warning_metrics
from loanwatch.metrics.flows import FlowBook, FlowCollector, PartitionFlows
from loanwatch.metrics.portfolio import BUCKETS
from loanwatch.metrics.treatment import TreatmentMetrics, register_treatment_metrics
from loanwatch.routing.config import DEFAULT_ROUTING
from loanwatch.stack.paths import StackPaths

from ..views import loan_view
from .routing_support import SERVE_SECRETS
from .test_routing_router import alert_doc, free_port, make_topic, produce

REPO = Path(__file__).resolve().parents[2]
# The shipped routing config sends webhooks here; the test routers send them to a closed port
# (discard, 9) instead, so they never reach a receiver another test may run.
CRM_WEBHOOK = "http://127.0.0.1:8801/hooks/loanwatch"
CLOSED = "127.0.0.1:9"

BASE = loan_view(loan_id="L", borrower_id="B", outstanding_principal=Decimal("0.00"))

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


def business_day() -> PartitionFlows:
    """A partition that finished 2026-03-05: its loans when the day began, the day's moves."""
    book = FlowBook()
    day = date(2026, 3, 5)
    book.day_started(day, ["M0"] * 40 + ["M1"] * 10 + ["M2"] * 4)
    for a, b in (("M0", "M1"), ("M0", "M1"), ("M1", "M2"), ("M1", "M0"), ("M2", "M0")):
        book.moved(day, a, b)
    return PartitionFlows(date(2026, 3, 6), book)


@dataclass(frozen=True)
class Served:
    """The test target: its port, the pipeline and treatment metrics it exposes, the loans."""

    port: int
    metrics: PipelineMetrics
    treatment: TreatmentMetrics
    views: list[LoanView]
    early_warning: EarlyWarningMetrics


def treatment_activity(t: TreatmentMetrics) -> None:
    """A round of champion-challenger activity: every series the experiments row reads."""
    for arm, entries, cures in (("champion", 10, 6), ("challenger", 5, 4)):
        t.arm_entries.labels(experiment="early-call", arm=arm).inc(entries)
        t.arm_cures.labels(experiment="early-call", arm=arm).inc(cures)
        t.arm_rolls.labels(experiment="early-call", arm=arm).inc(1)
        t.arm_contacts.labels(experiment="early-call", arm=arm).inc(3 * cures)
        t.arm_recovered.labels(experiment="early-call", arm=arm, currency="CNY").inc(800.5)
    t.segment_changes.labels(from_segment="none", to_segment="early").inc()
    t.actions.labels(
        segment="early", action="sms_reminder", experiment="early-call", arm="champion"
    ).inc()


def early_warning_activity(e: EarlyWarningMetrics) -> None:
    """Pre-due scores and the reasons of the alerts they sent: the early-warning row's series."""
    for p, bucket in ((0.04, "M0"), (0.35, "M0"), (0.62, "M1")):
        e.probability.labels(bucket=bucket, product="consumer").observe(p)
    for reason in ("late_1>3", "reversals<=0", "2<dpd_now<=5"):
        e.pre_due_alerts.labels(reason_code=reason).inc()


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
    m.batch_seconds.observe(0.2)
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


@dataclass
class RouterRun:
    """A ``loanwatch routes serve`` subprocess registered as a Prometheus target."""

    proc: subprocess.Popen[bytes]
    port: int
    group: str
    prefix: str
    routing_config: Path
    target: Path
    log: Path

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextmanager
def serve_router(
    *,
    kafka_bootstrap: str,
    redis_url: str,
    alerts_topic: str,
    status_topic: str,
    portfolio: str,
    targets_dir: Path,
    work_dir: Path,
) -> Iterator[RouterRun]:
    """Run ``routes serve --register-target --portfolio P`` until the block ends.

    Yields once the router has written its file_sd target (it does so when its API listens)
    and checks the entry; after the block it stops the router with SIGTERM, checks that the
    router removed its target file, and deletes the router's Redis keys.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    shipped = DEFAULT_ROUTING.read_text()
    assert CRM_WEBHOOK in shipped
    routing = work_dir / "routing.yaml"
    routing.write_text(shipped.replace(CRM_WEBHOOK, f"http://{CLOSED}/hooks/loanwatch"))
    port = free_port()
    prefix, group = f"lw-{portfolio}:", f"router-{portfolio}"
    env = {
        "LOANWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LOANWATCH_ALERTS_TOPIC": alerts_topic,
        "LOANWATCH_STATUS_TOPIC": status_topic,
        # Named after the alerts topic, so the test's topic clean-up deletes it too.
        "LOANWATCH_ROUTER_DEAD_LETTER_TOPIC": f"{alerts_topic}.router-dead-letters",
        "LOANWATCH_CONSUMER_GROUP": group,
        "LOANWATCH_REDIS_URL": redis_url,
        "LOANWATCH_REDIS_PREFIX": prefix,
        "LOANWATCH_ROUTING_CONFIG": str(routing),
        "LOANWATCH_API_HOST": "127.0.0.1",
        "LOANWATCH_API_PORT": str(port),
        # Nothing leaves the test: no Alertmanager, no SMS gateway, SMTP on a closed port.
        "LOANWATCH_ALERTMANAGER_URL": "",
        "LOANWATCH_SMS_GATEWAY_URL": "",
        "LOANWATCH_SMTP_PORT": CLOSED.rsplit(":", 1)[1],
        "LOANWATCH_NOTIFY_MAX_ATTEMPTS": "1",
        "LOANWATCH_ARCHIVE_TOPIC": f"{alerts_topic}.router-archive",
        **SERVE_SECRETS,
    }
    argv = [sys.executable, "-m", "loanwatch.cli", "routes", "serve", "--register-target"]
    argv += ["--targets-dir", str(targets_dir), "--portfolio", portfolio]
    log = work_dir / "router.log"
    with log.open("ab") as sink:  # a file, not a pipe: a full pipe would block the router
        proc = subprocess.Popen(
            argv, cwd=REPO, env=os.environ | env, stdout=sink, stderr=subprocess.STDOUT
        )
    run = RouterRun(proc, port, group, prefix, routing, targets_dir / f"router-{port}.json", log)
    try:
        deadline = time.monotonic() + 60
        while not run.target.exists():
            assert proc.poll() is None, f"router exited:\n{run.log_tail()}"
            assert time.monotonic() < deadline, f"no target file:\n{run.log_tail()}"
            time.sleep(0.2)
        assert json.loads(run.target.read_text()) == [
            {
                "targets": [f"127.0.0.1:{port}"],
                "labels": {"job_hint": "router", "portfolio": portfolio},
            }
        ]
        yield run
        _stop(proc)
        assert proc.returncode == 0, run.log_tail()
        assert not run.target.exists(), "the router left its target file behind"
    except BaseException:
        print(run.log_tail())
        raise
    finally:
        _stop(proc)
        run.target.unlink(missing_ok=True)
        client = redis.Redis.from_url(redis_url)
        try:
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def panel_query(board_name: str, panel: str, overrides: dict[str, str]) -> str:
    """The first query of a dashboard panel with its variables substituted."""
    board = load_all()[board_name]
    values = {**substitutions(board), **overrides}
    expr = next(q.expr for q in queries(board_name, board) if q.panel == panel)
    return substitute(expr, values)


@pytest.fixture
def served() -> Iterator[Served]:
    registry = CollectorRegistry()
    metrics = register_pipeline_metrics(registry)
    treatment = register_treatment_metrics(registry)
    early_warning = register_early_warning_metrics(registry)
    views = portfolio()
    registry.register(PortfolioCollector(lambda: views))
    registry.register(FlowCollector(lambda: [business_day()], ZoneInfo("Asia/Shanghai"), BUCKETS))
    httpd, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    yield Served(httpd.server_port, metrics, treatment, views, early_warning)
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def router(
    kafka_bootstrap: str,
    redis_url: str,
    stack_paths: StackPaths,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> Iterator[tuple[str, RouterRun]]:
    """A router of its own portfolio name that routed three overdue alerts (consumer-early)."""
    name = unique_name("dash")
    alerts = f"{name}.loan.alerts"
    asyncio.run(make_topic(kafka_bootstrap, alerts))
    asyncio.run(produce(kafka_bootstrap, alerts, [alert_doc(i) for i in range(3)]))
    with serve_router(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        alerts_topic=alerts,
        status_topic="",
        portfolio=name,
        targets_dir=stack_paths.prometheus_router_targets,
        work_dir=tmp_path / "router",
    ) as run:
        yield name, run


def test_recording_rules_and_every_dashboard_panel_see_real_metrics(
    prometheus_url: str,
    prometheus_target: Callable[[str, dict[str, str]], None],
    router: tuple[str, RouterRun],
    served: Served,
) -> None:
    port, metrics, views = served.port, served.metrics, served.views
    name, routes = router
    activity(metrics)
    treatment_activity(served.treatment)
    early_warning_activity(served.early_warning)
    prometheus_target(f"127.0.0.1:{port}", {"portfolio": name, "job_hint": "dashboards-live"})

    up = f'up{{job="loanwatch",portfolio="{name}"}} == 1'
    wait_for(lambda: query(prometheus_url, up), 60, "the first scrape of the test target")
    # The router is its own job, never one of the workers.
    router_up = f'up{{job="loanwatch-router",portfolio="{name}"}} == 1'
    found = wait_for(lambda: query(prometheus_url, router_up), 60, "a scrape of the router")
    assert [s["metric"]["instance"] for s in found] == [f"127.0.0.1:{routes.port}"]
    # The work-queue panel shows the three alerts the router turned into work items.
    open_items = panel_query("collections.json", "Open work items", {"portfolio": name})
    wait_for(
        lambda: [float(s["value"][1]) for s in query(prometheus_url, open_items)] == [3.0],
        60,
        f"3 open work items in Prometheus ({open_items})",
    )
    by_team = panel_query("collections.json", "Open work items by team", {"portfolio": name})
    teams = {s["metric"]["team"]: float(s["value"][1]) for s in query(prometheus_url, by_team)}
    assert teams["consumer-early"] == 3.0 and sum(teams.values()) == 3.0, teams
    # Counters must move between scrapes for rates, increases and quantiles to have values.
    for _ in range(2):
        time.sleep(6)  # > scrape interval (5s)
        activity(metrics)
        treatment_activity(served.treatment)
        early_warning_activity(served.early_warning)

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
