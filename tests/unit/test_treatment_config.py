"""strategies.yaml validation: each bad value stops start-up naming the key path and the value."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from loanwatch.config.check import check_dir
from loanwatch.ledger.policy import Policy
from loanwatch.treatment.config import (
    StrategiesError,
    load_optional,
    load_strategies,
    strategies_from_mapping,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED: dict[str, Any] = yaml.safe_load((REPO / "config" / "strategies.yaml").read_text())


def _broken(change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(SHIPPED)
    change(doc)
    return doc


BAD: list[tuple[str, Any, str]] = [
    ("segments[0].when.dpd_min", lambda d: d["segments"][0]["when"].update(dpd_min=-1), "-1"),
    ("segments[4].when.bucket", lambda d: d["segments"][4]["when"].update(bucket="M9"), "M9"),
    ("segments[4].when.class", lambda d: d["segments"][4]["when"].update({"class": "bad"}), "bad"),
    ("segments[3].when.contact", lambda d: d["segments"][3]["when"].update(contact="x"), "x"),
    (
        "segments[1].when.exposure_min",
        lambda d: d["segments"][1]["when"].update(exposure_min=5000),
        "5000",
    ),
    ("segments[1].when", lambda d: d["segments"][1]["when"].update(colour="red"), "colour"),
    ("segments[0].path", lambda d: d["segments"][0].update(path="nowhere"), "nowhere"),
    ("segments[5].when", lambda d: d["segments"][5].update(when={"dpd_min": 1}), "dpd_min"),
    ("segments[1].name", lambda d: d["segments"][1].update(name="legal"), "legal"),
    ("segments[0].name", lambda d: d["segments"][0].update(name="Has Space"), "Has Space"),
    ("paths.late[0].action", lambda d: d["paths"]["late"][0].update(action="shout"), "shout"),
    ("paths.late[1].day", lambda d: d["paths"]["late"][1].update(day=-2), "-2"),
    ("paths.late[2].day", lambda d: d["paths"]["late"][2].update(day=1), "1"),
    (
        "paths.late[1].priority",
        lambda d: d["paths"]["late"][1].update(priority="P1"),
        "P1",
    ),
    (
        "experiments[0].arms",
        lambda d: d["experiments"][0]["arms"]["champion"].update(share=70),
        "90",
    ),
    ("experiments[0].segment", lambda d: d["experiments"][0].update(segment="nope"), "nope"),
    ("unreachable_after", lambda d: d.update(unreachable_after=0), "0"),
    (
        "segments[4].when",
        lambda d: d["segments"][4]["when"].update(dpd_min=20, dpd_max=10),
        "dpd_min",
    ),
]


@pytest.mark.parametrize(("key", "change", "shown"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_value_is_named_with_its_key(key: str, change: Any, shown: str) -> None:
    with pytest.raises(StrategiesError) as caught:
        strategies_from_mapping(_broken(change))
    message = str(caught.value)
    assert repr(key) in message
    assert shown in message


def test_an_unknown_top_level_key_is_named() -> None:
    with pytest.raises(StrategiesError, match="colour"):
        strategies_from_mapping(_broken(lambda d: d.update(colour="red")))


def test_bucket_names_come_from_the_policy() -> None:
    policy = Policy(buckets=(("current", 0), ("late", 1)))
    doc = {"segments": [{"name": "a", "when": {"bucket": "late"}}, {"name": "rest"}]}
    assert strategies_from_mapping(doc, policy).segments[0].when.buckets == {"late"}
    with pytest.raises(StrategiesError, match="M2"):
        strategies_from_mapping({"segments": [{"name": "a", "when": {"bucket": "M2"}}]}, policy)


def test_the_shipped_file_loads() -> None:
    strategies = load_strategies(REPO / "config")
    assert strategies.names()[-1] == "late"
    assert strategies.segments[-1].when == type(strategies.segments[-1].when)()
    assert strategies.arm_names() == (("early-2026q2", "champion"), ("early-2026q2", "challenger"))


def test_a_folder_without_the_file_has_no_strategies(tmp_path: Path) -> None:
    assert load_optional(tmp_path) is None


def test_config_check_reports_the_strategies_file(tmp_path: Path) -> None:
    for shipped in [*(REPO / "config").glob("*.yaml"), *(REPO / "config").glob("*.json")]:
        (tmp_path / shipped.name).write_bytes(shipped.read_bytes())
    checked, problems = check_dir(tmp_path)
    assert "strategies.yaml" in checked
    assert problems == []
    doc = _broken(lambda d: d["segments"][0]["when"].update(dpd_min="ten"))
    (tmp_path / "strategies.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    _, problems = check_dir(tmp_path)
    assert [p.file for p in problems] == ["strategies.yaml"]
    assert "segments[0].when.dpd_min" in problems[0].message
    assert "'ten'" in problems[0].message


def test_every_treatment_metric_is_documented_and_labels_are_bounded() -> None:
    from prometheus_client import CollectorRegistry

    from loanwatch.ledger.alerts import make_alert
    from loanwatch.metrics.treatment import TreatmentCounters, register_treatment_metrics
    from loanwatch.treatment.tracker import Treatment

    doc = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    registry = CollectorRegistry()
    metrics = register_treatment_metrics(registry)
    names = [f.name + "_total" for f in registry.collect()]
    assert names and [n for n in names if f"`{n}`" not in doc] == []
    strategies = load_strategies(REPO / "config")
    counters = TreatmentCounters(metrics, strategies)
    from .test_treatment_segments import VIEW

    day = VIEW.as_of
    from datetime import date

    made = make_alert(
        "segment_changed", date.fromisoformat(day), "k", VIEW, from_segment=None,
        to_segment="early", segment="early", experiment="early-2026q2", arm="champion",
    )  # fmt: skip
    counters.alert(made)
    stray = make_alert(
        "segment_changed", date.fromisoformat(day), "k2", VIEW, from_segment="early",
        to_segment="L0001-unbounded", segment="x", experiment="x", arm="L0001",
    )  # fmt: skip
    counters.alert(stray)
    get = registry.get_sample_value
    assert (
        get("loanwatch_arm_entries_total", {"experiment": "early-2026q2", "arm": "champion"}) == 1
    )
    assert get("loanwatch_arm_entries_total", {"experiment": "other", "arm": "other"}) == 1
    assert (
        get("loanwatch_segment_changes_total", {"from_segment": "early", "to_segment": "other"})
        == 1
    )
    treatment = Treatment(strategies, Policy())
    assert treatment.states == {}
