"""What the ledger stage does with a record that arrives past a gap in its lane.

Our input topics have contiguous offsets, so a lane that delivers offset 162 where 32 was
expected skipped 32..161 (docs/design.md, ordering rule 5). Processing 162 would lose them for
good: their copies, fetched again later, are below the lane's next offset (duplicates). So the
record is refused and the consumer is made to fetch again from the committed offsets
(``faust_fixes.request_reseek``); the refused record comes again with them.

Only when fetching again ``max_refetches`` times brings the same gap (the records are gone from
the broker: retention, a truncated log) is the gap accepted: the record is processed, the gap
counted in ``loanwatch_alignment_gaps_accepted_total`` and logged as an error. Counted in
re-fetches, not in time: a slow or busy machine never turns a late re-fetch into a loss.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from faust.types import TP

#: ``wait``: a re-fetch is under way (drop the record, it comes again); ``refetch``: ask for
#: one; ``accept``: the re-fetches brought nothing, process past the gap.
GapAction = Literal["wait", "refetch", "accept"]

MAX_REFETCHES = 5


@dataclass
class GapTracker:
    """Per lane: the offset it waits for and how many re-fetches were asked for it."""

    max_refetches: int = MAX_REFETCHES
    asked: dict[TP, tuple[int, int]] = field(default_factory=dict)  # tp -> (expected, times)

    def on_gap(self, tp: TP, expected: int, refetch_pending: bool) -> GapAction:
        at, times = self.asked.get(tp, (expected, 0))
        if at != expected:  # the lane moved on since: a new gap
            times = 0
        if refetch_pending and times > 0:
            return "wait"
        if times >= self.max_refetches:
            del self.asked[tp]
            return "accept"
        self.asked[tp] = (expected, times + 1)
        return "refetch"

    def filled(self, tp: TP) -> None:
        """The lane received the offset it waited for."""
        self.asked.pop(tp, None)

    def drop(self, partitions: Iterable[int]) -> None:
        parts = set(partitions)
        self.asked = {tp: v for tp, v in self.asked.items() if tp.partition not in parts}

    def waiting(self) -> dict[TP, int]:
        return {tp: at for tp, (at, _) in self.asked.items()}
