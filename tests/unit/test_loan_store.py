"""The worker's loan store: write-back per batch, decoded loans kept across batches (LRU)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from loanwatch.agents.state import LoanStore
from loanwatch.ledger.engine import Engine
from loanwatch.ledger.policy import Policy
from loanwatch.streams.codecs import encode_loan

from .ledger_helpers import opened

pytestmark = pytest.mark.unit


class CountingTable(dict[str, bytes]):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        self.reads += 1
        return super().get(key, default)


def _loans(n: int) -> dict[str, bytes]:
    table: dict[str, bytes] = {}
    store = LoanStore(table)
    engine = Engine(Policy(), loans=store, history=store)
    for i in range(n):
        engine.process(opened(f"L{i}", "2026-01-05", [("2026-03-31", "100.00", "1.00", "0.00")]))
    store.flush()
    return table


def test_loans_stay_decoded_across_flushes_up_to_the_bound() -> None:
    table = CountingTable()
    table.update(_loans(5))
    store = LoanStore(table, keep=3)
    for key in ("L0", "L1", "L2", "L3", "L4"):
        _ = store[key]
    assert table.reads == 10  # each loan's hot record, then its terms
    store.flush()
    assert list(store.cache) == ["L2", "L3", "L4"]  # the least recently used went first
    _ = store["L3"], store["L4"]
    assert table.reads == 10  # kept: no read, no decode
    _ = store["L0"]
    assert table.reads == 12


def test_a_changed_loan_is_written_once_at_flush_and_stays_current() -> None:
    table = CountingTable()
    table.update(_loans(2))
    store = LoanStore(table, keep=1)
    loan = store["L0"]
    changed = dataclasses.replace(loan, step=99)
    store["L0"] = changed
    assert store.flush() == 1
    assert table["L0"] == encode_loan(changed)
    assert store["L0"].step == 99
    with pytest.raises(KeyError):
        _ = store["missing"]
