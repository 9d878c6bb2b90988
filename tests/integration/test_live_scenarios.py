"""The contract scenarios through the live pipeline: a real worker on the real broker must give
exactly the states, alerts (ids included) and dead-letter reasons of `loanwatch replay`.

Each log is published as `loanwatch produce` publishes it: at full speed, no barrier between
events (the worker's order comes from timestamps and lane marks, never from timing)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from loanwatch.ledger.policy import Policy
from loanwatch.replay.runner import iter_lines, replay
from loanwatch.streams.topics import TopicNames

from ..contract.scenario_compare import alert_mismatches, scenario_dirs
from .live import (
    WorkerProcess,
    assert_live_equals_replay,
    chaos_row,
    forced_releases,
    loan_states,
    produce_log,
    read_topic,
    wait_ready,
)

SCENARIOS = scenario_dirs()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.name for p in SCENARIOS])
async def test_live_pipeline_gives_the_replay_results(
    scenario: Path, kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    prefix = unique_name("lw") + "."
    names = TopicNames().with_prefix(prefix)
    worker = WorkerProcess(app_id=prefix.rstrip("."), prefix=prefix, data_dir=tmp_path / "w")
    worker.start()
    try:
        await wait_ready([worker])
        lines = list(iter_lines(scenario / "events.jsonl"))
        as_of = date.fromisoformat((scenario / "as_of").read_text().strip())
        await produce_log(kafka_bootstrap, names, lines, [worker], as_of=as_of)
        expected = replay(lines, Policy(), as_of=as_of)

        # Alerts are equal as the contract defines it (kind, loan, date, dpd, bucket and the
        # kind's fields) and carry the very same ids.
        alerts = await read_topic(kafka_bootstrap, names.alerts)
        replayed = [a.to_json() for a in expected.alerts]
        assert alert_mismatches(replayed, alerts) == []
        assert sorted(a["alert_id"] for a in alerts) == sorted(a["alert_id"] for a in replayed)

        states = await loan_states([worker], [v.loan_id for v in expected.states])
        assert states == [v.to_json() for v in expected.states]

        letters = await read_topic(kafka_bootstrap, names.dead_letters)
        assert Counter(d["reason"] for d in letters) == Counter(r.reason for r in expected.rejects)
        assert all(d["topic"] for d in letters if d["reason"] != "unknown_loan")
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        worker.kill(signal.SIGTERM)


@contextmanager
def busy_cores(count: int = 2, seconds: float = 120.0) -> Iterator[None]:
    """``count`` busy-loop processes beside the worker (bounded in time, killed at the end)."""
    loop = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"
    procs = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)


STARVED = [
    s for s in SCENARIOS if s.name in ("portfolio-102", "rules-restructure-cure-crossdefault")
]


@pytest.mark.parametrize("scenario", STARVED, ids=[p.name for p in STARVED])
async def test_live_pipeline_gives_the_replay_results_on_starved_cores(
    scenario: Path, kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    """Two busy loops compete with the worker and the producer for the 2 cores: the same
    answers, since nothing is decided by time."""
    prefix = unique_name("lwcpu") + "."
    names = TopicNames().with_prefix(prefix)
    worker = WorkerProcess(app_id=prefix.rstrip("."), prefix=prefix, data_dir=tmp_path / "w")
    worker.start()
    try:
        await wait_ready([worker])
        lines = list(iter_lines(scenario / "events.jsonl"))
        as_of = date.fromisoformat((scenario / "as_of").read_text().strip())
        expected = replay(lines, Policy(), as_of=as_of)
        with busy_cores():
            started = time.monotonic()
            await produce_log(kafka_bootstrap, names, lines, [worker], as_of=as_of)
            took = time.monotonic() - started
            counts = await assert_live_equals_replay(kafka_bootstrap, names, [worker], expected)
        assert await forced_releases(worker) == 0
        letters = Counter(r.reason for r in expected.rejects)
        chaos_row(f"2 busy cores: {scenario.name}", len(lines), counts, letters, took)
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        worker.kill(signal.SIGTERM)
