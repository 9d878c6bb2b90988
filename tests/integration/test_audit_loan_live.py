"""One loan's history on the real broker: a small log through a live worker with the audit
trail on, then ``GET /loans/{id}/history`` (the worker, while it runs) and ``loanwatch audit
loan`` (after) give the loan's events and alerts, and a chain proof that verifies."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from loanwatch.agents.settings import DEMO_AUDIT_KEY
from loanwatch.audit import keys
from loanwatch.audit.proof import check_proof
from loanwatch.streams.topics import TopicNames

from ..unit.test_audit_loan import EXTRA, LOG
from .live import WorkerProcess, produce_log, read_topic, wait_ready
from .test_audit_live import _ok, audit_cli


async def test_a_loans_history_from_the_worker_and_the_command_prove_its_records(
    kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    lines = (LOG / "rules-allocation-reversal-promise" / "events.jsonl").read_bytes().splitlines()
    lines = [*lines[:-1], *EXTRA, lines[-1]]
    prefix = unique_name("lwaudloan") + "."
    names = TopicNames().with_prefix(prefix)
    worker = WorkerProcess(prefix.rstrip("."), prefix, tmp_path / "w")
    worker.start()
    try:
        await wait_ready([worker])
        await produce_log(kafka_bootstrap, names, lines, [worker])
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            async with session.get(f"{worker.url}/loans/B/history") as resp:
                assert resp.status == 200, await resp.text()
                served = await resp.json()
            async with session.get(f"{worker.url}/loans/NOPE/history") as resp:
                assert resp.status == 404
            async with session.get(f"{worker.url}/metrics") as resp:
                metrics = await resp.text()
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        worker.kill(signal.SIGTERM)

    trail = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in metrics.splitlines()
        if line.startswith("loanwatch_audit_") and not line.startswith("#")
    }
    assert trail['loanwatch_audit_records_total{kind="input"}'] >= len(lines)
    assert trail['loanwatch_audit_records_total{kind="checkpoint"}'] > 0
    assert trail["loanwatch_audit_bytes_total"] > 0 and trail["loanwatch_audit_seconds_total"] > 0

    public = keys.load_public(keys.public_path(DEMO_AUDIT_KEY))  # the worker's (demo) key
    trusted = {keys.key_id(public): public}
    live_alerts = [
        a for a in await read_topic(kafka_bootstrap, names.alerts) if a["loan_id"] == "B"
    ]
    assert {a["kind"] for a in live_alerts} >= {"overdue", "payment_reversed", "promise_broken"}

    assert served["check"]["ok"], served["check"]
    assert served["check"]["signed"]  # the business days closed by the log are signed
    assert check_proof(served, trusted).ok
    assert sorted(a["alert_id"] for a in served["alerts"]) == sorted(
        a["alert_id"] for a in live_alerts
    )
    own = {s["event_id"] for s in served["steps"] if s["own"]}
    assert own == {"h4", "h5", "h6", "h7", "h8", "x1", "x2"}
    assert served["promises"][0]["status"] == "broken"
    assert [c["event_id"] for c in served["contacts"]] == ["x1"]

    config = str(tmp_path / "w" / "config")
    (item,) = served["work_items"]["items"]  # the worker's routing.yaml beside its policy
    assert item["opened_by"] == served["alerts"][0]["alert_id"] and item["state"] == "open"

    routing = str(tmp_path / "w" / "config" / "routing.yaml")
    args = ("--topic-prefix", prefix, "--config", config, "--routing", routing, "--json")
    out = _ok(audit_cli("loan", "B", *args))
    printed = orjson.loads(out)
    assert check_proof(printed, trusted).ok
    assert printed["steps"] == served["steps"] and printed["alerts"] == served["alerts"]
    assert printed["proof"]["members"] == served["proof"]["members"]
    assert printed["work_items"] == served["work_items"]
