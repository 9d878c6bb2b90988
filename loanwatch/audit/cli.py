"""``loanwatch audit``: verify the chains, replay them, one loan's history, a signing key.

Reads the audit topic (and, for ``replay`` and ``loan``, the input topics) from Kafka, or an
archive (``--archive``); exit code 1 when a check fails, with the first bad record named.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from loanwatch.agents.settings import DEMO_AUDIT_KEY
from loanwatch.audit import keys
from loanwatch.audit.kafka_io import Stored, bootstrap_of
from loanwatch.ledger.policy import Policy
from loanwatch.report.source import TrailSource, load_chains, partition_inputs
from loanwatch.streams.topics import TopicNames

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
config_option = click.option(
    "--config", "config_dir", type=click.Path(path_type=Path), help="Folder with policy.yaml."
)
public_key_option = click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Trusted checkpoint key(s) (PEM; default: the demo key's .pub).",
)


def trail_source(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every reading command shares (broker, prefix, audit topic, archive),
    handed to the command as one ``source``: where the trail is read (Kafka or archive)."""

    @functools.wraps(command)
    def with_source(
        broker: str, topic_prefix: str, topic: str | None, archive_dir: Path | None, **kw: Any
    ) -> Any:
        names = TopicNames().with_prefix(topic_prefix)
        return command(TrailSource(names, bootstrap_of(broker), archive_dir, topic), **kw)

    for option in (archive_option, topic_option, prefix_option, broker_option):
        with_source = option(with_source)
    return with_source


def _chains(source: TrailSource) -> dict[int, list[Stored]]:
    """Every partition's audit records; none is an error."""
    records = load_chains(source)
    if not records:
        raise click.ClickException(f"no audit records in {source.archive or source.topic}")
    return records


early_warning_option = click.option(
    "--early-warning",
    "early_warning_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The workers' early_warning.yaml (their pre_due_risk alert ids are in the chains).",
)


def _early_warning(path: Path | None) -> Any:
    if path is None:
        return None
    from loanwatch.early_warning.config import EarlyWarningError, load_early_warning

    try:
        return load_early_warning(path)
    except EarlyWarningError as exc:
        raise click.ClickException(str(exc)) from exc


def _policy(config_dir: Path | None) -> Policy:
    from loanwatch.ledger.policy_file import PolicyError, load_policy

    try:
        return load_policy(config_dir)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from exc


def _trusted(public_keys: tuple[Path, ...]) -> list[Any]:
    return [keys.load_public(p) for p in public_keys or (keys.public_path(DEMO_AUDIT_KEY),)]


def _finish(problems: Iterable[object], tag: str, ok: str, *, err: bool = False) -> None:
    """Each problem on stderr as ``TAG problem`` and exit 1; else the OK line (on stderr
    with ``err``: stdout holds a document)."""
    bad = [str(p) for p in problems]
    for line in bad:
        click.echo(f"{tag} {line}", err=True)
    if bad:
        sys.exit(1)
    click.echo(f"OK: {ok}", err=err)


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
@public_key_option
@click.option(
    "--complete/--no-complete",
    default=False,
    help="Also fail when an input offset is not audited yet (compares with the input ends).",
)
@trail_source
def verify(source: TrailSource, public_keys: tuple[Path, ...], complete: bool) -> None:
    """Check every chain, every signature and that no input offset is missing."""
    from loanwatch.audit import kafka_io
    from loanwatch.audit.verify import verify as run_verify

    started = time.monotonic()
    records = _chains(source)
    ends = None
    if complete:
        ends = asyncio.run(kafka_io.end_offsets(source.bootstrap, source.lanes, sorted(records)))
    report = run_verify(records, _trusted(public_keys), lane_ends=ends)
    seconds = time.monotonic() - started
    total = sum(s.records for s in report.partitions)
    for s in report.partitions:
        click.echo(
            f"partition {s.partition}: {s.records} records ({s.inputs} inputs, {s.marks} marks, "
            f"{s.checkpoints} checkpoints, {s.resends} resent copies), "
            f"business date {s.business_date}, head {s.head[:16]}"
        )
    click.echo(f"verified {total} records in {seconds:.2f} s ({total / max(seconds, 1e-9):.0f}/s)")
    _finish(report.problems, "BAD", "every chain, signature and input offset checks")


@audit.command()
@config_option
@early_warning_option
@trail_source
def replay(source: TrailSource, config_dir: Path | None, early_warning_file: Path | None) -> None:
    """Re-run each partition's recorded inputs; check every state hash and alert id."""
    from loanwatch.audit.replay import ReplayReport, decode_records, replay_partition

    policy = _policy(config_dir)
    warning = _early_warning(early_warning_file)
    started = time.monotonic()
    records = _chains(source)
    report = ReplayReport()
    for p in sorted(records):
        chain = decode_records(records[p])
        inputs = partition_inputs(source, p)
        replay_partition(
            p, chain, inputs, policy, source.names, len(records), report, early_warning=warning
        )
    seconds = time.monotonic() - started
    click.echo(
        f"replayed {report.inputs} inputs in {seconds:.2f} s "
        f"({report.inputs / max(seconds, 1e-9):.0f}/s): {report.states} state hashes, "
        f"{report.alerts} alert ids"
    )
    _finish(report.divergences, "DIVERGES", "every state hash and alert id reproduced")


