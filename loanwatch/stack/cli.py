"""``loanwatch stack``: the local Kafka, Redis, Prometheus and Alertmanager.

``up | status | down | prune-topics``: a thin click shell over ``loanwatch.stack.manager``;
all state lives under ``run/``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.table import Table

from loanwatch.stack import log as stack_log
from loanwatch.stack import manager, redis_auth, topics
from loanwatch.stack.errors import StackError
from loanwatch.stack.packaged import DEFAULT_RETENTION
from loanwatch.stack.paths import default_paths

_STYLE = {"up": "green", "external": "yellow", "starting": "yellow", "down": "red"}


def _show(path: Path) -> str:
    """A log path relative to the repository (``run/kafka/kafka.log``) when it is inside it."""
    try:
        return str(path.relative_to(default_paths().root))
    except ValueError:
        return str(path)


def _table(rows: list[manager.ServiceStatus]) -> Table:
    table = Table(title="loanwatch local stack")
    for col in ("service", "state", "pid", "port"):
        table.add_column(col, no_wrap=True)
    table.add_column("log", overflow="fold")
    for row in rows:
        style = _STYLE.get(row.state, "red")
        pid = "-" if row.pid is None else str(row.pid)
        table.add_row(row.name, f"[{style}]{row.state}[/]", pid, str(row.port), _show(row.log_file))
    return table


@click.group()
def stack() -> None:
    """Run the local stack (Kafka, Redis, Prometheus, Alertmanager) on 127.0.0.1."""
    stack_log.configure()


@stack.command()
@click.option(
    "--prometheus-retention",
    default=DEFAULT_RETENTION,
    show_default=True,
    envvar="LOANWATCH_PROMETHEUS_RETENTION",
    help="Prometheus --storage.tsdb.retention.time (applies when Prometheus starts).",
)
def up(prometheus_retention: str) -> None:
    """Install what is missing and start every service that is not running (idempotent)."""
    console = Console()
    try:
        rows = manager.up(default_paths(), retention=prometheus_retention)
    except StackError as exc:
        Console(stderr=True).print(f"[bold red]stack up failed:[/] {exc}", markup=True)
        sys.exit(1)
    console.print(_table(rows))


@stack.command()
def secrets() -> None:
    """Make the stack's secrets without starting anything: the Redis password (run/redis/auth).

    For docker-compose.yml, whose Redis reads the same ``auth.conf`` (idempotent).
    """
    made = redis_auth.ensure(default_paths().service_dir("redis"))
    Console().print(f"Redis password: {_show(made.directory / 'password')}")


@stack.command()
def status() -> None:
    """Show each service: up/down, pid, port, log file. Exit 0 whatever the states."""
    Console().print(_table(manager.status(default_paths())))


@stack.command()
def down() -> None:
    """Stop the services this stack started (by pid file; never by process name)."""
    for name, pid in manager.down(default_paths()):
        click.echo(f"{name}: {'stopped pid ' + str(pid) if pid else 'not running (ours)'}")


@stack.command("prune-topics")
@click.argument("prefixes", nargs=-1)
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
def prune_topics(prefixes: tuple[str, ...], dry_run: bool) -> None:
    """Delete the local broker's leftover test and benchmark topics (or those of PREFIXES).

    With no PREFIXES: only names tests and benchmarks make (``<word>-test-…``, ``lwm-<hex>.…``,
    ``bench-<YYYYmmddHHMMSS>-…``), never a deployment's topic. A broker with thousands of such
    partitions starts slowly (it loads every partition's log).
    """
    selector = topics.with_prefixes(prefixes) if prefixes else topics.scratch
    bootstrap = manager.StackInfo().kafka_bootstrap
    try:
        if dry_run:
            names = asyncio.run(topics.list_matching(bootstrap, selector))
        else:
            names = topics.prune(bootstrap, selector)
    except KafkaError as exc:
        Console(stderr=True).print(f"[bold red]prune-topics failed:[/] {exc!r}", markup=True)
        sys.exit(1)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {len(names)} topics")
