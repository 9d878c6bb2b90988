"""The composition root of ``loanwatch run``: topics, a worker, its scrape target, the live
simulator, and the loops that feed the view, until Ctrl-C or ``--duration``.

It must never stop anything it did not start (children by pid, its own target file) and never
compute a loan figure itself: alerts come from ``loan.alerts``, counts from the worker's
``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.live import Live

from loanwatch.console.processes import (
    Child,
    free_port,
    loanwatch_argv,
    start_child,
    stop_child,
    write_target,
)
from loanwatch.console.scrape import RateMeter, parse_metrics
from loanwatch.console.view import ConsoleState, alert_line, render, status_line
from loanwatch.stack.paths import default_paths
from loanwatch.streams.kafka_security import KafkaSecurity
from loanwatch.streams.producer import ensure_topics, prefixed

log = logging.getLogger("loanwatch.console")
TARGET_LABELS = {"job_hint": "worker", "portfolio": "demo"}


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What ``loanwatch run`` was asked for (see its ``--help``)."""

    bootstrap: str = "127.0.0.1:9092"
    web_port: int = 6066
    loans: int = 3000
    days: int = 365
    seed: int = 42
    speed: str = "1d/s"
    partitions: int = 8
    topic_prefix: str = ""
    app_id: str = "loanwatch-demo"
    run_dir: Path = Path("run")
    duration: float | None = None
    tui: bool = True
    scrape_every: float = 2.0


@dataclass(slots=True)
class Started:
    """What this run started, so it can stop exactly that."""

    worker: Child | None = None
    simulator: Child | None = None
    target: Path | None = None


def urls(web: str, loan_id: str = "<loan_id>") -> dict[str, str]:
    return {
        "loan": f"{web}/loans/{loan_id}",
        "metrics": f"{web}/metrics",
        "health": f"{web}/healthz",
        "prometheus": "http://127.0.0.1:9090",
        "alertmanager": "http://127.0.0.1:9093",
    }


def worker_argv(opts: RunOptions, port: int) -> list[str]:
    args = ["worker", "--clock", "event", "--web-port", str(port), "--app-id", opts.app_id]
    args += ["--broker", f"kafka://{opts.bootstrap}", "--partitions", str(opts.partitions)]
    args += ["--data-dir", str(opts.run_dir / "console" / opts.app_id)]
    if opts.topic_prefix:
        args += ["--topic-prefix", opts.topic_prefix]
    return loanwatch_argv(*args)


def simulator_argv(opts: RunOptions) -> list[str]:
    args = ["simulate", "--live", "--speed", opts.speed, "--loans", str(opts.loans)]
    args += ["--days", str(opts.days), "--seed", str(opts.seed), "--bootstrap", opts.bootstrap]
    args += ["--partitions", str(opts.partitions)]
    if opts.topic_prefix:
        args += ["--topic-prefix", opts.topic_prefix]
    return loanwatch_argv(*args)


async def consume_alerts(
    opts: RunOptions, web: str, state: ConsoleState, on_alert: Callable[[str], None] | None
) -> None:
    """Follow the alerts topic from its start (this run's topics are its own), newest first."""
    topic = prefixed(opts.topic_prefix).alerts
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=opts.bootstrap,
        auto_offset_reset="earliest",
        **KafkaSecurity().client_options(),
    )
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            for records in batches.values():
                for rec in records:
                    try:
                        alert = orjson.loads(rec.value or b"")
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(alert, dict):
                        state.add_alert(alert)
                        state.urls.update(urls(web, str(alert.get("loan_id", "<loan_id>"))))
                        if on_alert is not None:
                            on_alert(alert_line(alert))
    finally:
        await consumer.stop()


