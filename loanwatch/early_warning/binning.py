"""Bins and weights of evidence of one feature, from training rows (pure Python).

Equal-frequency candidate edges over the feature's values, adjacent bins merged until each
holds at least :data:`MIN_SHARE` of the rows; a separate bin for rows where the feature is not
known yet. WoE = ln(share of goods / share of bads), smoothed by half a row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MAX_BINS = 8
MIN_SHARE = 0.03


@dataclass(frozen=True, slots=True)
class Binned:
    uppers: tuple[float | None, ...]  # inclusive upper edges of the value bins; last None
    has_missing: bool
    woe: tuple[float, ...]  # per value bin, then the missing bin (if any)
    labels: tuple[str, ...]

    def index(self, value: float | None) -> int:
        if value is None:
            return len(self.uppers) if self.has_missing else len(self.uppers) - 1
        for i, upper in enumerate(self.uppers):
            if upper is None or value <= upper:
                return i
        return len(self.uppers) - 1


def _quantile_edges(values: list[float]) -> list[float]:
    ordered = sorted(values)
    edges: list[float] = []
    for k in range(1, MAX_BINS):
        edge = ordered[min(len(ordered) - 1, len(ordered) * k // MAX_BINS)]
        if edge not in edges and edge < ordered[-1]:
            edges.append(edge)
    return edges


def _merge_small(edges: list[float], values: list[float], total: int) -> list[float]:
    while edges:
        counts = [0] * (len(edges) + 1)
        for v in values:
            counts[next((i for i, e in enumerate(edges) if v <= e), len(edges))] += 1
        smallest = min(range(len(counts)), key=lambda i: counts[i])
        if counts[smallest] >= MIN_SHARE * total:
            break
        # drop the edge between the smallest bin and its smaller neighbour
        if smallest == 0:
            edges.pop(0)
        elif smallest == len(counts) - 1 or counts[smallest - 1] <= counts[smallest + 1]:
            edges.pop(smallest - 1)
        else:
            edges.pop(smallest)
    return edges


def _label(lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return "any"
    if lo is None:
        return f"<={hi:g}"
    if hi is None:
        return f">{lo:g}"
    return f"({lo:g},{hi:g}]"


def fit_bins(values: Sequence[float | None], targets: Sequence[int]) -> Binned:
    known = [v for v in values if v is not None]
    edges = _merge_small(_quantile_edges(known), known, len(values)) if known else []
    uppers: tuple[float | None, ...] = (*edges, None)
    has_missing = len(known) < len(values)
    binned = Binned(uppers, has_missing, (), ())
    n = len(uppers) + has_missing
    goods, bads = [0] * n, [0] * n
    for v, t in zip(values, targets, strict=True):
        i = binned.index(v)
        if t:
            bads[i] += 1
        else:
            goods[i] += 1
    good_total, bad_total = sum(goods) + 0.5, sum(bads) + 0.5
    woe = tuple(
        round(math.log(((g + 0.5) / good_total) / ((b + 0.5) / bad_total)), 6)
        for g, b in zip(goods, bads, strict=True)
    )
    lowers: list[float | None] = [None, *edges]
    labels = [_label(lo, hi) for lo, hi in zip(lowers, uppers, strict=True)]
    if has_missing:
        labels.append("missing")
    return Binned(uppers, has_missing, woe, tuple(labels))
