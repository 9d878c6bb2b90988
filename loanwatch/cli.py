"""The `loanwatch` command: one click group whose subcommands are imported lazily.

Each subcommand lives beside the code it drives (``loanwatch/stack/cli.py``,
``loanwatch/simulate/cli.py``, ...). Importing this module must stay cheap: no Faust,
Kafka or Prometheus import happens until a subcommand that needs it runs.
"""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command or group.
SUBCOMMANDS: dict[str, str] = {
    "archive": "loanwatch.audit.cli:archive",
    "audit": "loanwatch.audit.cli:audit",
    "backtest": "loanwatch.backtest.cli:backtest",
    "config": "loanwatch.config.cli:config",
    "model": "loanwatch.early_warning.cli:model",
    "dashboards": "loanwatch.dashboards.cli:dashboards",
    "produce": "loanwatch.streams.cli:produce",
    "replay": "loanwatch.replay.cli:replay",
    "routes": "loanwatch.routing.cli:routes",
    "run": "loanwatch.console.cli:run",
    "simulate": "loanwatch.simulate.cli:simulate",
    "stack": "loanwatch.stack.cli:stack",
    "worker": "loanwatch.agents.cli:worker",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="loanwatch")
def main() -> None:
    """loanwatch: real-time loan delinquency monitoring."""


if __name__ == "__main__":
    main()
