"""How good a score is on labelled rows: AUC, KS, Brier, deciles, PSI, alert coverage.

Pure Python over (probability, target) pairs; no scikit-learn, so the report runs wherever
the worker runs. Deciles are by probability, highest first (decile 1 = the riskiest tenth).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decile:
    n: int
    mean_probability: float
    bad_rate: float
    lift: float
    capture: float  # cumulative share of all bads in deciles 1..this one


def auc(probs: Sequence[float], targets: Sequence[int]) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    pairs = sorted(zip(probs, targets, strict=True))
    ranks = [0.0] * len(pairs)
    i = 0
    while i < len(pairs):
        j = i
        while j + 1 < len(pairs) and pairs[j + 1][0] == pairs[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    bads = sum(targets)
    goods = len(targets) - bads
    if not bads or not goods:
        return float("nan")
    rank_sum = sum(r for r, (_, t) in zip(ranks, pairs, strict=True) if t)
    return (rank_sum - bads * (bads + 1) / 2) / (bads * goods)


def ks(probs: Sequence[float], targets: Sequence[int]) -> float:
    """Largest gap between the bads' and the goods' cumulative shares, riskiest first."""
    bads = sum(targets) or 1
    goods = (len(targets) - sum(targets)) or 1
    best = cum_b = cum_g = 0.0
    pairs = sorted(zip(probs, targets, strict=True), reverse=True)
    for i, (p, t) in enumerate(pairs):
        cum_b += t / bads
        cum_g += (1 - t) / goods
        if i + 1 == len(pairs) or pairs[i + 1][0] != p:
            best = max(best, abs(cum_b - cum_g))
    return best


def brier(probs: Sequence[float], targets: Sequence[int]) -> float:
    return sum((p - t) ** 2 for p, t in zip(probs, targets, strict=True)) / len(probs)


def deciles(probs: Sequence[float], targets: Sequence[int]) -> list[Decile]:
    pairs = sorted(zip(probs, targets, strict=True), key=lambda x: -x[0])
    n, bads = len(pairs), sum(targets)
    overall = bads / n if n else 0.0
    out, captured = [], 0
    for k in range(10):
        part = pairs[n * k // 10 : n * (k + 1) // 10]
        if not part:
            continue
        b = sum(t for _, t in part)
        captured += b
        rate = b / len(part)
        out.append(Decile(len(part), sum(p for p, _ in part) / len(part), rate,
                          rate / overall if overall else 0.0,
                          captured / bads if bads else 0.0))  # fmt: skip
    return out


def calibration_error(ds: Sequence[Decile]) -> float:
    """Mean |predicted - observed| over the deciles, weighted by their rows."""
    total = sum(d.n for d in ds)
    return sum(d.n * abs(d.mean_probability - d.bad_rate) for d in ds) / total if total else 0.0


def shares(values: Sequence[float], edges: Sequence[float]) -> list[float]:
    """Each bin's share of ``values`` (bins cut at ``edges``; half a row added to each bin)."""
    counts = [0] * (len(edges) + 1)
    for v in values:
        counts[sum(1 for e in edges if v > e)] += 1
    return [(c + 0.5) / (len(values) + 0.5 * len(counts)) for c in counts]


def psi(reference: Sequence[float], probs: Sequence[float], edges: Sequence[float]) -> float:
    """Population stability index of ``probs`` against ``reference`` over bins cut at ``edges``."""
    a, b = shares(reference, edges), shares(probs, edges)
    return sum((y - x) * math.log(y / x) for x, y in zip(a, b, strict=True))


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """Riskiest ``population`` share alerted at ``threshold``: shares of bads and goods in it."""

    threshold: float
    population: float
    bads: float  # true positive rate (ROC's y, KS's upper line)
    goods: float  # false positive rate (ROC's x)


def curve(probs: Sequence[float], targets: Sequence[int], points: int = 100) -> list[CurvePoint]:
    """The ROC / KS curve, riskiest first, from (0, 0) to (1, 1), cut at ties of probability;
    at most about ``points`` points (every ``len // points``-th cut, the last always)."""
    pairs = sorted(zip(probs, targets, strict=True), reverse=True)
    n, bads = len(pairs), sum(targets)
    goods = n - bads
    out = [CurvePoint(1.0, 0.0, 0.0, 0.0)]
    step, cum_b, last = max(n // points, 1), 0, 0
    for i, (p, t) in enumerate(pairs):
        cum_b += t
        cut = i + 1 == n or pairs[i + 1][0] != p
        if cut and (i + 1 - last >= step or i + 1 == n):
            last = i + 1
            cum_g = last - cum_b
            out.append(CurvePoint(p, last / n, cum_b / bads if bads else 0.0,
                                  cum_g / goods if goods else 0.0))  # fmt: skip
    return out


def coverage(
    probs: Sequence[float], targets: Sequence[int], threshold: float
) -> tuple[int, int, int, int]:
    """(alerts, alerts whose installment was paid, bads, bads alerted) at ``threshold``."""
    alerts = sum(1 for p in probs if p >= threshold)
    false = sum(1 for p, t in zip(probs, targets, strict=True) if p >= threshold and not t)
    bads = sum(targets)
    hit = sum(1 for p, t in zip(probs, targets, strict=True) if p >= threshold and t)
    return alerts, false, bads, hit
