"""``loanwatch dashboards``: build the JSON, check it (offline and against Prometheus), push it.

This module must never hold dashboard content; it wires the commands to build/check/push.
"""

from __future__ import annotations

from pathlib import Path

import click

from loanwatch.dashboards.build import DEFAULT_DIR, load_all, write_all

DIR_OPTION = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIR,
    show_default=True,
    help="Folder of the dashboard JSON files.",
)


@click.group()
def dashboards() -> None:
    """Grafana dashboards as code."""


@dashboards.command()
@DIR_OPTION
def build(directory: Path) -> None:
    """Regenerate the dashboard JSON from the Python builders."""
    changed = write_all(directory)
    for path in changed:
        click.echo(f"wrote {path}")
    if not changed:
        click.echo(f"{directory}: up to date")


@dashboards.command()
@DIR_OPTION
@click.option("--prometheus-url", default="http://127.0.0.1:9090", show_default=True)
@click.option("--offline", is_flag=True, help="Only the structural checks; query nothing.")
@click.option("--window", default="5m", show_default=True, help="Value of $__rate_interval.")
@click.option("--range", "range_", default="1h", show_default=True, help="Value of $__range.")
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME=REGEX",
    help="Value of a template variable instead of All (.*), e.g. --var portfolio=prod.",
)
def check(
    directory: Path,
    prometheus_url: str,
    offline: bool,
    window: str,
    range_: str,
    variables: tuple[str, ...],
) -> None:
    """Validate every dashboard; unless --offline, run every query and report empty ones."""
    from loanwatch.dashboards.check import run_queries, validate

    overrides = {}
    for item in variables:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=REGEX", param_hint="--var")
        overrides[name] = value

    boards = load_all(directory)
    if not boards:
        raise click.ClickException(
            f"no dashboards in {directory}; run `loanwatch dashboards build`"
        )
    problems = validate(boards)
    summary = f"{len(boards)} dashboards valid"
    if not offline and not problems:
        count, problems = run_queries(boards, prometheus_url, window, range_, overrides)
        summary += f", {count - len(problems)}/{count} queries returned data"
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        raise click.ClickException(f"{len(problems)} problem(s)")
    click.echo(summary)


@dashboards.command()
@DIR_OPTION
@click.option("--url", required=True, help="Grafana base URL, e.g. http://127.0.0.1:3000")
@click.option("--token", envvar="GRAFANA_TOKEN", help="Service account token [env GRAFANA_TOKEN].")
@click.option("--folder", default="loanwatch", show_default=True)
def push(directory: Path, url: str, token: str | None, folder: str) -> None:
    """Upload the dashboards into a Grafana folder, overwriting what is there."""
    from loanwatch.dashboards.push import push as upload

    for where in upload(load_all(directory), url, token, folder):
        click.echo(f"pushed {where}")
