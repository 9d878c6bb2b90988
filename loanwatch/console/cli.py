"""``loanwatch run``: a worker, the live simulator and a live view of alerts and the portfolio.

The main job behind ``make run`` (which starts the local stack first). A thin click shell over
:mod:`loanwatch.console.runner`; it must never start the stack itself nor stop what it did not
start.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click
from rich.console import Console

from loanwatch.stack.log import JsonFormatter
from loanwatch.stack.paths import default_paths


def configure_logging(log_file: Path, to_stderr: bool) -> None:
    """JSON-lines logs of the console (and the producer it uses) to a file, and stderr if asked."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [logging.FileHandler(log_file, encoding="utf-8")]
    if to_stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    for name in ("loanwatch.console", "loanwatch.streams"):
        logger = logging.getLogger(name)
        if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            continue
        for handler in handlers:
            handler.setFormatter(JsonFormatter())
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


@click.command()
@click.option("--bootstrap", default="127.0.0.1:9092", show_default=True, help="Kafka broker.")
@click.option(
    "--web-port", default=6066, show_default=True, help="Worker port (next free if busy)."
)
@click.option("--loans", default=3000, show_default=True, type=click.IntRange(1), help="Book size.")
@click.option(
    "--days", default=365, show_default=True, type=click.IntRange(1), help="Business days."
)
@click.option("--seed", default=42, show_default=True, type=int, help="Simulator seed.")
@click.option("--speed", default="1d/s", show_default=True, help="Business time per second.")
@click.option("--partitions", default=8, show_default=True, type=click.IntRange(1))
@click.option(
    "--topic-prefix",
    default=None,
    help="Prefix of every topic (default: a fresh 'demo-<time>.' per run, so a second run "
    "never replays the first one's events).",
)
@click.option("--duration", type=click.FloatRange(min=0), help="Stop after this many seconds.")
@click.option("--tui/--no-tui", default=True, help="Live screen, or plain lines (CI logs).")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where logs and worker data go (default: the stack's run/).",
)
def run(
    bootstrap: str,
    web_port: int,
    loans: int,
    days: int,
    seed: int,
    speed: str,
    partitions: int,
    topic_prefix: str | None,
    duration: float | None,
    tui: bool,
    run_dir: Path | None,
) -> None:
    """Start a worker and the live simulator, then show alerts and the portfolio as they move.

    Expects the local stack (``loanwatch stack up``; ``make run`` does it). Ctrl-C stops the
    worker and the simulator this command started and unregisters the Prometheus target.
    """
    import time

    from loanwatch.console.runner import RunOptions, run_console
    from loanwatch.streams.producer import ProduceError

    paths = default_paths()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    prefix = f"demo-{stamp}." if topic_prefix is None else topic_prefix
    run_dir = run_dir or paths.run
    configure_logging(run_dir / "console.log", to_stderr=not tui)
    opts = RunOptions(
        bootstrap=bootstrap,
        web_port=web_port,
        loans=loans,
        days=days,
        seed=seed,
        speed=speed,
        partitions=partitions,
        topic_prefix=prefix,
        app_id=f"loanwatch-demo-{stamp}",
        run_dir=run_dir,
        duration=duration,
        tui=tui,
    )
    console = Console() if tui else Console(no_color=True, width=200, soft_wrap=True)
    try:
        code = asyncio.run(run_console(opts, console))
    except ProduceError as exc:
        raise click.ClickException(f"{exc} (is the stack up? `loanwatch stack up`)") from exc
    sys.exit(code)
