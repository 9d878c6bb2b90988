"""The early-warning states of a partition in the worker's ``meta`` table (``early_warning/<id>``).

The tracker (:mod:`loanwatch.early_warning.tracker`) is pure; this adapter reads its states
back after an assignment and queues the ones a batch changed. The writer is a phase-1 sink, so
a state is acknowledged together with the loans it was derived from (outputs before state,
docs/design.md), like the treatment states (:mod:`loanwatch.agents.treatment_store`). It must
never decide anything about scores.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from loanwatch.agents.state import TableSink
from loanwatch.early_warning.state import EWState, decode_state, encode_state
from loanwatch.early_warning.tracker import EarlyWarning
from loanwatch.streams.partitioning import partition_for

PREFIX = "early_warning/"


def early_warning_key(loan_id: str) -> str:
    return PREFIX + loan_id


def scan_states(meta: Any, partitions: int, wanted: set[int]) -> dict[int, list[EWState]]:
    """The stored states of the ``wanted`` partitions (one scan of the meta table)."""
    found: dict[int, list[EWState]] = {p: [] for p in wanted}
    for key, raw in meta.items():
        if raw is None or not isinstance(key, str) or not key.startswith(PREFIX):
            continue
        state = decode_state(raw)
        p = partition_for(state.borrower_id, partitions)
        if p in found:
            found[p].append(state)
    return found


def flush_states(tracker: EarlyWarning, sink: TableSink, partition: int) -> int:
    """Queue the states the tracker changed since the last flush; returns how many."""
    dirty, tracker.dirty = tracker.dirty, set()
    for loan_id in sorted(dirty):
        state = tracker.states.get(loan_id)
        if state is None:
            sink.delete(partition, early_warning_key(loan_id))
        else:
            sink.set(partition, early_warning_key(loan_id), encode_state(state, partition))
    return len(dirty)


def states_by_loan(states: Iterable[EWState]) -> dict[str, EWState]:
    return {s.loan_id: s for s in states}
