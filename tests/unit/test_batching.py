"""The ledger agent's batches (agents/batching.py): every event once, in order, none lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from loanwatch.agents.batching import batches

pytestmark = pytest.mark.unit

END = -1


async def _read(queue: asyncio.Queue[int]) -> AsyncIterator[int]:
    while (item := await queue.get()) != END:
        yield item


async def test_events_arriving_while_a_batch_is_held_are_all_delivered_in_order() -> None:
    """Faust's noack_take cleared what arrived while its consumer held a batch; not here."""
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=200)

    async def produce() -> None:
        for i in range(2_000):
            await queue.put(i)
            if i % 7 == 0:
                await asyncio.sleep(0)
        await queue.put(END)

    producer = asyncio.ensure_future(produce())
    got: list[int] = []
    sizes: list[int] = []
    async for batch in batches(_read(queue), lambda: not queue.empty(), 64, within=0.0):
        sizes.append(len(batch))
        await asyncio.sleep(0.001)  # the batch is held (processed, sent, acked) meanwhile
        got.extend(batch)
    await producer
    assert got == list(range(2_000))
    assert max(sizes) == 64 and min(sizes) >= 1


async def test_a_batch_is_cut_where_nothing_waits_and_never_exceeds_its_size() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(5):
        queue.put_nowait(i)
    taken = batches(_read(queue), lambda: not queue.empty(), 3, within=0.0)
    assert await anext(taken) == [0, 1, 2]
    assert await anext(taken) == [3, 4]  # nothing else is waiting: not held for a sixth
    queue.put_nowait(END)
    with pytest.raises(StopAsyncIteration):
        await anext(taken)


async def test_a_short_wait_lets_a_low_rate_batch_fill() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    queue.put_nowait(0)
    asyncio.get_running_loop().call_soon(queue.put_nowait, 1)  # arrives during the wait
    taken = batches(_read(queue), lambda: not queue.empty(), 10, within=0.05)
    assert await anext(taken) == [0, 1]


async def test_a_batch_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_size"):
        await anext(batches(_read(asyncio.Queue()), lambda: False, 0, within=0.0))
