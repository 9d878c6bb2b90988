"""The ledger agent's batches: every event of the stream, in order, none lost.

Used instead of Faust's ``Stream.noack_take`` (a background processor filling a buffer that
is cleared after each yielded batch), replaced while the loss of a replacement worker's first
records was hunted. That loss was found elsewhere (``faust_fixes.reseek_after_resume``);
this loop is kept because it is simpler to reason about: nothing is added to or cleared from a
batch behind the caller's back.

Here one loop reads the stream and yields a batch when it is full, or when no event is waiting
(after one short wait for more, ``within``: batches at low rates). The stream is not read while
the caller processes a batch; the rest waits in the stream's bounded queue, and a full queue
makes Faust's fetcher wait (``faust_fixes.queues_wait_when_full``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import TypeVar

T = TypeVar("T")


async def batches(
    events: AsyncIterable[T], waiting: Callable[[], bool], max_size: int, within: float
) -> AsyncIterator[list[T]]:
    """Lists of consecutive ``events``: at most ``max_size``, cut where nothing is ``waiting``.

    ``waiting()`` says whether another event can be read at once (the stream's queue is not
    empty). A batch is never held back for an event that has not arrived: after ``within``
    seconds without one, what is there is yielded.
    """
    if max_size < 1:
        raise ValueError(f"max_size must be >= 1, got {max_size}")
    batch: list[T] = []
    async for event in events:
        batch.append(event)
        if len(batch) < max_size and not waiting() and within > 0:
            await asyncio.sleep(within)  # a sleep, not a timeout on the read: nothing cancelled
        if len(batch) >= max_size or not waiting():
            yield batch
            batch = []
    if batch:
        yield batch
