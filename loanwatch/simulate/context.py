"""The shared, mutable context of one simulation run, handed to every behaviour step.

It owns the run's single ``Random`` (so every draw happens in one deterministic order), the
calendar, the day's emitter and a few small bounded rings the fault injector samples from.
"""

from __future__ import annotations

from collections import Counter, deque
from random import Random

from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.events import DAY_SECONDS, Emitter
from loanwatch.simulate.loans import CLOSED, NEVER, Calendar, Loan


def loan_id(idx: int) -> str:
    return f"L{idx + 1:07d}"


def borrower_id(bid: int) -> str:
    return f"B{bid + 1:07d}"


class Ctx:
    """Run-wide state: randomness, calendar, emitter, counters and the wake cursor."""

    __slots__ = ("cal", "cfg", "closed", "em", "rng", "stats", "t")

    def __init__(self, cfg: SimulationConfig) -> None:
        self.cfg = cfg
        self.rng = Random(cfg.seed)
        self.cal = Calendar(cfg.start)
        self.em = Emitter(self.rng, self.cal, cfg.seed, cfg.utc_share, cfg.late_rate)
        # (loan_id, day closed) of recently closed loans: targets for "after close" faults.
        self.closed: deque[tuple[str, int]] = deque(maxlen=512)
        self.stats: Counter[str] = Counter()
        self.t = 0

    @property
    def day(self) -> int:
        return self.em.day

    def begin_wake(self) -> None:
        """Start a loan's activity of the day at a plausible local time (mostly daytime)."""
        rng = self.rng
        self.t = rng.randrange(25_200, 82_800) if rng.random() < 0.85 else rng.randrange(25_200)

    def next_time(self) -> int:
        """The next local second for this loan today: a loan's events stay in order."""
        t = self.t
        self.t = min(DAY_SECONDS - 1, t + self.rng.randint(60, 3_600))
        return t

    def close(self, ln: Loan, reason: str) -> None:
        lid = loan_id(ln.idx)
        self.em.emit("loan_closed", self.next_time(), {"loan_id": lid, "reason": reason})
        ln.flags |= CLOSED
        ln.pay_day = ln.rev_day = ln.coll_day = ln.close_day = NEVER
        self.closed.append((lid, self.day))
        self.stats[f"closed_{reason}"] += 1
