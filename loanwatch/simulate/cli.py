"""``loanwatch simulate``: write a seeded, realistic loan-portfolio event log."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from loanwatch.simulate.config import SimulationConfig, SimulationConfigError
from loanwatch.simulate.events import Emitted
from loanwatch.simulate.generator import Simulation
from loanwatch.simulate.writer import write_jsonl

if TYPE_CHECKING:
    from loanwatch.simulate.closed_loop import ClosedLoop


@click.command()
@click.option("--loans", type=int, default=1_000, show_default=True, help="Loans in the book.")
@click.option("--days", type=int, default=90, show_default=True, help="Business days to run.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default="2026-01-01",
              show_default=True, help="First business date (YYYY-MM-DD).")  # fmt: skip
@click.option("--out", "out", type=str, default="-", show_default=True,
              help="Output .jsonl file; '-' for stdout.")  # fmt: skip
@click.option("--fault-rate", type=float, default=0.005, show_default=True,
              help="Share of bad, duplicate and orphan events.")  # fmt: skip
@click.option("--late-rate", type=float, default=0.002, show_default=True,
              help="Share of activity events arriving a day or two late.")  # fmt: skip
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress bar on stderr (only when writing to a file).")  # fmt: skip
@click.option("--live", is_flag=True,
              help="Publish to Kafka on an accelerated business clock.")  # fmt: skip
@click.option("--speed", default="1d/s", show_default=True,
              help="With --live: business time per wall second (1d/s, 6h/s, 1d/2s).")  # fmt: skip
@click.option("--bootstrap", default="127.0.0.1:9092", show_default=True,
              help="With --live: Kafka broker.")  # fmt: skip
@click.option("--topic-prefix", default="", help="With --live: prefix of every topic.")
@click.option("--partitions", type=int, default=8, show_default=True,
              help="With --live: partitions of topics it creates.")  # fmt: skip
@click.option("--strategies", "strategies_file", type=click.Path(exists=True, path_type=Path),
              help="strategies.yaml (or a folder holding one): borrowers answer its treatment "
                   "actions (docs/strategies.md); off without.")  # fmt: skip
@click.option("--config", "config_dir", type=click.Path(file_okay=False, path_type=Path),
              help="With --strategies: the folder holding policy.yaml.")  # fmt: skip
def simulate(
    loans: int,
    days: int,
    seed: int,
    start: datetime,
    out: str,
    fault_rate: float,
    late_rate: float,
    progress: bool,
    live: bool,
    speed: str,
    bootstrap: str,
    topic_prefix: str,
    partitions: int,
    strategies_file: Path | None,
    config_dir: Path | None,
) -> None:
    """Generate a loan portfolio's event log (same seed and options: same bytes)."""
    try:
        config = SimulationConfig(
            loans=loans, days=days, seed=seed, start=start.date(),
            fault_rate=fault_rate, late_rate=late_rate,
        )  # fmt: skip
    except SimulationConfigError as exc:
        raise click.BadParameter(str(exc)) from exc
    if strategies_file is not None and live:
        raise click.UsageError("--strategies runs the closed loop to a file, not --live")
    sim: Iterable[Emitted]
    if strategies_file is not None:
        loop = _closed_loop(config, strategies_file, config_dir)
        sim, stats = loop, loop.stats
    else:
        plain = Simulation(config)
        sim, stats = plain, plain.stats
    if live:
        from loanwatch.simulate.live import live_command

        live_command(plain, speed=speed, bootstrap=bootstrap, topic_prefix=topic_prefix,
                     partitions=partitions)  # fmt: skip
        return
    began = time.perf_counter()
    if out == "-":
        lines = write_jsonl(sim, sys.stdout.buffer)
    else:
        with Path(out).open("wb", buffering=1 << 20) as fh:
            lines = _write_with_progress(sim, fh, days) if progress else write_jsonl(sim, fh)
    elapsed = time.perf_counter() - began
    faults = sum(v for k, v in stats.items() if k.startswith("fault_"))
    click.echo(
        f"{lines} events ({faults} deliberate faults) for {loans} loans x {days} days "
        f"in {elapsed:.1f}s ({lines / max(elapsed, 1e-9):,.0f} events/s)",
        err=True,
    )


def _closed_loop(
    config: SimulationConfig, strategies_file: Path, config_dir: Path | None
) -> ClosedLoop:
    from loanwatch.ledger.policy_file import PolicyError, load_policy
    from loanwatch.simulate.closed_loop import ClosedLoop
    from loanwatch.treatment.config import StrategiesError, load_strategies

    try:
        policy = load_policy(config_dir)
        return ClosedLoop(config, load_strategies(strategies_file, policy), policy)
    except (PolicyError, StrategiesError) as exc:
        raise click.ClickException(str(exc)) from exc


def _write_with_progress(sim: Iterable[Emitted], fh: object, days: int) -> int:
    from typing import BinaryIO, cast

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days · {task.fields[events]:,} events"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task("simulate", total=days, events=0)
        ticks = 0

        def on_day(lines: int) -> None:
            nonlocal ticks
            if ticks:
                bar.update(task, advance=1, events=lines)
            ticks += 1

        lines = write_jsonl(sim, cast(BinaryIO, fh), on_day)
        bar.update(task, completed=days, events=lines)
    return lines
