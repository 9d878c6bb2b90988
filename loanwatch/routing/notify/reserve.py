"""Reservations of notifications: at most one send per alert, route and channel across crashes.

``sent:<key>`` holds ``reserved:<at>`` from before the gateway is called (set in the same
transaction that counts the borrower's contact, so the frequency caps see a send that a crash
interrupts), then ``sent:<at>``. A send that failed for good releases its reservation (a
re-driven dead letter may try again). Found ``reserved`` after a crash, the entry is offered
again with the same key, which the gateway sees as ``Idempotency-Key``/``ref``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from redis.exceptions import WatchError

from loanwatch.routing.compliance import ContactRecord
from loanwatch.routing.contacts import ContactBook

RESERVED = "reserved:"
SENT = "sent:"


class Reservations:
    def __init__(self, redis: Any, prefix: str, ttl_seconds: int, book: ContactBook) -> None:
        self.r, self.p, self.ttl, self.book = redis, prefix, ttl_seconds, book

    def k(self, key: str) -> str:
        return f"{self.p}sent:{key}"

    async def state(self, key: str) -> str | None:
        value: str | None = await self.r.get(self.k(key))
        return value

    async def reserve(self, key: str, contact: ContactRecord | None, now: datetime) -> bool:
        """Reserve ``key`` (and count ``contact``) unless reserved already; True when ours."""
        async with self.r.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(self.k(key))
                if await pipe.exists(self.k(key)):
                    return False
                pipe.multi()
                pipe.set(self.k(key), RESERVED + now.isoformat(), ex=self.ttl)
                if contact is not None:
                    self.book.queue_record(pipe, contact)
                await pipe.execute()
            except WatchError:
                return False
        return True

    async def confirm(self, key: str, now: datetime) -> None:
        await self.r.set(self.k(key), SENT + now.isoformat(), ex=self.ttl)

    async def release(self, key: str) -> None:
        await self.r.delete(self.k(key))
