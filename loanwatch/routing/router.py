"""The router: consumes ``loan.alerts`` (and ``loan_closed`` from ``loan.accounts``), routes each
alert and creates or updates its work item with its notifications, in one Redis transaction.

Offsets are committed by hand, only after Redis has the item: a crash or a Redis outage means
re-delivery, never loss, and re-delivery is harmless because items are idempotent by
``alert_id``. A malformed message is logged with its offset and skipped (it can never succeed).
It never logs personal data: alerts carry none.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from loanwatch.routing.alert import parse_alert
from loanwatch.routing.config import RoutingSetup
from loanwatch.routing.errors import AlertFormatError
from loanwatch.routing.notify.plan import alert_entries, escalation_entries
from loanwatch.routing.workitems import Applied, Escalated, WorkItems

log = logging.getLogger("loanwatch.routing.router")
_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


class Router:
    def __init__(
        self,
        store: WorkItems,
        setup: RoutingSetup,
        clock: Callable[[], datetime],
        alerts_topic: str,
        accounts_topic: str | None = None,
    ) -> None:
        self.store, self.setup, self.clock = store, setup, clock
        self.alerts_topic, self.accounts_topic = alerts_topic, accounts_topic

    async def handle(self, topic: str, value: bytes | None) -> Applied | None:
        """Apply one message; raises only when Redis is unavailable (the caller retries)."""
        try:
            doc = json.loads(value or b"")
            if not isinstance(doc, dict):
                raise AlertFormatError("message is not a JSON object")
        except (ValueError, AlertFormatError) as exc:
            log.warning("skipping malformed message", extra={"topic": topic, "error": str(exc)})
            return None
        if topic == self.accounts_topic:
            if doc.get("type") == "loan_closed" and isinstance(doc.get("loan_id"), str):
                reason = f"loan_closed:{doc.get('reason', '')}"
                item_id = await self.store.resolve_loan(doc["loan_id"], reason, self.clock())
                return Applied("resolve" if item_id else "none", item_id)
            return None
        try:
            alert = parse_alert(doc)
        except AlertFormatError as exc:
            log.warning("skipping malformed alert", extra={"topic": topic, "error": str(exc)})
            return None
        routes = self.setup.routes_for(alert)
        return await self.store.apply_alert(
            alert,
            routes,
            self.clock(),
            outbox=lambda item_id, assignee, _item: alert_entries(alert, routes, item_id, assignee),
        )

    async def handle_until_stored(self, msg: ConsumerRecord[Any, Any], stop: asyncio.Event) -> None:
        """Retry while Redis is down: the offset must not move past an unstored alert."""
        delay = 0.2
        while True:
            try:
                await self.handle(msg.topic, msg.value)
                return
            except _REDIS_DOWN as exc:
                if stop.is_set():
                    raise
                log.warning(
                    "redis unavailable, retrying",
                    extra={
                        "topic": msg.topic,
                        "partition": msg.partition,
                        "offset": msg.offset,
                        "error": type(exc).__name__,
                    },
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def run(self, bootstrap: str, group: str, stop: asyncio.Event) -> None:
        topics = [self.alerts_topic] + ([self.accounts_topic] if self.accounts_topic else [])
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=200,
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=500)
                for tp, messages in batch.items():
                    for msg in messages:
                        await self.handle_until_stored(msg, stop)
                    # Commit only what Redis now holds (next offset to read).
                    await consumer.commit(
                        {TopicPartition(tp.topic, tp.partition): messages[-1].offset + 1}
                    )
        finally:
            await consumer.stop()

    async def escalate(self, now: datetime) -> list[Escalated]:
        def outbox(item_id: str, _who: str | None, item: Any) -> list[dict[str, str]]:
            route = next(
                (
                    r
                    for r in (*self.setup.table.routes, self.setup.table.default)
                    if r.name == item.get("route")
                ),
                self.setup.table.default,
            )
            return escalation_entries(route, item, int(item.get("level", "0")))

        return await self.store.escalate_due(now, outbox=outbox)
