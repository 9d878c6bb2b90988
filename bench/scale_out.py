"""Scale-out (issue 4): one ``loanwatch worker`` vs two sharing the partitions, same backlog.

What one worker cannot carry, more workers on more partitions must. Method, in one run:

1. a cached simulated log is preloaded on fresh topics (8 partitions), as in
   ``pipeline_drain.py``;
2. one worker (its own app id, so its own consumer group, tables and changelogs) drains it;
   rate = messages after its first progress report / time to the end;
3. N workers of another app id start together on the same topics and drain it again; their
   ``/progress`` reports are merged (highest offset per partition); same rate definition,
   counted from the first report of any of them (start-up and the first rebalance excluded).

The ratio N workers / 1 worker is the figure (CPU-bound Python: at most the number of free
cores; this machine has 2, shared with the broker). Prints figures, asserts nothing.
Run: ``.venv/bin/python bench/scale_out.py [--quick] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from benchkit import (
    BENCH_RUN,
    bench_prefix,
    cached_log,
    drop_topics,
    loadavg,
    print_summary,
    print_table,
)
from benchkit.worker import TP, WorkerRun, cpu_seconds, progress
from pipeline_drain import preload, processed_count

from loanwatch.streams.topics import TopicNames


def merge_progress(reports: list[dict[TP, int] | None]) -> dict[TP, int] | None:
    """Highest offset per partition over the workers' reports (None: nobody answered yet)."""
    seen = [r for r in reports if r]
    if not seen:
        return None
    out: dict[TP, int] = {}
    for report in seen:
        for tp, offset in report.items():
            out[tp] = max(offset, out.get(tp, -1))
    return out


async def drain(
    workers: list[WorkerRun], targets: Mapping[TP, int], timeout: float
) -> dict[str, Any]:
    total = sum(off + 1 for off in targets.values())
    for w in workers:
        w.start()
    began = time.perf_counter()
    first: tuple[float, int, float] | None = None
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while True:
                for w in workers:
                    if w.proc is not None and w.proc.poll() is not None:
                        raise RuntimeError(f"worker exited:\n{w.tail()}")
                merged = merge_progress([await progress(session, w) for w in workers])
                now = time.perf_counter()
                done = processed_count(merged or {}, targets)
                if merged and first is None:
                    cpu = sum(cpu_seconds(w.proc.pid) for w in workers if w.proc)
                    first = (now, done, cpu)
                if done >= total:
                    break
                if now - began > timeout:
                    raise TimeoutError(f"{done:,}/{total:,} processed in {timeout}s")
                await asyncio.sleep(0.5)
        assert first is not None
        seconds = time.perf_counter() - first[0]
        cpu = sum(cpu_seconds(w.proc.pid) for w in workers if w.proc) - first[2]
        return {
            "messages": total - first[1],
            "seconds": seconds,
            "rate": (total - first[1]) / seconds,
            "cpu": cpu / seconds,
            "startup": first[0] - began,
        }
    finally:
        for w in workers:
            w.stop()


async def run(args: argparse.Namespace) -> None:
    path = cached_log(args.loans, args.days, args.seed)
    prefix = args.prefix
    names = TopicNames().with_prefix(prefix)
    print(f"log {path.name}; topics {prefix}*; load {loadavg()}")
    pre = await preload(path, names)
    print(f"preloaded {pre.messages:,} input messages in {pre.seconds:.1f}s")
    stamp = prefix.rstrip("-")
    one = await drain(
        [WorkerRun(prefix, BENCH_RUN / f"scale-{stamp}-one", app_id=f"{prefix}one")],
        pre.targets,
        args.timeout,
    )
    print(f"1 worker: {one['rate']:,.0f} msg/s; load {loadavg()}")
    many = await drain(
        [
            WorkerRun(prefix, BENCH_RUN / f"scale-{stamp}-many{i}", app_id=f"{prefix}many")
            for i in range(args.workers)
        ],
        pre.targets,
        args.timeout,
    )
    print(f"{args.workers} workers: {many['rate']:,.0f} msg/s; load {loadavg()}")
    ratio = many["rate"] / one["rate"]
    print_table(
        f"drain of {pre.messages:,} preloaded input messages, 8 partitions",
        ["workers", "messages", "seconds", "msg/s", "CPU (cores)", "vs 1 worker"],
        [
            [1, one["messages"], f"{one['seconds']:.1f}", round(one["rate"]),
             f"{one['cpu']:.2f}", "1.00"],
            [args.workers, many["messages"], f"{many['seconds']:.1f}", round(many["rate"]),
             f"{many['cpu']:.2f}", f"{ratio:.2f}"],
        ],
    )  # fmt: skip
    print_summary(
        "scale_out",
        {
            "loans": args.loans,
            "days": args.days,
            "input_messages": pre.messages,
            "workers": args.workers,
            "one_worker_msg_per_s": round(one["rate"]),
            "workers_msg_per_s": round(many["rate"]),
            "ratio_workers_over_one": round(ratio, 2),
            "one_worker_cores": round(one["cpu"], 2),
            "workers_cores": round(many["cpu"], 2),
            "prefix": prefix,
        },
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="7k loans x 180 days")
    ap.add_argument("--loans", type=int, default=25_000)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--keep-topics", action="store_true", help="do not delete the run's topics")
    args = ap.parse_args()
    if args.quick:
        args.loans = 7_000
    args.prefix = bench_prefix()
    try:
        asyncio.run(run(args))
    finally:
        drop_topics(args.prefix, args.keep_topics)


if __name__ == "__main__":
    main()
