"""``loanwatch model train`` and ``loanwatch model report``: fit and judge the scorecard.

Both replay logs to build rows (:mod:`.rows`); ``train`` writes model.json, ``report``
scores held-out logs with the pure scorecard and prints AUC, KS and Brier on its last lines.
"""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from loanwatch.early_warning.report import evaluate_logs, render_text
from loanwatch.early_warning.rows import Row, build_rows
from loanwatch.early_warning.scorecard import ModelError, load_scorecard
from loanwatch.gc_tuning import tune_gc
from loanwatch.ledger.policy_file import PolicyError, load_policy
from loanwatch.replay.runner import iter_lines

LOGS = click.argument("logs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))  # fmt: skip # noqa: E501
CONFIG = click.option("--config", "config_dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Config folder (policy.yaml); default config/.")  # fmt: skip # noqa: E501
LEAD = click.option("--lead-days", type=click.IntRange(0, 60), default=5, show_default=True, help="Score this many days before each due date.")  # fmt: skip # noqa: E501


@click.group()
def model() -> None:
    """Train and evaluate the early-warning scorecard (docs/early-warning.md)."""


def _rows(logs: tuple[Path, ...], config_dir: Path | None, lead_days: int) -> list[list[Row]]:
    try:
        policy = load_policy(config_dir)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from exc
    tune_gc()
    return [build_rows(iter_lines(log), policy, lead_days) for log in logs]


@model.command()
@LOGS
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--version", "version", default=None, help="Model version (default: from --out).")
@CONFIG
@LEAD
def train(
    logs: tuple[Path, ...], out: Path, version: str | None, config_dir: Path | None, lead_days: int
) -> None:
    """Replay LOGS, build a row per installment scored, fit and write model.json."""
    from loanwatch.early_warning.train import fit_model  # scikit-learn: training only

    rows = [r for part in _rows(logs, config_dir, lead_days) for r in part]
    if not rows or len({r.target for r in rows}) < 2:
        raise click.ClickException("the logs give no rows with both outcomes: nothing to fit")
    meta = {"logs": [p.name for p in logs], "lead_days": lead_days}
    doc = fit_model(rows, version or out.stem, meta)
    out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    bad = sum(r.target for r in rows) / len(rows)
    click.echo(f"{len(rows)} rows, bad rate {bad:.3f}, {len(doc['features'])} features -> {out}")


@model.command()
@LOGS
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)  # fmt: skip # noqa: E501
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="HTML report with charts.")  # fmt: skip # noqa: E501
@click.option("--threshold", type=float, multiple=True, help="Alert thresholds for the coverage table (repeatable).")  # fmt: skip # noqa: E501
@CONFIG
@LEAD
def report(
    logs: tuple[Path, ...],
    model_path: Path,
    out: Path | None,
    threshold: tuple[float, ...],
    config_dir: Path | None,
    lead_days: int,
) -> None:
    """Score LOGS with the model; print the report (AUC, KS, Brier last); --out: HTML."""
    try:
        card = load_scorecard(model_path)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from exc
    parts = _rows(logs, config_dir, lead_days)
    result = evaluate_logs(card, [p.name for p in logs], parts, threshold or (0.2, 0.3, 0.4, 0.5))
    if out is not None:
        from loanwatch.early_warning.html import render_html

        out.write_text(render_html(result), encoding="utf-8")
    click.echo(render_text(result))
