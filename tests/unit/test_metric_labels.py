"""product and region label values are bounded by config/metrics.yaml; the rest is ``other``.

Against a real, fresh registry: unlisted values from the feed fold into one ``other`` cell with
exact sums, the shipped file equals the built-in default, and a bad metrics.yaml names the key
and the value.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from loanwatch.config.check import check_dir
from loanwatch.ledger.view import LoanView
from loanwatch.metrics import DEFAULT_LABELS, OTHER, LabelAllowList, PortfolioCollector, load_labels
from loanwatch.metrics.labels import DEFAULT_PATH, MAX_VALUES, LabelsError, labels_from_mapping

from ..views import loan_view

SHIPPED: dict[str, Any] = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))


def view(**changes: object) -> LoanView:
    return replace(loan_view(), **changes)  # type: ignore[arg-type]


def scrape(views: list[LoanView], labels: LabelAllowList = DEFAULT_LABELS) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PortfolioCollector(lambda: views, labels=labels))
    return registry


def _pairs(registry: CollectorRegistry) -> set[tuple[str, str]]:
    return {
        (s.labels["product"], s.labels["region"])
        for family in registry.collect()
        for s in family.samples
        if family.name == "loanwatch_portfolio_loans"
    }


def test_shipped_file_is_the_default() -> None:
    assert load_labels() == DEFAULT_LABELS
    assert load_labels(DEFAULT_PATH.parent) == DEFAULT_LABELS


def test_fold() -> None:
    assert DEFAULT_LABELS.product("sme") == "sme"
    assert DEFAULT_LABELS.product("SME ") == OTHER
    assert DEFAULT_LABELS.region("atlantis") == OTHER
    assert DEFAULT_LABELS.product("unknown") == "unknown"  # the pipeline's own fixed value


def test_unlisted_products_and_regions_share_one_other_cell_with_exact_sums() -> None:
    views = [
        view(loan_id="a", product="consumer", region="east"),
        view(loan_id="b", product="payday-7", region="east", outstanding_principal=Decimal("0.10")),
        view(loan_id="c", product="payday-8", region="mars", outstanding_principal=Decimal("0.20")),
        view(loan_id="d", product="payday-9", region="mars", outstanding_principal=Decimal("0.20")),
    ]
    registry = scrape(views)
    assert _pairs(registry) == {("consumer", "east"), (OTHER, "east"), (OTHER, OTHER)}
    other = {"product": OTHER, "region": OTHER, "bucket": "M0"}
    assert registry.get_sample_value("loanwatch_portfolio_loans", other) == 2.0
    assert registry.get_sample_value("loanwatch_portfolio_outstanding_principal", other) == 0.4


def test_cardinality_is_bounded_whatever_the_feed_sends() -> None:
    views = [view(loan_id=str(i), product=f"p{i}", region=f"r{i}") for i in range(500)]
    views += [view(loan_id="s", product="sme", region="west")]
    assert _pairs(scrape(views)) == {(OTHER, OTHER), ("sme", "west")}


def test_a_configured_list_replaces_the_default(tmp_path: Path) -> None:
    (tmp_path / "metrics.yaml").write_text(
        "labels:\n  product: [payday]\n  region: [mars]\n", encoding="utf-8"
    )
    labels = load_labels(tmp_path)
    views = [view(loan_id="a", product="payday", region="mars"), view(loan_id="b")]
    assert _pairs(scrape(views, labels)) == {("payday", "mars"), (OTHER, OTHER)}


BAD = [
    (("labels", "product"), [], "labels.product", "[]"),
    (("labels", "product"), "consumer", "labels.product", "'consumer'"),
    (("labels", "product"), ["sme", "sme"], "labels.product", "['sme']"),
    (("labels", "product"), ["sme", ""], "labels.product", "''"),
    (("labels", "product"), ["sme", 5], "labels.product", "5"),
    (("labels", "region"), ["east", OTHER], "labels.region", "'other'"),
    (("labels", "region"), None, "labels.region", "None"),
    (("labels", "region"), [f"r{i}" for i in range(MAX_VALUES + 1)], "labels.region", "51"),
    (("labels", "country"), ["cn"], "labels", "country"),
    (("labels",), ["product"], "labels", "['product']"),
    (("label",), {}, "metrics", "label"),
]


@pytest.mark.parametrize(("path", "value", "key", "shown"), BAD, ids=[b[2] for b in BAD])
def test_bad_value_names_key_and_value(
    path: tuple[str, ...], value: Any, key: str, shown: str
) -> None:
    doc = copy.deepcopy(SHIPPED)
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(LabelsError) as caught:
        labels_from_mapping(doc)
    assert key in str(caught.value)
    assert shown in str(caught.value)


def test_config_check_lists_a_bad_metrics_file(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(DEFAULT_PATH.parent, tmp_path / "config")
    (tmp_path / "config" / "metrics.yaml").write_text("labels: {product: []}\n", encoding="utf-8")
    _, problems = check_dir(tmp_path / "config")
    assert [p.file for p in problems] == ["metrics.yaml"]
    assert "labels.product" in problems[0].message
