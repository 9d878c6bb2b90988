"""``loanwatch audit``: verify the chains, replay them, make a signing key.

Reads the audit topic (and, for ``replay``, the input topics) from Kafka; exit code 1 when a
check fails, with the first bad record of each partition named.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import click

from loanwatch.agents.settings import DEMO_AUDIT_KEY
from loanwatch.audit import keys
from loanwatch.audit.kafka_io import Stored, bootstrap_of
from loanwatch.streams.topics import TopicNames


def _names(topic_prefix: str) -> TopicNames:
    return TopicNames().with_prefix(topic_prefix)


broker_option = click.option(
    "--broker", default="kafka://127.0.0.1:9092", show_default=True, help="Kafka URL."
)
prefix_option = click.option("--topic-prefix", default="", help="Prefix of every topic name.")
topic_option = click.option("--topic", help="Audit topic (default: <prefix>loan.audit).")
archive_option = click.option(
    "--archive",
    "archive_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Read an archive (loanwatch archive) instead of Kafka.",
)


def _records(bootstrap: str, topic: str, archive_dir: Path | None) -> dict[int, list[Stored]]:
    if archive_dir is not None:
        from loanwatch.audit.archive import read_audit

        return read_audit(archive_dir)
    from loanwatch.audit import kafka_io

    return asyncio.run(kafka_io.read_topic(bootstrap, topic))


@click.group()
def audit() -> None:
    """The auditor's trail: verify and replay the audit chains (docs/audit.md)."""


@audit.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def keygen(out: Path) -> None:
    """Make an Ed25519 signing key OUT (mode 0600) and OUT.pub; never overwrites one."""
    try:
        keys.generate(out, exist_ok=False)
    except keys.AuditKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{out} (key id {keys.key_id(keys.load_public(keys.public_path(out)))})")


@audit.command()
@broker_option
@prefix_option
@topic_option
@archive_option
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Trusted checkpoint key(s) (PEM; default: the demo key's .pub).",
)
@click.option(
    "--complete/--no-complete",
    default=False,
    help="Also fail when an input offset is not audited yet (compares with the input ends).",
)
def verify(
    broker: str,
    topic_prefix: str,
    topic: str | None,
    archive_dir: Path | None,
    public_keys: tuple[Path, ...],
    complete: bool,
) -> None:
    """Check every chain, every signature and that no input offset is missing."""
    from loanwatch.audit import kafka_io
    from loanwatch.audit.verify import verify as run_verify

    names = _names(topic_prefix)
    trusted = [keys.load_public(p) for p in public_keys or (keys.public_path(DEMO_AUDIT_KEY),)]
    bootstrap = bootstrap_of(broker)
    audit_topic = topic or names.audit
    started = time.monotonic()
    records = _records(bootstrap, audit_topic, archive_dir)
    ends = None
    if complete:
        lanes = (*names.inputs(), names.commands)
        ends = asyncio.run(kafka_io.end_offsets(bootstrap, lanes, sorted(records)))
    report = run_verify(records, trusted, lane_ends=ends)
    seconds = time.monotonic() - started
    total = sum(s.records for s in report.partitions)
    for s in report.partitions:
        click.echo(
            f"partition {s.partition}: {s.records} records ({s.inputs} inputs, {s.marks} marks, "
            f"{s.checkpoints} checkpoints, {s.resends} resent copies), "
            f"business date {s.business_date}, head {s.head[:16]}"
        )
    click.echo(f"verified {total} records in {seconds:.2f} s ({total / max(seconds, 1e-9):.0f}/s)")
    if not records:
        raise click.ClickException(f"no audit records on {audit_topic}")
    for problem in report.problems:
        click.echo(f"BAD {problem}", err=True)
    if not report.ok:
        sys.exit(1)
    click.echo("OK: every chain, signature and input offset checks")


@audit.command()
@broker_option
@prefix_option
@topic_option
@archive_option
@click.option(
    "--config", "config_dir", type=click.Path(path_type=Path), help="Folder with policy.yaml."
)
@click.option(
    "--early-warning",
    "early_warning_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The workers' early_warning.yaml (their pre_due_risk alert ids are in the chains).",
)
def replay(
    broker: str,
    topic_prefix: str,
    topic: str | None,
    archive_dir: Path | None,
    config_dir: Path | None,
    early_warning_file: Path | None,
) -> None:
    """Re-run each partition's recorded inputs; check every state hash and alert id."""
    from loanwatch.audit import kafka_io
    from loanwatch.audit.replay import ReplayReport, decode_records, replay_partition
    from loanwatch.early_warning.config import EarlyWarningError, load_early_warning
    from loanwatch.ledger.policy_file import PolicyError, load_policy

    try:
        policy = load_policy(config_dir)
        warning = load_early_warning(early_warning_file) if early_warning_file else None
    except (PolicyError, EarlyWarningError) as exc:
        raise click.ClickException(str(exc)) from exc
    names = _names(topic_prefix)
    bootstrap = bootstrap_of(broker)
    audit_topic = topic or names.audit
    started = time.monotonic()
    records = _records(bootstrap, audit_topic, archive_dir)
    if not records:
        raise click.ClickException(f"no audit records on {audit_topic}")
    lanes = (*names.inputs(), names.commands)
    report = ReplayReport()
    partitions = len(records)
    for p in sorted(records):
        if archive_dir is not None:
            from loanwatch.audit.archive import read_inputs

            inputs = read_inputs(archive_dir, p)
        else:
            inputs = asyncio.run(kafka_io.read_inputs(bootstrap, lanes, p))
        chain = decode_records(records[p])
        replay_partition(p, chain, inputs, policy, names, partitions, report, early_warning=warning)
    seconds = time.monotonic() - started
    click.echo(
        f"replayed {report.inputs} inputs in {seconds:.2f} s "
        f"({report.inputs / max(seconds, 1e-9):.0f}/s): {report.states} state hashes, "
        f"{report.alerts} alert ids"
    )
    for d in report.divergences:
        click.echo(f"DIVERGES {d}", err=True)
    if not report.ok:
        sys.exit(1)
    click.echo("OK: every state hash and alert id reproduced")


@click.command()
@broker_option
@prefix_option
@topic_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Archive root (a local folder or an object-store mount).",
)
def archive(broker: str, topic_prefix: str, topic: str | None, out_dir: Path) -> None:
    """Write the audit records and their inputs as daily Parquet files (docs/audit.md)."""
    from loanwatch.audit import kafka_io
    from loanwatch.audit.archive import write_archive

    names = _names(topic_prefix)
    bootstrap = bootstrap_of(broker)
    records = asyncio.run(kafka_io.read_topic(bootstrap, topic or names.audit))
    if not records:
        raise click.ClickException(f"no audit records on {topic or names.audit}")
    lanes = (*names.inputs(), names.commands)
    inputs = {p: asyncio.run(kafka_io.read_inputs(bootstrap, lanes, p)) for p in records}
    files = write_archive(out_dir, records, inputs)
    total = sum(len(v) for v in records.values())
    click.echo(f"archived {total} audit records and their inputs: {len(files)} files in {out_dir}")
