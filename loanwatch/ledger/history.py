"""A loan's history: what a reversal needs to rebuild it, and the ids of the events applied.

Kept apart from the hot state (:class:`~loanwatch.ledger.loan.LoanState`): append-only per
loan, written by payments, reversals and revisions, read only by a reversal (and by the
dedupe check, one point lookup per event). Entries are never rewritten: a reversal appends a
:class:`Reversal`, and the flags it implies are derived by :func:`replay_entries`.

Where it lives is the caller's: :class:`MemoryHistory` in replay and tests, the keyed part of
the loans table live (``loanwatch.agents.state``). The engine sees only :class:`HistoryPort`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from loanwatch.ledger.terms import Terms

#: Where a record stands in a partition's merged input: (timestamp ms, topic rank, offset);
#: ``()`` for an id applied without a position (replay, or a migrated record).
AppliedAt = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Paid:
    """A payment as received (``in_ledger``/``reversed`` False/True only when migrated)."""

    payment_id: str
    amount: int
    step: int  # the loan's step counter when it was applied
    day: date
    in_ledger: bool = True
    reversed: bool = False


@dataclass(frozen=True, slots=True)
class Revised:
    """A schedule revision: the loan's terms number ``rev`` from here on."""

    rev: int


@dataclass(frozen=True, slots=True)
class Reversal:
    """A payment reversed (SPEC §3): see :func:`replay_entries` for what it drops."""

    payment_id: str


Entry = Paid | Revised | Reversal


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """A payment of the loan with its derived flags."""

    payment_id: str
    amount: int
    step: int
    day: date
    reversed: bool


def replay_entries(
    entries: Iterable[Entry],
) -> tuple[list[PaymentRecord], list[tuple[str, int] | int]]:
    """The payments (with reversed flags) and the ledger's operations, in order.

    A ledger operation is ``(payment_id, amount)`` for a payment that counts, or the terms
    number of a revision. A :class:`Reversal` marks every payment of that id not yet
    reversed as reversed, and takes the first payment of that id still in the ledger out of
    it (as the engine always did: the same id paid twice and reversed once keeps one).
    """
    payments: list[PaymentRecord] = []
    ops: list[tuple[str, int] | int] = []
    for entry in entries:
        if isinstance(entry, Paid):
            payments.append(
                PaymentRecord(entry.payment_id, entry.amount, entry.step, entry.day, entry.reversed)
            )
            if entry.in_ledger:
                ops.append((entry.payment_id, entry.amount))
        elif isinstance(entry, Revised):
            ops.append(entry.rev)
        else:
            pid = entry.payment_id
            for k, op in enumerate(ops):
                if isinstance(op, tuple) and op[0] == pid:
                    del ops[k]
                    break
            for k, p in enumerate(payments):
                if p.payment_id == pid and not p.reversed:
                    payments[k] = PaymentRecord(p.payment_id, p.amount, p.step, p.day, True)
    return payments, ops


class HistoryPort(Protocol):
    """Per-loan history, terms and applied ids, as the engine reads and writes them."""

    def applied_at(self, loan_id: str, event_id: str) -> AppliedAt | None:
        """Where the event was applied to the loan, or None if it never was."""
        ...

    def mark_applied(self, loan_id: str, event_id: str, at: AppliedAt) -> None: ...

    def append(self, loan_id: str, seq: int, entry: Entry) -> None:
        """Entry number ``seq`` of the loan (0, 1, ...; rewriting one gives the same value)."""

    def entries(self, loan_id: str, count: int) -> list[Entry]:
        """The loan's first ``count`` entries, in order."""
        ...

    def put_terms(self, loan_id: str, rev: int, terms: Terms) -> None: ...

    def terms(self, loan_id: str, rev: int) -> Terms: ...


class MemoryHistory:
    """The history of every loan, in memory (replay, tests)."""

    def __init__(self) -> None:
        self._applied: dict[str, dict[str, AppliedAt]] = {}
        self._entries: dict[str, list[Entry]] = {}
        self._terms: dict[tuple[str, int], Terms] = {}

    def applied_at(self, loan_id: str, event_id: str) -> AppliedAt | None:
        ids = self._applied.get(loan_id)
        return ids.get(event_id) if ids is not None else None

    def mark_applied(self, loan_id: str, event_id: str, at: AppliedAt) -> None:
        ids = self._applied.get(loan_id)
        if ids is None:
            ids = self._applied[loan_id] = {}
        ids[event_id] = at

    def applied_ids(self, loan_id: str) -> frozenset[str]:
        return frozenset(self._applied.get(loan_id, ()))

    def append(self, loan_id: str, seq: int, entry: Entry) -> None:
        entries = self._entries.setdefault(loan_id, [])
        if seq < len(entries):
            entries[seq] = entry
        else:
            entries.append(entry)

    def entries(self, loan_id: str, count: int) -> list[Entry]:
        return self._entries.get(loan_id, [])[:count]

    def put_terms(self, loan_id: str, rev: int, terms: Terms) -> None:
        self._terms[(loan_id, rev)] = terms

    def terms(self, loan_id: str, rev: int) -> Terms:
        return self._terms[(loan_id, rev)]
