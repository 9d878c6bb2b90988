"""Classified treatment as data: segments, treatment paths and champion-challenger experiments.

Pure frozen records built once from ``strategies.yaml`` by :mod:`loanwatch.treatment.config`;
the evaluation (:mod:`loanwatch.treatment.segments`) and the tracker read them. Nothing here
reads files, the clock or the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The actions a treatment path can take (issue 18); each becomes a ``treatment_action`` alert.
ACTIONS: tuple[str, ...] = (
    "sms_reminder",
    "email",
    "call_priority",
    "restructure_offer",
    "field_visit",
    "legal_referral",
    "agency_placement",
)
#: Contact states a segment rule can ask for (``contact:``).
CONTACT_STATES: tuple[str, ...] = ("hardship", "unreachable", "reached", "none")


@dataclass(frozen=True, slots=True)
class Condition:
    """Every field set must hold (an empty condition matches every delinquent loan).

    Amounts are integer cents (exposure = the loan's outstanding principal).
    ``early_warning_*`` compare the borrower's early-warning score where one exists: a loan
    without a score never matches a condition that asks for one.
    """

    dpd_min: int | None = None
    dpd_max: int | None = None
    buckets: frozenset[str] | None = None
    classes: frozenset[str] | None = None
    products: frozenset[str] | None = None
    exposure_min_cents: int | None = None
    exposure_max_cents: int | None = None
    broken_promises_min: int | None = None
    contact: frozenset[str] | None = None
    cross_default: bool | None = None
    restructured: bool | None = None
    early_warning_min: int | None = None
    early_warning_max: int | None = None

    def dpd_marks(self) -> set[int]:
        """DPD values at which this condition can start or stop holding."""
        marks: set[int] = set()
        if self.dpd_min is not None:
            marks.add(self.dpd_min)
        if self.dpd_max is not None:
            marks.add(self.dpd_max + 1)
        return marks


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    when: Condition
    path: str | None  # the treatment path of loans in this segment (None: no actions)


@dataclass(frozen=True, slots=True)
class Step:
    """One action of a path, due on ``day`` days after the loan entered its segment."""

    day: int
    action: str
    priority: str | None = None  # call-queue priority (P1..P4) for ``call_priority``


@dataclass(frozen=True, slots=True)
class Arm:
    name: str
    share: int  # percent of the experiment's loans, the arms' shares sum to 100
    path: str | None  # overrides the segment's path for loans in this arm


@dataclass(frozen=True, slots=True)
class Experiment:
    """Splits one segment's loans into arms by a stable hash of (experiment id, loan id)."""

    experiment_id: str
    segment: str
    arms: tuple[Arm, ...]


@dataclass(frozen=True, slots=True)
class Strategies:
    segments: tuple[Segment, ...]
    paths: dict[str, tuple[Step, ...]] = field(default_factory=dict)
    experiments: tuple[Experiment, ...] = ()
    unreachable_after: int = 3  # unanswered attempts in a row that make a borrower unreachable
    dpd_marks: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        marks: set[int] = set()
        for segment in self.segments:
            marks |= segment.when.dpd_marks()
        object.__setattr__(self, "dpd_marks", tuple(sorted(m for m in marks if m > 0)))

    def experiment_of(self, segment: str) -> Experiment | None:
        for experiment in self.experiments:
            if experiment.segment == segment:
                return experiment
        return None

    def segment(self, name: str) -> Segment:
        for segment in self.segments:
            if segment.name == name:
                return segment
        raise KeyError(name)

    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.segments)

    def arm_names(self) -> tuple[tuple[str, str], ...]:
        """(experiment id, arm) pairs: the bounded label values of the per-arm metrics."""
        return tuple((e.experiment_id, a.name) for e in self.experiments for a in e.arms)
