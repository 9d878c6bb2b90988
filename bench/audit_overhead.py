"""Audit overhead (issue 14): a worker's drain rate with and without the audit trail.

Method: one cached simulated log is preloaded twice, onto two fresh topic sets (prefixes
``bench-<time>-auditoff-`` and ``-auditon-``, 8 partitions), by ``pipeline_drain.preload``
(our producer at full speed). One ``loanwatch worker`` drains each set in turn, with
``LOANWATCH_AUDIT=false`` and then with the trail on (the defaults otherwise); the rate is
``pipeline_drain.worker_drain``'s (messages after the first progress / time to the end, so
start-up counts in neither). Rounds alternate the order. Then ``loanwatch audit verify
--complete`` and ``loanwatch audit replay`` run over the audited set, timed.

Run: ``.venv/bin/python bench/audit_overhead.py [--quick]``. Prints figures, asserts nothing
(target: overhead <= 15 % of the drain rate). Topics are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchkit import BENCH_RUN, REPO, bench_prefix, cached_log, drop_topics
from benchkit.worker import WorkerRun
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pipeline_drain import preload, worker_drain

from loanwatch.streams.topics import TopicNames


def in_process(path: Path, partitions: int = 8, rounds: int = 3) -> dict[str, float]:
    """The trail's own cost, without Kafka: each partition's records (the producer's plan, in
    log order) through the worker's ledger processor, then ``outcome`` + ``Chain.input`` as
    the live trail calls them. Microseconds per input, best of ``rounds``; also checks that
    hashing the engine's own views (live) and fresh ones (replay) write the same bytes."""
    from loanwatch.agents.ledger import Inbound, Outbox
    from loanwatch.audit import keys
    from loanwatch.audit.chain import Chain, ChainHead
    from loanwatch.audit.replay import new_processor
    from loanwatch.audit.trail import outcome
    from loanwatch.ledger.policy import Policy
    from loanwatch.replay.runner import iter_lines
    from loanwatch.streams.producer import plan, scan_directory

    lines = list(iter_lines(path))
    names, policy = TopicNames(), Policy()
    order: dict[int, list[Inbound]] = {p: [] for p in range(partitions)}
    offsets: dict[tuple[str, int], int] = {}
    stamp = 1_700_000_000_000
    steps = plan(lines, names=names, partitions=partitions, tz=policy.tz,
                 directory=scan_directory(lines))  # fmt: skip
    for step in steps:
        stamp += 1
        for rec in step.records:
            p = rec.partition or 0
            offset = offsets[(rec.topic, p)] = offsets.get((rec.topic, p), -1) + 1
            order[p].append(Inbound(rec.topic, p, offset, stamp / 1000, rec.key, rec.value))
    signer = keys.Signer(Ed25519PrivateKey.from_private_bytes(bytes(32)))

    def run(reuse: bool | None) -> tuple[float, float, bytes]:
        handle = audit = 0.0
        digest = hashlib.sha256()
        for p, inputs in order.items():
            processor = new_processor(p, policy, names, partitions)
            engine = processor.runtimes[p].engine
            chain = Chain(ChainHead(p), signer)
            for msg in inputs:
                out = Outbox()
                t0 = time.perf_counter()
                processor.handle(msg, out)
                t1 = time.perf_counter()
                handle += t1 - t0
                if reuse is None:
                    continue
                seen = outcome(msg.value, out.alerts, out.dead_letters, engine, policy,
                               reuse_views=reuse)  # fmt: skip
                chain.input(topic=msg.topic, offset=msg.offset, ts=round(msg.timestamp * 1000),
                            value=msg.value, loan_id=seen.loan_id, state_sha256=seen.state_sha256,
                            alerts=seen.alerts, dead_letters=seen.dead_letters,
                            business_date=seen.business_date)  # fmt: skip
                audit += time.perf_counter() - t1
            for value in chain.take():
                digest.update(value)
        return handle, audit, digest.digest()

    n = sum(len(v) for v in order.values())
    best: dict[str, float] = {}
    digests = {}
    for _ in range(rounds):
        for name, reuse in (("fresh views", False), ("live", True)):
            handle, audit, digests[name] = run(reuse)
            best[name] = min(best.get(name, math.inf), 1e6 * audit / n)
            best["handle"] = min(best.get("handle", math.inf), 1e6 * handle / n)
    assert digests["fresh views"] == digests["live"], "live and replay hashes differ"
    best["inputs"] = n
    return best


