"""Keeping the router's Redis bounded by design, not by ``maxmemory``.

Horizons (each a setting, documented in docs/reliability.md): ``seen:<alert_id>`` keys expire
after ``seen_ttl`` (longer than any re-delivery: the alerts topic's retention), ``sent:<key>``
after ``sent_ttl``; the ``dead``, ``suppressions`` and ``held`` streams are capped at
``stream_max_len`` entries (``MAXLEN ~``); the outbox is trimmed below the oldest entry the
notifier has not acknowledged (never an unsent one); a resolved work item is kept
``resolved_retention`` for the collectors, then **archived to Kafka** (acknowledged) and only
then deleted, by a script that deletes it only if it did not change since it was read.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from loanwatch.routing.outbox_streams import all_streams

log = logging.getLogger("loanwatch.routing.housekeeping")

# KEYS: wi:<id>, resolved zset, closed:<loan>; ARGV: item id, updated_at read before archiving.
_DELETE_IF_UNCHANGED = """
if redis.call('HGET', KEYS[1], 'updated_at') ~= ARGV[2] and redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[3], 'item_id') == ARGV[1] then
  redis.call('HDEL', KEYS[3], 'item_id')
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Horizons:
    seen_ttl: timedelta = timedelta(days=14)
    sent_ttl: timedelta = timedelta(days=30)
    resolved_retention: timedelta = timedelta(days=1)
    stream_max_len: int = 100_000
    archive_batch: int = 500


def seconds(span: timedelta) -> int:
    return max(1, int(span.total_seconds()))


class Housekeeper:
    """Archives resolved items past their retention and trims the outbox; run by the timer."""

    def __init__(
        self, redis: Any, prefix: str, producer: Any, archive_topic: str, horizons: Horizons
    ) -> None:
        self.r, self.p, self.producer = redis, prefix, producer
        self.streams = all_streams(prefix)
        self.topic, self.h = archive_topic, horizons
        self.delete = redis.register_script(_DELETE_IF_UNCHANGED)

    def k(self, name: str) -> str:
        return self.p + name

    async def run_once(self, now: datetime) -> tuple[int, int]:
        """(items archived, outbox entries trimmed)."""
        archived = 0
        while True:
            batch = await self.archive_due(now)
            archived += batch
            if batch < self.h.archive_batch:
                break
        return archived, await self.trim_outbox()

    async def archive_due(self, now: datetime) -> int:
        cutoff = (now - self.h.resolved_retention).timestamp()
        ids: list[str] = await self.r.zrangebyscore(
            self.k("resolved"), "-inf", cutoff, start=0, num=self.h.archive_batch
        )
        if not ids:
            return 0
        async with self.r.pipeline(transaction=False) as pipe:
            for item_id in ids:
                pipe.hgetall(self.k(f"wi:{item_id}"))
            items: list[dict[str, str]] = await pipe.execute()
        sends = []
        for item_id, item in zip(ids, items, strict=True):
            if item:
                value = orjson.dumps({"archived_at": now.isoformat(), "item": item})
                key = (item.get("loan_id") or item_id).encode()
                sends.append(await self.producer.send(self.topic, value, key=key))
        await asyncio.gather(*sends)  # archived (acknowledged) before anything is deleted
        done = 0
        for item_id, item in zip(ids, items, strict=True):
            keys = [
                self.k(f"wi:{item_id}"),
                self.k("resolved"),
                self.k(f"closed:{item.get('loan_id', '')}"),
            ]
            done += int(await self.delete(keys=keys, args=[item_id, item.get("updated_at", "")]))
        if done:
            log.info("resolved work items archived", extra={"count": done, "topic": self.topic})
        return done

    async def trim_outbox(self) -> int:
        """Trim the outbox and every lane (see :meth:`trim_stream`); entries dropped."""
        return sum([await self.trim_stream(stream) for stream in self.streams])

    async def trim_stream(self, stream: str) -> int:
        """Drop entries older than the oldest the notifier has not acknowledged."""
        try:
            groups = await self.r.xinfo_groups(stream)
        except Exception as exc:
            if "no such key" in str(exc).lower():
                return 0
            raise
        if not groups:
            return 0  # no notifier group yet: nothing is known to be delivered
        floor: str | None = None
        for group in groups:
            pending = await self.r.xpending(stream, group["name"])
            candidate = pending["min"] if pending["pending"] else group["last-delivered-id"]
            if floor is None or _id_key(candidate) < _id_key(floor):
                floor = candidate
        if floor is None or floor == "0-0":
            return 0
        return int(await self.r.xtrim(stream, minid=floor, approximate=True))


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
