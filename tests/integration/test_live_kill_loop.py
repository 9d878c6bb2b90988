"""SIGKILL at random moments over a large backlog, restarting on the same data dir each time.

Outputs before state: a record's alerts, dead letters and changelog records are acknowledged
by the broker before the store takes its writes and before its offset is committed, so a kill
at any instant loses nothing. The final states equal replay's, every replay alert id is on
the alerts topic (re-sends of an existing id are allowed, counted and printed), and no id is
one the replay does not have.

``LOANWATCH_KILL_LOOP_LOANS`` / ``_KILLS`` make the run larger (``make chaos``).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from loanwatch.ledger.policy import Policy
from loanwatch.replay.runner import iter_lines, replay
from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.generator import Simulation
from loanwatch.simulate.writer import write_jsonl
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

LOANS = int(os.environ.get("LOANWATCH_KILL_LOOP_LOANS", "10000"))
KILLS = int(os.environ.get("LOANWATCH_KILL_LOOP_KILLS", "5"))


async def _drained(bootstrap: str, worker: WorkerProcess, produced: Any, within: float) -> bool:
    async with Processed(bootstrap, [worker]) as processed:
        try:
            await processed(produced, timeout=within)
        except TimeoutError:
            return False
    return True


async def test_random_sigkills_on_the_same_data_dir_lose_nothing(
    kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    path = tmp_path / "log.jsonl"
    with path.open("wb") as fh:
        write_jsonl(Simulation(SimulationConfig(loans=LOANS, days=300, seed=23)), fh)
    lines = list(iter_lines(path))
    assert len(lines) >= 100_000 or LOANS < 10_000, len(lines)
    expected = replay(lines, Policy())
    prefix = unique_name("lwkill") + "."
    names = TopicNames().with_prefix(prefix)
    await publish_log(kafka_bootstrap, names, lines)  # the backlog, at full speed
    produced = await end_offsets(kafka_bootstrap, names.inputs())
    worker = WorkerProcess(prefix.rstrip("."), prefix, tmp_path / "w")
    rnd = random.Random(7)
    kills = 0
    recoveries: list[float] = []
    started = time.monotonic()
    try:
        worker.start()
        await wait_ready([worker])
        while kills < KILLS:
            if await _drained(kafka_bootstrap, worker, produced, rnd.uniform(1.0, 5.0)):
                break
            worker.kill(signal.SIGKILL)
            kills += 1
            restarted = time.monotonic()
            worker.start()  # the same data dir: RocksDB as the kill left it
            await wait_ready([worker])
            recoveries.append(time.monotonic() - restarted)
        assert await _drained(kafka_bootstrap, worker, produced, 300), worker.log_tail()
        counts = await assert_live_equals_replay(kafka_bootstrap, names, [worker], expected)
        print(
            f"kill loop: {len(lines)} events, {kills} SIGKILLs, "
            f"{time.monotonic() - started:.0f} s, {counts['duplicate_alerts']} alerts re-sent "
            f"with an existing id, {len(expected.alerts)} replay alerts all present"
        )
        assert kills >= 1, "the backlog drained before the first kill: make it larger"
        letters = Counter(r.reason for r in expected.rejects)
        mean = sum(recoveries) / len(recoveries)
        chaos_row(f"SIGKILL x{kills}, same data dir", len(lines), counts, letters, mean)
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        worker.kill()
        await asyncio.sleep(0)
