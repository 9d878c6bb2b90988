"""``loanwatch routes``: test the routing config offline and run the router service.

``routes test kind=overdue bucket=M2 product=sme`` prints the matching routes, the team, the
collector on call now, the channels and the escalation, like ``amtool config routes test``.
Thin: parsing arguments and printing; the decisions are made by the pure routing modules.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from loanwatch.routing.alert import alert_from_labels
from loanwatch.routing.config import (
    DEFAULT_COMPLIANCE,
    DEFAULT_ROUTING,
    RoutingSetup,
    load_compliance,
    load_routing,
    verify_receivers,
)
from loanwatch.routing.durations import format_duration
from loanwatch.routing.errors import AlertFormatError, ConfigError
from loanwatch.routing.routes import Route
from loanwatch.routing.schedules import oncall_at


@click.group()
def routes() -> None:
    """Alert routing to on-call collectors: test routes, run the router."""


def _instant(at: str | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(at)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def describe(setup: RoutingSetup, route: Route, now: datetime) -> list[str]:
    team = setup.teams[route.team]
    policy = setup.table.policy(route)
    lines = [
        f"route: {route.name}" + (" (continue)" if route.continue_ else ""),
        f"  matchers:   {', '.join(map(str, route.matchers)) or '(default: everything)'}",
        f"  team:       {route.team}   priority: {route.priority}"
        + ("" if route.work_item else "   (notify only, no work item)"),
        f"  on call:    {oncall_at(team, now) or '(nobody)'}"
        f"   at {now.astimezone(team.timezone).isoformat()}",
        f"  channels:   {', '.join(map(str, route.channels)) or '(none)'}",
        f"  escalation: {policy.name}",
    ]
    for i, level in enumerate(policy.levels):
        who = setup.resolve(level.notify, route.team, now) or "(nobody)"
        after = (
            f"after {format_duration(level.ack_timeout)} without ack"
            if level.ack_timeout
            else "last level"
        )
        lines.append(f"    L{i}: {level.notify} -> {who}   ({after})")
    return lines


@routes.command("test")
@click.argument("labels", nargs=-1)
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=DEFAULT_ROUTING)
@click.option("--at", help="instant for the on-call lookup (ISO 8601); default now")
@click.option(
    "--verify-receivers", "verify", is_flag=True, help="fail when a matched channel has no receiver"
)
@click.option("--alertmanager-url", envvar="LOANWATCH_ALERTMANAGER_URL", default=None, hidden=True)
def test_cmd(
    labels: tuple[str, ...],
    config_path: Path,
    at: str | None,
    verify: bool,
    alertmanager_url: str | None,
) -> None:
    """Show where an alert with LABELS (key=value ...) is routed."""
    try:
        setup = load_routing(config_path)
        pairs = dict(label.split("=", 1) for label in labels if "=" in label)
        if bad := [label for label in labels if "=" not in label]:
            raise click.BadParameter(f"expected key=value, got {bad[0]!r}")
        alert = alert_from_labels(pairs)
    except (ConfigError, AlertFormatError) as exc:
        raise click.ClickException(str(exc)) from exc
    now = _instant(at)
    matched = setup.routes_for(alert)
    for route in matched:
        click.echo("\n".join(describe(setup, route, now)))
    if verify:
        names = {r.name for r in matched}
        problems = [p for name, p in verify_receivers(setup, alertmanager_url) if name in names]
        for p in problems:
            click.echo(f"receiver problem: {p}", err=True)
        if problems:
            sys.exit(1)
        click.echo("receivers: ok")


@routes.command("check")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=DEFAULT_ROUTING)
@click.option("--compliance", type=click.Path(path_type=Path), default=DEFAULT_COMPLIANCE)
def check_cmd(config_path: Path, compliance: Path) -> None:
    """Validate routing.yaml and compliance.yaml; print a summary."""
    try:
        setup = load_routing(config_path)
        rules = load_compliance(compliance)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"{config_path}: {len(setup.table.routes)} routes + default, {len(setup.teams)} teams, "
        f"{len(setup.table.policies)} escalation policies"
    )
    click.echo(f"{compliance}: jurisdictions {', '.join(sorted(rules.rule_sets))}")


@routes.command("oncall")
@click.argument("team")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=DEFAULT_ROUTING)
@click.option("--at", help="instant (ISO 8601); default now")
def oncall_cmd(team: str, config_path: Path, at: str | None) -> None:
    """Print who is on call for TEAM."""
    try:
        setup = load_routing(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if team not in setup.teams:
        raise click.ClickException(f"unknown team {team!r} (known: {sorted(setup.teams)})")
    click.echo(oncall_at(setup.teams[team], _instant(at)) or "(nobody)")


@routes.command("serve")
@click.option(
    "--register-target/--no-register-target",
    "register",
    default=None,
    help="Register the API port (its /metrics) as a Prometheus file_sd target of the "
    "loanwatch-router job while running [default: LOANWATCH_REGISTER_TARGET, else no].",
)
@click.option(
    "--targets-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="file_sd folder for that target (implies --register-target) [default: "
    "LOANWATCH_PROMETHEUS_TARGETS_DIR, else the local stack's run/prometheus/targets/router/].",
)
@click.option(
    "--portfolio",
    default=None,
    help="`portfolio` label of the target: the workers' one [default: LOANWATCH_PORTFOLIO].",
)
def serve_cmd(register: bool | None, targets_dir: Path | None, portfolio: str | None) -> None:
    """Run the router: consume loan.alerts, keep work items, notify, serve the collector API."""
    import asyncio

    from loanwatch.routing.service import run_service
    from loanwatch.routing.settings import RouterSettings

    if targets_dir is not None and register is None:
        register = True  # a folder given on the command line means "register there"
    given: dict[str, object] = {
        "register_target": register,
        "prometheus_targets_dir": targets_dir,
        "portfolio": portfolio,
    }
    settings = RouterSettings().model_copy(update={k: v for k, v in given.items() if v is not None})
    try:
        asyncio.run(run_service(settings))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
