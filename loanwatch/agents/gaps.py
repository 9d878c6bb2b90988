"""What the ledger stage does with a record that arrives past a gap in its lane.

Our input topics have contiguous offsets, so a lane that delivers offset 162 where 32 was
expected skipped 32..161 (docs/design.md, ordering rule 5). Processing 162 would lose them for
good: their copies, fetched again later, are below the lane's next offset (duplicates). So the
record is refused and the consumer is made to fetch again from the committed offsets
(``faust_fixes.request_reseek``); the refused record comes again with them.

Records fetched *before* that seek still come first: a fetch returns up to a megabyte per
partition and Faust delivers all of it, so thousands of records past the gap can follow the
seek. They prove nothing about it. A fetch made after the seek restarts the lane at its
committed offset, below everything it delivered before: only a record past the gap *after*
such a restart (an offset not above the last one refused) shows that fetching again did not
fill it. Only when ``max_refetches`` re-fetches show the same gap that way (the records are
gone from the broker: retention, a truncated log) is it accepted: the record is processed, the
gap counted in ``loanwatch_alignment_gaps_accepted_total`` and logged as an error. A lane that
never restarts (its earliest offset now beyond all it delivered) is accepted after
``max_stale`` refused records. Counted in fetches and records, never in time: a slow or busy
machine never turns a late re-fetch into a loss.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from faust.types import TP

#: ``wait``: the record predates the re-fetch asked for (drop it, it comes again);
#: ``refetch``: ask for one; ``accept``: the re-fetches brought nothing, process past the gap.
GapAction = Literal["wait", "refetch", "accept"]

MAX_REFETCHES = 5
#: Refused records a lane may deliver after its re-fetch without restarting (a fetch holds at
#: most a megabyte per partition, Faust's stream queue a few thousand records).
MAX_STALE = 100_000


@dataclass
class _Gap:
    expected: int  # the offset the lane waits for
    times: int  # re-fetches asked for this gap
    after: int  # the re-fetch counts once more than this many seeks have completed
    last: int  # the last offset refused on the lane
    stale: int = 0  # refused since that seek completed, with no restart of the lane


@dataclass
class GapTracker:
    """Per lane: the offset it waits for, the re-fetches asked for it and what came since."""

    max_refetches: int = MAX_REFETCHES
    max_stale: int = MAX_STALE
    asked: dict[TP, _Gap] = field(default_factory=dict)

    def on_gap(
        self, tp: TP, expected: int, offset: int, seeks_done: int, seek_pending: bool
    ) -> GapAction:
        """A record at ``offset`` came where ``expected`` was awaited; ``seeks_done`` counts
        the consumer's completed seeks to the committed offsets, ``seek_pending`` is true
        while one runs (a request then gets one more after it)."""
        after = seeks_done + (1 if seek_pending else 0)
        gap = self.asked.get(tp)
        if gap is None or gap.expected != expected:  # a new gap
            self.asked[tp] = _Gap(expected, times=1, after=after, last=offset)
            return "refetch"
        restarted = offset <= gap.last
        gap.last = offset
        if seeks_done <= gap.after:  # the seek asked for has not completed
            if seek_pending:
                return "wait"
            gap.after = after  # it failed (a rebalance, an error): ask again, not counted
            return "refetch"
        if not restarted:  # still records fetched before that seek
            gap.stale += 1
            if gap.stale > self.max_stale:
                del self.asked[tp]
                return "accept"
            return "wait"
        if gap.times >= self.max_refetches:  # fetched again from the committed offset: still
            del self.asked[tp]
            return "accept"
        gap.times += 1
        gap.after, gap.stale = after, 0
        return "refetch"

    def filled(self, tp: TP) -> None:
        """The lane received the offset it waited for."""
        self.asked.pop(tp, None)

    def drop(self, partitions: Iterable[int]) -> None:
        parts = set(partitions)
        self.asked = {tp: v for tp, v in self.asked.items() if tp.partition not in parts}

    def waiting(self) -> dict[TP, int]:
        return {tp: gap.expected for tp, gap in self.asked.items()}
