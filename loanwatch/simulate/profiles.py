"""Borrower behaviours: who pays on time, who pays late or in part, and who stops paying.

A borrower's profile and region are a pure function of (seed, borrower number), so the
simulator stores nothing per borrower. Behaviour draws use the run's single ``Random``.
"""

from __future__ import annotations

from random import Random

ON_TIME = 0
OCCASIONAL = 1
PARTIAL = 2
CHRONIC = 3
DEFAULTER = 4

PROFILE_NAMES: tuple[str, ...] = (
    "on_time",
    "occasional_late",
    "partial",
    "chronic_late",
    "defaulter",
)
_PROFILE_EDGES: tuple[float, ...] = (0.58, 0.75, 0.83, 0.93, 1.0)

# Chance that a promise to pay made by a borrower of each profile is kept.
PROMISE_KEPT: tuple[float, ...] = (0.9, 0.85, 0.6, 0.5, 0.2)

_MASK = (1 << 64) - 1


def mix64(x: int) -> int:
    """splitmix64 finaliser: a fast, well-spread 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def borrower_traits(seed: int, borrower: int) -> tuple[int, int]:
    """(profile, region index) of a borrower, derived from the seed without any state."""
    h = mix64(mix64(seed) ^ borrower)
    u = (h >> 11) / float(1 << 53)
    profile = next(i for i, edge in enumerate(_PROFILE_EDGES) if u < edge)
    return profile, (h & 0xFFFF) % 5


def payment_delay(rng: Random, profile: int) -> int:
    """Days after the due date the borrower pays (negative: early)."""
    u = rng.random()
    if profile == ON_TIME:
        return rng.randint(1, 3) if u < 0.03 else -rng.randint(0, 5)
    if profile in (OCCASIONAL, DEFAULTER):
        return rng.randint(3, 30) if u < 0.25 else -rng.randint(0, 3)
    if profile == PARTIAL:
        return rng.randint(-3, 12)
    return rng.randint(10, 75) if u < 0.8 else rng.randint(0, 9)


def payment_share(rng: Random, profile: int) -> int:
    """Percent of the amount due the borrower pays this time (100: all of it)."""
    if profile == PARTIAL and rng.random() < 0.6:
        return rng.randint(40, 90)
    if profile == CHRONIC and rng.random() < 0.15:
        return rng.randint(50, 90)
    return 100


def default_after(rng: Random, tenor_left: int) -> int:
    """For a defaulter: the first installment (1-based) they will not pay."""
    return rng.randint(1, max(1, min(4, tenor_left)))


def migrated_arrears(rng: Random, profile: int) -> int:
    """Installments a loan already on the book at the start is behind by."""
    if profile == DEFAULTER:
        return rng.randint(1, 15) if rng.random() < 0.6 else 0
    if profile == CHRONIC:
        return rng.randint(0, 2)
    if profile == PARTIAL:
        return rng.randint(0, 1)
    return 0
