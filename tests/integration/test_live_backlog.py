"""A backlog (topics filled while no worker runs) drains to the results of `loanwatch replay`.

The log is published at full speed with no barrier, before any worker starts, as after an
outage or on a first deployment over existing topics. The consumer then fetches the input
topics in byte-bounded chunks, so without timestamp alignment the small records (ticks,
payments) run ahead of the large openings: payments meet no loan and are dead-lettered as
`unknown_loan`, late events are applied on later dates. With alignment the worker sees the
producer's order: dead letters, states and alerts are replay's.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from loanwatch.ledger.policy import Policy
from loanwatch.replay.runner import iter_lines, replay
from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.generator import Simulation
from loanwatch.simulate.writer import write_jsonl
from loanwatch.streams.producer import ensure_topics
from loanwatch.streams.topics import TopicNames

from ..contract.scenario_compare import alert_mismatches
from .live import (
    PARTITIONS,
    Barrier,
    BorrowerEffects,
    WorkerProcess,
    end_offsets,
    loan_states,
    read_topic,
    run_once_then_preload,
    wait_ready,
)


def _effect_key(alert: dict[str, Any]) -> tuple[str, str, str]:
    return alert["kind"], alert["loan_id"], alert["business_date"]


def _without(state: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k not in keys}


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
    _borrower_effect = BorrowerEffects(lines)
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
        async with Barrier(kafka_bootstrap, names, [worker]) as barrier:
            await barrier._wait(produced, timeout=300)
            await barrier(produced)

        # The merge never gave up waiting for a partition (else order is not guaranteed).
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{worker.url}/metrics") as resp,
        ):
            exposition = await resp.text()
        assert "\nloanwatch_alignment_forced_total 0.0\n" in exposition, worker.log_tail()
        letters = await read_topic(kafka_bootstrap, names.dead_letters)
        got = Counter(letter["reason"] for letter in letters)
        want = Counter(r.reason for r in expected.rejects)
        assert got == want, worker.log_tail()
        alerts = list(
            {a["alert_id"]: a for a in await read_topic(kafka_bootstrap, names.alerts)}.values()
        )
        replayed = [a.to_json() for a in expected.alerts]
        # Loan-level alerts: exactly replay's, with the same ids.
        own = [a for a in alerts if not _borrower_effect(a)]
        own_expected = [a for a in replayed if not _borrower_effect(a)]
        mismatches = alert_mismatches(own_expected, own)
        assert mismatches == [], "\n".join(mismatches)
        assert {a["alert_id"] for a in own} == {a["alert_id"] for a in own_expected}
        # Borrower effects cross partitions through Kafka (SPEC §6) while the ledger goes on
        # draining: each one live is one of replay's (kind, loan, business date); one that
        # comes back after its loan closed is not applied (docs/design.md, "backlog").
        live_fx = Counter(map(_effect_key, filter(_borrower_effect, alerts)))
        replay_fx = Counter(map(_effect_key, filter(_borrower_effect, replayed)))
        assert not live_fx - replay_fx, sorted(live_fx - replay_fx)
        assert sum(live_fx.values()) >= 0.8 * sum(replay_fx.values()), sorted(replay_fx - live_fx)
        states = await loan_states([worker], [v.loan_id for v in expected.states])
        floor_fields = ("classification", "ifrs9_stage", "cross_default")
        assert [_without(s, floor_fields) for s in states] == [
            _without(v.to_json(), floor_fields) for v in expected.states
        ]
        assert own_expected and expected.rejects  # the log exercises both
        assert any(map(_borrower_effect, replayed))
    finally:
        worker.kill()
