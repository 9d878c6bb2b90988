"""The next-transition index (SPEC §2): which loans may change on which business date.

Aging pops the loans due on a day instead of scanning the portfolio, so a day with few
transitions costs little however many loans exist. Stale heap entries are skipped lazily.
"""

from __future__ import annotations

import heapq
from datetime import date


class TransitionIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[date, str]] = []
        self._at: dict[str, date] = {}

    def __len__(self) -> int:
        return len(self._at)

    def set(self, key: str, when: date | None) -> None:
        """Schedule ``key`` at ``when`` (None removes it)."""
        if when is None:
            self._at.pop(key, None)
            return
        if self._at.get(key) == when:
            return
        self._at[key] = when
        heapq.heappush(self._heap, (when, key))

    def get(self, key: str) -> date | None:
        return self._at.get(key)

    def peek(self) -> date | None:
        """The earliest scheduled date."""
        heap = self._heap
        while heap and self._at.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_through(self, day: date) -> list[str]:
        """Remove and return the keys scheduled on or before ``day``, sorted."""
        keys: set[str] = set()
        heap = self._heap
        while heap and heap[0][0] <= day:
            when, key = heapq.heappop(heap)
            if self._at.get(key) == when:
                del self._at[key]
                keys.add(key)
        return sorted(keys)

    def items(self) -> list[tuple[str, date]]:
        return sorted(self._at.items())
