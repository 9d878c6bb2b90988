"""The auditor's trail on the real broker: a live run's chains verify and replay bit for bit,
and tampered copies of them are caught, each naming the bad record.

The log is produced the way users produce it (our producer at full speed, no barrier); the
tests wait only for the worker's progress. Tampering cannot happen in place (Kafka is append
only), so each case copies the audit topic into a new topic with one change and runs
`loanwatch audit verify` on the copy.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from loanwatch.audit import kafka_io
from loanwatch.audit.chain import canonical, checkpoint_message
from loanwatch.audit.kafka_io import Stored
from loanwatch.audit.keys import key_id
from loanwatch.replay.runner import iter_lines
from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.generator import Simulation
from loanwatch.simulate.writer import write_jsonl
from loanwatch.streams.topics import TopicNames

from .live import (
    PARTITIONS,
    Processed,
    WorkerProcess,
    create_topics,
    delete_scratch_topics,
    end_offsets,
    produce_log,
    publish_log,
    read_topic,
    wait_ready,
)

REPO = Path(__file__).resolve().parents[2]


def _log(path: Path, loans: int, days: int, seed: int) -> list[bytes]:
    with path.open("wb") as fh:
        write_jsonl(Simulation(SimulationConfig(loans=loans, days=days, seed=seed)), fh)
    return list(iter_lines(path))


def audit_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loanwatch.cli", "audit", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def audit_cli_top(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loanwatch.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def _copy(bootstrap: str, topic: str, records: dict[int, list[Stored]]) -> None:
    """Write ``records`` (per partition, in order) to a new topic ``topic``."""
    await create_topics(bootstrap, topic, partitions=PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for p, items in records.items():
            for item in items:
                await producer.send(topic, item.value, partition=p, timestamp_ms=item.timestamp)
        await producer.flush()
    finally:
        await producer.stop()


def _replace(item: Stored, value: bytes) -> Stored:
    return Stored(item.partition, item.offset, item.timestamp, item.key, value)


async def test_a_live_run_verifies_replays_and_every_tampering_is_named(
    kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    lines = _log(tmp_path / "log.jsonl", loans=300, days=70, seed=5)
    prefix = unique_name("lwaud") + "."
    names = TopicNames().with_prefix(prefix)
    worker = WorkerProcess(prefix.rstrip("."), prefix, tmp_path / "w")
    worker.start()
    try:
        await wait_ready([worker])
        await produce_log(kafka_bootstrap, names, lines, [worker])
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        worker.kill(signal.SIGTERM)
    config = str(tmp_path / "w" / "config")  # the worker's policy (the SPEC defaults)

    out = _ok(audit_cli("verify", "--topic-prefix", prefix, "--complete"))
    assert "OK" in out
    out = _ok(audit_cli("replay", "--topic-prefix", prefix, "--config", config))
    assert "OK" in out, out
    print(out)

    # Every alert the worker sent is in the trail, and nothing else.
    chains = await kafka_io.read_topic(kafka_bootstrap, names.audit)
    decoded = {p: [orjson.loads(s.value or b"") for s in items] for p, items in chains.items()}
    trail_alerts = {a for recs in decoded.values() for r in recs for a in r.get("alerts", [])}
    sent = {a["alert_id"] for a in await read_topic(kafka_bootstrap, names.alerts)}
    assert trail_alerts == sent and sent

    p = max(decoded, key=lambda q: len(decoded[q]))
    records = chains[p]
    kinds = [r["kind"] for r in decoded[p]]
    assert "checkpoint" in kinds and "marks" in kinds
    k = next(i for i in range(len(records) // 2, len(records) - 2) if kinds[i] == "input")
    seq_k = decoded[p][k]["seq"]
    cases: dict[str, tuple[list[Stored], str]] = {}

    flipped = bytearray(records[k].value or b"")
    at = flipped.index(b'"input_sha256":"') + len(b'"input_sha256":"') + 3
    flipped[at] = ord("0") if flipped[at] != ord("0") else ord("1")
    cases["flip"] = (
        [*records[:k], _replace(records[k], bytes(flipped)), *records[k + 1 :]],
        f"offset {records[k].offset} seq {seq_k}: altered",
    )
    cases["delete"] = (
        [*records[:k], *records[k + 1 :]],
        f"record seq {seq_k} missing (deleted)",
    )
    cases["reorder"] = (
        [*records[:k], records[k + 1], records[k], *records[k + 2 :]],
        f"reordered: seq {seq_k + 1} comes before seq {seq_k}",
    )
    c = next(i for i, kind in enumerate(kinds) if kind == "checkpoint")
    other = Ed25519PrivateKey.generate()
    forged = dict(decoded[p][c])
    message = checkpoint_message(p, forged["seq"], forged["prev"], forged["business_date"])
    forged.update(key_id=key_id(other.public_key()), signature=other.sign(message).hex())
    cases["other-key"] = (
        [*records[:c], _replace(records[c], canonical(forged)), *records[c + 1 :]],
        f"seq {forged['seq']}: checkpoint signed by an untrusted key",
    )
    claimed = dict(forged, key_id=decoded[p][c]["key_id"])
    cases["claimed-key"] = (
        [*records[:c], _replace(records[c], canonical(claimed)), *records[c + 1 :]],
        f"seq {forged['seq']}: checkpoint signature does not verify",
    )
    for case, (tampered, named) in cases.items():
        topic = f"{prefix}tampered-{case}"
        await _copy(kafka_bootstrap, topic, {**chains, p: tampered})
        result = audit_cli("verify", "--topic-prefix", prefix, "--topic", topic)
        assert result.returncode == 1, (case, result.stdout, result.stderr)
        bad = [line for line in result.stderr.splitlines() if line.startswith("BAD ")]
        assert len(bad) == 1, (case, result.stderr)  # only the tampered partition
        assert f"BAD partition {p} " in bad[0] and named in bad[0], (case, bad[0], named)

    # History that outlives Kafka: archived, the topics deleted, still verified and replayed.
    archive = tmp_path / "archive"
    _ok(audit_cli_top("archive", "--topic-prefix", prefix, "--out", str(archive)))
    assert sorted(d.name for d in (archive / "audit").iterdir())[0].startswith("date=")
    await asyncio.to_thread(delete_scratch_topics, [prefix])  # it runs its own event loop
    for _ in range(300):  # a deletion completes asynchronously: wait until it has
        if not await kafka_io.partitions_of(kafka_bootstrap, names.audit):
            break
        await asyncio.sleep(0.1)
    assert not await kafka_io.partitions_of(kafka_bootstrap, names.audit)
    out = _ok(audit_cli("verify", "--archive", str(archive)))
    assert "OK" in out
    out = _ok(audit_cli("replay", "--archive", str(archive), "--config", config))
    assert "OK" in out, out


async def test_sigkills_mid_drain_leave_one_unforked_chain_that_replays(
    kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    """Crash re-reads (outputs sent, state not stored) add no second record and no fork."""
    lines = _log(tmp_path / "log.jsonl", loans=1500, days=120, seed=29)
    prefix = unique_name("lwaudk") + "."
    names = TopicNames().with_prefix(prefix)
    await publish_log(kafka_bootstrap, names, lines)  # a backlog, at full speed
    produced = await end_offsets(kafka_bootstrap, names.inputs())
    worker = WorkerProcess(prefix.rstrip("."), prefix, tmp_path / "w")
    rnd = random.Random(3)
    kills = 0
    try:
        worker.start()
        await wait_ready([worker])
        async with Processed(kafka_bootstrap, [worker]) as processed:
            while kills < 3:
                try:
                    await processed(produced, timeout=rnd.uniform(1.0, 4.0))
                    break
                except TimeoutError:
                    pass
                worker.kill(signal.SIGKILL)
                kills += 1
                worker.start()  # the same data dir
                await wait_ready([worker])
            await processed(produced, timeout=300)
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        worker.kill(signal.SIGTERM)
    assert kills >= 1, "drained before the first kill: make the log larger"
    config = str(tmp_path / "w" / "config")
    out = _ok(audit_cli("verify", "--topic-prefix", prefix, "--complete"))
    print(out)
    assert "OK" in out
    out = _ok(audit_cli("replay", "--topic-prefix", prefix, "--config", config))
    print(out)
    assert "OK" in out
