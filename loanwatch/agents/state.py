"""Table-backed stores handed to the engine: a write-back cache over a Faust table.

The engine reads and writes loans as a mapping; within one batch reads hit the cache and
every changed loan is written to the table (and so to its changelog) once, at flush, through a
:class:`TableSink`: in a worker a :class:`~loanwatch.agents.bulk.TableWriter` (store now,
changelog in the batch's bulk send), in unit tests :class:`DirectWrites` over a plain mapping.
Writes must happen while the current event belongs to the loan's partition (Faust routes a
table write by the current event), which the ledger agent guarantees.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import orjson

from loanwatch.ledger.history import AppliedAt, Entry
from loanwatch.ledger.loan import LoanState
from loanwatch.ledger.orphans import Parked
from loanwatch.ledger.parse import parse_event
from loanwatch.ledger.policy import Policy
from loanwatch.ledger.records import BorrowerSignal, ClockTick, LoanOpened, Rejection
from loanwatch.ledger.terms import Terms
from loanwatch.streams.codecs import (
    decode_applied,
    decode_entry,
    decode_loan,
    decode_terms,
    encode_applied,
    encode_entry,
    encode_loan,
    encode_terms,
    is_legacy,
    migrate_legacy,
)


class TableSink(Protocol):
    """Where a store's changes go at flush (one table)."""

    def set(self, partition: int, key: str, value: bytes) -> None: ...

    def delete(self, partition: int, key: str) -> None: ...

    def commit(self) -> None:
        """Make the writes so far visible to reads of the table."""


class DirectWrites:
    """Writes through the table's own mapping interface (``table[key] = value``)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def set(self, partition: int, key: str, value: bytes) -> None:
        self.table[key] = value

    def delete(self, partition: int, key: str) -> None:
        if self.table.get(key) is not None:
            del self.table[key]

    def commit(self) -> None:
        pass  # written at once


@dataclass(frozen=True, slots=True)
class TableSinks:
    """One sink per table the ledger writes."""

    loans: TableSink
    seen: TableSink
    meta: TableSink
    orphans: TableSink

    @classmethod
    def direct(cls, tables: Any) -> TableSinks:
        return cls(
            DirectWrites(tables.loans),
            DirectWrites(tables.seen),
            DirectWrites(tables.meta),
            DirectWrites(tables.orphans),
        )


#: Separates a loan's id from the keyed parts of its history in the loans table.
SEP = "\x1f"


def terms_key(loan_id: str, rev: int) -> str:
    return f"{loan_id}{SEP}T{rev}"


def entry_key(loan_id: str, seq: int) -> str:
    return f"{loan_id}{SEP}H{seq}"


def applied_key(loan_id: str, event_id: str) -> str:
    return f"{loan_id}{SEP}E{event_id}"


def is_loan_key(key: str) -> bool:
    """A loan's hot record (not one of its terms, history entries or applied-id marks)."""
    return SEP not in key


def load_loan(table: Any, loan_id: str, policy: Policy | None = None) -> LoanState | None:
    """A loan as stored (read-only: a FORMAT 1 record is migrated in memory, not rewritten)."""
    raw = table.get(loan_id)
    return decode_stored(table, loan_id, raw, policy) if raw is not None else None


def decode_stored(table: Any, loan_id: str, raw: bytes, policy: Policy | None = None) -> LoanState:
    """A hot record read from ``table`` with its terms (read-only, like :func:`load_loan`)."""
    if is_legacy(raw):
        return migrate_legacy(raw, policy).loan

    def terms_of(rev: int) -> Terms:
        found = table.get(terms_key(loan_id, rev))
        if found is None:
            raise KeyError(f"terms {rev} of loan {loan_id!r} are missing")
        return decode_terms(found)

    return decode_loan(raw, terms_of)


