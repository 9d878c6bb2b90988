"""``loanwatch config check DIR``: every configuration problem of a folder, listed at once.

A thin click shell over :mod:`loanwatch.config.check`; it must never change a file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from loanwatch.config.check import check_dir

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "config"


@click.group()
def config() -> None:
    """Validate loanwatch's configuration files."""


@config.command("check")
@click.argument(
    "config_dir", metavar="DIR", required=False, type=click.Path(path_type=Path),
    default=DEFAULT_DIR,
)  # fmt: skip
def check_cmd(config_dir: Path) -> None:
    """Validate policy, routing, compliance and every YAML file in DIR (default: config/).

    Lists every problem and exits 1 if there is any, so a deployment can run it first.
    """
    checked, problems = check_dir(config_dir)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) in {config_dir}", err=True)
        sys.exit(1)
    domain = [name for name in checked if "/" not in name]
    others = len(checked) - len(domain)
    click.echo(f"{config_dir}: ok ({', '.join(domain)} and {others} other YAML files)")
