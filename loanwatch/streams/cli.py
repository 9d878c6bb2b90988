"""``loanwatch produce FILE``: publish a ``.jsonl`` event log to the SPEC topics.

A thin shell over :mod:`loanwatch.streams.producer`: options, a progress bar on a terminal,
the per-topic counts at the end. It must never validate or change events (the worker does that).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from loanwatch.ledger.policy_file import PolicyError, load_policy
from loanwatch.stack.log import JsonFormatter
from loanwatch.streams.producer import (
    LogProducer,
    ProduceError,
    ProduceReport,
    Step,
    ensure_topics,
    prefixed,
    scan_directory,
)
from loanwatch.streams.topics import TopicNames

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def configure_logging(level: int = logging.INFO) -> None:
    """JSON-lines logs of ``loanwatch.streams`` on stderr (idempotent)."""
    logger = logging.getLogger("loanwatch.streams")
    if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def iter_lines(path: Path) -> Iterator[bytes]:
    """Non-blank lines of the log, without their line ending, as bytes."""
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield line.rstrip(b"\r\n")


async def produce_file(
    path: Path,
    *,
    bootstrap: str,
    names: TopicNames,
    partitions: int,
    sync_clock: bool,
    rate: float,
    as_of: date | None,
    config_dir: Path | None,
    progress: bool,
) -> ProduceReport:
    """Create the topics if missing, then publish the file (with a progress bar if asked)."""
    policy = load_policy(config_dir)
    await ensure_topics(bootstrap, names, partitions)
    total = sum(1 for _ in iter_lines(path))
    directory = scan_directory(iter_lines(path))  # each loan's borrower, for its partition
    async with LogProducer(
        bootstrap,
        names,
        tz=policy.tz,
        sync_clock=sync_clock,
        rate=rate,
        max_clock_jump_days=policy.max_clock_jump_days,
    ) as out:
        if not progress:
            return await out.publish(iter_lines(path), as_of=as_of, directory=directory)
        bar = Progress(
            TextColumn("producing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        )
        with bar:
            task = bar.add_task("events", total=total)

            def advance(step: Step) -> None:
                if step.kind in ("event", "raw"):
                    bar.advance(task)

            return await out.publish(
                iter_lines(path), as_of=as_of, on_step=advance, directory=directory
            )


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bootstrap", default=DEFAULT_BOOTSTRAP, show_default=True, help="Kafka broker.")
@click.option("--topic-prefix", default="", help="Prefix of every topic name (tests, demos).")
@click.option(
    "--partitions", default=8, show_default=True, type=click.IntRange(1), help="For new topics."
)
@click.option(
    "--sync-clock/--no-sync-clock",
    default=True,
    show_default=True,
    help="Tick every partition before each new business date (keeps live equal to replay).",
)
@click.option(
    "--rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Events per second; 0 = as fast as possible.",
)
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Stop before the first event dated after it, then tick it to every partition.",
)
@click.option(
    "--config", "config_dir", type=click.Path(path_type=Path), help="Folder holding policy.yaml."
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: on a terminal)."
)
def produce(
    file: Path,
    bootstrap: str,
    topic_prefix: str,
    partitions: int,
    sync_clock: bool,
    rate: float,
    as_of: datetime | None,
    config_dir: Path | None,
    progress: bool | None,
) -> None:
    """Publish FILE (.jsonl events, SPEC §1) to Kafka, in order, keyed by loan, by borrower."""
    configure_logging()
    names = prefixed(topic_prefix)
    try:
        report = asyncio.run(
            produce_file(
                file,
                bootstrap=bootstrap,
                names=names,
                partitions=partitions,
                sync_clock=sync_clock,
                rate=rate,
                as_of=as_of.date() if as_of is not None else None,
                config_dir=config_dir,
                progress=sys.stderr.isatty() if progress is None else progress,
            )
        )
    except (ProduceError, PolicyError) as exc:
        raise click.ClickException(str(exc)) from exc
    for topic, count in sorted(report.counts.items()):
        click.echo(f"{topic}\t{count}")
    click.echo(
        f"events {report.events} (unreadable {report.raw}), sync ticks {report.sync_ticks}, "
        f"as-of tick {'yes' if report.as_of_tick else 'no'}"
    )
