"""Pipeline drain and alert latency (issue 4): a real ``loanwatch worker`` vs raw aiokafka.

Method, all in one run on fresh topics (prefix ``bench-<time>-``, 8 partitions):

1. **Preload**: a cached simulated log (150k loans x 180 days, ~1.05M events) is published by
   :class:`loanwatch.streams.producer.LogProducer` (routing by ``route_event``, ticks to every
   partition, ``sync_clock`` on, no barrier, flushed once per business day).
2. **Raw drain** (a): one ``AIOKafkaConsumer`` of a fresh group ``getmany``s the five input
   topics to their end offsets (values untouched). Rate = messages / (last - first fetch).
   Then the floors of :mod:`benchkit.floors` (fresh groups again): ``getmany`` + ``orjson.loads``
   of every value, and ``getmany`` + the ledger engine over the records in log order (no
   Faust, no state store, no outputs); and a Faust agent that only takes and acks
   (:mod:`benchkit.faust_noop`).
3. **Worker drain** (b): one ``loanwatch worker`` subprocess (RocksDB store, tables with
   changelogs, alerts, dead letters, status, commits: the defaults, LOANWATCH_BATCH_SIZE
   1000 / BATCH_WITHIN 0.01) drains the same topics; its ``/progress`` is polled every 0.5 s
   until every input partition is processed to its end. Rate = messages processed after the
   first progress seen / (end - that moment), so start-up and rebalancing count in neither.
   Optionally ``py-spy`` samples the worker meanwhile (``--py-spy SECONDS``).
4. **Alert latency** (c): ``--latency-loans`` fresh loans are opened (one installment due in a
   year); then, at ``--rate`` events/s, one ``risk_signal`` (severity ``low``) per loan is
   produced, each of which makes exactly one ``risk_signal`` alert. Latency = the alert's
   arrival on ``loan.alerts`` minus the wall time just before the send. The same bytes at the
   same rate go through a raw aiokafka echo subprocess (consume, produce to another topic,
   flush per batch, acks=all, fetch_max_wait 1500 ms like Faust), measured the same way.

The worker is stopped with SIGTERM; the run's topics are deleted at the end (``--keep-topics``
keeps them); data is under ``run/bench/``.
Run: ``.venv/bin/python bench/pipeline_drain.py [--quick]``. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from benchkit import (
    BENCH_RUN,
    REPO,
    bench_prefix,
    cached_log,
    drop_topics,
    loadavg,
    print_summary,
    print_table,
)
from benchkit.faust_noop import noop_drain
from benchkit.floors import drain, engine_floor, parse_floor
from benchkit.latency import (
    create_topics,
    echo_service,
    latency_row,
    offered_load,
    percentile,
    probe_loan,
    probe_signal,
    tail_consumer,
)
from benchkit.worker import (
    BOOTSTRAP,
    PARTITIONS,
    TP,
    WorkerRun,
    broker_pid,
    cpu_seconds,
    free_port,
    inclusive_of,
    progress,
    start_py_spy,
    summarize_py_spy,
)

from loanwatch.ledger.policy import Policy
from loanwatch.replay.runner import iter_lines, replay
from loanwatch.streams.partitioning import partition_for
from loanwatch.streams.producer import LogProducer, Step, ensure_topics
from loanwatch.streams.topics import TopicNames, route_event

__all__ = [
    "inclusive_of",
    "input_targets",
    "percentile",
    "probe_loan",
    "probe_signal",
    "processed_count",
    "summarize_py_spy",
]  # fmt: skip  (also what the smoke test uses)


# --- pure helpers ---------------------------------------------------------------------------


def input_targets(produced: Mapping[TP, int], names: TopicNames) -> dict[TP, int]:
    """Last offset of every input partition that received something."""
    inputs = set(names.inputs())
    return {tp: off for tp, off in produced.items() if tp[0] in inputs and off >= 0}


def processed_count(progress: Mapping[TP, int], targets: Mapping[TP, int]) -> int:
    """Messages processed so far on the target partitions (fresh topics start at offset 0)."""
    return sum(min(progress.get(tp, -1), last) + 1 for tp, last in targets.items())


# --- Kafka side -----------------------------------------------------------------------------


@dataclass(slots=True)
class Preloaded:
    targets: dict[TP, int]
    messages: int
    events: int
    seconds: float
    last_day: date | None = None


async def preload(path: Path, names: TopicNames) -> Preloaded:
    await ensure_topics(BOOTSTRAP, names, PARTITIONS)
    kafka = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=1 << 18,
    )
    last: list[date] = []

    def on_step(step: Step) -> None:
        if step.business_date is not None and (not last or step.business_date > last[0]):
            last[:] = [step.business_date]

    began = time.perf_counter()
    async with LogProducer(
        BOOTSTRAP, names, sync_clock=True, barrier_every="day", kafka=kafka
    ) as producer:
        report = await producer.publish(iter_lines(path), on_step=on_step)
    seconds = time.perf_counter() - began
    targets = input_targets(report.produced, names)
    messages = sum(off + 1 for off in targets.values())
    return Preloaded(targets, messages, report.events, seconds, last[0] if last else None)


async def raw_drain(names: TopicNames, targets: Mapping[TP, int], group: str) -> dict[str, float]:
    """A fresh consumer group reads the input topics to the preloaded ends (values untouched)."""
    return await drain(names.inputs(), targets, group)


async def worker_drain(
    worker: WorkerRun, targets: Mapping[TP, int], timeout: float, py_spy: float
) -> dict[str, Any]:
    """Start the worker and poll ``/progress`` until every target partition is done."""
    total = sum(off + 1 for off in targets.values())
    broker = broker_pid()
    worker.start()
    assert worker.proc is not None
    began = time.perf_counter()
    first: tuple[float, int, float, float] | None = None  # time, done, worker cpu, broker cpu
    samples: list[tuple[float, int]] = []
    spy: subprocess.Popen[bytes] | None = None
    crash: str | None = None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while True:
            if worker.proc.poll() is not None:
                if first is None or len(samples) < 2:
                    raise RuntimeError(f"worker exited:\n{worker.tail()}")
                crash = worker.first_error()  # report the rate up to the crash, and why
                break
            seen = await progress(session, worker)
            now = time.perf_counter()
            done = processed_count(seen or {}, targets)
            if seen and first is None:
                first = (now, done, cpu_seconds(worker.proc.pid),
                         cpu_seconds(broker) if broker else 0.0)  # fmt: skip
                spy = start_py_spy(worker.proc.pid, py_spy, worker.data_dir)
            if first is not None and seen is not None:
                samples.append((now - first[0], done))
            if done >= total:
                break
            if now - began > timeout:
                raise TimeoutError(f"worker processed {done:,}/{total:,} in {timeout}s")
            await asyncio.sleep(0.5)
    assert first is not None
    if spy is not None:
        spy.wait(timeout=py_spy + 60)
    if crash is not None:
        seconds, done = samples[-1]
        return {"messages": done - first[1], "seconds": seconds,
                "rate": (done - first[1]) / seconds, "startup_seconds": first[0] - began,
                "worker_cpu": float("nan"), "broker_cpu": float("nan"), "samples": samples,
                "crash": crash}  # fmt: skip
    end = time.perf_counter()
    wcpu = cpu_seconds(worker.proc.pid) - first[2]
    bcpu = (cpu_seconds(broker) - first[3]) if broker else 0.0
    seconds = end - first[0]
    return {"messages": total - first[1], "seconds": seconds,
            "rate": (total - first[1]) / seconds, "startup_seconds": first[0] - began,
            "worker_cpu": wcpu / seconds, "broker_cpu": bcpu / seconds,
            "samples": samples, "crash": None}  # fmt: skip


async def wait_idle(worker: WorkerRun, names: TopicNames, timeout: float = 900) -> float:
    """Until the internal topic (wall-clock ticks) is processed."""
    began = time.perf_counter()
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
    await consumer.start()
    internal = [TopicPartition(t, p) for t in (names.commands,)
                for p in range(PARTITIONS)]  # fmt: skip
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            for _ in range(1):
                ends = await consumer.end_offsets(internal)
                want = {(tp.topic, tp.partition): off - 1 for tp, off in ends.items() if off > 0}
                while True:
                    seen = await progress(session, worker) or {}
                    if all(seen.get(tp, -1) >= off for tp, off in want.items()):
                        break
                    if time.perf_counter() - began > timeout:
                        raise TimeoutError("worker still busy with internal topics")
                    await asyncio.sleep(0.2)
    finally:
        await consumer.stop()
    return time.perf_counter() - began


async def worker_latency(
    worker: WorkerRun, names: TopicNames, day: date, loans: int, rate: float
) -> list[float]:
    """Open ``loans`` probe loans, wait until processed, then one signal each at ``rate``."""
    ids = [f"{names.accounts}-R{rate:.0f}-P{i:06d}" for i in range(loans)]

    def place(loan_id: str) -> int:  # probe_loan's borrower is f"{loan_id}-B"
        return partition_for(f"{loan_id}-B", PARTITIONS)

    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=0)
    await producer.start()
    # The lanes' marks every 0.1 s, as `loanwatch simulate --live` sends them while idle:
    # a probe is released once every other lane of its partition is known past it.
    marker = LogProducer(BOOTSTRAP, names)
    await marker.__aenter__()

    async def heartbeat() -> None:
        while True:
            await marker.heartbeat()
            await asyncio.sleep(0.1)

    beating = asyncio.create_task(heartbeat())
    try:
        sent = []
        for loan_id in ids:
            obj = probe_loan(loan_id, day)
            route = route_event(obj, names)
            sent.append(
                await producer.send(
                    route.topic, orjson.dumps(obj), key=loan_id.encode(), partition=place(loan_id)
                )
            )
        await producer.flush()
        # Wait for the worker to have applied every opening: the offsets of the openings
        # themselves (the lanes' ends move on with the heartbeat's marks, which /progress,
        # counting records only, never reaches).
        last: dict[tuple[str, int], int] = {}
        for fut in sent:
            meta = await fut
            key = (meta.topic, meta.partition)
            last[key] = max(last.get(key, -1), meta.offset)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while True:
                seen = await progress(session, worker) or {}
                if all(seen.get(tp, -1) >= off for tp, off in last.items()):
                    break
                await asyncio.sleep(0.2)
        await wait_idle(worker, names)
        alerts = await tail_consumer(names.alerts)
        sends = []
        for loan_id in ids:
            obj = probe_signal(loan_id, day)
            sends.append((route_event(obj, names).topic, loan_id, orjson.dumps(obj)))

        def match(rec: Any) -> str | None:
            body = orjson.loads(rec.value)
            return str(body["loan_id"]) if body.get("kind") == "risk_signal" else None

        try:
            return await offered_load(producer, alerts, sends, rate, match, partition_of=place)
        finally:
            await alerts.stop()
    finally:
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
        await marker.__aexit__(None, None, None)
        await producer.stop()


async def echo_latency(prefix: str, day: date, loans: int, rate: float) -> list[float]:
    source, sink = f"{prefix}echo.in", f"{prefix}echo.out"
    await create_topics([source, sink])
    cmd = [sys.executable, __file__, "--echo-service", source, sink]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        ready = await asyncio.to_thread(proc.stdout.readline)
        if ready.strip() != b"READY":
            raise RuntimeError("echo service did not start")
        out = await tail_consumer(sink)
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=0)
        await producer.start()
        ids = [f"{prefix}R{rate:.0f}-E{i:06d}" for i in range(loans)]
        sends = [(source, i, orjson.dumps(probe_signal(i, day))) for i in ids]
        try:
            return await offered_load(producer, out, sends, rate, lambda r: r.key.decode())
        finally:
            await producer.stop()
            await out.stop()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


ALIGNMENT_COUNTERS = ("loanwatch_alignment_forced_total ", "loanwatch_alignment_resumed_total ")


async def worker_dead_letters(worker: WorkerRun) -> dict[str, int]:
    """``loanwatch_dead_letters_total`` by reason, from the worker's /metrics (non-zero only)."""
    async with aiohttp.ClientSession() as session, session.get(f"{worker.url}/metrics") as resp:
        text = await resp.text()
    out: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("loanwatch_dead_letters_total{"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0]
            value = int(float(line.rsplit(" ", 1)[1]))
            if value:
                out[reason] = value
        elif line.startswith(ALIGNMENT_COUNTERS):
            print(f"worker {line}")  # out-of-order releases (want 0) and laggards resumed
    return out


