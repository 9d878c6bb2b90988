"""``loanwatch backtest LOG --policy DIR_A --policy DIR_B``: one history, several configurations.

A thin click shell over :mod:`loanwatch.backtest.runner`: it loads and validates each folder,
replays the log under each, prints the figures side by side with their difference, and writes
an HTML page of charts. It never writes anywhere but ``--html`` and ``--json``.
"""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import click
import orjson

from loanwatch.backtest.report import html_page, rows, text_table
from loanwatch.backtest.runner import load_folder, run_folder
from loanwatch.gc_tuning import tune_gc
from loanwatch.ledger.policy_file import PolicyError
from loanwatch.replay.runner import iter_lines
from loanwatch.routing.errors import ConfigError
from loanwatch.treatment.config import StrategiesError


@click.command()
@click.argument("log", type=click.Path(exists=True, dir_okay=False, path_type=Path))
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
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path))
def backtest(
    log: Path,
    folders: tuple[Path, ...],
    as_of: object,
    send_at: str,
    html_out: Path | None,
    json_out: Path | None,
) -> None:
    """Replay LOG under each --policy folder and print the KPI differences side by side."""
    if len(folders) < 2:
        raise click.UsageError("give --policy at least twice (the folders to compare)")
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
    figures = [run_folder(lambda: iter_lines(log), f, as_of=day, send_at=at) for f in loaded]
    click.echo(text_table(names, figures))
    if html_out is not None:
        html_out.write_text(html_page(log.name, names, figures), encoding="utf-8")
        click.echo(f"charts: {html_out}", err=True)
    if json_out is not None:
        table = [{"figure": k, "values": v, "difference": d} for k, v, d in rows(names, figures)]
        json_out.write_bytes(orjson.dumps({"folders": names, "figures": table}))
