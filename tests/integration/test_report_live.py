"""`loanwatch report portfolio --as-of D` after Kafka forgot the log (issue 14, "Done when").

A live worker (scraped by the real Prometheus through file_sd, its own ``portfolio`` label)
runs over a log of 300 loans x 100 business days, produced day by day the way the demo and a
bank's feed bring it: at full speed, except that at the end of three business days the
producer waits until the worker has processed everything and Prometheus has scraped it and
evaluated its rules (the overnight pause of a real feed). Then ``loanwatch archive`` writes
the trail, the run's Kafka topics are deleted, and for each of the three days the report,
read from the archive only, must equal

- an independent ``loanwatch replay --as-of D`` of the log up to D (loans, outstanding,
  PAR30/PAR90, NPL, classes, IFRS 9 stages; the day before D's roll and cure rates), and
- what Prometheus recorded for D while the worker ran live, matched to D by the rule of
  docs/audit.md ("Matching a recorded value to a business day"): the portfolio figures of D
  are those of the last rule evaluation at which every worker's
  ``loanwatch_business_date_timestamp_seconds`` read D; the roll and cure rates of a day X
  are the samples whose ``loanwatch_flow_business_date`` reads X (at that same evaluation,
  X = D - 1: the latest day every partition finished).
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from loanwatch.audit import kafka_io
from loanwatch.ledger.parse import business_date_of
from loanwatch.ledger.policy import Policy
from loanwatch.replay.runner import replay
from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.generator import generate
from loanwatch.stack.paths import StackPaths
from loanwatch.streams.topics import TopicNames

from .live import REPO, WorkerProcess, delete_scratch_topics, produce_log, wait_ready
from .test_metrics_live import _expected_flows, wait_scraped_after

SIMULATION = SimulationConfig(loans=300, days=100, seed=11, fault_rate=0.0, late_rate=0.0)
DAYS = (date(2026, 2, 17), date(2026, 3, 12), date(2026, 4, 8))  # none the 1st of a month
NPL_CLASSES = frozenset({"substandard", "doubtful", "loss"})
TZ = Policy().tz


def _cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "loanwatch.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def query(url: str, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode(params)}") as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _day(seconds: float) -> date:
    return datetime.fromtimestamp(seconds, TZ).date()


def _until_after(lines: list[bytes], day: date) -> int:
    """Index of the log's first event dated after ``day`` (its end if none)."""
    for i, line in enumerate(lines):
        d = business_date_of(orjson.loads(line), TZ)
        if d is not None and d > day:
            return i
    return len(lines)


@pytest.fixture
def registered(stack_paths: StackPaths) -> Iterator[Callable[[WorkerProcess, str], None]]:
    written: list[Path] = []
    folder = stack_paths.prometheus_targets
    folder.mkdir(parents=True, exist_ok=True)

    def register(worker: WorkerProcess, portfolio: str) -> None:
        path = folder / f"test-{uuid.uuid4().hex}.json"
        entry = [{"targets": [f"127.0.0.1:{worker.port}"], "labels": {"portfolio": portfolio}}]
        path.with_suffix(".tmp").write_text(json.dumps(entry))
        path.with_suffix(".tmp").rename(path)
        written.append(path)

    yield register
    for path in written:
        path.unlink(missing_ok=True)


# --- what each side says about day D -------------------------------------------------------


def _replayed(lines: list[bytes], day: date) -> dict[str, Any]:
    """An independent replay of the log up to the end of ``day`` (SPEC §7 --as-of)."""
    states = replay(lines[: _until_after(lines, day)], Policy(), as_of=day).states
    active = [v for v in states if v.status == "active"]
    total = sum((v.outstanding_principal for v in active), Decimal(0))

    def share(keep: Callable[[Any], bool]) -> Decimal:
        return sum((v.outstanding_principal for v in active if keep(v)), Decimal(0)) / total

    at_start, moved, cures = _expected_flows(lines, day - timedelta(days=1))
    delinquent = sum(n for b, n in at_start.items() if b != "M0")
    return {
        "loans": len(active),
        "outstanding": total,
        "par30": share(lambda v: v.dpd > 30),
        "par90": share(lambda v: v.dpd > 90),
        "npl": share(lambda v: v.classification in NPL_CLASSES),
        "class": {
            c: (
                sum(1 for v in active if v.classification == c),
                sum((v.outstanding_principal for v in active if v.classification == c), Decimal(0)),
            )
            for c in {v.classification for v in active}
        },
        "stage": {
            str(s): sum(1 for v in active if v.ifrs9_stage == s)
            for s in {v.ifrs9_stage for v in active}
        },
        "rolls": {pair: Decimal(n) / at_start[pair[0]] for pair, n in moved.items()},
        "cure": Decimal(cures) / delinquent if delinquent else None,
    }


