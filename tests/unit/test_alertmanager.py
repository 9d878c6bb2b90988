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