def _timed(*args: str) -> tuple[float, str]:
    began = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "loanwatch.cli", "audit", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    lines = (result.stdout + result.stderr).strip().splitlines()
    return time.perf_counter() - began, (lines[-2:] if len(lines) > 1 else lines)[0]


async def run(args: argparse.Namespace) -> list[str]:
    path = cached_log(args.loans, args.days, args.seed)
    rates: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}  # worker CPU ms per 1,000 messages
    audited = ""
    prefixes: list[str] = []
    for round_ in range(args.rounds):
        order = ("off", "on") if round_ % 2 == 0 else ("on", "off")
        for mode in order:
            prefix = bench_prefix(f"audit{mode}{round_}-")
            prefixes.append(prefix)
            names = TopicNames().with_prefix(prefix)
            loaded = await preload(path, names)
            os.environ["LOANWATCH_AUDIT"] = "true" if mode == "on" else "false"
            worker = WorkerRun(prefix, BENCH_RUN / f"{prefix}w")
            try:
                got = await worker_drain(worker, loaded.targets, args.timeout, 0.0)
            finally:
                worker.stop()
                os.environ.pop("LOANWATCH_AUDIT", None)
            rates[mode].append(got["rate"])
            cpu[mode].append(1e6 * got["worker_cpu"] * got["seconds"] / got["messages"])
            print(
                f"round {round_} audit {mode}: {got['messages']:,} messages in "
                f"{got['seconds']:.1f} s = {got['rate']:,.0f} msg/s; worker CPU "
                f"{cpu[mode][-1]:.0f} ms per 1,000 messages (busy {got['worker_cpu']:.2f} "
                f"core, broker {got['broker_cpu']:.2f}; load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
            if mode == "on":
                audited = prefix
    off, on = max(rates["off"]), max(rates["on"])
    pairs = sorted(1 - b / a for a, b in zip(rates["off"], rates["on"], strict=True))
    print(f"\ndrain rate, best of {args.rounds}: audit off {off:,.0f} msg/s, on {on:,.0f} msg/s")
    print(f"audit overhead on the drain rate: {100 * (1 - on / off):.1f} % (target <= 15 %)")
    print(
        "  per round (on vs off of the same round): "
        + ", ".join(f"{100 * x:.1f} %" for x in pairs)
        + f"; median {100 * statistics.median(pairs):.1f} %"
    )
    c_off, c_on = min(cpu["off"]), min(cpu["on"])
    print(
        f"worker CPU per 1,000 messages, best of {args.rounds}: off {c_off:.0f} ms, on "
        f"{c_on:.0f} ms: +{100 * (c_on / c_off - 1):.1f} % (less sensitive to a shared machine)"
    )
    probe = in_process(path)
    print(
        f"in process ({probe['inputs']:,.0f} inputs, no Kafka, best of 3): the ledger "
        f"{probe['handle']:.1f} us/input; the trail {probe['live']:.1f} us/input "
        f"({100 * probe['live'] / probe['handle']:.1f} % of the ledger; making each view "
        f"again as before: {probe['fresh views']:.1f} us, "
        f"{100 * probe['fresh views'] / probe['handle']:.1f} %), same bytes both ways"
    )
    seconds, line = _timed("verify", "--topic-prefix", audited, "--complete")
    print(f"audit verify --complete: {seconds:.1f} s: {line}")
    seconds, line = _timed("replay", "--topic-prefix", audited)
    print(f"audit replay (shipped policy): {seconds:.1f} s: {line}")
    return prefixes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5k loans x 120 days, three rounds")
    ap.add_argument("--loans", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=2)  # --quick: 3 unless given
    ap.add_argument("--timeout", type=float, default=1500.0)
    ap.add_argument("--keep-topics", action="store_true")
    args = ap.parse_args()
    args.rounds_set = "--rounds" in sys.argv
    if args.quick:
        args.loans, args.days = 5_000, 120
        args.rounds = args.rounds if args.rounds_set else 3
    for prefix in asyncio.run(run(args)):
        drop_topics(prefix, args.keep_topics)  # outside the event loop (it runs its own)


if __name__ == "__main__":
    main()
