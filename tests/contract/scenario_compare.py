"""Compare replay outputs with a scenario's expected files, as the scenarios' README defines."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"
EXTRA_FIELDS = {
    "overdue": ("due_date",),
    "bucket_changed": ("from_bucket", "to_bucket"),
    "cured": ("from_bucket",),
    "classification_changed": ("from_class", "to_class"),
    "cross_default": ("borrower_npl_share",),
    "cross_default_cleared": ("borrower_npl_share",),
    "promise_broken": ("promise_id", "promised_amount", "paid_amount"),
    "payment_reversed": ("payment_id",),
    "risk_signal": ("signal", "signal_severity"),
}
ALERT_KEYS = ("kind", "loan_id", "business_date", "dpd", "bucket")


def scenario_dirs() -> list[Path]:
    return sorted(p for p in SCENARIOS.iterdir() if p.is_dir())


def read_jsonl(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def alert_key(alert: dict[str, Any]) -> tuple[Any, ...]:
    extra = EXTRA_FIELDS.get(alert["kind"], ())
    return tuple(alert.get(k) for k in ALERT_KEYS) + tuple((k, alert.get(k)) for k in extra)


def state_mismatches(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    if [e["loan_id"] for e in expected] != [a["loan_id"] for a in actual]:
        problems.append("loan ids differ or are not sorted the same way")
    by_id = {a["loan_id"]: a for a in actual}
    for exp in expected:
        got = by_id.get(exp["loan_id"], {})
        for key, value in exp.items():
            if got.get(key) != value:
                problems.append(f"{exp['loan_id']}.{key}: expected {value!r}, got {got.get(key)!r}")
    return problems


def alert_mismatches(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    exp, got = Counter(map(alert_key, expected)), Counter(map(alert_key, actual))
    missing = [f"missing {k}" for k in sorted(exp - got, key=str)]
    extra = [f"unexpected {k}" for k in sorted(got - exp, key=str)]
    ids = [a["alert_id"] for a in actual]
    dupes = [f"duplicate alert_id {i}" for i, n in Counter(ids).items() if n > 1]
    return missing + extra + dupes


def reject_mismatches(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    exp = Counter(r["reason"] for r in expected)
    got = Counter(r["reason"] for r in actual)
    return [
        f"reason {k}: expected {exp[k]}, got {got[k]}"
        for k in sorted(exp | got)
        if exp[k] != got[k]
    ]


def spec_config(folder: Path) -> Path:
    """The shipped policy with the SPEC's defaults (no clock-jump guard): the scenarios'
    expectations, and replay's ``Policy()``. The shipped file sets the guard to 31 days."""
    repo = Path(__file__).resolve().parents[2]
    folder.mkdir(parents=True, exist_ok=True)
    for shipped in (repo / "config").glob("*.yaml"):  # metrics.yaml, routing.yaml, ...
        (folder / shipped.name).write_bytes(shipped.read_bytes())
    text = (repo / "config" / "policy.yaml").read_text(encoding="utf-8")
    lines = [
        "max_clock_jump_days: null" if line.startswith("max_clock_jump_days:") else line
        for line in text.splitlines()
    ]
    (folder / "policy.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
