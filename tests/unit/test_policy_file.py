"""config/policy.yaml validation: every key's bad value stops start-up naming the key and value.

Each case takes the shipped policy, breaks one key and expects :class:`PolicyError` whose message
names that key and shows the bad value, so an operator can fix the file from the message alone.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from loanwatch.ledger.policy import Policy
from loanwatch.ledger.policy_file import (
    DEFAULT_POLICY_PATH,
    PolicyError,
    load_policy,
    policy_from_mapping,
)

SHIPPED: dict[str, Any] = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
SPEC_CLASSES = {"normal": 0, "special_mention": 1, "substandard": 91, "doubtful": 271, "loss": 361}

# (key as the message names it, where it sits in the file, bad value, how the value shows)
BAD: list[tuple[str, tuple[str, ...], Any, str]] = [
    ("business_timezone", ("business_timezone",), "Mars/Olympus", "Mars/Olympus"),
    ("business_timezone", ("business_timezone",), "", "''"),
    ("clock", ("clock",), "sundial", "sundial"),
    ("clock", ("clock",), None, "None"),
    ("tolerance", ("tolerance",), "abc", "abc"),
    ("tolerance", ("tolerance",), "0.001", "0.001"),
    ("tolerance", ("tolerance",), "-1.00", "-1.00"),
    ("allocation_order", ("allocation_order",), ["fee", "interest"], "['fee', 'interest']"),
    ("allocation_order", ("allocation_order",), ["fee", "fee", "principal"], "'fee', 'fee'"),
    ("allocation_order", ("allocation_order",), "fee", "'fee'"),
    ("allocation_order", ("allocation_order",), 5, "5"),
    ("buckets", ("buckets",), {"M0": 1, "M1": 5}, "{'M0': 1, 'M1': 5}"),
    ("buckets", ("buckets",), {"M0": 0, "M1": 0}, "{'M0': 0, 'M1': 0}"),
    ("buckets", ("buckets",), {"M0": 0, "M1": "x"}, "'M1': 'x'"),
    ("buckets", ("buckets",), [0, 1], "[0, 1]"),
    ("buckets", ("buckets",), {}, "{}"),
    ("buckets", ("buckets",), None, "None"),
    ("class_dpd_floors", ("class_dpd_floors",), {"normal": 0, "special": 1}, "'special'"),
    ("class_dpd_floors", ("class_dpd_floors",), {**SPEC_CLASSES, "loss": "x"}, "'loss': 'x'"),
    ("class_dpd_floors", ("class_dpd_floors",), {**SPEC_CLASSES, "loss": 200}, "'loss': 200"),
    ("restructure_observation_days", ("restructure_observation_days",), 0, "0"),
    ("restructure_observation_days", ("restructure_observation_days",), "1y", "'1y'"),
    ("npl_cure_days", ("npl_cure_days",), 0, "0"),
    ("npl_cure_days", ("npl_cure_days",), True, "True"),
    ("watchlist_days", ("watchlist_days",), -1, "-1"),
    ("watchlist_days", ("watchlist_days",), 1.5, "1.5"),
    ("cross_default_share", ("cross_default_share",), "abc", "abc"),
    ("cross_default_share", ("cross_default_share",), "1.5", "1.5"),
    ("cross_default_share", ("cross_default_share",), "-0.1", "-0.1"),
    ("cross_default_share", ("cross_default_share",), "NaN", "NaN"),
    ("orphan_ttl_days", ("orphan_ttl_days",), -1, "-1"),
    ("orphan_ttl_days", ("orphan_ttl_days",), "7d", "'7d'"),
    ("max_clock_jump_days", ("max_clock_jump_days",), 0, "0"),
    ("max_clock_jump_days", ("max_clock_jump_days",), "31d", "'31d'"),
    ("ifrs9", ("ifrs9",), 5, "5"),
    ("ifrs9.stage2_dpd_over", ("ifrs9", "stage2_dpd_over"), -1, "-1"),
    ("ifrs9.stage3_dpd_over", ("ifrs9", "stage3_dpd_over"), "x", "'x'"),
    ("ifrs9", ("ifrs9", "stage4_dpd_over"), 120, "stage4_dpd_over"),
    ("policy", ("bucket",), {"M0": 0}, "bucket"),
]


def _broken(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(SHIPPED)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def test_shipped_policy_is_the_spec_default_but_the_clock_jump_guard() -> None:
    assert load_policy() == replace(Policy(), max_clock_jump_days=31)


def test_a_null_clock_jump_guard_means_no_limit() -> None:
    assert policy_from_mapping({"max_clock_jump_days": None}).max_clock_jump_days is None


def test_every_key_of_the_shipped_file_has_a_bad_value_case() -> None:
    covered = {path[0] for _, path, _, _ in BAD}
    nested = {f"ifrs9.{k}" for k in SHIPPED["ifrs9"]}
    assert set(SHIPPED) <= covered
    assert nested <= {key for key, _, _, _ in BAD}


@pytest.mark.parametrize(
    ("key", "path", "value", "shown"), BAD, ids=[f"{k}={v!r}" for k, _, v, _ in BAD]
)
def test_bad_value_names_key_and_value(
    key: str, path: tuple[str, ...], value: Any, shown: str
) -> None:
    doc = _broken(path, value)
    before = copy.deepcopy(doc)
    with pytest.raises(PolicyError) as caught:
        policy_from_mapping(doc)
    message = str(caught.value)
    assert repr(key) in message or f"{key}:" in message, message
    assert shown in message, message
    assert doc == before, "validation must not mutate the caller's mapping"


def test_load_policy_names_the_file_when_it_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.yaml")
    (tmp_path / "policy.yaml").write_text("buckets: [unclosed\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(tmp_path)
    (tmp_path / "policy.yaml").write_text("- a list\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="expected a mapping"):
        load_policy(tmp_path)
