"""``loanwatch backtest LOG --policy DIR_A --policy DIR_B``: one history, several configurations.

A thin click shell over :mod:`loanwatch.backtest.runner`: it loads and validates each folder,
replays the log under each, prints the figures side by side with their difference, and writes
an HTML page of charts. With ``--closed-loop`` (LOG then optional) it also runs the responding
simulator per folder over ``--seeds`` seeds (:mod:`loanwatch.backtest.closed`) and adds the
strategy outcomes with bootstrap intervals. It never writes anywhere but ``--html``/``--json``.
"""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import click
import orjson

from loanwatch.backtest.closed import compare
from loanwatch.backtest.closed_report import closed_json, html_section
from loanwatch.backtest.closed_report import text_table as closed_table
from loanwatch.backtest.report import html_page, rows, text_table
from loanwatch.backtest.runner import load_folder, run_folder
from loanwatch.gc_tuning import tune_gc
from loanwatch.ledger.policy_file import PolicyError
from loanwatch.replay.runner import iter_lines
from loanwatch.routing.errors import ConfigError
from loanwatch.treatment.config import StrategiesError


@click.command()
@click.argument("log", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--policy", "folders", multiple=True, required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A configuration folder like config/ (give it two or more times).",
)  # fmt: skip
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), help="Replay to.")
@click.option(
    "--send-at", default="10:00", show_default=True,
    help="Local time at which borrower contacts are judged by the compliance rules.",
)  # fmt: skip
@click.option("--closed-loop", is_flag=True, help="Run the responding simulator per folder.")
@click.option("--seeds", type=click.IntRange(1), default=3, show_default=True,
              help="Closed loop: seeds 1..N per folder.")  # fmt: skip
@click.option("--loans", type=click.IntRange(1), default=1_000, show_default=True,
              help="Closed loop: loans per run.")  # fmt: skip
@click.option("--days", type=click.IntRange(1), default=180, show_default=True,
              help="Closed loop: days per run.")  # fmt: skip
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path))
def backtest(
    log: Path | None,
    folders: tuple[Path, ...],
    as_of: object,
    send_at: str,
    closed_loop: bool,
    seeds: int,
    loans: int,
    days: int,
    html_out: Path | None,
    json_out: Path | None,
) -> None:
    """Replay LOG under each --policy folder and print the KPI differences side by side."""
    if len(folders) < 2:
        raise click.UsageError("give --policy at least twice (the folders to compare)")
    if log is None and not closed_loop:
        raise click.UsageError("give the LOG to replay, or --closed-loop")
    try:
        loaded = [load_folder(f) for f in folders]
        at = time.fromisoformat(send_at)
    except (PolicyError, StrategiesError, ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    day: date | None = as_of.date() if as_of is not None else None  # type: ignore[attr-defined]
    tune_gc()
    names = [f.name for f in loaded]
    if len(set(names)) < len(names):
        names = [str(f.path) for f in loaded]
    figures = (
        [run_folder(lambda: iter_lines(log), f, as_of=day, send_at=at) for f in loaded]
        if log is not None
        else []
    )
    if figures:
        click.echo(text_table(names, figures))
    comparison = None
    if closed_loop:
        if any(f.strategies is None for f in loaded):
            raise click.ClickException("--closed-loop needs a strategies.yaml in every folder")
        start = day or date(2026, 1, 1)
        comparison = compare(loaded, names, seeds=seeds, loans=loans, days=days, start=start)
        click.echo(closed_table(comparison))
    if html_out is not None:
        extra = html_section(comparison) if comparison is not None else ""
        page = html_page(log.name if log else None, names, figures, extra)
        html_out.write_text(page, encoding="utf-8")
        click.echo(f"charts: {html_out}", err=True)
    if json_out is not None:
        doc: dict[str, object] = {"folders": names}
        if figures:
            doc["figures"] = [
                {"figure": k, "values": v, "difference": d} for k, v, d in rows(names, figures)
            ]
        if comparison is not None:
            doc["closed_loop"] = closed_json(comparison)
        json_out.write_bytes(orjson.dumps(doc))
