"""README.md is a newcomer's page that agrees with ``make help`` and ``loanwatch --help``.

Every ``make`` target and ``loanwatch`` command, subcommand and option the README names must
exist, every documented target and command must be named, the page stays short, and it holds one
current benchmark table (the history lives in docs/benchmarks.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import yaml

from loanwatch.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MAKE_HELP = re.compile(r"^([a-zA-Z_-]+):.*?## ", re.MULTILINE)  # the Makefile's `help` grep


def _help_targets() -> set[str]:
    return set(MAKE_HELP.findall((ROOT / "Makefile").read_text(encoding="utf-8")))


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def _loanwatch_spans() -> list[list[str]]:
    """Every inline code span that is a ``loanwatch ...`` command line, split into words."""
    spans = re.findall(r"`(loanwatch [^`]+)`", README)
    return [span.replace("\\|", "|").split() for span in spans]


def _resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    """The command the words name (and its subcommand alternatives ``a|b``), and the rest."""
    ctx = click.Context(main)
    command = main.get_command(ctx, words[1])
    assert command is not None, f"README names `loanwatch {words[1]}`: no such command"
    rest = words[2:]
    if isinstance(command, click.Group) and rest and not rest[0].startswith(("-", "[")):
        for name in rest[0].split("|"):
            assert command.get_command(ctx, name), f"no `loanwatch {words[1]} {name}`"
        if "|" not in rest[0]:
            sub = command.get_command(ctx, rest[0])
            assert sub is not None
            return sub, rest[1:]
        return command, rest[1:]
    return command, rest


def _options(command: click.Command) -> set[str]:
    params = command.get_params(click.Context(command))  # with --help
    return {opt for param in params for opt in (*param.opts, *param.secondary_opts)}


def test_readme_is_short() -> None:
    assert len(README.splitlines()) <= 200


def test_every_make_target_named_exists_and_every_documented_one_is_named() -> None:
    named = set(re.findall(r"\bmake ([a-z][a-z-]*)", README))
    named |= set(re.findall(r"`([a-z][a-z-]*)`", _section("Two commands"))) & _help_targets()
    assert named <= _help_targets(), sorted(named - _help_targets())
    assert _help_targets() <= named | {"help"}, sorted(_help_targets() - named)


def test_every_loanwatch_command_and_option_named_exists() -> None:
    spans = _loanwatch_spans()
    assert spans
    for words in spans:
        if words[1].startswith("-"):
            assert words[1] in _options(main), words
            continue
        command, rest = _resolve(words)
        for word in rest:
            for option in re.findall(r"(?<![\w-])--?[a-z][a-z-]*", word):
                assert option in _options(command), f"{' '.join(words)}: no option {option}"


def test_every_cli_command_is_in_the_commands_table() -> None:
    table = _section("Commands")
    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        assert f"`loanwatch {name}" in table, f"`loanwatch {name}` is missing from ## Commands"
        command = main.get_command(ctx, name)
        if isinstance(command, click.Group):
            row = next(line for line in table.splitlines() if f"`loanwatch {name}" in line)
            for sub in command.list_commands(ctx):
                assert sub in row, f"`loanwatch {name} {sub}` is missing from ## Commands"


def test_one_current_benchmark_table() -> None:
    rows = [line for line in _section("Benchmarks").splitlines() if line.startswith("|")]
    header, rule, *body = rows
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "figure",
        "loanwatch",
        "baseline (same run)",
        "ratio",
        "commit",
    ]
    assert set(rule) <= set("|-: ")
    assert 1 <= len(body) <= 10
    for row in body:
        assert re.fullmatch(r"[0-9a-f]{7,40}", row.strip("|").split("|")[-1].strip()), row
        assert len(row) <= 160, row


def test_benchmark_history_moved_to_docs() -> None:
    text = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    current, history = text.index("## Current figures"), text.index("## History")
    assert current < history
    assert "Why the pipeline is far below 0.25" in text[history:]
    assert "Why the pipeline is far below 0.25" not in README


def test_every_worker_setting_and_policy_key_is_in_the_configuration_reference() -> None:
    from loanwatch.agents.settings import WorkerSettings
    from loanwatch.ledger.policy_file import DEFAULT_POLICY_PATH

    reference = _section("Configuration")
    for name in WorkerSettings.model_fields:
        assert f"`{name.upper()}`" in reference or f"{name.upper()}`" in reference, name
    policy = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    for key in policy:
        assert f"`{key}" in reference, key


@pytest.mark.parametrize("link", re.findall(r"\]\(([^)#]+)\)", README))
def test_links_point_at_files(link: str) -> None:
    assert (ROOT / link).exists(), link
