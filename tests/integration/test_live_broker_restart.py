"""The stack's Kafka stopped and started again in the middle of a drain: the worker waits (its
sends retry, its fetches reconnect), resumes, and its results are exactly replay's (0 lost).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

from loanwatch.ledger.policy import Policy
from loanwatch.replay.runner import iter_lines, replay
from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.generator import Simulation
from loanwatch.simulate.writer import write_jsonl
from loanwatch.stack import manager, services
from loanwatch.stack.paths import StackPaths
from loanwatch.streams.producer import read_progress
from loanwatch.streams.topics import TopicNames

from .live import (
    Processed,
    WorkerProcess,
    assert_live_equals_replay,
    chaos_row,
    end_offsets,
    publish_log,
    wait_ready,
)

DOWN_SECONDS = 8.0


async def _some_progress(worker: WorkerProcess) -> None:
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        for _ in range(600):
            try:
                done = await read_progress(session, f"{worker.url}/progress")
            except (aiohttp.ClientError, TimeoutError, ValueError):
                done = {}
            if sum(max(0, v) for v in done.values()) > 2000:
                return
            await asyncio.sleep(0.05)
    raise TimeoutError(worker.log_tail())


async def test_a_broker_restart_mid_drain_loses_nothing(
    kafka_bootstrap: str, stack_paths: StackPaths, unique_name: Any, tmp_path: Path
) -> None:
    path = tmp_path / "log.jsonl"
    with path.open("wb") as fh:
        write_jsonl(Simulation(SimulationConfig(loans=4000, days=200, seed=31)), fh)
    lines = list(iter_lines(path))
    expected = replay(lines, Policy())
    prefix = unique_name("lwbroker") + "."
    names = TopicNames().with_prefix(prefix)
    await publish_log(kafka_bootstrap, names, lines)
    produced = await end_offsets(kafka_bootstrap, names.inputs())
    worker = WorkerProcess(prefix.rstrip("."), prefix, tmp_path / "w")
    kafka = next(s for s in manager.all_specs(stack_paths) if s.name == "kafka")
    worker.start()
    try:
        await wait_ready([worker])
        await _some_progress(worker)
        stopped = time.monotonic()
        assert services.stop(kafka) is not None, "the stack's broker was not running"
        await asyncio.sleep(DOWN_SECONDS)
        await asyncio.to_thread(manager.up, stack_paths)
        back = time.monotonic()
        print(f"broker down for {back - stopped:.1f} s")
        async with Processed(kafka_bootstrap, [worker]) as processed:
            await processed(produced, timeout=300)
        drained = time.monotonic() - back
        assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()
        counts = await assert_live_equals_replay(kafka_bootstrap, names, [worker], expected)
        letters = Counter(r.reason for r in expected.rejects)
        chaos_row(f"broker down {DOWN_SECONDS:.0f} s", len(lines), counts, letters, drained)
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        worker.kill()
        await asyncio.to_thread(manager.up, stack_paths)  # never leave the suite without it
