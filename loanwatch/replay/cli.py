"""``loanwatch replay``: the engine over a ``.jsonl`` log, no Kafka (SPEC §7)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import click
import orjson

from loanwatch.early_warning.config import EarlyWarningError, load_early_warning
from loanwatch.gc_tuning import tune_gc
from loanwatch.ledger.alerts import Alert
from loanwatch.ledger.engine import DeadLetter
from loanwatch.ledger.policy_file import PolicyError, load_policy
from loanwatch.replay.runner import iter_lines, write_jsonl
from loanwatch.replay.runner import replay as run_replay
from loanwatch.treatment.config import StrategiesError, load_strategies


@click.command()
@click.argument("events", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Replay to this business date.",
)
@click.option(
    "--config", "config_dir", type=click.Path(path_type=Path), help="Folder holding policy.yaml."
)
@click.option(
    "--strategies",
    "strategies_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="strategies.yaml: segments, paths, experiments (segment_changed alerts; off without).",
)
@click.option(
    "--early-warning",
    "early_warning_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="early_warning.yaml: scores and pre_due_risk alerts (docs/early-warning.md; off without).",
)
@click.option(
    "--state-out", type=click.Path(dir_okay=False, path_type=Path), help="One state per loan."
)
@click.option(
    "--alerts-out", type=click.Path(dir_okay=False, path_type=Path), help="Alerts in firing order."
)
@click.option(
    "--rejects-out", type=click.Path(dir_okay=False, path_type=Path), help="Dead letters."
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: on a terminal)."
)
def replay(
    events: Path,
    as_of: object,
    config_dir: Path | None,
    strategies_file: Path | None,
    early_warning_file: Path | None,
    state_out: Path | None,
    alerts_out: Path | None,
    rejects_out: Path | None,
    progress: bool | None,
) -> None:
    """Replay EVENTS.jsonl and write states, alerts and rejects. Exit 0 even with rejects."""
    try:
        policy = load_policy(config_dir)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from exc
    strategies = None
    if strategies_file is not None:
        try:
            strategies = load_strategies(strategies_file, policy)
        except StrategiesError as exc:
            raise click.ClickException(str(exc)) from exc
    warning = None
    if early_warning_file is not None:
        try:
            warning = load_early_warning(early_warning_file)
        except EarlyWarningError as exc:
            raise click.ClickException(str(exc)) from exc
    day: date | None = as_of.date() if as_of is not None else None  # type: ignore[attr-defined]
    tune_gc()
    show = sys.stderr.isatty() if progress is None else progress
    with contextlib.ExitStack() as stack:
        alerts_fh = stack.enter_context(alerts_out.open("wb")) if alerts_out else None
        rejects_fh = stack.enter_context(rejects_out.open("wb")) if rejects_out else None
        on_line = None
        if show:
            from rich.progress import Progress

            bar = stack.enter_context(Progress(transient=True))
            task = bar.add_task("replaying", total=events.stat().st_size)
            on_line = lambda n: bar.advance(task, n)  # noqa: E731

        def on_alert(alert: Alert) -> None:
            if alerts_fh is not None:
                alerts_fh.write(orjson.dumps(alert.to_json()) + b"\n")

        def on_reject(reject: DeadLetter) -> None:
            if rejects_fh is not None:
                rejects_fh.write(orjson.dumps(reject.to_json()) + b"\n")

        result = run_replay(
            iter_lines(events),
            policy,
            as_of=day,
            on_alert=on_alert,
            on_reject=on_reject,
            on_line=on_line,
            strategies=strategies,
            early_warning=warning,
        )
    if state_out:
        with state_out.open("wb") as fh:
            layers: list[_Describes] = [
                x for x in (result.treatment, result.early_warning) if x is not None
            ]
            # SPEC §7 fields, then the loan's segment and arm, then its early-warning score
            write_jsonl(fh, (_described(v.to_json(), v.loan_id, layers) for v in result.states))
    click.echo(f"replayed {result.events} events: {len(result.states)} loans", err=True)


class _Describes(Protocol):
    def describe(self, loan_id: str) -> dict[str, Any]: ...


def _described(doc: dict[str, Any], loan_id: str, layers: Sequence[_Describes]) -> dict[str, Any]:
    for layer in layers:
        doc |= layer.describe(loan_id)
    return doc
