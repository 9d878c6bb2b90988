"""Scrape time of a worker's ``/metrics`` (issue 5) on a simulated portfolio.

Method: a cached simulated log (20k loans x 30 days by default) is published on fresh topics
(prefix ``bench-scrape-<time>-``, 8 partitions) by :class:`LogProducer` without barrier
(flushed once per business day); one
``loanwatch worker`` subprocess (defaults: RocksDB, batch 1000) processes it; ``/progress`` is
polled until every produced partition is done. Then ``GET /metrics`` is timed ``--scrapes``
times in a row from one keep-alive HTTP session (wall time from request to last body byte),
as Prometheus does every 5 s; every scrape computes the ``PortfolioCollector`` gauges over all
owned loans. Baselines, same session: ``GET /healthz`` (the HTTP round trip of the Faust web
server) and, in this process, ``generate_latest`` of an empty ``CollectorRegistry`` (the
exposition floor). The figure that matters is the p99 scrape time against the 5 s scrape
interval (and Prometheus' default 10 s scrape timeout); the series count is the number of
sample lines (comments excluded) of one scrape.

The worker is stopped with SIGTERM; the run's topics are deleted at the end (``--keep-topics``
keeps them); data is under ``run/bench/``.
Run: ``.venv/bin/python bench/scrape_time.py [--loans N] [--days N] [--scrapes N]``.
Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Mapping
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer
from benchkit import (
    BENCH_RUN,
    bench_prefix,
    cached_log,
    count_lines,
    drop_topics,
    print_summary,
    print_table,
)
from benchkit.worker import BOOTSTRAP, PARTITIONS, WorkerRun, progress
from prometheus_client import CollectorRegistry, generate_latest

from loanwatch.replay.runner import iter_lines
from loanwatch.streams.producer import LogProducer, ensure_topics
from loanwatch.streams.topics import TopicNames

TP = tuple[str, int]


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


async def publish(path: Path, names: TopicNames) -> tuple[dict[TP, int], float]:
    await ensure_topics(BOOTSTRAP, names, PARTITIONS)
    kafka = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=20, max_batch_size=1 << 18
    )
    began = time.perf_counter()
    # No barrier object: "day" only flushes once per business day (never waits for the worker).
    async with LogProducer(
        BOOTSTRAP, names, sync_clock=True, barrier_every="day", kafka=kafka
    ) as producer:
        report = await producer.publish(iter_lines(path))
    return dict(report.produced), time.perf_counter() - began


async def wait_processed(worker: WorkerRun, targets: Mapping[TP, int], timeout: float) -> float:
    began = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while True:
            assert worker.proc is not None
            if worker.proc.poll() is not None:
                raise RuntimeError(f"worker exited:\n{worker.tail()}")
            seen = await progress(session, worker) or {}
            if all(seen.get(tp, -1) >= off for tp, off in targets.items()):
                return time.perf_counter() - began
            if time.perf_counter() - began > timeout:
                behind = {tp: off for tp, off in targets.items() if seen.get(tp, -1) < off}
                raise TimeoutError(f"worker still behind after {timeout}s on {behind}")
            await asyncio.sleep(0.5)


async def wait_up(worker: WorkerRun, timeout: float = 120) -> None:
    began = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        while True:
            try:
                async with session.get(f"{worker.url}/healthz") as resp:
                    if resp.status == 200 and (await resp.json()).get("assigned"):
                        return
            except aiohttp.ClientError:
                pass
            if time.perf_counter() - began > timeout:
                raise TimeoutError(f"worker not ready:\n{worker.tail()}")
            await asyncio.sleep(0.5)


async def time_gets(url: str, n: int) -> tuple[list[float], bytes]:
    times: list[float] = []
    body = b""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for _ in range(n):
            began = time.perf_counter()
            async with session.get(url) as resp:
                body = await resp.read()
                assert resp.status == 200, resp.status
            times.append(time.perf_counter() - began)
    return times, body


def time_empty_registry(n: int) -> list[float]:
    registry = CollectorRegistry()
    times = []
    for _ in range(n):
        began = time.perf_counter()
        generate_latest(registry)
        times.append(time.perf_counter() - began)
    return times


def sample_lines(body: bytes) -> list[str]:
    return [x for x in body.decode().splitlines() if x.strip() and not x.startswith("#")]


def portfolio_loans(lines: list[str]) -> float:
    return sum(
        float(x.rsplit(" ", 1)[1]) for x in lines if x.startswith("loanwatch_portfolio_loans{")
    )


async def main(args: argparse.Namespace) -> None:
    path = cached_log(args.loans, args.days, args.seed)
    prefix = args.prefix
    stamp = prefix.removeprefix("bench-").rstrip("-")
    names = TopicNames().with_prefix(prefix)
    worker = WorkerRun(prefix=prefix, data_dir=BENCH_RUN / f"scrape-{stamp}")
    worker.start()
    try:
        await wait_up(worker)
        targets, produce_s = await publish(path, names)
        drain_s = await wait_processed(worker, targets, args.timeout)
        await asyncio.sleep(3)  # the last batch is flushed and scraped
        await time_gets(f"{worker.url}/metrics", 3)  # warm-up
        scrapes, body = await time_gets(f"{worker.url}/metrics", args.scrapes)
        health, _ = await time_gets(f"{worker.url}/healthz", args.scrapes)
    finally:
        worker.stop()
    empty = time_empty_registry(max(1000, args.scrapes))
    lines = sample_lines(body)
    p50, p99 = pct(scrapes, 50), pct(scrapes, 99)
    e50 = pct(empty, 50)
    h50 = pct(health, 50)
    print_table(
        "GET /metrics of one worker holding the portfolio (ms)",
        ["what", "n", "p50", "p99", "max", "mean"],
        [
            [name, len(xs), *(f"{1000 * v:.3f}" for v in
                              (pct(xs, 50), pct(xs, 99), max(xs), statistics.fmean(xs)))]
            for name, xs in (("GET /metrics", scrapes), ("GET /healthz", health),
                             ("generate_latest(empty registry)", empty))
        ],
    )  # fmt: skip
    families: dict[str, int] = {}
    for line in lines:
        name = line.split("{", 1)[0].split(" ", 1)[0]
        families[name] = families.get(name, 0) + 1
    print_table(
        "Series of one scrape by name (top 15)",
        ["name", "series"],
        sorted(families.items(), key=lambda kv: -kv[1])[:15],
    )
    print_summary(
        "scrape_time",
        {
            "log": f"{path.name} ({count_lines(path):,} events)",
            "produce_s": round(produce_s, 1),
            "drain_s": round(drain_s, 1),
            "active_loans_exposed": int(portfolio_loans(lines)),
            "series": len(lines),
            "series_faust": sum(1 for x in lines if x.startswith("faust_")),
            "series_loanwatch_portfolio": sum(
                1 for x in lines if x.startswith("loanwatch_portfolio_")
            ),
            "body_bytes": len(body),
            "scrape_p50_ms": round(1000 * p50, 3),
            "scrape_p99_ms": round(1000 * p99, 3),
            "healthz_p50_ms": round(1000 * h50, 3),
            "empty_registry_p50_ms": round(1000 * e50, 4),
            "scrape_p50_over_empty_registry": round(p50 / e50, 1),
            "scrape_p50_over_healthz": round(p50 / h50, 1),
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--keep-topics", action="store_true", help="keep the run's topics")
    args = parser.parse_args()
    args.prefix = bench_prefix("scrape-")
    try:
        asyncio.run(main(args))
    finally:
        drop_topics(args.prefix, args.keep_topics)
