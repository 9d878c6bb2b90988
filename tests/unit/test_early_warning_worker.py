"""Early warning in the worker, without Kafka: the ledger processor over in-memory tables.

The tracker runs beside each partition's engine as replay runs it; its per-loan state goes to
the meta table (``early_warning/<loan>``) with the partition's flush and is read back when a
partition is restored, so a worker restarted at any record gives replay's scores and
``pre_due_risk`` alerts, ids included. Metrics labels stay bounded.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from loanwatch.agents.early_warning_store import PREFIX, early_warning_key
from loanwatch.agents.ledger import LedgerProcessor
from loanwatch.agents.settings import WorkerSettings
from loanwatch.agents.state import DirectWrites
from loanwatch.early_warning.config import EarlyWarningPolicy, load_early_warning
from loanwatch.early_warning.state import decode_state
from loanwatch.ledger.alerts import make_alert
from loanwatch.ledger.engine import Engine
from loanwatch.ledger.policy import Policy
from loanwatch.metrics.early_warning import (
    EarlyWarningCounters,
    reason_codes,
    register_early_warning_metrics,
)
from loanwatch.metrics.labels import DEFAULT_LABELS
from loanwatch.replay.runner import replay
from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.generator import Simulation
from loanwatch.simulate.writer import write_jsonl
from loanwatch.streams.partitioning import partition_for

from .test_worker_processing import NAMES, N, Pipeline, Tables

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EW_FILE = ROOT / "config" / "early_warning.yaml"
EW = load_early_warning(EW_FILE)


class EWPipeline(Pipeline):
    """The test pipeline with early warning configured, as ``build_worker`` wires it."""

    def __init__(self, tables: Tables, settings: EarlyWarningPolicy = EW) -> None:
        super().__init__(tables)
        self.ew_metrics = register_early_warning_metrics(self.registry)
        self.ledger = LedgerProcessor(
            Policy(),
            NAMES,
            tables,
            self.metrics,
            partitions=N,
            clock_follows_events=True,
            early_warning=settings,
            early_warning_sink=DirectWrites(tables.meta),
            early_warning_counters=EarlyWarningCounters(
                self.ew_metrics, settings.scorecard, DEFAULT_LABELS
            ),
        )

    def describe(self, loan_id: str, borrower_id: str) -> dict[str, Any]:
        """What ``GET /loans/{id}`` adds: the tracker of the borrower's partition."""
        tracker = self.ledger.runtimes[partition_for(borrower_id, N)].early_warning
        assert tracker is not None
        return tracker.describe(loan_id)


def book(loans: int = 120, days: int = 150, seed: int = 7) -> list[bytes]:
    config = SimulationConfig(
        loans=loans, days=days, seed=seed, start=date(2026, 1, 1), fault_rate=0.0, late_rate=0.0
    )
    buf = io.BytesIO()
    write_jsonl(Simulation(config), buf)
    return [line for line in buf.getvalue().splitlines() if line.strip()]


