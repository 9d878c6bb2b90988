"""A backlog (topics filled while no worker runs) drains to the results of `loanwatch replay`.

The log is published at full speed with no barrier, before any worker starts, as after an
outage or on a first deployment over existing topics. The consumer then fetches the input
topics in byte-bounded chunks, so without timestamp alignment the small records (ticks,
payments) run ahead of the large openings: payments meet no loan and are dead-lettered as
`unknown_loan`, late events are applied on later dates. With alignment the worker sees the
producer's order: dead letters, states and alerts (ids included) are exactly replay's,
borrower effects too (a borrower's loans share a partition).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loanwatch.ledger.policy import Policy
from loanwatch.replay.runner import iter_lines, replay
from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.generator import Simulation
from loanwatch.simulate.writer import write_jsonl
from loanwatch.streams.producer import ensure_topics
from loanwatch.streams.topics import TopicNames

from .live import (
    PARTITIONS,
    Processed,
    WorkerProcess,
    assert_live_equals_replay,
    end_offsets,
    forced_releases,
    run_once_then_preload,
    wait_ready,
)


def _simulated_log(path: Path) -> list[bytes]:
    config = SimulationConfig(loans=800, days=75, seed=11)
    with path.open("wb") as fh:
        write_jsonl(Simulation(config), fh)
    return list(iter_lines(path))


async def test_a_preloaded_backlog_drains_to_the_replay_results(
    kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    lines = _simulated_log(tmp_path / "log.jsonl")
    expected = replay(lines, Policy())
    prefix = unique_name("lwbl") + "."
    names = TopicNames().with_prefix(prefix)
    await ensure_topics(kafka_bootstrap, names, PARTITIONS)
    worker = WorkerProcess(
        app_id=prefix.rstrip("."),
        prefix=prefix,
        data_dir=tmp_path / "w",
        # Default batching, and fetches small enough that the topics' chunks interleave
        # differently from the producer's order (what a large backlog does at any size).
        extra_env={"LOANWATCH_BATCH_WITHIN": "0.05", "LOANWATCH_ALIGN_BUFFER": "20"},
    )
    # A brand-new deployment over a backlog is test_live_fresh_deployment.py.
    await run_once_then_preload(worker, kafka_bootstrap, names, lines)

    worker.start()
    try:
        await wait_ready([worker])
        produced = await end_offsets(kafka_bootstrap, names.inputs())
        async with Processed(kafka_bootstrap, [worker]) as processed:
            await processed(produced, timeout=300)
        # The merge never gave up waiting for a lane (else order is not guaranteed).
        assert await forced_releases(worker) == 0, worker.log_tail()
        await assert_live_equals_replay(kafka_bootstrap, names, [worker], expected)
        kinds = {a.kind for a in expected.alerts}
        assert {"cross_default", "risk_signal"} <= kinds and expected.rejects  # exercised
    finally:
        worker.kill()