def _reported(out: Path, day: date) -> dict[str, Any]:
    """The report's CSV files (written from the archive)."""

    def read(name: str) -> list[dict[str, str]]:
        with (out / name).open() as fh:
            return list(csv.DictReader(fh))

    summary = {r["figure"]: r["value"] for r in read("summary.csv")}
    assert summary["as_of"] == day.isoformat()
    before = (day - timedelta(days=1)).isoformat()
    cure = [r["cure_rate"] for r in read("cure_rates.csv") if r["business_date"] == before]
    assert len(cure) == 1, f"no cure-rate row for {before}"
    return {
        "loans": int(summary["active_loans"]),
        "outstanding": Decimal(summary["outstanding_principal"]),
        "par30": Decimal(summary["par30"]),
        "par90": Decimal(summary["par90"]),
        "npl": Decimal(summary["npl_ratio"]),
        "class": {
            r["classification"]: (int(r["loans"]), Decimal(r["outstanding_principal"]))
            for r in read("classification.csv")
            if r["dimension"] == "all" and int(r["loans"])
        },
        "stage": {r["stage"]: int(r["loans"]) for r in read("ifrs9_stages.csv") if int(r["loans"])},
        "rolls": {
            (r["from_bucket"], r["to_bucket"]): Decimal(r["roll_rate"])
            for r in read("roll_rates.csv")
            if r["business_date"] == before
        },
        "cure": Decimal(cure[0]) if cure[0] else None,
    }


def _evaluations(url: str, portfolio: str, since: float) -> list[float]:
    """Timestamps of the portfolio rules' evaluations since ``since`` (the stored samples)."""
    window = math.ceil(time.time() - since) + 5
    got = query(url, f'loanwatch:outstanding_principal:sum{{portfolio="{portfolio}"}}[{window}s]')
    assert got, "no recorded portfolio figures"
    return [float(t) for t, _ in got[0]["values"]]


def _recorded_day(url: str, portfolio: str, at: float) -> date | None:
    """The business day the figures recorded at ``at`` describe: every worker's business date
    gauge (the sample that evaluation read) reads it; None if they disagree or none."""
    sel = f'loanwatch_business_date_timestamp_seconds{{portfolio="{portfolio}"}}'
    lo = query(url, f"min({sel})", at)
    hi = query(url, f"max({sel})", at)
    if not lo or not hi or lo[0]["value"][1] != hi[0]["value"][1]:
        return None
    return _day(float(lo[0]["value"][1]))


def _recorded(url: str, p: str, at: float) -> dict[str, Any]:
    """What Prometheus recorded at the evaluation ``at`` (the rules, and the gauges they read)."""
    sel = f'{{portfolio="{p}"}}'

    def one(expr: str) -> float | None:
        got = query(url, expr, at)
        assert len(got) <= 1, got
        return float(got[0]["value"][1]) if got else None

    def by(expr: str, *labels: str) -> dict[Any, float]:
        out = {}
        for s in query(url, expr, at):
            key = tuple(s["metric"][k] for k in labels)
            out[key[0] if len(key) == 1 else key] = float(s["value"][1])
        return out

    loans = by(f"sum by (classification) (loanwatch_portfolio_class_loans{sel})", "classification")
    money = by(
        f"sum by (classification) (loanwatch_portfolio_class_outstanding_principal{sel})",
        "classification",
    )
    stages = by(f"sum by (stage) (loanwatch_portfolio_stage_loans{sel})", "stage")
    stamp = one(f"loanwatch_flow_business_date{sel}")
    return {
        "loans": one(f"sum(loanwatch_portfolio_loans{sel})"),
        "outstanding": one(f"loanwatch:outstanding_principal:sum{sel}"),
        "par30": one(f"loanwatch:par30:ratio{sel}"),
        "par90": one(f"loanwatch:par90:ratio{sel}"),
        "npl": one(f"loanwatch:npl:ratio{sel}"),
        "class": {c: (n, money[c]) for c, n in loans.items() if n},
        "stage": {s: n for s, n in stages.items() if n},
        "flow_day": _day(stamp) if stamp is not None else None,
        "rolls": by(f"loanwatch:roll_rate:ratio{sel}", "from_bucket", "to_bucket"),
        "cure": one(f"loanwatch:cure_rate:ratio{sel}"),
    }


