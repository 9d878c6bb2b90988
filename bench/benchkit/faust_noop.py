"""A Faust app that only drains: the framework's own ceiling, beside the raw client and the worker.

Run as ``python -m benchkit.faust_noop --prefix P --expect N`` (from ``bench/``): one agent over
the same input topics as the worker, ``noack_take`` batches of the same size, every event acked,
nothing else (no table, no output). With ``NOOP_PATCHED=1``: with the speed fixes of
:mod:`loanwatch.agents.faust_fixes` (eager delivery, fewer yields, queues that wait when
full), as the worker runs. It prints one JSON line ``{"messages": n, "seconds": s}`` once
``N`` messages arrived (time from the first batch) and exits. The gap between this and raw
``getmany`` is Faust's per-event cost (its consumer thread, conductor, stream and acks); the
gap between this and the worker is loanwatch's work (engine, tables, changelogs, outputs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import faust

from loanwatch.streams.topics import TopicNames


def noop_drain(
    prefix: str, expect: int, data_dir: Path, port: int, timeout: float, *, patched: bool = False
) -> dict[str, Any]:
    """Run this module as a subprocess over ``prefix``'s input topics: messages, seconds, rate.

    ``patched``: with the speed fixes of :mod:`loanwatch.agents.faust_fixes`, as in the worker.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "benchkit.faust_noop", "--prefix", prefix, "--expect",
           str(expect), "--data-dir", str(data_dir), "--web-port", str(port)]  # fmt: skip
    bench_dir = Path(__file__).resolve().parent.parent
    try:
        env = {**os.environ, "NOOP_PATCHED": "1" if patched else ""}
        done = subprocess.run(
            cmd, cwd=bench_dir, env=env, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"messages": 0, "seconds": timeout, "rate": 0.0, "error": "timed out"}
    for line in (done.stdout + done.stderr).decode(errors="replace").splitlines():
        if '{"messages"' in line:
            found = json.loads(line[line.index("{") :])
            found["rate"] = found["messages"] / found["seconds"]
            return dict(found)
    tail = (done.stderr or done.stdout).decode(errors="replace")[-400:]
    return {"messages": 0, "seconds": 0.0, "rate": 0.0, "error": tail}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--web-port", type=int, required=True)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--within", type=float, default=0.05)
    args = ap.parse_args()

    names = TopicNames().with_prefix(args.prefix)
    app = faust.App(
        f"{args.prefix}noop-{os.getpid()}",
        broker="kafka://127.0.0.1:9092",
        store="memory://",
        datadir=str(args.data_dir),
        web_port=args.web_port,
        web_bind="127.0.0.1",
        consumer_auto_offset_reset="earliest",
        topic_partitions=8,
        stream_wait_empty=False,
        **json.loads(os.environ.get("NOOP_SETTINGS", "{}")),
    )
    inputs = app.topic(*names.inputs(), key_serializer="raw", value_serializer="raw")
    seen = 0
    started: float | None = None

    @app.agent(inputs, concurrency=1)
    async def drain(stream: Any) -> None:
        nonlocal seen, started
        async for events in stream.noack_take(args.batch, within=args.within):
            if started is None:
                started = time.monotonic()
            seen += len(events)
            for event in events:
                await stream.ack(event)
            if seen >= args.expect:
                elapsed = time.monotonic() - started
                print(json.dumps({"messages": seen, "seconds": elapsed}), flush=True)
                os._exit(0)  # the figure is out; no graceful shutdown to time

    if os.environ.get("NOOP_PATCHED"):  # the speed fixes, as the worker applies them
        from loanwatch.agents.faust_fixes import (
            eager_message_delivery,
            fewer_stream_yields,
            queues_wait_when_full,
        )

        eager_message_delivery()
        fewer_stream_yields()
        queues_wait_when_full(app)

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn", "--without-web"]
    app.main()


if __name__ == "__main__":
    asyncio.set_event_loop(asyncio.new_event_loop())
    main()
