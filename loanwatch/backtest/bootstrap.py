"""Percentile bootstrap confidence intervals of a mean (seeded, no third-party statistics).

``bootstrap_ci(values)`` draws ``resamples`` samples of ``len(values)`` values with replacement
from a ``Random(seed)``, takes each sample's mean, sorts the means and returns the mean of
``values`` with the means at ranks ``floor(B * a / 2)`` and ``ceil(B * (1 - a / 2)) - 1``
(0-based, ``a = 1 - level``). The closed-loop backtest applies it to per-seed KPIs and to the
per-seed paired differences between two strategies (same seed: same book, same borrowers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from random import Random

RESAMPLES = 4_000
LEVEL = 0.95


@dataclass(frozen=True, slots=True)
class Interval:
    mean: float
    low: float
    high: float

    def text(self, digits: int = 4) -> str:
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def bootstrap_ci(
    values: Sequence[float], *, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0
) -> Interval:
    if not values:
        raise ValueError("bootstrap_ci needs at least one value")
    if resamples < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"resamples must be >= 1 and level in (0, 1), got {resamples}, {level}")
    rng = Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    alpha = 1.0 - level
    low = means[math.floor(resamples * alpha / 2)]
    high = means[max(0, math.ceil(resamples * (1 - alpha / 2)) - 1)]
    return Interval(sum(values) / n, low, high)
