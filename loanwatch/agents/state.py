"""Table-backed stores handed to the engine: a write-back cache over a Faust table.

The engine reads and writes loans as a mapping; within one batch reads hit the cache and
every changed loan is written to the table (and so to its changelog) once, at flush.
Writes must happen while the current event belongs to the loan's partition (Faust routes a
table write by the current event), which the ledger agent guarantees.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from loanwatch.ledger.loan import LoanState
from loanwatch.streams.codecs import decode_loan, encode_loan


class LoanStore(MutableMapping[str, LoanState]):
    def __init__(self, table: Any) -> None:
        self.table = table
        self.cache: dict[str, LoanState] = {}
        self.dirty: set[str] = set()

    def __getitem__(self, key: str) -> LoanState:
        loan = self.cache.get(key)
        if loan is None:
            raw = self.table.get(key)
            if raw is None:
                raise KeyError(key)
            loan = self.cache[key] = decode_loan(raw)
        return loan

    def __setitem__(self, key: str, value: LoanState) -> None:
        self.cache[key] = value
        self.dirty.add(key)

    def __delitem__(self, key: str) -> None:
        raise NotImplementedError("loans are closed, never deleted")

    def __iter__(self) -> Iterator[str]:
        raise NotImplementedError("iterate the table per partition instead")

    def __len__(self) -> int:
        return len(self.cache)

    def flush(self) -> int:
        """Write every changed loan to the table; drop the cache (bounded memory)."""
        for key in self.dirty:
            self.table[key] = encode_loan(self.cache[key])
        written = len(self.dirty)
        self.dirty.clear()
        self.cache.clear()
        return written


class SeenStore:
    """Applied event ids of one partition, in a table keyed ``<partition>/<event_id>``."""

    def __init__(self, table: Any, partition: int) -> None:
        self.table = table
        self.prefix = f"{partition}/"
        self.pending: set[str] = set()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self.pending or self.table.get(f"{self.prefix}{event_id}") is not None

    def add(self, event_id: str) -> None:
        self.pending.add(event_id)

    def flush(self) -> None:
        for event_id in self.pending:
            self.table[f"{self.prefix}{event_id}"] = b"1"
        self.pending.clear()
