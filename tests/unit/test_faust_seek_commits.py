"""A seek to the committed offsets neither races nor undoes a commit
(``faust_fixes.seeks_keep_commits``): a stale committed offset written back by Faust's
``perform_seek`` stopped every later commit of that partition (the kill loop hung)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping

import pytest
from faust.transport.consumer import Consumer
from faust.types import TP

from loanwatch.agents.faust_fixes import seeks_keep_commits

pytestmark = pytest.mark.unit

TP0 = TP("loan.payments", 0)


class SeekingConsumer(Consumer):  # type: ignore[misc]
    """Only what ``perform_seek`` and the commit future use; the broker says ``broker``."""

    def __init__(self, committed: int, broker: int) -> None:
        self._read_offset: dict[TP, int | None] = {}
        self._committed_offset: dict[TP, int | None] = {TP0: committed}
        self._commit_fut: asyncio.Future[None] | None = None
        self.broker = broker
        self.seeks = 0
        self.answer = asyncio.Event()  # the broker's reply
        self.answer.set()

    async def seek_to_committed(self) -> Mapping[TP, int]:
        self.seeks += 1
        await self.answer.wait()
        return {TP0: self.broker}


SeekingConsumer.__abstractmethods__ = frozenset()  # the rest is never called here


def test_the_installed_faust_writes_the_brokers_offsets_back() -> None:
    """What makes the fix necessary: if this fails, re-read why seeks_keep_commits exists."""
    seeks_keep_commits()
    original = Consumer.perform_seek.__wrapped_original__  # type: ignore[attr-defined]
    assert "self._committed_offset.update" in inspect.getsource(original)
    assert "if min(acked) - committed_offset > 1" in inspect.getsource(Consumer._new_offset)


async def test_a_stale_broker_offset_never_moves_the_committed_one_back() -> None:
    seeks_keep_commits()
    seeks_keep_commits()  # idempotent
    consumer = SeekingConsumer(committed=650, broker=600)  # the broker read raced a commit
    await consumer.perform_seek()
    assert consumer.seeks == 1
    assert consumer._committed_offset[TP0] == 650
    assert consumer._read_offset[TP0] == 600  # the records after 600 are read again


async def test_the_seek_waits_for_a_commit_in_flight_and_commits_wait_for_it() -> None:
    seeks_keep_commits()
    consumer = SeekingConsumer(committed=600, broker=600)
    consumer.answer.clear()
    in_flight: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    consumer._commit_fut = in_flight
    seek = asyncio.ensure_future(consumer.perform_seek())
    for _ in range(5):
        await asyncio.sleep(0)
    assert consumer.seeks == 0  # waits for the commit
    consumer._commit_fut = None  # what Faust's commit does when it is done ...
    in_flight.set_result(None)  # ... and notify(fut)
    for _ in range(2):
        await asyncio.sleep(0)
    assert consumer.seeks == 1
    held = consumer._commit_fut
    assert held is not None and not held.done()  # a commit now would wait for the seek
    waiting = asyncio.ensure_future(consumer.maybe_wait_for_commit_to_finish())
    await asyncio.sleep(0)
    assert not waiting.done()
    consumer.answer.set()
    await seek
    assert await waiting is True  # Faust's commit() then commits nothing this turn
    assert consumer._commit_fut is None
