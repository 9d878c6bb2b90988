"""routing.yaml and compliance.yaml: a bad value anywhere stops with a ConfigError naming it.

Every leaf of the shipped files is replaced in turn by values no key accepts (a mapping, a
negative number) and by a nonsense string (except for free-form names), and the error must name
the leaf's path (``routes[0].team``) and show the value. (Known gaps of loanwatch/routing
would be strict xfails: they start failing once fixed).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from loanwatch.ledger.contact_outcomes import CONTACT_OUTCOMES
from loanwatch.routing.compliance import parse_compliance
from loanwatch.routing.config import routing_from_mapping
from loanwatch.routing.errors import ConfigError
from loanwatch.simulate.recovery import OUTCOMES

CONFIG = Path(__file__).resolve().parents[2] / "config"
ROUTING: dict[str, Any] = yaml.safe_load((CONFIG / "routing.yaml").read_text(encoding="utf-8"))
COMPLIANCE: dict[str, Any] = yaml.safe_load(
    (CONFIG / "compliance.yaml").read_text(encoding="utf-8")
)
Path_ = tuple[str | int, ...]

# Keys whose value is any non-empty string by design (a label, not a reference).
FREE_NAMES = {"name"}
# Gaps: fields routing/config.py takes without a check (none left; kept for the next one).
UNCHECKED_ROUTING: set[str] = set()
TEAM_MEMBER_KEYS: set[str] = set()


def _leaves(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list) and node and all(isinstance(x, dict) for x in node):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, i))
    else:
        yield path, node


def _dotted(path: Path_) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else f"{'.' if out else ''}{key}"
    return out


def _with(doc: dict[str, Any], path: Path_, value: Any) -> dict[str, Any]:
    broken = copy.deepcopy(doc)
    node: Any = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return broken


def _cases(doc: dict[str, Any], unchecked: set[str]) -> list[Any]:
    """One case per leaf and bad value; a known gap is shown once per key, not per leaf."""
    cases, gaps_seen = [], set()
    for path, _ in _leaves(doc):
        key = str(path[-1])
        bad_values: list[Any] = [{"bad": "value"}, -5]
        if key not in FREE_NAMES:
            bad_values.append("???")
        for bad in bad_values:
            marks = []
            if key in unchecked | TEAM_MEMBER_KEYS:
                if (key, repr(bad)) in gaps_seen:
                    continue
                gaps_seen.add((key, repr(bad)))
                reason = "not validated" if key in unchecked else "refused, key not named"
                marks.append(pytest.mark.xfail(strict=True, reason=f"gap: {key} {reason}"))
            cases.append(pytest.param(path, bad, marks=marks, id=f"{_dotted(path)}={bad!r}"))
    return cases


def _assert_named(
    load: Callable[[Any], object], doc: dict[str, Any], path: Path_, bad: Any
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(_with(doc, path, bad))
    message = str(caught.value)
    assert _dotted(path) in message, message
    assert repr(bad) in message or str(bad) in message, message


def test_shipped_files_load() -> None:
    routing_from_mapping(ROUTING)
    parse_compliance(COMPLIANCE)


@pytest.mark.parametrize(("path", "bad"), _cases(ROUTING, UNCHECKED_ROUTING))
def test_routing_bad_value_names_key_and_value(path: Path_, bad: Any) -> None:
    _assert_named(routing_from_mapping, ROUTING, path, bad)


@pytest.mark.parametrize(("path", "bad"), _cases(COMPLIANCE, set()))
def test_compliance_bad_value_names_key_and_value(path: Path_, bad: Any) -> None:
    _assert_named(parse_compliance, COMPLIANCE, path, bad)


def _routing_with(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc = copy.deepcopy(ROUTING)
    edit(doc)
    return doc


@pytest.mark.parametrize(
    ("edit", "named", "shown"),
    [
        (
            lambda d: d["routes"][0]["channels"].append("pigeon:x"),
            "routes[0].channels[4]",
            "pigeon",
        ),
        (lambda d: d["routes"][0]["match"].append("kind ~~ x"), "routes[0].match[2]", "kind ~~ x"),
        (lambda d: d["routes"][0].update(match=["dpd >= ten"]), "routes[0].match[0]", "ten"),
        (lambda d: d["routes"][0].update(match=['bucket =~ "M[4"']), "routes[0].match[0]", "M[4"),
        (lambda d: d["routes"][0].update(continue_=True), "routes[0]", "continue_"),
        (lambda d: d["teams"]["ops"].update(fallback="nobody"), "teams.ops", "nobody"),
        (
            lambda d: d["teams"]["risk-desk"]["rotations"][0]["members"].append("nobody"),
            "teams.risk-desk",
            "nobody",
        ),
    ],
    ids=["channel", "matcher", "number", "regex", "unknown-key", "fallback", "member"],
)
def test_routing_list_entries_and_references(
    edit: Callable[[dict[str, Any]], None], named: str, shown: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        routing_from_mapping(_routing_with(edit))
    assert named in str(caught.value)
    assert shown in str(caught.value)


def test_compliance_unknown_channel_in_a_list() -> None:
    doc = copy.deepcopy(COMPLIANCE)
    doc["jurisdictions"]["CN"]["caps"][0]["channels"].append("pigeon")
    with pytest.raises(ConfigError, match=r"jurisdictions\.CN\.caps\[0\]\.channels.*'pigeon'"):
        parse_compliance(doc)


def test_compliance_unknown_outcome_in_a_list() -> None:
    """A misspelt outcome would never match: refused, naming the entry and the vocabulary."""
    doc = copy.deepcopy(COMPLIANCE)
    doc["jurisdictions"]["CN"]["caps"][0]["outcomes"].append("eaten")
    with pytest.raises(ConfigError, match=r"caps\[0\]\.outcomes\[5\].*'eaten'.*no_answer"):
        parse_compliance(doc)


def test_the_shipped_rules_count_outcomes_the_simulator_and_scenarios_produce() -> None:
    produced = set(OUTCOMES) | {"promised"}
    counted = {
        o
        for j in COMPLIANCE["jurisdictions"].values()
        for rule in (*j.get("caps", []), *j.get("cool_offs", []))
        for o in rule.get("outcomes", [])
    }
    assert produced <= set(CONTACT_OUTCOMES)
    assert {"reached", "no_answer"} <= counted & produced