def replay_dead_letters(path: Path) -> dict[str, int]:
    """Dead letters by reason of ``loanwatch replay`` on the same log (the expected figures)."""
    out: dict[str, int] = {}
    for letter in replay(iter_lines(path), Policy()).rejects:
        out[letter.reason] = out.get(letter.reason, 0) + 1
    return out


# --- the run --------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    path = cached_log(args.loans, args.days, args.seed)
    prefix = args.prefix
    names = TopicNames().with_prefix(prefix)
    print(f"log {path.name}; topics {prefix}*; load {loadavg()}")

    pre = await preload(path, names)
    print(f"preloaded {pre.events:,} events = {pre.messages:,} input messages in "
          f"{pre.seconds:.1f}s ({pre.messages / pre.seconds:,.0f} msg/s)")  # fmt: skip

    raws = [await raw_drain(names, pre.targets, f"{prefix}raw{i}") for i in range(args.raw_rounds)]
    raw = max(raws, key=lambda r: r["rate"])
    print("raw drains msg/s: " + ", ".join(f"{r['rate']:,.0f}" for r in raws))
    noop = noop_drain(prefix, pre.messages, BENCH_RUN / f"noop-{prefix.rstrip('-')}", free_port(),
                      args.timeout)  # fmt: skip
    print(f"Faust no-op agent drain: {noop['rate']:,.0f} msg/s {noop.get('error', '')}")
    patched = noop_drain(prefix, pre.messages, BENCH_RUN / f"noop-patched-{prefix.rstrip('-')}",
                         free_port(), args.timeout, patched=True)  # fmt: skip
    print(f"  with the speed fixes: {patched['rate']:,.0f} msg/s {patched.get('error', '')}")
    parsed = await parse_floor(names.inputs(), pre.targets, f"{prefix}parse")
    print(f"getmany + orjson.loads of every value: {parsed['rate']:,.0f} msg/s")
    engine = await engine_floor(names.inputs(), pre.targets, f"{prefix}engine")
    print(
        f"getmany + the engine in log order (no Faust, no state store): {engine['rate']:,.0f} "
        f"msg/s ({engine['engine_seconds']:.1f}s of engine for {engine['events']:,} events)"
    )

    worker = WorkerRun(prefix, BENCH_RUN / f"worker-{prefix.rstrip('-')}")
    day = pre.last_day or date(2026, 1, 1)
    all_rates = sorted({args.low_rate, args.rate}) if args.latency_seconds > 0 else []
    rates = list(all_rates)  # the worker's (none if it crashed); the echo runs at all_rates
    idle = 0.0
    letters: dict[str, int] = {}
    lat_worker: dict[float, list[float]] = {}
    try:
        drained = await worker_drain(worker, pre.targets, args.timeout, args.py_spy)
        print(f"worker drained {drained['messages']:,} messages in {drained['seconds']:.1f}s "
              f"(start-up {drained['startup_seconds']:.1f}s); load {loadavg()}")  # fmt: skip
        if drained["crash"]:
            print(f"WORKER CRASHED after {drained['messages']:,} of {pre.messages:,} messages "
                  f"(rate shown is up to the crash): {drained['crash']}")  # fmt: skip
            rates = []
        else:
            idle = await wait_idle(worker, names)
            print(f"then {idle:.1f}s more until the internal topics were done")
            letters = await worker_dead_letters(worker)
        for rate in rates:
            n = int(rate * args.latency_seconds)
            lat_worker[rate] = await worker_latency(worker, names, day, n, rate)
    finally:
        code = worker.stop()
        print(f"worker stopped (SIGTERM), exit code {code}; log {worker.log_path}")
    if args.compare_replay and not drained["crash"]:
        expected = replay_dead_letters(path)
        print_table(
            "dead letters after the drain: worker vs `loanwatch replay` of the same log",
            ["reason", "worker", "replay"],
            [[r, letters.get(r, 0), expected.get(r, 0)] for r in sorted({*letters, *expected})],
        )
    lat_echo: dict[float, list[float]] = {}
    for rate in all_rates:
        n = int(rate * args.latency_seconds)
        lat_echo[rate] = await echo_latency(prefix, day, n, rate)

    ratio = drained["rate"] / raw["rate"]
    print_table(
        f"drain of {pre.messages:,} preloaded input messages (8 partitions, 1 process each)",
        ["consumer", "messages", "seconds", "msg/s", "vs raw", "worker CPU", "broker CPU"],
        [
            ["raw aiokafka getmany", raw["messages"], f"{raw['seconds']:.1f}", raw["rate"],
             "1.00", "-", "-"],
            ["getmany + orjson.loads (parse floor)", parsed["messages"],
             f"{parsed['seconds']:.1f}", round(parsed["rate"]),
             f"{parsed['rate'] / raw['rate']:.3f}", "-", "-"],
            ["getmany + engine, no Faust/state (engine floor)", engine["messages"],
             f"{engine['seconds']:.1f}", round(engine["rate"]),
             f"{engine['rate'] / raw['rate']:.3f}", "-", "-"],
            ["Faust agent, no work (acks only)", noop["messages"], f"{noop['seconds']:.1f}",
             round(noop["rate"]), f"{noop['rate'] / raw['rate']:.3f}", "-", "-"],
            ["  the same, + faust_fixes speed fixes", patched["messages"],
             f"{patched['seconds']:.1f}", round(patched["rate"]),
             f"{patched['rate'] / raw['rate']:.3f}", "-", "-"],
            ["loanwatch worker", drained["messages"], f"{drained['seconds']:.1f}",
             drained["rate"], f"{ratio:.3f}", f"{drained['worker_cpu']:.0%}",
             f"{drained['broker_cpu']:.0%}"],
        ],
    )  # fmt: skip
    print(f"target worker/raw >= 0.25: {'met' if ratio >= 0.25 else 'NOT met'} ({ratio:.3f}); "
          f"worker/Faust no-op: {drained['rate'] / max(noop['rate'], 1e-9):.2f}")  # fmt: skip
    curve = drained["samples"][:: max(1, len(drained["samples"]) // 8)]
    print("worker progress (s, messages): "
          + ", ".join(f"({t:.0f}, {d:,})" for t, d in curve))  # fmt: skip
    if all_rates:
        rows = []
        for rate in all_rates:
            sent = int(rate * args.latency_seconds)
            rows.append(latency_row(f"{rate:.0f}/s worker -> loan.alerts",
                                    lat_worker.get(rate, []), sent))  # fmt: skip
            rows.append(latency_row(f"{rate:.0f}/s raw aiokafka echo",
                                    lat_echo.get(rate, []), sent))  # fmt: skip
        print_table(
            f"alert latency, {args.latency_seconds:.0f}s per rate (produce -> arrival, ms)",
            ["offered load, path", "sent", "received", "p50", "p90", "p99", "max",
             "p50 first 10%", "p50 last 10%"],
            rows,
        )  # fmt: skip
    spy = worker.data_dir / "py-spy.txt"
    if spy.exists():
        print_table(
            f"py-spy of the worker ({args.py_spy:.0f}s of the drain): top functions by self time",
            ["function (file:line)", "self %", "incl %"],
            [[f[:90], f"{s:.1f}", f"{i:.1f}"] for f, s, i in summarize_py_spy(spy)],
        )
        needles = ["engine.py", "ledger.py", "codecs.py", "app.py", "rocksdb", "faust/tables",
                   "faust/transport", "aiokafka", "prometheus", "faust/sensors"]  # fmt: skip
        shares = inclusive_of(spy, needles)
        print("inclusive share of samples: "
              + ", ".join(f"{k} {v:.0f}%" for k, v in shares.items()))  # fmt: skip
    lat_w = [x * 1e3 for x in lat_worker.get(args.rate, [])] or [float("nan")]
    lat_e = [x * 1e3 for x in lat_echo.get(args.rate, [])] or [float("nan")]
    lat_low = [x * 1e3 for x in lat_worker.get(args.low_rate, [])] or [float("nan")]
    print_summary(
        "pipeline_drain",
        {
            "loans": args.loans,
            "days": args.days,
            "events": pre.events,
            "input_messages": pre.messages,
            "preload_msg_per_s": round(pre.messages / pre.seconds),
            "raw_msg_per_s": round(raw["rate"]),
            "worker_msg_per_s": round(drained["rate"]),
            "ratio_worker_over_raw": round(ratio, 4),
            "faust_noop_msg_per_s": round(noop["rate"]),
            "ratio_faust_noop_over_raw": round(noop["rate"] / raw["rate"], 4),
            "faust_noop_patched_msg_per_s": round(patched["rate"]),
            "ratio_faust_noop_patched_over_raw": round(patched["rate"] / raw["rate"], 4),
            "parse_floor_msg_per_s": round(parsed["rate"]),
            "ratio_parse_floor_over_raw": round(parsed["rate"] / raw["rate"], 4),
            "engine_floor_msg_per_s": round(engine["rate"]),
            "ratio_engine_floor_over_raw": round(engine["rate"] / raw["rate"], 4),
            "worker_cpu_share": round(drained["worker_cpu"], 2),
            "internal_catchup_s": round(idle, 1),
            "worker_crashed": bool(drained["crash"]),
            "latency_rate": args.rate,
            "worker_alert_p50_ms": round(statistics.median(lat_w), 1),
            "worker_alert_p99_ms": round(percentile(lat_w, 99), 1),
            "echo_p50_ms": round(statistics.median(lat_e), 1),
            "echo_p99_ms": round(percentile(lat_e, 99), 1),
            "alerts_received": len(lat_worker.get(args.rate, [])),
            "low_rate": args.low_rate,
            "worker_alert_low_rate_p50_ms": round(statistics.median(lat_low), 1),
            "prefix": prefix,
        },
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="~50k events, 5 s of latency load")
    # 150k loans x 180 days = 1.05M events (about 7 minutes of worker drain on 2 cores).
    ap.add_argument("--loans", type=int, default=150_000)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--raw-rounds", type=int, default=2)
    ap.add_argument("--rate", type=float, default=200.0, help="offered load, events/s")
    ap.add_argument("--low-rate", type=float, default=20.0, help="a second, light load")
    ap.add_argument("--latency-seconds", type=float, default=20.0)
    ap.add_argument("--py-spy", type=float, default=30.0, help="seconds of py-spy (0: off)")
    ap.add_argument("--timeout", type=float, default=1500.0, help="longest worker drain (s)")
    ap.add_argument(
        "--compare-replay",
        action="store_true",
        help="also replay the log and print both dead-letter counts by reason",
    )
    ap.add_argument("--keep-topics", action="store_true", help="do not delete the run's topics")
    ap.add_argument("--echo-service", nargs=2, metavar=("IN", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.echo_service:
        asyncio.run(echo_service(*args.echo_service))
        return
    if args.quick:
        args.loans, args.latency_seconds, args.py_spy = 7_000, 5.0, min(args.py_spy, 5.0)
    args.prefix = bench_prefix()
    try:
        asyncio.run(run(args))
    finally:
        drop_topics(args.prefix, args.keep_topics)


if __name__ == "__main__":
    main()
