"""The console's pure parts: scrape parsing against a real registry, the view, argv, targets."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from rich.console import Console

from loanwatch.console.processes import free_port, write_target
from loanwatch.console.runner import RunOptions, simulator_argv, urls, worker_argv
from loanwatch.console.scrape import RateMeter, parse_metrics
from loanwatch.console.view import ConsoleState, alert_line, render, status_line
from loanwatch.metrics import PortfolioCollector, register_pipeline_metrics

from ..views import loan_view

BASE = loan_view()
ALERT = {
    "alert_id": "x",
    "kind": "bucket_changed",
    "severity": "warning",
    "loan_id": "L-7",
    "business_date": "2026-03-05",
    "dpd": 31,
    "bucket": "M2",
    "classification": "special_mention",
    "from_bucket": "M1",
    "to_bucket": "M2",
}


def worker_metrics_text() -> str:
    """What a worker's /metrics serves: the real catalog and collector on a fresh registry."""
    registry = CollectorRegistry()
    metrics = register_pipeline_metrics(registry)
    views = [
        BASE,
        replace(BASE, loan_id="L-2", region="west"),
        replace(BASE, loan_id="L-3", dpd=40, bucket="M2", classification="special_mention"),
        replace(BASE, loan_id="L-4", product="sme", dpd=100, bucket="M4", classification="loss"),
    ]
    registry.register(PortfolioCollector(lambda: views))
    metrics.events.labels(topic="loan.payments", type="payment_received", result="applied").inc(7)
    metrics.events.labels(topic="loan.clock", type="clock_tick", result="applied").inc(3)
    metrics.alerts.labels(kind="overdue", severity="warning").inc(2)
    metrics.alerts.labels(kind="risk_signal", severity="critical").inc()
    metrics.dead_letters.labels(reason="malformed_json").inc()
    return generate_latest(registry).decode()


def test_parse_metrics_sums_over_product_and_region() -> None:
    p = parse_metrics(worker_metrics_text())
    assert p.by_bucket == {"M0": 2, "M1": 0, "M2": 1, "M3": 0, "M4": 1, "M5": 0, "M6": 0, "M7+": 0}
    assert p.by_class == {
        "normal": 2,
        "special_mention": 1,
        "substandard": 0,
        "doubtful": 0,
        "loss": 1,
    }
    assert p.loans == 4
    assert p.events_total == 10
    assert p.alerts_by_severity == {"critical": 1, "warning": 2}
    assert p.dead_letters_total == 1


def test_parse_metrics_of_an_empty_worker() -> None:
    p = parse_metrics("")
    assert p.loans == 0 and set(p.by_bucket) >= {"M0", "M7+"} and p.events_total == 0


def test_rate_meter() -> None:
    meter = RateMeter()
    assert meter.update(10.0, 100) == 0.0
    assert meter.update(12.0, 300) == 100.0
    assert meter.update(13.0, 50) == 0.0  # a worker restart resets its counter: never negative


def test_alert_line_and_render() -> None:
    line = alert_line(ALERT)
    assert line.startswith("alert date=2026-03-05 severity=warning kind=bucket_changed loan=L-7")
    assert "detail=M1->M2" in line
    state = ConsoleState(urls=urls("http://127.0.0.1:6066", "L-7"))
    state.add_alert(ALERT)
    state.add_alert({**ALERT, "alert_id": "y", "loan_id": "L-8", "severity": "critical"})
    assert [a["loan_id"] for a in state.alerts] == ["L-8", "L-7"]  # newest first
    state.portfolio = parse_metrics(worker_metrics_text())
    console = Console(width=160, record=True, color_system=None)
    console.print(render(state))
    screen = console.export_text()
    assert "L-8" in screen and "M1->M2" in screen
    assert "http://127.0.0.1:6066/loans/L-7" in screen
    assert "http://127.0.0.1:9090" in screen and "http://127.0.0.1:9093" in screen
    assert "status worker_up=False loans=4" in status_line(state)


def test_children_argv() -> None:
    opts = RunOptions(topic_prefix="demo-1.", app_id="app-1", run_dir=Path("/r"))
    w = worker_argv(opts, 6070)
    assert w[1:4] == ["-m", "loanwatch.cli", "worker"]
    assert w[4:6] == ["--clock", "event"] and "--web-port" in w and "6070" in w
    assert w[w.index("--topic-prefix") + 1] == "demo-1."
    assert w[w.index("--data-dir") + 1] == "/r/console/app-1"
    s = simulator_argv(opts)
    assert s[3:6] == ["simulate", "--live", "--speed"] and "1d/s" in s
    assert s[s.index("--loans") + 1] == "3000"


def test_write_target_is_file_sd_json(tmp_path: Path) -> None:
    path = write_target(tmp_path, "w", "127.0.0.1:6066", {"job_hint": "worker"})
    assert json.loads(path.read_text()) == [
        {"targets": ["127.0.0.1:6066"], "labels": {"job_hint": "worker"}}
    ]
    assert not list(tmp_path.glob("*.tmp"))


def test_free_port_prefers_the_given_one_unless_taken() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        other = free_port(taken)
        assert other != taken and other > 0
    assert free_port(other) == other
