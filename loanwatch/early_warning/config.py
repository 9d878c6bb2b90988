"""``early_warning.yaml``: the pre-due rule's policy (lead days, threshold) and its model.

Validated at start-up; an error names the key and the bad value. Optional: without the file
(``--early-warning`` / ``LOANWATCH_EARLY_WARNING_FILE`` unset) no score is kept and no
``pre_due_risk`` alert is sent, so the SPEC's contract scenarios are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loanwatch.early_warning.scorecard import ModelError, Scorecard, load_scorecard

EARLY_WARNING_FILE = "early_warning.yaml"


class EarlyWarningError(ValueError):
    """early_warning.yaml is wrong: fix the key it names (docs/early-warning.md)."""


@dataclass(frozen=True, slots=True)
class EarlyWarningPolicy:
    lead_days: int = 5  # score this many days before each due date
    threshold: float = 0.30  # a probability at or above it sends ``pre_due_risk``
    scorecard: Scorecard | None = None  # None: features only (training)


def policy_from_doc(doc: Any, base: Path) -> EarlyWarningPolicy:
    if not isinstance(doc, dict):
        raise EarlyWarningError("early_warning.yaml must be a mapping")
    unknown = set(doc) - {"model", "lead_days", "threshold"}
    if unknown:
        raise EarlyWarningError(f"early_warning.yaml: unknown keys {sorted(unknown)}")
    lead = doc.get("lead_days", 5)
    if not isinstance(lead, int) or isinstance(lead, bool) or not 0 <= lead <= 60:
        raise EarlyWarningError(f"lead_days must be an integer 0..60, got {lead!r}")
    threshold = doc.get("threshold", 0.30)
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
        raise EarlyWarningError(f"threshold must be a probability, got {threshold!r}")
    if not 0.0 < float(threshold) <= 1.0:
        raise EarlyWarningError(f"threshold must be in (0, 1], got {threshold!r}")
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        raise EarlyWarningError(f"model must name a model.json file, got {model!r}")
    try:
        scorecard = load_scorecard(base / model)
    except ModelError as exc:
        raise EarlyWarningError(f"model: {exc}") from exc
    return EarlyWarningPolicy(lead, float(threshold), scorecard)


def load_early_warning(path: Path) -> EarlyWarningPolicy:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise EarlyWarningError(f"cannot read {path}: {exc}") from exc
    return policy_from_doc(doc, path.parent)
