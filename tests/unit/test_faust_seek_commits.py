"""A seek to the committed offsets never undoes a commit (``faust_fixes.seeks_keep_commits``):
a stale committed offset written back by Faust's ``perform_seek`` stopped every later commit
of that partition (the kill loop hung at the end of its backlog)."""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Mapping

import pytest
from faust.transport.consumer import Consumer
from faust.types import TP

from loanwatch.agents import faust_fixes
from loanwatch.agents.faust_fixes import _CommittedOffsets, seeks_keep_commits
from loanwatch.agents.faust_internals import set_committed_offsets

pytestmark = pytest.mark.unit

TP0 = TP("loan.payments", 0)


class SeekingConsumer(Consumer):  # type: ignore[misc]
    """Only what ``perform_seek`` uses; the broker answers ``broker``."""

    def __init__(self, committed: int, broker: int) -> None:
        self._read_offset: dict[TP, int | None] = {}
        self._committed_offset: dict[TP, int | None] = {TP0: committed}
        self.broker = broker

    async def seek_to_committed(self) -> Mapping[TP, int]:
        return {TP0: self.broker}


SeekingConsumer.__abstractmethods__ = frozenset()  # the rest is never called here


def test_the_installed_faust_writes_the_brokers_offsets_back() -> None:
    """What makes the fix necessary: if this fails, re-read why seeks_keep_commits exists."""
    assert "self._committed_offset.update" in inspect.getsource(Consumer.perform_seek)
    assert "if min(acked) - committed_offset > 1" in inspect.getsource(Consumer._new_offset)
    # a revoked partition is forgotten, so one assigned again starts from the broker's value
    revoked = inspect.getsource(Consumer.on_partitions_revoked)
    assert "self._committed_offset.pop(tp, None)" in revoked


async def test_without_the_fix_a_stale_broker_offset_moves_the_committed_one_back() -> None:
    consumer = SeekingConsumer(committed=650, broker=600)  # the broker read raced a commit
    await consumer.perform_seek()
    assert consumer._committed_offset[TP0] == 600  # below what Faust dropped from its acks


async def test_with_the_fix_it_never_does_and_the_records_are_read_again() -> None:
    consumer = SeekingConsumer(committed=650, broker=600)
    set_committed_offsets(consumer, _CommittedOffsets())
    await consumer.perform_seek()
    assert consumer._committed_offset[TP0] == 650
    assert consumer._read_offset[TP0] == 600  # the records after 600 are fetched again


def test_committed_offsets_only_go_forward_and_a_pop_forgets() -> None:
    offsets = _CommittedOffsets()
    assert offsets[TP0] is None  # Faust's defaultdict(lambda: None)
    offsets.update({TP0: 10})
    offsets.update({TP0: 7})
    offsets[TP0] = None
    assert offsets[TP0] == 10
    offsets.update({TP0: 12})
    assert offsets[TP0] == 12
    offsets.pop(TP0)
    offsets.update({TP0: 3})  # assigned again: the broker's value
    assert offsets[TP0] == 3


def test_every_consumer_gets_them(monkeypatch: pytest.MonkeyPatch) -> None:
    class FaustConsumer:  # what Faust's __init__ does with the mapping
        def __init__(self) -> None:
            self._committed_offset: dict[TP, int | None] = defaultdict(lambda: None)
            self._committed_offset[TP0] = 5

    monkeypatch.setattr(faust_fixes, "Consumer", FaustConsumer)
    seeks_keep_commits()
    seeks_keep_commits()  # idempotent
    consumer = FaustConsumer()
    assert isinstance(consumer._committed_offset, _CommittedOffsets)
    assert consumer._committed_offset[TP0] == 5  # what Faust's own __init__ set is kept
