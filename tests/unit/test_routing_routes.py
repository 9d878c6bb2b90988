"""Routes: every alert kind is routed, first match wins, continue, Decimal amounts, validation."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from loanwatch.routing.alert import KINDS, alert_from_labels, parse_alert
from loanwatch.routing.cli import routes
from loanwatch.routing.config import DEFAULT_ROUTING, load_routing, routing_from_mapping
from loanwatch.routing.errors import AlertFormatError, ConfigError
from loanwatch.routing.routes import match, owner

SCENARIO = Path(__file__).parents[1] / "fixtures/scenarios/rules-allocation-reversal-promise"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded = yaml.safe_load(DEFAULT_ROUTING.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def names(labels: dict[str, str]) -> list[str]:
    setup = load_routing()
    return [r.name for r in setup.routes_for(alert_from_labels(labels))]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"kind": "overdue", "bucket": "M1", "product": "consumer"}, ["consumer-early"]),
        (
            {"kind": "overdue", "bucket": "M2", "product": "sme", "overdue_amount": "9999.99"},
            ["sme"],
        ),
        (
            {"kind": "overdue", "bucket": "M2", "product": "sme", "overdue_amount": "10000.00"},
            ["sme-large"],
        ),
        (
            {"kind": "bucket_changed", "bucket": "M4", "product": "sme", "severity": "critical"},
            ["late-stage"],
        ),
        ({"kind": "bucket_changed", "bucket": "M7+", "product": "consumer"}, ["late-stage"]),
        ({"kind": "cured", "severity": "info"}, ["cured"]),
        ({"kind": "classification_changed", "severity": "critical"}, ["risk-critical"]),
        ({"kind": "classification_changed", "severity": "info"}, ["risk"]),
        ({"kind": "cross_default", "severity": "critical"}, ["risk-critical"]),
        ({"kind": "cross_default_cleared", "severity": "info"}, ["risk"]),
        ({"kind": "promise_broken", "product": "consumer"}, ["consumer-early"]),
        ({"kind": "payment_reversed", "product": "sme"}, ["sme"]),
        ({"kind": "risk_signal", "severity": "critical"}, ["risk-critical"]),
        ({"kind": "risk_signal", "severity": "warning"}, ["risk"]),
        ({"kind": "pre_due_risk", "probability": "0.41"}, ["pre-due-risk"]),
    ],
)
def test_shipped_config_routes(labels: dict[str, str], expected: list[str]) -> None:
    assert names(labels) == expected


def test_every_kind_and_severity_gets_a_route() -> None:
    setup = load_routing()
    for kind in sorted(KINDS):
        for severity in ("info", "warning", "critical"):
            routed = setup.routes_for(alert_from_labels({"kind": kind, "severity": severity}))
            assert routed, (kind, severity)
            assert all(r.team in setup.teams for r in routed)


def test_scenario_alerts_route(doc: dict[str, Any]) -> None:
    setup = routing_from_mapping(doc)
    lines = (SCENARIO / "expected_alerts.jsonl").read_text().splitlines()
    got = []
    for i, line in enumerate(lines):
        body = json.loads(line) | {"alert_id": f"a{i}"}
        got.append(setup.routes_for(parse_alert(body)))
    assert [r[0].name for r in got] == [
        "consumer-early",
        "risk",  # classification_changed to special_mention: warning, no item
        "cured",
        "risk",
        "sme",
        "risk",
        "sme",
        "sme",
    ]
    assert [owner(r) is not None for r in got].count(True) == 4


def test_continue_collects_routes_and_default(doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(doc)
    doc["routes"].insert(
        0,
        {
            "name": "audit",
            "match": ["region = north"],
            "team": "ops",
            "escalation": "notify-only",
            "channels": ["alertmanager"],
            "continue": True,
            "work_item": False,
        },
    )
    setup = routing_from_mapping(doc)
    got = setup.routes_for(
        alert_from_labels({"kind": "overdue", "region": "north", "product": "sme"})
    )
    assert [r.name for r in got] == ["audit", "sme"]
    assert owner(got) is not None and owner(got).name == "sme"  # type: ignore[union-attr]
    got = setup.routes_for(alert_from_labels({"kind": "cured", "region": "north"}))
    assert [r.name for r in got] == ["audit", "cured"]


def test_regex_is_anchored_and_negative_matchers(doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(doc)
    doc["routes"] = [
        {"name": "r1", "match": ['region =~ "nor"'], "team": "ops", "escalation": "standard"},
        {
            "name": "r2",
            "match": ["region != east", 'bucket !~ "M[0-3]"'],
            "team": "ops",
            "escalation": "standard",
        },
        {"name": "r3", "match": ["dpd < 31", "dpd > 0"], "team": "ops", "escalation": "standard"},
    ]
    setup = routing_from_mapping(doc)
    route = lambda labels: [r.name for r in match(setup.table, alert_from_labels(labels))]  # noqa: E731
    assert route({"region": "north", "bucket": "M5"}) == ["r2"]
    assert route({"region": "east", "bucket": "M5", "dpd": "12"}) == ["r3"]
    assert route({"region": "east", "bucket": "M5", "dpd": "31"}) == ["default"]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {
                "routes": [
                    {
                        "name": "x",
                        "match": ["colour = red"],
                        "team": "ops",
                        "escalation": "standard",
                    }
                ]
            },
            "unknown alert field 'colour'",
        ),
        (
            {
                "routes": [
                    {
                        "name": "x",
                        "match": ["kind = overdo"],
                        "team": "ops",
                        "escalation": "standard",
                    }
                ]
            },
            "unknown alert kind 'overdo'",
        ),
        (
            {
                "routes": [
                    {
                        "name": "x",
                        "match": ["overdue_amount >= lots"],
                        "team": "ops",
                        "escalation": "standard",
                    }
                ]
            },
            "'overdue_amount' needs a number",
        ),
        (
            {
                "routes": [
                    {
                        "name": "x",
                        "match": ["bucket >= M2"],
                        "team": "ops",
                        "escalation": "standard",
                    }
                ]
            },
            "only applies to amounts",
        ),
        (
            {"routes": [{"name": "x", "team": "nobody", "escalation": "standard"}]},
            "unknown team 'nobody'",
        ),
        ({"routes": [{"name": "x", "team": "ops", "escalation": "slow"}]}, "unknown policy 'slow'"),
        (
            {
                "routes": [
                    {"name": "x", "team": "ops", "escalation": "standard", "priority": "high"}
                ]
            },
            "routes[0].priority",
        ),
        (
            {
                "routes": [
                    {"name": "x", "team": "ops", "escalation": "standard", "channels": ["pager"]}
                ]
            },
            "unknown channel 'pager'",
        ),
        (
            {"routes": [{"name": "x", "team": "ops", "escalation": "standard", "retry": 3}]},
            "unknown key 'retry'",
        ),
        (
            {
                "escalation_policies": {
                    "standard": {"levels": [{"notify": "oncall"}, {"notify": "ops-duty"}]}
                }
            },
            "ack_timeout: required",
        ),
        (
            {
                "escalation_policies": {
                    "standard": {"levels": [{"notify": "oncall", "ack_timeout": "soon"}]}
                }
            },
            "expected a duration",
        ),
    ],
)
def test_validation_names_key_and_value(
    doc: dict[str, Any], patch: dict[str, Any], message: str
) -> None:
    bad = copy.deepcopy(doc) | patch
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        routing_from_mapping(bad)


def test_alert_parsing_rejects_malformed() -> None:
    with pytest.raises(AlertFormatError, match="alert_id"):
        parse_alert({"kind": "overdue", "loan_id": "L", "business_date": "2026-01-01"})
    with pytest.raises(AlertFormatError, match="kind"):
        parse_alert(
            {"alert_id": "a", "kind": "boom", "loan_id": "L", "business_date": "2026-01-01"}
        )


def test_cli_routes_test_prints_route_team_oncall_channels_escalation() -> None:
    result = CliRunner().invoke(
        routes,
        [
            "test",
            "kind=overdue",
            "bucket=M2",
            "product=sme",
            "overdue_amount=15000.00",
            "--at",
            "2026-03-09T10:00:00+08:00",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "route: sme-large" in result.output
    assert "team:       sme-collections   priority: P1" in result.output
    assert "on call:    s-liu" in result.output  # second week of the weekly rotation
    assert "channels:   email:oncall, webhook:crm" in result.output
    assert "L0: oncall -> s-liu   (after 10m without ack)" in result.output


def test_cli_verify_receivers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOANWATCH_ALERTMANAGER_URL", raising=False)
    runner = CliRunner()
    ok = runner.invoke(routes, ["test", "kind=overdue", "--verify-receivers"])
    assert ok.exit_code == 0 and "receivers: ok" in ok.output
    bad = runner.invoke(
        routes, ["test", "kind=risk_signal", "severity=critical", "--verify-receivers"]
    )
    assert bad.exit_code == 1 and "LOANWATCH_ALERTMANAGER_URL" in bad.output
    check = runner.invoke(routes, ["check"])
    assert check.exit_code == 0 and "jurisdictions CN, US" in check.output
