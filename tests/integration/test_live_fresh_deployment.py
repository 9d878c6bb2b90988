"""A brand-new deployment (new app id, no changelog topics yet) started over a waiting backlog.

The worker creates its tables' changelog topics at start-up and its first batch is there at
once. Seen once in CI: the first assignment was made from consumer metadata that listed the
fresh changelog topics with 0 partitions, the first table write hit Faust's partition check
(``PartitionsMismatch``: source 8, changelog 0) and the worker exited. The worker now waits for
its topics (``agents/topics_ready.py``).

The race is rare on its own, so the second test forces it: ``faults/sitecustomize.py`` makes
every aiokafka client of the worker see the changelog topics with no partitions for the first
seconds of the process (the state of a broker whose metadata cache lags a topic creation).
Without the gate this crashed the worker of 02b3fce exactly as in CI; at 242de69 (table
writes through ``agents/bulk.py``) the worker survived, but its consumer kept the stale metadata
for ``consumer_metadata_max_age_ms`` (5 min): its tables had no active partitions, and a worker
joining in that window got no changelog partitions to restore, so it served none of its loans
(404). Checked here: the worker stays up, drains the backlog to `loanwatch replay`'s dead
letters and alerts, and a second worker joining afterwards serves every loan with replay's
state. (Unforced, 24 brand-new starts of 02b3fce on this machine, 8 of them at once, never hit
the race: the first test runs it as it comes.)
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from datetime import date
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from loanwatch.ledger.policy import Policy
from loanwatch.replay.runner import ReplayResult, iter_lines, replay
from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.generator import Simulation
from loanwatch.simulate.writer import write_jsonl
from loanwatch.streams.producer import LogProducer, ensure_topics
from loanwatch.streams.topics import TopicNames

from .live import (
    Processed,
    WorkerProcess,
    assert_live_equals_replay,
    end_offsets,
    loan_states,
    produce_log,
    wait_ready,
)

FAULTS = Path(__file__).resolve().parent / "faults"


def _log(path: Path) -> list[bytes]:
    # 900 loans x 60 days: a few thousand input records (events and the clock's ticks).
    with path.open("wb") as fh:
        write_jsonl(Simulation(SimulationConfig(loans=900, days=60, seed=23)), fh)
    return list(iter_lines(path))


async def _preload(bootstrap: str, prefix: str, lines: list[bytes]) -> TopicNames:
    names = TopicNames().with_prefix(prefix)
    await ensure_topics(bootstrap, names, 8)
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    async with LogProducer(bootstrap, names, kafka=kafka) as producer:
        await producer.publish(lines)
    return names


async def _while_alive(worker: WorkerProcess, waiting: Awaitable[None]) -> None:
    """Await ``waiting``; fail at once if the worker process exits meanwhile."""
    task = asyncio.ensure_future(waiting)
    try:
        while not task.done():
            assert worker.proc is not None
            if worker.proc.poll() is not None:
                raise AssertionError(f"worker exited:\n{worker.log_tail()}")
            await asyncio.wait({task}, timeout=0.2)
        task.result()
    finally:
        task.cancel()


async def _drain_and_compare(
    bootstrap: str,
    names: TopicNames,
    worker: WorkerProcess,
    lines: list[bytes],
    expected: ReplayResult,
) -> None:
    """Wait until the worker processed the whole backlog; its outputs are exactly replay's."""
    produced = await end_offsets(bootstrap, names.inputs())
    async with Processed(bootstrap, [worker]) as processed:
        await _while_alive(worker, processed(produced, timeout=120))
    await assert_live_equals_replay(bootstrap, names, [worker], expected)
    assert expected.alerts and expected.rejects  # the log exercises both


def _assert_clean_log(worker: WorkerProcess) -> None:
    assert worker.log_path is not None
    text = worker.log_path.read_text(errors="replace")
    for bad in ("PartitionsMismatch", "TopicsNotReady", "Crashed reason"):
        assert bad not in text, worker.log_tail()


async def test_a_new_deployment_drains_a_preloaded_backlog_to_the_replay_results(
    kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    lines = _log(tmp_path / "log.jsonl")
    expected = replay(lines, Policy())
    prefix = unique_name("lwnew") + "."
    names = await _preload(kafka_bootstrap, prefix, lines)
    # Never ran before: no consumer group, no changelog topics, empty data dir; the backlog is
    # waiting, so its first batch comes as soon as the tables' topics are created.
    worker = WorkerProcess(prefix.rstrip("."), prefix, tmp_path / "w")
    worker.start()
    try:
        await wait_ready([worker])
        await _drain_and_compare(kafka_bootstrap, names, worker, lines, expected)
        _assert_clean_log(worker)
    finally:
        worker.kill()


async def test_changelogs_listed_without_partitions_at_start_are_waited_for(
    kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    lines = _log(tmp_path / "log.jsonl")
    expected = replay(lines, Policy())
    prefix = unique_name("lwlag") + "."
    app_id = prefix.rstrip(".")
    names = await _preload(kafka_bootstrap, prefix, lines)
    first = WorkerProcess(
        app_id,
        prefix,
        tmp_path / "a",
        extra_env={
            "PYTHONPATH": str(FAULTS),
            "LOANWATCH_FAULT_EMPTY_TOPICS": f"^{re.escape(app_id)}-.*-changelog$",
            "LOANWATCH_FAULT_EMPTY_SECONDS": "6",
        },
    )
    second = WorkerProcess(app_id, prefix, tmp_path / "b")
    first.start()
    try:
        await wait_ready([first])
        await _drain_and_compare(kafka_bootstrap, names, first, lines, expected)
        assert first.log_path is not None
        text = first.log_path.read_text(errors="replace")
        # The race was on: the first assignment was made without the changelog topics.
        assert "reported with 0 partitions" in text and "Ignoring missing topic" in text, text
        _assert_clean_log(first)

        # A worker joining now takes half the partitions: it must get their changelogs to
        # restore its tables from (the group's metadata has them), and serve replay's states.
        second.start()
        await wait_ready([first, second])
        # A tick of the last date to every partition (a no-op for the states): each worker
        # then rebuilds its partitions from its tables, clock included.
        last = date.fromisoformat(expected.states[0].to_json()["as_of"])
        await produce_log(kafka_bootstrap, names, [], [first, second], as_of=last)
        states = await loan_states([second, first], [v.loan_id for v in expected.states])
        assert states == [v.to_json() for v in expected.states]
        _assert_clean_log(second)
        assert first.proc is not None and first.proc.poll() is None, first.log_tail()
    finally:
        first.kill()
        second.kill()
