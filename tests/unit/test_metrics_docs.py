"""docs/metrics.md names every metric, recording rule and alert that exists."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from loanwatch.metrics import register_pipeline_metrics
from loanwatch.metrics.early_warning import register_early_warning_metrics
from loanwatch.metrics.portfolio import PortfolioCollector

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "metrics.md").read_text()


def test_every_exported_metric_is_documented() -> None:
    registry = CollectorRegistry()
    register_pipeline_metrics(registry)
    register_early_warning_metrics(registry)
    names = [f.name + ("_total" if f.type == "counter" else "") for f in registry.collect()]
    names += [f.name for f in PortfolioCollector(list).describe()]
    missing = [name for name in names if f"`{name}`" not in DOC]
    assert not missing


def test_every_rule_is_documented() -> None:
    for path in sorted((ROOT / "config" / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("record") or rule["alert"]
                if name.endswith(("_by_product:ratio", "_by_region:ratio")):
                    name = name.replace("_by_product", "").replace("_by_region", "")
                if name.endswith("_by_product:increase1d"):
                    name = name.replace("_by_product", "")
                assert f"`{name}`" in DOC, name
