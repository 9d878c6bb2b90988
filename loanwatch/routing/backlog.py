"""How far the notifier is behind: unread plus pending entries of the outbox and every lane
(its consumer group), what the router's back-pressure compares with its limit."""

from __future__ import annotations

from typing import Any

from loanwatch.routing.outbox_streams import all_streams


async def notification_backlog(redis: Any, prefix: str, group: str = "notifier") -> int:
    total = 0
    for stream in all_streams(prefix):
        total += await _stream_backlog(redis, stream, group)
    return total


async def _stream_backlog(redis: Any, stream: str, group: str) -> int:
    try:
        groups = await redis.xinfo_groups(stream)
    except Exception as exc:
        if "no such key" in str(exc).lower():
            return 0
        raise
    for info in groups:
        if info["name"] == group:
            lag = info.get("lag")
            if lag is None:  # Redis cannot tell (after a deletion): count it all
                lag = await redis.xlen(stream)
            return int(lag) + int(info.get("pending") or 0)
    return int(await redis.xlen(stream))
