"""The treatment states of a partition in the worker's ``meta`` table (``treatment/<loan>``).

The tracker (:mod:`loanwatch.treatment.tracker`) is pure; this adapter reads its states back
after an assignment and queues the ones a batch changed. The writer is a phase-1 sink, so
a state is acknowledged together with the loans it was derived from (outputs before state,
docs/design.md). It must never decide anything about segments.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from loanwatch.agents.state import TableSink
from loanwatch.streams.partitioning import partition_for
from loanwatch.treatment.state import TreatmentState, decode_state, encode_state
from loanwatch.treatment.tracker import Treatment

PREFIX = "treatment/"


def treatment_key(loan_id: str) -> str:
    return PREFIX + loan_id


def scan_states(meta: Any, partitions: int, wanted: set[int]) -> dict[int, list[TreatmentState]]:
    """The stored states of the ``wanted`` partitions (one scan of the meta table)."""
    found: dict[int, list[TreatmentState]] = {p: [] for p in wanted}
    for key, raw in meta.items():
        if raw is None or not isinstance(key, str) or not key.startswith(PREFIX):
            continue
        state = decode_state(raw)
        p = partition_for(state.borrower_id, partitions)
        if p in found:
            found[p].append(state)
    return found


def flush_states(treatment: Treatment, sink: TableSink, partition: int) -> int:
    """Queue the states the tracker changed since the last flush; returns how many."""
    dirty, treatment.dirty = treatment.dirty, set()
    for loan_id in sorted(dirty):
        state = treatment.states.get(loan_id)
        if state is None:
            sink.delete(partition, treatment_key(loan_id))
        else:
            sink.set(partition, treatment_key(loan_id), encode_state(state, partition))
    return len(dirty)


def states_by_loan(states: Iterable[TreatmentState]) -> dict[str, TreatmentState]:
    return {s.loan_id: s for s in states}
