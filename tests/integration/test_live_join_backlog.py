"""A second worker joining while the first drains a backlog: nothing skipped, replay's answers.

The first worker starts on a preloaded backlog; as soon as it has processed something a second
one joins, the group rebalances and the second restores the tables of the partitions it takes
over. Partitions nobody has committed yet (the first worker held their first records for
timestamp alignment, unprocessed) are where Faust + aiokafka lost records: fetched during the
second worker's recovery, dropped by Faust, and not re-read because aiokafka's seek to the
committed offset does nothing without one (``agents/faust_fixes.py``). Then the drain never
ended and those records were never processed.

Checked: every input partition is processed to its end by the two workers together, dead
letters (by source record) and loan-level alerts (same ids) are replay's.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from loanwatch.ledger.policy import Policy
from loanwatch.replay.runner import iter_lines, replay
from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.generator import Simulation
from loanwatch.simulate.writer import write_jsonl
from loanwatch.streams.producer import ensure_topics, read_progress
from loanwatch.streams.topics import TopicNames

from .live import (
    PARTITIONS,
    Processed,
    WorkerProcess,
    assert_live_equals_replay,
    end_offsets,
    run_once_then_preload,
    wait_ready,
)


async def _wait_first_progress(worker: WorkerProcess, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        while time.monotonic() < deadline:
            try:
                progress = await read_progress(session, f"{worker.url}/progress")
            except (aiohttp.ClientError, TimeoutError, ValueError):
                progress = {}
            if any(off >= 0 for off in progress.values()):
                return
            assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()
            await asyncio.sleep(0.05)
    raise TimeoutError(worker.log_tail())


def _signals_late(lines: list[bytes]) -> list[bytes]:
    def day(line: bytes) -> bytes | None:
        at = line.find(b'"occurred_at":"')
        return line[at + 15 : at + 25] if at >= 0 else None

    days = sorted({d for d in map(day, lines) if d is not None and d[:2] == b"20"})
    cutoff = days[2 * len(days) // 3]
    return [
        line
        for line in lines
        if b'"type":"risk_signal"' not in line or (day(line) or cutoff) >= cutoff
    ]


def _borrower_signal_days(lines: list[bytes]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for line in lines:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict) and obj.get("type") == "risk_signal" and not obj.get("loan_id"):
            out.add((str(obj.get("borrower_id")), str(obj.get("occurred_at", ""))[:10]))
    return out


async def test_a_worker_joining_mid_backlog_skips_nothing(
    kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    path = tmp_path / "log.jsonl"
    with path.open("wb") as fh:
        write_jsonl(Simulation(SimulationConfig(loans=6000, days=120, seed=5)), fh)
    # Risk signals only in the last third of the log: their topic's partitions have no
    # committed offset yet when the second worker joins (the case that lost records).
    lines = _signals_late(list(iter_lines(path)))
    expected = replay(lines, Policy())
    prefix = unique_name("lwjoin") + "."
    names = TopicNames().with_prefix(prefix)
    await ensure_topics(kafka_bootstrap, names, PARTITIONS)
    env = {"LOANWATCH_BATCH_WITHIN": "0.05"}  # batches filled as on a busy worker
    # The first worker takes small batches: when the second joins it has processed only the
    # start of the backlog, so some partitions have no committed offset yet.
    first = WorkerProcess(
        prefix.rstrip("."), prefix, tmp_path / "a", extra_env={**env, "LOANWATCH_BATCH_SIZE": "20"}
    )
    second = WorkerProcess(prefix.rstrip("."), prefix, tmp_path / "b", extra_env=env)
    await run_once_then_preload(first, kafka_bootstrap, names, lines)

    first.start()
    try:
        await _wait_first_progress(first)
        second.start()  # joins while the first is draining: a rebalance mid-backlog
        await wait_ready([first, second])
        produced = await end_offsets(kafka_bootstrap, names.inputs())
        async with Processed(kafka_bootstrap, [first, second]) as processed:
            await processed(produced, timeout=180)
        await assert_live_equals_replay(kafka_bootstrap, names, [first, second], expected)
        # Every table's changes reached its changelog (what a takeover restores from).
        app_id = prefix.rstrip(".")
        for table in ("loans", "meta"):
            changelog = f"{app_id}-{table}-changelog"
            assert await end_offsets(kafka_bootstrap, (changelog,)), f"{changelog} is empty"
        assert any(a.kind == "risk_signal" for a in expected.alerts)  # signals are exercised
    finally:
        first.kill()
        second.kill()
