"""Several workers and a crash: the results stay those of `loanwatch replay`.

Two workers share the 8 partitions; a worker killed with SIGKILL in the middle of a run and
replaced by one with an empty data dir restores its state from the changelogs and adds no
alert with a new id (re-sends of an existing id are counted, as Kafka's delivery allows them).
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from loanwatch.ledger.policy import Policy
from loanwatch.replay.runner import ReplayResult, iter_lines, replay
from loanwatch.streams.topics import TopicNames

from ..contract.scenario_compare import SCENARIOS, alert_mismatches
from .live import (
    Processed,
    WorkerProcess,
    assert_live_equals_replay,
    loan_states,
    produce_log,
    publish_log,
    read_topic,
    wait_ready,
)

SCENARIO = SCENARIOS / "portfolio-101"


def _log() -> tuple[list[bytes], date, ReplayResult]:
    lines = list(iter_lines(SCENARIO / "events.jsonl"))
    as_of = date.fromisoformat((SCENARIO / "as_of").read_text().strip())
    return lines, as_of, replay(lines, Policy(), as_of=as_of)


async def _check_against_replay(
    bootstrap: str, names: TopicNames, workers: list[WorkerProcess], expected: ReplayResult
) -> Counter[str]:
    alerts = await read_topic(bootstrap, names.alerts)
    ids = Counter(a["alert_id"] for a in alerts)
    unique = list({a["alert_id"]: a for a in alerts}.values())
    replayed = [a.to_json() for a in expected.alerts]
    assert set(ids) == {a["alert_id"] for a in replayed}, "an alert id the replay does not have"
    assert alert_mismatches(replayed, unique) == []
    states = await loan_states(workers, [v.loan_id for v in expected.states])
    assert states == [v.to_json() for v in expected.states]
    return Counter({i: n - 1 for i, n in ids.items() if n > 1})


async def test_two_workers_give_the_results_of_one(
    kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    prefix = unique_name("lw2") + "."
    names = TopicNames().with_prefix(prefix)
    workers = [
        WorkerProcess(app_id=prefix.rstrip("."), prefix=prefix, data_dir=tmp_path / f"w{i}")
        for i in range(2)
    ]
    for w in workers:
        w.start()
    try:
        await wait_ready(workers)
        lines, as_of, expected = _log()
        await produce_log(kafka_bootstrap, names, lines, workers, as_of=as_of)
        duplicates = await _check_against_replay(kafka_bootstrap, names, workers, expected)
        assert sum(duplicates.values()) == 0  # no crash, no re-delivery
    except BaseException:
        print("\n".join(w.log_tail() for w in workers))
        raise
    finally:
        for w in workers:
            w.kill(signal.SIGTERM)


async def test_sigkill_mid_run_loses_no_state_and_adds_no_alert_id(
    kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    prefix = unique_name("lwk") + "."
    names = TopicNames().with_prefix(prefix)
    first = WorkerProcess(app_id=prefix.rstrip("."), prefix=prefix, data_dir=tmp_path / "first")
    # The replacement starts with an empty data dir: everything comes from the changelogs.
    second = WorkerProcess(app_id=prefix.rstrip("."), prefix=prefix, data_dir=tmp_path / "second")
    first.start()
    try:
        await wait_ready([first])
        lines, as_of, expected = _log()
        produced = await publish_log(kafka_bootstrap, names, lines, as_of=as_of)
        await asyncio.sleep(0.3)  # the drain is under way
        first.kill(signal.SIGKILL)
        second.start()
        await wait_ready([second])
        async with Processed(kafka_bootstrap, [second]) as processed:
            await processed(produced, timeout=120)
        assert first.proc is not None and first.proc.returncode == -signal.SIGKILL
        counts = await assert_live_equals_replay(kafka_bootstrap, names, [second], expected)
        print(f"alerts re-sent with an existing id after the crash: {counts['duplicate_alerts']}")
    except BaseException:
        print("\n".join(w.log_tail() for w in (first, second)))
        raise
    finally:
        second.kill(signal.SIGTERM)