class LoanStore(MutableMapping[str, LoanState]):
    """Loans of one partition and their history, in one table (one changelog).

    A loan's hot record is under its id; its terms (one per opening or revision), history
    entries and applied-id marks are keyed parts beside it (``id SEP T<rev>``, ``H<seq>``,
    ``E<event id>``), each written once. Hot records are decoded on first use and kept
    (least recently used first out); changes are written at flush, the keyed parts first and
    the hot records last, so that a crash cutting a flush never stores a loan without its
    history (an applied-id mark stored without its loan names the record that applied it,
    which the engine then applies again: ``Engine._already_applied``).
    """

    def __init__(
        self,
        table: Any,
        *,
        keep: int = 2000,
        sink: TableSink | None = None,
        partition: int = 0,
        policy: Policy | None = None,
    ) -> None:
        self.table = table
        self.sink = sink if sink is not None else DirectWrites(table)
        self.partition = partition
        self.policy = policy or Policy()
        self.keep = keep  # decoded loans kept across batches (the owner is the only writer)
        self.cache: dict[str, LoanState] = {}
        self.dirty: set[str] = set()
        self.pending: dict[str, bytes] = {}  # keyed parts written since the last flush

    def _get(self, key: str) -> bytes | None:
        found = self.pending.get(key)
        return found if found is not None else self.table.get(key)

    def __getitem__(self, key: str) -> LoanState:
        loan = self.cache.pop(key, None)
        if loan is None:
            raw = self.table.get(key)
            if raw is None:
                raise KeyError(key)
            loan = self._decode(key, raw)
        self.cache[key] = loan  # most recently used last
        return loan

    def _decode(self, key: str, raw: bytes) -> LoanState:
        if not is_legacy(raw):
            return decode_loan(raw, lambda rev: self.terms(key, rev))
        # FORMAT 1: upgraded in place, its pieces written with the next flush.
        migrated = migrate_legacy(raw, self.policy)
        for rev, terms in enumerate(migrated.terms):
            self.put_terms(key, rev, terms)
        for seq, entry in enumerate(migrated.entries):
            self.append(key, seq, entry)
        for event_id in migrated.applied:
            self.mark_applied(key, event_id, ())
        self.dirty.add(key)
        return migrated.loan

    def __setitem__(self, key: str, value: LoanState) -> None:
        self.cache[key] = value
        self.dirty.add(key)

    def __delitem__(self, key: str) -> None:
        raise NotImplementedError("loans are closed, never deleted")

    def __iter__(self) -> Iterator[str]:
        raise NotImplementedError("iterate the table per partition instead")

    def __len__(self) -> int:
        return len(self.cache)

    # --- the history port (loanwatch.ledger.history.HistoryPort) ---

    def applied_at(self, loan_id: str, event_id: str) -> AppliedAt | None:
        raw = self._get(applied_key(loan_id, event_id))
        return decode_applied(raw) if raw is not None else None

    def mark_applied(self, loan_id: str, event_id: str, at: AppliedAt) -> None:
        self.pending[applied_key(loan_id, event_id)] = encode_applied(at)

    def append(self, loan_id: str, seq: int, entry: Entry) -> None:
        self.pending[entry_key(loan_id, seq)] = encode_entry(entry)

    def entries(self, loan_id: str, count: int) -> list[Entry]:
        out: list[Entry] = []
        for seq in range(count):
            raw = self._get(entry_key(loan_id, seq))
            if raw is None:
                raise KeyError(f"history entry {seq} of loan {loan_id!r} is missing")
            out.append(decode_entry(raw))
        return out

    def put_terms(self, loan_id: str, rev: int, terms: Terms) -> None:
        self.pending[terms_key(loan_id, rev)] = encode_terms(terms)

    def terms(self, loan_id: str, rev: int) -> Terms:
        raw = self._get(terms_key(loan_id, rev))
        if raw is None:
            raise KeyError(f"terms {rev} of loan {loan_id!r} are missing")
        return decode_terms(raw)

    def flush(self) -> int:
        """Write the keyed parts, then every changed loan; keep at most ``keep`` decoded."""
        sink, partition = self.sink, self.partition
        for key, value in self.pending.items():
            sink.set(partition, key, value)
        self.pending.clear()
        for key in self.dirty:
            sink.set(partition, key, encode_loan(self.cache[key]))
        written = len(self.dirty)
        self.dirty.clear()
        excess = len(self.cache) - self.keep
        if excess > 0:
            for key in list(itertools.islice(self.cache, excess)):
                del self.cache[key]
        return written


class SeenStore:
    """Applied event ids of one partition, in a table keyed ``<partition>/<event_id>``."""

    def __init__(self, table: Any, partition: int, sink: TableSink | None = None) -> None:
        self.table = table
        self.sink = sink if sink is not None else DirectWrites(table)
        self.partition = partition
        self.prefix = f"{partition}/"
        self.pending: set[str] = set()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self.pending or self.table.get(f"{self.prefix}{event_id}") is not None

    def add(self, event_id: str) -> None:
        self.pending.add(event_id)

    def flush(self) -> None:
        sink, partition, prefix = self.sink, self.partition, self.prefix
        for event_id in self.pending:
            sink.set(partition, f"{prefix}{event_id}", b"1")
        self.pending.clear()


class ParkedStore(MutableMapping[str, list[Parked]]):
    """Orphans waiting for their loan, one small record per loan id (write-back like loans)."""

    def __init__(
        self, table: Any, policy: Policy, sink: TableSink | None = None, partition: int = 0
    ) -> None:
        self.table = table
        self.sink = sink if sink is not None else DirectWrites(table)
        self.partition = partition
        self.policy = policy
        self.cache: dict[str, list[Parked] | None] = {}

    def __getitem__(self, key: str) -> list[Parked]:
        if key in self.cache:
            found = self.cache[key]
            if found is None:
                raise KeyError(key)
            return found
        raw = self.table.get(key)
        if raw is None:
            raise KeyError(key)
        return decode_parked(raw, self.policy)

    def __setitem__(self, key: str, value: list[Parked]) -> None:
        self.cache[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self.cache[key] = None

    def __contains__(self, key: object) -> bool:
        if key in self.cache:
            return self.cache[key] is not None
        return self.table.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        raise NotImplementedError("iterate the table per partition instead")

    def __len__(self) -> int:
        return len(self.cache)

    def flush(self) -> None:
        for key, value in self.cache.items():
            if value is None:
                if self.table.get(key) is not None:
                    self.sink.delete(self.partition, key)
            else:
                self.sink.set(self.partition, key, encode_parked(value, self.partition))
        self.cache.clear()


def encode_parked(items: list[Parked], partition: int | None = None) -> bytes:
    """Parked events with their day, source record and (for a restart) their partition."""
    return orjson.dumps(
        [
            {
                "obj": p.obj,
                "parked_on": p.parked_on.isoformat(),
                "source": list(p.source) if p.source else None,
                "partition": partition,
            }
            for p in items
        ]
    )


def decode_parked(raw: bytes, policy: Policy) -> list[Parked]:
    out: list[Parked] = []
    for item in orjson.loads(raw):
        event = parse_event(item["obj"], policy.tz)
        if isinstance(event, (Rejection, ClockTick, BorrowerSignal, LoanOpened)):
            continue  # only loan events are ever parked
        found = item.get("source")
        source = (str(found[0]), int(found[1]), int(found[2])) if found else None
        out.append(Parked(item["obj"], event, date.fromisoformat(item["parked_on"]), source))
    return out
