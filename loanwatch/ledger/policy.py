"""The policy: every threshold of the domain rules as one frozen value passed to the engine.

Pure data. Loading it from YAML (and validating it) is :mod:`loanwatch.ledger.policy_file`;
the engine never reads files or the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

CLASSES: tuple[str, ...] = ("normal", "special_mention", "substandard", "doubtful", "loss")
CLASS_RANK: dict[str, int] = {name: rank for rank, name in enumerate(CLASSES)}
SUBSTANDARD = CLASS_RANK["substandard"]
ALLOCATION_PARTS: frozenset[str] = frozenset({"fee", "interest", "principal"})


def worse(a: str, b: str) -> str:
    """The worse of two classes."""
    return a if CLASS_RANK[a] >= CLASS_RANK[b] else b


@dataclass(frozen=True, slots=True)
class Policy:
    """Rule settings of SPEC v1; the defaults are the SPEC's."""

    business_timezone: str = "Asia/Shanghai"
    clock: str = "event"
    tolerance_cents: int = 0
    allocation_order: tuple[str, ...] = ("fee", "interest", "principal")
    buckets: tuple[tuple[str, int], ...] = (
        ("M0", 0),
        ("M1", 1),
        ("M2", 31),
        ("M3", 61),
        ("M4", 91),
        ("M5", 121),
        ("M6", 151),
        ("M7+", 181),
    )
    class_dpd_floors: tuple[tuple[str, int], ...] = (
        ("normal", 0),
        ("special_mention", 1),
        ("substandard", 91),
        ("doubtful", 271),
        ("loss", 361),
    )
    restructure_observation_days: int = 365
    npl_cure_days: int = 180
    watchlist_days: int = 90
    cross_default_share: Decimal = Decimal("0.10")
    orphan_ttl_days: int = 7
    # SPEC §2 clock-jump guard: None (the SPEC default) never guards; config/policy.yaml sets 31.
    max_clock_jump_days: int | None = None
    stage2_dpd_over: int = 30
    stage3_dpd_over: int = 90
    tz: ZoneInfo = field(init=False, repr=False, compare=False)
    boundaries: tuple[int, ...] = field(init=False, repr=False, compare=False)
    # bucket / class of every DPD from 0 up to the highest boundary (beyond it, the last
    # entry holds): looked up on every evaluation instead of scanning the thresholds.
    _bucket_by_dpd: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _class_by_dpd: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tz", ZoneInfo(self.business_timezone))
        # Every DPD value at which a bucket, a class or an IFRS 9 stage changes.
        marks = {dpd for _, dpd in self.buckets} | {dpd for _, dpd in self.class_dpd_floors}
        marks |= {self.stage2_dpd_over + 1, self.stage3_dpd_over + 1}
        object.__setattr__(self, "boundaries", tuple(sorted(m for m in marks if m > 0)))
        top = max(0, *(dpd for _, dpd in self.buckets), *(dpd for _, dpd in self.class_dpd_floors))
        days = range(top + 1)
        object.__setattr__(self, "_bucket_by_dpd", tuple(self._scan(self.buckets, d) for d in days))
        floors = self.class_dpd_floors
        object.__setattr__(self, "_class_by_dpd", tuple(self._scan(floors, d) for d in days))

    @staticmethod
    def _scan(thresholds: tuple[tuple[str, int], ...], dpd: int) -> str:
        """The last name whose lowest DPD is at most ``dpd`` (the first name if none)."""
        name = thresholds[0][0]
        for candidate, lowest in thresholds:
            if dpd >= lowest:
                name = candidate
        return name

    def bucket(self, dpd: int) -> str:
        """The delinquency bucket of a DPD value."""
        table = self._bucket_by_dpd
        if dpd >= 0:
            return table[dpd] if dpd < len(table) else table[-1]
        return self._scan(self.buckets, dpd)

    def dpd_class(self, dpd: int) -> str:
        """The classification floor given by DPD alone."""
        table = self._class_by_dpd
        if dpd >= 0:
            return table[dpd] if dpd < len(table) else table[-1]
        return self._scan(self.class_dpd_floors, dpd)

    def next_boundary(self, dpd: int) -> int | None:
        """The smallest DPD above ``dpd`` at which a bucket, class or stage changes."""
        for mark in self.boundaries:
            if mark > dpd:
                return mark
        return None
