"""The Prometheus config, rules and rule tests, checked by the real ``promtool``.

promtool is installed by the stack start-up (Debian's ``prometheus`` package); a missing binary
is a failure here, never a skip, so CI cannot go green without running the checks.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from loanwatch.stack.packaged import render_prometheus_config

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "config" / "prometheus"
RULE_FILES = sorted((PROM_DIR / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM_DIR / "tests").glob("*.yml"))
PROMTOOL = Path("/usr/bin/promtool")


def run_promtool(*args: str, cwd: Path | None = None) -> str:
    assert PROMTOOL.exists(), (
        f"{PROMTOOL} is missing: install Debian's `prometheus` package "
        "(`loanwatch stack up` does it)"
    )
    proc = subprocess.run(
        [str(PROMTOOL), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    return output


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules() -> list[dict[str, Any]]:
    return [rule for f in RULE_FILES for group in load(f)["groups"] for rule in group["rules"]]


def test_there_are_rule_and_test_files() -> None:
    assert RULE_FILES, "no config/prometheus/rules/*.yml"
    assert TEST_FILES, "no config/prometheus/tests/*.yml"


def test_effective_prometheus_config_is_valid(tmp_path: Path) -> None:
    # The stack renders the template with absolute rule paths into run/prometheus/; do the same
    # into a temporary folder so the check covers the file Prometheus really loads.
    template = load(PROM_DIR / "prometheus.yml")
    effective = render_prometheus_config(template, PROM_DIR)
    (tmp_path / "targets").mkdir()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(effective, sort_keys=False))
    output = run_promtool("check", "config", str(config))
    # Every rule file is found through the rendered glob.
    for rule_file in RULE_FILES:
        assert str(rule_file) in output


def test_rule_files_are_valid() -> None:
    run_promtool("check", "rules", *map(str, RULE_FILES))


def test_rule_unit_tests_pass() -> None:
    run_promtool("test", "rules", *(p.name for p in TEST_FILES), cwd=PROM_DIR / "tests")


def test_every_recording_and_alert_rule_has_a_unit_test() -> None:
    tested_exprs: list[str] = []
    tested_alerts: set[str] = set()
    for path in TEST_FILES:
        for case in load(path)["tests"]:
            tested_exprs += [t["expr"] for t in case.get("promql_expr_test", [])]
            tested_alerts |= {t["alertname"] for t in case.get("alert_rule_test", [])}
    for rule in rules():
        if "record" in rule:
            name = rule["record"]
            assert any(name == expr.split("{")[0] for expr in tested_exprs), f"untested {name}"
        else:
            assert rule["alert"] in tested_alerts, f"untested alert {rule['alert']}"


def test_alerts_carry_team_severity_and_annotations() -> None:
    alerts = [rule for rule in rules() if "alert" in rule]
    assert alerts
    for rule in alerts:
        labels = rule["labels"]
        assert labels["team"] in {"risk-desk", "on-call"}, rule["alert"]
        assert labels["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    teams = {rule["labels"]["team"] for rule in alerts}
    assert teams == {"risk-desk", "on-call"}


def test_recording_rules_keep_the_portfolio_label() -> None:
    # Two portfolios in one Prometheus must never be mixed: every aggregation keeps it.
    for rule in rules():
        if "record" in rule:
            assert "by (portfolio" in rule["expr"], rule["record"]