async def scrape_worker(web: str, state: ConsoleState, every: float) -> None:
    """Poll the worker's /metrics: portfolio counts, events/s, alert counters."""
    meter = RateMeter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while True:
            try:
                async with session.get(f"{web}/metrics") as resp:
                    resp.raise_for_status()
                    text = await resp.text()
                state.portfolio = parse_metrics(text)
                state.events_per_s = meter.update(time.monotonic(), state.portfolio.events_total)
                state.worker_up = True
            except (aiohttp.ClientError, TimeoutError, ValueError):
                state.worker_up = False
            await asyncio.sleep(every)


async def watch_children(started: Started, state: ConsoleState, stop: asyncio.Event) -> None:
    """Stop the run when the worker exits; note it when the simulator does."""
    noted = False
    while not stop.is_set():
        if started.worker is not None and started.worker.exit_code() is not None:
            state.notes.append(
                f"worker exited with code {started.worker.exit_code()}; see "
                f"{started.worker.log_path}:\n{started.worker.log_tail()}"
            )
            stop.set()
        sim = started.simulator
        if sim is not None and not noted and sim.exit_code() is not None:
            noted = True
            state.notes.append(
                f"simulator exited with code {sim.exit_code()}; see {sim.log_path}:\n"
                f"{sim.log_tail(5)}"
            )
        await asyncio.sleep(0.5)


def start_all(opts: RunOptions, port: int) -> Started:
    started = Started()
    run = opts.run_dir
    (run / "console" / opts.app_id).mkdir(parents=True, exist_ok=True)  # the worker's data dir
    started.worker = start_child("worker", worker_argv(opts, port), run / "worker.log")
    targets = default_paths().prometheus_targets
    started.target = write_target(
        targets,
        f"console-worker-{port}",
        f"127.0.0.1:{port}",
        TARGET_LABELS,
        owner_pid=started.worker.pid if started.worker is not None else None,
    )
    started.simulator = start_child("simulator", simulator_argv(opts), run / "simulator.log")
    return started


def stop_all(started: Started) -> None:
    """Stop exactly what this run started: simulator, worker (by pid), the target file."""
    for child in (started.simulator, started.worker):
        if child is not None:
            stop_child(child)
    if started.target is not None:
        started.target.unlink(missing_ok=True)
        log.info("prometheus target removed", extra={"file": str(started.target)})


async def run_console(opts: RunOptions, console: Console) -> int:
    """Run until Ctrl-C, SIGTERM, ``duration`` or the worker's exit; return the exit code."""
    await ensure_topics(opts.bootstrap, prefixed(opts.topic_prefix), opts.partitions)
    port = free_port(opts.web_port)
    web = f"http://127.0.0.1:{port}"
    state = ConsoleState(urls=urls(web))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if opts.duration is not None:
        loop.call_later(opts.duration, stop.set)
    started = Started()
    try:
        started = start_all(opts, port)
        printer = None if opts.tui else (lambda line: console.print(line, highlight=False))
        if not opts.tui:
            for name, url in state.urls.items():
                console.print(f"url {name} {url}", highlight=False)
        tasks = [
            asyncio.create_task(consume_alerts(opts, web, state, printer)),
            asyncio.create_task(scrape_worker(web, state, opts.scrape_every)),
            asyncio.create_task(watch_children(started, state, stop)),
        ]
        try:
            if opts.tui:
                with Live(render(state), console=console, refresh_per_second=2) as live:
                    while not stop.is_set():
                        # the rest of the screen takes ~32 lines: alerts get what is left
                        live.update(render(state, max(5, console.size.height - 32)))
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), 0.5)
            else:
                shown = 0
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 5)
                    for note in state.notes[shown:]:
                        console.print(f"note {note}", highlight=False, markup=False)
                    shown = len(state.notes)
                    console.print(status_line(state), highlight=False)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await asyncio.to_thread(stop_all, started)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    for name, url in state.urls.items():
        console.print(f"url {name} {url}", highlight=False)
    console.print(f"logs {opts.run_dir / 'worker.log'} {opts.run_dir / 'simulator.log'}")
    return 1 if any(n.startswith("worker exited") for n in state.notes) else 0
