"""The scorecard: binned features, weights of evidence, a logistic regression, points per bin.

``model.json`` (written by ``loanwatch model train``, reviewed like config) holds, for each
feature, its bins (upper edges, inclusive; a ``missing`` bin for a feature not known yet),
each bin's weight of evidence and points, and the regression's coefficients. Scoring is pure
Python over those numbers, summed in the model's feature order: the same state gives the same
probability bit for bit in replay and in the worker, and anyone can recompute it by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

FORMAT = 1


class ModelError(ValueError):
    """model.json is not a scorecard this version reads: retrain (``loanwatch model train``)."""


@dataclass(frozen=True, slots=True)
class Bin:
    upper: float | None  # inclusive upper edge; None: no upper edge (the last bin)
    missing: bool  # the bin of a feature with no value yet
    woe: float
    points: int
    label: str


@dataclass(frozen=True, slots=True)
class FeatureBins:
    name: str
    coef: float
    bins: tuple[Bin, ...]

    def bin_of(self, value: float | None) -> int:
        for i, b in enumerate(self.bins):
            if b.missing:
                if value is None:
                    return i
            elif value is not None and (b.upper is None or value <= b.upper):
                return i
        return len(self.bins) - 1  # a missing value without a missing bin: the last bin

    @property
    def best_points(self) -> int:
        return max(b.points for b in self.bins)


@dataclass(frozen=True, slots=True)
class Score:
    probability: float
    points: int
    reasons: tuple[str, ...]  # the three bins that cost most points (against their best bin)


@dataclass(frozen=True, slots=True)
class Scorecard:
    version: str
    intercept: float
    features: tuple[FeatureBins, ...]
    meta: dict[str, Any]
    # Per feature: (name, bin_of, per bin (coef * woe, points, points lost, reason code)),
    # derived once from ``features`` (scoring runs once per installment of every loan).
    _compiled: tuple[Any, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = tuple(
            (
                f.name,
                f.bin_of,
                tuple(
                    (
                        f.coef * b.woe,
                        b.points,
                        f.best_points - b.points,
                        reason_code(f.name, b.label),
                    )
                    for b in f.bins
                ),
            )
            for f in self.features
        )
        object.__setattr__(self, "_compiled", compiled)

    def score(self, values: dict[str, float | None]) -> Score:
        logit = self.intercept  # summed in the model's feature order: the same bits anywhere
        points = 0
        costs: list[tuple[int, int, str]] = []
        get = values.get
        for rank, (name, bin_of, bins) in enumerate(self._compiled):
            term, bin_points, lost, reason = bins[bin_of(get(name))]
            logit += term
            points += bin_points
            if lost > 0:
                costs.append((-lost, rank, reason))
        costs.sort()
        probability = 1.0 / (1.0 + math.exp(-logit))
        return Score(round(probability, 6), points, tuple(c[2] for c in costs[:3]))


def reason_code(feature: str, label: str) -> str:
    """A bin as a reason code a person reads: ``late_1>3``, ``reversals<=0``, ``2<dpd_now<=5``,
    ``contacts=missing`` (not ``reversals=<=0``)."""
    if label.startswith(("<=", ">")):
        return f"{feature}{label}"
    if label.startswith("(") and label.endswith("]") and "," in label:
        lo, hi = label[1:-1].split(",", 1)
        return f"{lo}<{feature}<={hi}"
    return f"{feature}={label}"


def scorecard_from_json(doc: dict[str, Any]) -> Scorecard:
    if doc.get("format") != FORMAT:
        raise ModelError(f"model format {doc.get('format')!r}, this version reads {FORMAT}")
    try:
        features = tuple(
            FeatureBins(
                name=str(f["name"]),
                coef=float(f["coef"]),
                bins=tuple(
                    Bin(
                        upper=None if b.get("upper") is None else float(b["upper"]),
                        missing=bool(b.get("missing", False)),
                        woe=float(b["woe"]),
                        points=int(b["points"]),
                        label=str(b["label"]),
                    )
                    for b in f["bins"]
                ),
            )
            for f in doc["features"]
        )
        return Scorecard(str(doc["version"]), float(doc["intercept"]), features, doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"model.json is not a scorecard: {exc!r}") from exc


def load_scorecard(path: Path) -> Scorecard:
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ModelError(f"cannot read model {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ModelError(f"model {path} is not a JSON object")
    return scorecard_from_json(doc)
