"""One channel's lane as a continuous loop: up to ``concurrency`` sends in flight, new entries
read as soon as a slot frees (a batch never waits for its slowest send).

Entries read before a crash (pending, never acknowledged) are read again only when nothing is
in flight, so an entry is never handled twice at once; each is acknowledged once handled. A
Redis fault of one send is raised to the supervisor (degraded); its entry stays pending and
is read again on the next step.
"""

from __future__ import annotations

import asyncio
from typing import Any

from loanwatch.routing.notify.worker import GROUP, NotifyWorker


class Lane:
    def __init__(
        self, worker: NotifyWorker, channel: str, consumer: str, concurrency: int, block_ms: int
    ) -> None:
        self.worker, self.channel, self.consumer = worker, channel, consumer
        self.concurrency, self.block_ms = max(1, concurrency), block_ms
        self.stream = worker.lane(channel)
        self.tasks: set[asyncio.Task[None]] = set()
        self.reread_pending = True  # at start: what a crashed run left unacknowledged

    async def _one(self, entry_id: str, fields: dict[str, str]) -> None:
        if fields:  # an entry trimmed away while pending comes back empty
            await self.worker.handle_isolated(fields)
        await self.worker.r.xack(self.stream, GROUP, entry_id)

    async def _read(self, start: str, count: int, block: int | None) -> list[Any]:
        reply = await self.worker.r.xreadgroup(
            GROUP, self.consumer, {self.stream: start}, count=count, block=block
        )
        return [entry for _stream, entries in reply or [] for entry in entries]

    async def step(self) -> None:
        free = self.concurrency - len(self.tasks)
        if free > 0:
            if self.reread_pending and not self.tasks:
                entries = await self._read("0", free, None)
                self.reread_pending = len(entries) == free  # more may be pending
            else:
                entries = []
            if not entries and not self.reread_pending:
                entries = await self._read(">", free, None if self.tasks else self.block_ms)
            for entry_id, fields in entries:
                self.tasks.add(asyncio.create_task(self._one(entry_id, fields)))
        if not self.tasks:
            return
        done, _ = await asyncio.wait(
            self.tasks, timeout=0.05 if free > 0 else None, return_when=asyncio.FIRST_COMPLETED
        )
        failed: BaseException | None = None
        for task in done:
            self.tasks.discard(task)
            if (exc := task.exception()) is not None:
                failed = failed or exc
        if failed is not None:
            self.reread_pending = True  # its entry is still pending
            raise failed

    async def drain(self, timeout: float) -> None:
        """At shutdown: let the sends in flight finish (then cancel what is left)."""
        if self.tasks:
            _, late = await asyncio.wait(self.tasks, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