def _keyed(alerts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((a["alert_id"], json.dumps(a, sort_keys=True)) for a in alerts)


@pytest.mark.parametrize("restart_every", [0, 97])
def test_the_worker_scores_like_replay_also_restarted_from_its_tables(restart_every: int) -> None:
    lines = book()
    expected = replay(iter(lines), Policy(), early_warning=EW)
    want = [a.to_json() for a in expected.alerts]
    pre_due = [a for a in want if a["kind"] == "pre_due_risk"]
    assert len(pre_due) >= 20  # the book really sends pre-due alerts
    tables = Tables()
    pipe = EWPipeline(tables)
    alerts: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        if restart_every and i and i % restart_every == 0:
            alerts += pipe.alerts
            directory = pipe.directory
            pipe = EWPipeline(tables)  # a new process: everything from the tables
            pipe.directory = directory
        pipe.send(orjson.loads(line))
    alerts += pipe.alerts
    assert pipe.letters == []
    assert _keyed(alerts) == _keyed(want)  # every alert, pre_due_risk ids and fields included
    tracker = expected.early_warning
    assert tracker is not None
    scored = [v.loan_id for v in expected.states if tracker.describe(v.loan_id)["early_warning"]]
    assert len(scored) >= 50
    for v in expected.states:
        assert pipe.describe(v.loan_id, v.borrower_id) == tracker.describe(v.loan_id), v.loan_id
    # The meta table holds exactly the tracker's states, one key per loan still tracked.
    stored = {k[len(PREFIX) :]: decode_state(raw) for k, raw in tables.meta.items()
              if k.startswith(PREFIX)}  # fmt: skip
    assert stored == dict(tracker.states)
    assert early_warning_key("L1") == "early_warning/L1"
    # Every score observed once in the histogram, every alert's reasons counted.
    count = sum(
        s.value
        for metric in pipe.registry.collect()
        if metric.name == "loanwatch_ew_score_probability"
        for s in metric.samples
        if s.name.endswith("_count")
    )
    if not restart_every:
        reasons = sum(len(a["reason_codes"]) for a in pre_due)
        got = sum(
            s.value
            for metric in pipe.registry.collect()
            if metric.name == "loanwatch_ew_pre_due_alerts"
            for s in metric.samples
            if s.name.endswith("_total")
        )
        assert got == reasons > 0
        assert count >= len(pre_due)


def test_without_early_warning_no_state_and_no_score_are_kept() -> None:
    tables = Tables()
    pipe = Pipeline(tables)
    for line in book(loans=30, days=60):
        pipe.send(orjson.loads(line))
    assert not [k for k in tables.meta if k.startswith(PREFIX)]
    assert all(rt.early_warning is None for rt in pipe.ledger.runtimes.values())
    assert not [a for a in pipe.alerts if a["kind"] == "pre_due_risk"]


def test_metric_labels_are_bounded_by_the_policy_the_allow_list_and_the_model() -> None:
    registry = CollectorRegistry()
    metrics = register_early_warning_metrics(registry)
    assert EW.scorecard is not None
    counters = EarlyWarningCounters(metrics, EW.scorecard, DEFAULT_LABELS)
    known = sorted(reason_codes(EW.scorecard))
    assert len(known) == sum(len(f.bins) for f in EW.scorecard.features)  # one per bin
    engine = Engine(Policy())
    for line in book(loans=20, days=40):
        engine.process(orjson.loads(line))
    loan = engine.states()[0]
    state = engine.loans[loan.loan_id]
    odd = replace(state, product="a-new-product-code")
    alert = make_alert(
        "pre_due_risk", date(2026, 2, 1), "pre_due|2026-02-06", loan,
        reason_codes=[known[0], "not-a-bin-of-the-model", known[1]],
    )  # fmt: skip
    counters.scored([(alert, odd, "M0", 0.42), (None, state, "M1", 0.05)])
    sample = registry.get_sample_value
    assert (
        sample("loanwatch_ew_score_probability_count", {"bucket": "M0", "product": "other"}) == 1.0
    )
    assert (
        sample(
            "loanwatch_ew_score_probability_bucket",
            {"bucket": "M1", "product": state.product, "le": "0.05"},
        )
        == 1.0
    )
    assert sample("loanwatch_ew_pre_due_alerts_total", {"reason_code": known[0]}) == 1.0
    assert sample("loanwatch_ew_pre_due_alerts_total", {"reason_code": "other"}) == 1.0
    assert (
        sample("loanwatch_ew_pre_due_alerts_total", {"reason_code": "not-a-bin-of-the-model"})
        is None
    )


PROBE = """
import json, sys, pathlib
from loanwatch.agents.app import build_worker
from loanwatch.agents.settings import WorkerSettings
settings = WorkerSettings(
    data_dir=pathlib.Path(sys.argv[1]), store="memory://", early_warning_file=sys.argv[2]
)
worker = build_worker(settings)
ledger = worker.ledger
names = {m.name for m in worker.registry.collect()}
print(json.dumps({
    "lead_days": ledger.early_warning.lead_days,
    "model": ledger.early_warning.scorecard.version,
    "phase": ledger.early_warning_sink.phase,
    "metrics": sorted(n for n in names if n.startswith("loanwatch_ew_")),
}))
"""


def test_build_worker_wires_early_warning_from_the_setting(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path), str(EW_FILE)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {
        "lead_days": EW.lead_days,
        "model": EW.scorecard.version if EW.scorecard else None,
        "phase": 1,  # acknowledged with the loans the states were derived from
        "metrics": ["loanwatch_ew_pre_due_alerts", "loanwatch_ew_score_probability"],
    }
    assert WorkerSettings().early_warning_file is None  # off by default


def test_the_worker_command_takes_the_early_warning_file() -> None:
    from click.testing import CliRunner

    from loanwatch.agents.cli import worker

    out = CliRunner().invoke(worker, ["--help"])
    assert "--early-warning" in out.output
    bad = CliRunner().invoke(worker, ["--early-warning", "/nonexistent/early_warning.yaml"])
    assert bad.exit_code != 0 and "does not exist" in bad.output


def test_evolve_is_dataclasses_replace() -> None:
    from dataclasses import fields

    from loanwatch.early_warning.state import EWState, evolve

    base = EWState("L1", "B1", date(2026, 1, 1), 100_000, late=(3, 0), signals=(1, 0, 2))
    for f in fields(EWState):
        value = getattr(base, f.name)
        changed = (value, value) if isinstance(value, tuple) else "x"
        assert evolve(base, **{f.name: changed}) == replace(base, **{f.name: changed})
    assert evolve(base) == base and evolve(base) is not base
    both = evolve(base, payments=2, wake=date(2026, 2, 1))
    assert both == replace(base, payments=2, wake=date(2026, 2, 1)) and base.payments == 0
    with pytest.raises(KeyError):
        evolve(base, no_such_field=1)


def test_the_producers_plan_through_the_workers_processor_gives_replays_pre_due_alerts() -> None:
    """Every partition's records (ticks to every partition, as our producer plans them) through
    the processor with early warning: replay's alert ids; the audit replay reproduces the
    chain only when it is given the early-warning file too."""
    from loanwatch.audit.replay import ReplayReport, decode_records, replay_partition
    from loanwatch.streams.topics import TopicNames

    from ..audit_log import audited

    lines = book(loans=80, days=120, seed=5)
    chains, lanes = audited(lines, partitions=N, early_warning=EW)
    records = {p: decode_records(chains[p]) for p in chains}
    live = sorted(i for recs in records.values() for r in recs if r.get("kind") == "input"
                  for i in r["alerts"])  # fmt: skip
    expected = replay(iter(lines), Policy(), early_warning=EW).alerts
    assert sum(a.kind == "pre_due_risk" for a in expected) >= 10
    assert live == sorted(a.alert_id for a in expected)
    for warning, ok in ((EW, True), (None, False)):
        report = ReplayReport()
        for p in sorted(records):
            replay_partition(p, records[p], lanes[p], Policy(), TopicNames(), N, report,
                             early_warning=warning)  # fmt: skip
        assert report.ok is ok, report.divergences[:1]
        if not ok:
            assert report.divergences[0].field == "alerts"


def test_audit_loan_and_the_portfolio_report_replay_a_chain_recorded_with_early_warning() -> None:
    """`audit loan` and `report portfolio` re-run the chains too: given the workers' file, a
    chain with pre_due_risk alerts replays clean; without it, it diverges (and says so)."""
    from loanwatch.audit.loan import loan_history
    from loanwatch.audit.replay import decode_records
    from loanwatch.report.book import build
    from loanwatch.streams.topics import TopicNames

    from ..audit_log import audited

    lines = book(loans=80, days=120, seed=5)
    chains, lanes = audited(lines, partitions=N, early_warning=EW)
    pre_due = [a for a in replay(iter(lines), Policy(), early_warning=EW).alerts
               if a.kind == "pre_due_risk"]  # fmt: skip
    loan = pre_due[0].loan_id
    p = next(p for p in chains if any(loan.encode() in s.value for s in chains[p]))
    for warning, ok in ((EW, True), (None, False)):
        found = loan_history(loan, p, chains[p], lanes[p], Policy(), TopicNames(), N,
                             early_warning=warning)  # fmt: skip
        assert found.report.ok is ok
        if ok:
            ids = {a["alert_id"] for a in found.document["alerts"]}
            assert pre_due[0].alert_id in ids
        day = pre_due[-1].business_date
        decoded = ((q, decode_records(chains[q]), lanes[q]) for q in sorted(chains))
        got = build(decoded, Policy(), TopicNames(), N, day, warning)
        assert got.replay.ok is ok