@audit.command()
@click.argument("loan_id")
@config_option
@public_key_option
@click.option(
    "--routing",
    "routing_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The router's routing.yaml: derive the work items the loan's alerts opened.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the whole history document (with its proof)."
)
@early_warning_option
@trail_source
def loan(
    source: TrailSource,
    loan_id: str,
    config_dir: Path | None,
    public_keys: tuple[Path, ...],
    routing_file: Path | None,
    as_json: bool,
    early_warning_file: Path | None,
) -> None:
    """One loan's timeline (events, transitions and their rules, alerts, contacts, promises)
    with the chain proof of its audit records, checked against the trusted key(s)."""
    import orjson

    from loanwatch.audit.loan import LoanNotFound, loan_history, partition_of
    from loanwatch.audit.proof import check_proof

    policy = _policy(config_dir)
    records = _chains(source)
    try:
        p = partition_of(records, loan_id)
    except LoanNotFound as exc:
        raise click.ClickException(str(exc)) from exc
    routing = None
    if routing_file is not None:
        from loanwatch.routing.config import load_routing
        from loanwatch.routing.errors import ConfigError

        try:
            routing = load_routing(routing_file)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
    inputs = partition_inputs(source, p)
    found = loan_history(
        loan_id,
        p,
        records[p],
        inputs,
        policy,
        source.names,
        len(records),
        routing,
        _early_warning(early_warning_file),
    )
    doc = found.document
    check = check_proof(doc, {keys.key_id(k): k for k in _trusted(public_keys)})
    if as_json:
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    else:
        _print_history(doc)
    proof = doc["proof"]
    click.echo(
        f"proof: {len(proof['members'])} records in {len(proof['segments'])} segments, "
        f"{len(check.signed)} under a signed checkpoint, {len(check.unsigned)} after the last "
        f"(chain head seq {proof['head']['seq']} {proof['head']['hash'][:16]})",
        err=as_json,
    )
    problems = [f"replay: {d}" for d in found.report.divergences]
    problems += [f"proof: {x}" for x in check.problems]
    _finish(problems, "BAD", "the proof verifies", err=as_json)


def _print_history(doc: dict[str, Any]) -> None:
    click.echo(f"loan {doc['loan_id']} (partition {doc['partition']}): {doc['state']}")
    for step in doc["steps"]:
        what = step.get("type") or ("(not JSON)" if step.get("input") is None else "input")
        flags = (" rejected " + ",".join(step["dead_letters"])) if step["dead_letters"] else ""
        click.echo(
            f"  {step['business_date']} seq {step['audit_seq']} {step['topic']}@"
            f"{step['offset']} {what} {step.get('event_id') or ''}{flags}"
        )
    for t in doc["transitions"]:
        click.echo(
            f"  {t['business_date']} {t['field']}: {t['from']} -> {t['to']} "
            f"(rule {'+'.join(t['rule'])}, seq {t['cause']['audit_seq']})"
        )
    for a in doc["alerts"]:
        click.echo(f"  {a.get('business_date')} alert {a.get('kind')} {a.get('alert_id')}")
    for c in doc["contacts"]:
        click.echo(f"  {c['business_date']} contact {c.get('channel')} {c.get('outcome')}")
    for pr in doc["promises"]:
        click.echo(
            f"  {pr['made_on']} promise {pr['promise_id']} {pr['amount']} by "
            f"{pr['promised_date']}: {pr['status']}"
        )
    for w in doc["work_items"].get("items", []):
        click.echo(
            f"  {w['opened_on']} work item {w['item_id']} {w['team']} {w['priority']}: "
            f"{w['state']} ({len(w['alerts'])} alerts)"
        )


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

    names = TopicNames().with_prefix(topic_prefix)
    bootstrap = bootstrap_of(broker)
    records = asyncio.run(kafka_io.read_topic(bootstrap, topic or names.audit))
    if not records:
        raise click.ClickException(f"no audit records on {topic or names.audit}")
    lanes = (*names.inputs(), names.commands)
    inputs = {p: asyncio.run(kafka_io.read_inputs(bootstrap, lanes, p)) for p in records}
    files = write_archive(out_dir, records, inputs)
    total = sum(len(v) for v in records.values())
    click.echo(f"archived {total} audit records and their inputs: {len(files)} files in {out_dir}")
