"""Fit a scorecard on training rows: bins and WoE per feature, a logistic regression, points.

The only module that imports scikit-learn (at call time): scoring never needs it. The fit is
deterministic (lbfgs, no random state involved), so the same logs give the same model.json.
Points use the usual scaling: ``base_points`` at odds ``base_odds`` (good:bad), ``pdo`` points
to double the odds; each bin's points share the intercept equally across the features.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from loanwatch.early_warning.binning import Binned, fit_bins
from loanwatch.early_warning.features import FEATURES
from loanwatch.early_warning.rows import Row
from loanwatch.early_warning.scorecard import FORMAT, scorecard_from_json

BASE_POINTS, BASE_ODDS, PDO = 600.0, 50.0, 20.0
DISTRIBUTION_BINS = 10


def fit_model(rows: Sequence[Row], version: str, meta: dict[str, Any]) -> dict[str, Any]:
    """The model.json document for ``rows`` (each with its target)."""
    from sklearn.linear_model import LogisticRegression  # training only

    targets = [r.target for r in rows]
    binned: list[tuple[str, Binned]] = []
    for name in FEATURES:
        b = fit_bins([r.values.get(name) for r in rows], targets)
        if len(b.woe) > 1:  # a feature with one bin says nothing
            binned.append((name, b))
    matrix = [[b.woe[b.index(r.values.get(name))] for name, b in binned] for r in rows]
    fit = LogisticRegression(C=1.0, solver="lbfgs", max_iter=2000).fit(matrix, targets)
    intercept = float(fit.intercept_[0])
    coefs = [float(c) for c in fit.coef_[0]]
    factor = PDO / math.log(2)
    offset = BASE_POINTS - factor * math.log(BASE_ODDS)
    share = (offset - factor * intercept) / len(binned)
    features = []
    for (name, b), coef in zip(binned, coefs, strict=True):
        bins = []
        for i, (woe, label) in enumerate(zip(b.woe, b.labels, strict=True)):
            missing = b.has_missing and i == len(b.woe) - 1
            upper = None if missing else b.uppers[i]
            points = round(share - factor * coef * woe)
            bins.append({"upper": upper, "missing": missing, "woe": woe, "points": points,
                         "label": label})  # fmt: skip
        features.append({"name": name, "coef": round(coef, 8), "bins": bins})
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": version,
        "target": "installment still owing at the end of its due date + 30 days",
        "scaling": {"base_points": BASE_POINTS, "base_odds": BASE_ODDS, "pdo": PDO},
        "intercept": round(intercept, 8),
        "features": features,
        "training": meta | {"rows": len(rows), "bad_rate": round(sum(targets) / len(rows), 6)},
    }
    card = scorecard_from_json(doc)
    probs = sorted(card.score(r.values).probability for r in rows)
    edges = [probs[len(probs) * k // DISTRIBUTION_BINS] for k in range(1, DISTRIBUTION_BINS)]
    doc["training"]["probability_deciles"] = edges  # PSI reference (loanwatch model report)
    return doc
