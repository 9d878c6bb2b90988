"""The Alertmanager config, checked and routed by the real ``amtool``.

amtool comes with Debian's ``prometheus-alertmanager`` package, installed by the stack
start-up; a missing binary fails these tests rather than skipping them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "alertmanager" / "alertmanager.yml"
RULE_FILES = sorted((ROOT / "config" / "prometheus" / "rules").glob("*.yml"))
AMTOOL = Path("/usr/bin/amtool")


def run_amtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert AMTOOL.exists(), (
        f"{AMTOOL} is missing: install Debian's `prometheus-alertmanager` package "
        "(`loanwatch stack up` does it)"
    )
    return subprocess.run(
        [str(AMTOOL), *args], capture_output=True, text=True, timeout=60, check=False
    )


def route(labels: dict[str, str], expected: str) -> None:
    pairs = [f"{key}={value}" for key, value in labels.items()]
    proc = run_amtool(
        "config", "routes", "test", f"--config.file={CONFIG}", f"--verify.receivers={expected}",
        *pairs,
    )  # fmt: skip
    assert proc.returncode == 0, f"{labels} -> {proc.stdout.strip()} (expected {expected})"


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_config_is_valid() -> None:
    proc = run_amtool("check-config", str(CONFIG))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"alertname": "LoanwatchPar30High", "team": "risk-desk", "severity": "warning"},
         "risk-desk"),
        ({"alertname": "LoanwatchNplRatioHigh", "team": "risk-desk", "severity": "critical"},
         "risk-desk"),
        ({"alertname": "LoanwatchWorkerDown", "team": "on-call", "severity": "critical"},
         "on-call"),
        ({"alertname": "LoanwatchDeadLetters", "team": "on-call", "severity": "warning"},
         "on-call"),
        # No team (someone else's rule): operations owns it.
        ({"alertname": "Watchdog", "severity": "warning"}, "on-call"),
    ],
)  # fmt: skip
def test_routes_by_team(labels: dict[str, str], receiver: str) -> None:
    route(labels, receiver)


def test_a_wrong_expectation_is_reported() -> None:
    # Guards the helper: amtool must fail when the resolved receiver differs.
    proc = run_amtool(
        "config", "routes", "test", f"--config.file={CONFIG}", "--verify.receivers=on-call",
        "team=risk-desk",
    )  # fmt: skip
    assert proc.returncode != 0


def test_every_alert_rule_reaches_its_team() -> None:
    rules = alert_rules()
    assert rules
    for rule in rules:
        labels = {"alertname": rule["alert"], **rule["labels"]}
        route(labels, rule["labels"]["team"])


def test_critical_inhibits_warning_of_the_same_alert() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    inhibits = config["inhibit_rules"]
    assert any(
        rule["source_matchers"] == ['severity="critical"']
        and rule["target_matchers"] == ['severity="warning"']
        and {"alertname", "portfolio"} <= set(rule["equal"])
        for rule in inhibits
    )


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    name, _, value = matcher.partition("=")
    return labels.get(name, "") == value.strip('"')


def inhibited(target: dict[str, str], firing: list[dict[str, str]]) -> bool:
    """Alertmanager's inhibition over the config's rules (equality matchers only, as used):
    a target is muted when a firing source matches a rule's source matchers, the target its
    target matchers, and every ``equal`` label has the same value on both (missing = empty)."""
    rules = yaml.safe_load(CONFIG.read_text())["inhibit_rules"]
    for rule in rules:
        if not all(_matches(m, target) for m in rule["target_matchers"]):
            continue
        for source in firing:
            if source is target or not all(_matches(m, source) for m in rule["source_matchers"]):
                continue
            if all(source.get(k, "") == target.get(k, "") for k in rule.get("equal", [])):
                return True
    return False


def _loan_alert(loan_id: str, kind: str, severity: str) -> dict[str, str]:
    from loanwatch.routing.notify.worker import alertmanager_labels

    entry = {"loan_id": loan_id, "kind": kind, "severity": severity, "team": "collections",
             "priority": "P2", "product": "auto", "region": "south", "bucket": "M3"}  # fmt: skip
    return alertmanager_labels(entry)


def test_a_loans_critical_alert_mutes_only_its_own_warning_twin() -> None:
    critical_a = _loan_alert("L-A", "bucket_changed", "critical")
    warning_a = _loan_alert("L-A", "bucket_changed", "warning")
    warning_a_other_kind = _loan_alert("L-A", "promise_broken", "warning")
    warning_b = _loan_alert("L-B", "bucket_changed", "warning")
    firing = [critical_a, warning_a, warning_a_other_kind, warning_b]
    assert inhibited(warning_a, firing)
    assert not inhibited(warning_b, firing)  # another loan: was muted before loan_id was compared
    assert not inhibited(warning_a_other_kind, firing)
    assert not inhibited(critical_a, firing)


def test_pipeline_alerts_keep_their_critical_twin_inhibition() -> None:
    crit = {"alertname": "LoanwatchConsumerLag", "severity": "critical", "team": "on-call",
            "portfolio": "default", "topic": "loan.payments"}  # fmt: skip
    warn = {**crit, "severity": "warning"}
    other_topic = {**warn, "topic": "loan.accounts"}
    assert inhibited(warn, [crit, warn, other_topic])
    assert not inhibited(other_topic, [crit, warn, other_topic])