def _close(a: Any, b: Any) -> bool:
    """Equal figures: exact for counts and money; ratios to the report's 10 printed digits."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-10)


def _differences(want: dict[str, Any], got: dict[str, Any]) -> dict[str, Any]:
    return {k: (want[k], got.get(k)) for k in want if not _close(want[k], got.get(k))}


# --- the test ------------------------------------------------------------------------------


async def test_report_of_three_past_days_from_the_archive_equals_replay_and_prometheus(
    kafka_bootstrap: str,
    prometheus_url: str,
    unique_name: Any,
    registered: Callable[[WorkerProcess, str], None],
    tmp_path: Path,
) -> None:
    lines = [e if isinstance(e, bytes) else orjson.dumps(e) for e in generate(SIMULATION)]
    prefix = unique_name("lwrep") + "."
    names = TopicNames().with_prefix(prefix)
    portfolio = prefix.rstrip(".")
    worker = WorkerProcess(portfolio, prefix, tmp_path / "w")
    cuts = [_until_after(lines, d) for d in DAYS]
    assert 0 < cuts[0] < cuts[1] < cuts[2] < len(lines)
    began = time.time()
    worker.start()
    try:
        await wait_ready([worker])
        registered(worker, portfolio)
        start = 0
        for cut in [*cuts, len(lines)]:
            await produce_log(kafka_bootstrap, names, lines[start:cut], [worker])
            start = cut
            if cut < len(lines):  # the end of a day: processed, scraped, rules evaluated
                since = time.time()
                await asyncio.to_thread(wait_scraped_after, prometheus_url, portfolio, since, 1)
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        worker.kill(signal.SIGTERM)
    config = str(tmp_path / "w" / "config")

    # The recorded values, matched to their business day by the documented rule.
    evaluations = _evaluations(prometheus_url, portfolio, began)
    last_of: dict[date, float] = {}
    for at in evaluations:
        day = await asyncio.to_thread(_recorded_day, prometheus_url, portfolio, at)
        if day is not None:
            last_of[day] = at
    print(f"\n{len(evaluations)} rule evaluations during the run, days seen: {sorted(last_of)}")
    assert set(DAYS) <= last_of.keys(), sorted(last_of)
    recorded = {d: _recorded(prometheus_url, portfolio, last_of[d]) for d in DAYS}

    # History that outlives Kafka: archived, then every topic of the run deleted.
    archive = tmp_path / "archive"
    _cli("archive", "--topic-prefix", prefix, "--out", str(archive))
    await asyncio.to_thread(delete_scratch_topics, [portfolio])
    for _ in range(300):
        if not await kafka_io.partitions_of(kafka_bootstrap, names.audit):
            break
        await asyncio.sleep(0.1)
    assert not await kafka_io.partitions_of(kafka_bootstrap, names.audit)
    assert not await kafka_io.partitions_of(kafka_bootstrap, names.accounts)

    for day in DAYS:
        out = tmp_path / f"report-{day}"
        printed = _cli(
            "report", "portfolio", "--as-of", day.isoformat(), "--archive", str(archive),
            "--config", config, "--out-dir", str(out),
        )  # fmt: skip
        report = _reported(out, day)
        want = _replayed(lines, day)
        got = recorded[day]
        print(f"{day}: {printed.splitlines()[0]}")
        print(f"  prometheus at {last_of[day]:.0f}: {got}")
        assert report["loans"] > 0 and report["par30"] > 0 and report["rolls"], report
        assert not _differences(want, report), ("replay vs report", _differences(want, report))
        assert got["flow_day"] == day - timedelta(days=1), got["flow_day"]
        assert not _differences(report, got), ("report vs prometheus", _differences(report, got))
