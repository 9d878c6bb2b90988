"""``loanwatch report portfolio --as-of D``: a past business day's figures from the trail."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click

from loanwatch.audit.kafka_io import bootstrap_of


@click.group()
def report() -> None:
    """Reports for the risk desk and the auditors (docs/audit.md, "Portfolio report")."""


@report.command()
@click.option("--as-of", "as_of", required=True, help="The business day (YYYY-MM-DD).")
@click.option(
    "--archive",
    "archive_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Read an archive (loanwatch archive) instead of Kafka.",
)
@click.option("--broker", default="kafka://127.0.0.1:9092", show_default=True, help="Kafka URL.")
@click.option("--topic-prefix", default="", help="Prefix of every topic name.")
@click.option(
    "--config", "config_dir", type=click.Path(path_type=Path), help="Folder with policy.yaml."
)
@click.option(
    "--out-dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output."
)
@click.option(
    "--early-warning",
    "early_warning_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The workers' early_warning.yaml, if they ran with one (its alert ids are in the trail).",
)
def portfolio(
    as_of: str,
    archive_dir: Path | None,
    broker: str,
    topic_prefix: str,
    config_dir: Path | None,
    out_dir: Path,
    early_warning_file: Path | None,
) -> None:
    """Classification, migration, PAR, NPL, roll/cure rates and IFRS 9 stages of day AS_OF,
    replayed from the audited inputs: CSV files and report.html in OUT_DIR."""
    from loanwatch.early_warning.config import EarlyWarningError, load_early_warning
    from loanwatch.ledger.policy_file import PolicyError, load_policy
    from loanwatch.report import csv_out, html
    from loanwatch.report.book import build
    from loanwatch.report.figures import compute
    from loanwatch.report.source import TrailSource, each_partition, load_chains
    from loanwatch.streams.topics import TopicNames

    try:
        day = date.fromisoformat(as_of)
        policy = load_policy(config_dir)
        warning = load_early_warning(early_warning_file) if early_warning_file else None
    except (ValueError, PolicyError, EarlyWarningError) as exc:
        raise click.ClickException(str(exc)) from exc
    names = TopicNames().with_prefix(topic_prefix)
    source = TrailSource(names, bootstrap_of(broker), archive_dir)
    chains = load_chains(source)
    if not chains:
        raise click.ClickException(f"no audit records in {archive_dir or source.topic}")
    book = build(each_partition(source, chains), policy, names, len(chains), day, warning)
    for d in book.replay.divergences:
        click.echo(f"DIVERGES {d}", err=True)
    if not book.replay.ok:
        click.echo("the trail does not replay: no figures from it", err=True)
        sys.exit(1)
    figures = compute(book)
    provenance = (
        f"Replayed from {'archive ' + str(archive_dir) if archive_dir else 'Kafka'}: "
        f"{book.replay.inputs} audited inputs up to the end of {day}, every state hash and "
        f"alert id reproduced; {len(chains)} partitions."
    )
    files = csv_out.write(figures, out_dir)
    page = out_dir / "report.html"
    page.write_text(html.page(figures, provenance), encoding="utf-8")
    click.echo(
        f"{day}: {figures.loans} active loans, outstanding {figures.outstanding}, "
        f"PAR30 {csv_out.ratio(figures.par30)}, PAR90 {csv_out.ratio(figures.par90)}, "
        f"NPL {csv_out.ratio(figures.npl)}; {provenance}"
    )
    click.echo(f"wrote {len(files) + 1} files in {out_dir}")
