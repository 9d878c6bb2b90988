"""The router: consumes ``loan.alerts`` and the ledger's verdicts on ``loan.status``, routes each
alert and creates or updates its work item with its notifications, in one Redis transaction.

Offsets are committed by hand, only after Redis has the item (or the record's dead letter is
acknowledged): a crash or a Redis outage means re-delivery, never loss, and re-delivery is
harmless because items are idempotent by ``alert_id``.

Every record is decoded with a size- and depth-bounded parser and validated; one that cannot
be acted on (undecodable, the wrong shape, or one whose handling raised) is dead-lettered with
a reason and the loop goes on. When Redis is unreachable or refuses a write (``OOM``,
``MISCONF``, any ``ResponseError``) the router is *degraded*: it pauses every partition (the
record that failed is fetched again), keeps polling so it stays in its group, probes Redis with
backoff and resumes once a write succeeds. It never logs personal data: alerts carry none.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from loanwatch.routing.alert import parse_alert
from loanwatch.routing.backlog import notification_backlog
from loanwatch.routing.config import RoutingSetup
from loanwatch.routing.deadletters import DeadLetter, DeadLetterSink
from loanwatch.routing.errors import AlertFormatError
from loanwatch.routing.faults import redis_fault
from loanwatch.routing.health import Backoff, Health
from loanwatch.routing.metrics import RouterMetrics
from loanwatch.routing.notify.plan import alert_entries, escalation_entries
from loanwatch.routing.status import parse_status
from loanwatch.routing.wire import Limits, RecordError, decode_object
from loanwatch.routing.workitems import Applied, Escalated, WorkItems

log = logging.getLogger("loanwatch.routing.router")
COMPONENT = "router"
DEFAULT_LIMITS = Limits()


class RedisFault(Exception):
    """Redis could not store a record's effects; the record must be retried, not skipped."""

    def __init__(self, reason: str, error: BaseException) -> None:
        super().__init__(reason)
        self.reason, self.error = reason, error

    def __str__(self) -> str:
        return f"{self.reason}: {type(self.error).__name__}: {self.error}"


class Router:
    def __init__(
        self,
        store: WorkItems,
        setup: RoutingSetup,
        clock: Callable[[], datetime],
        alerts_topic: str,
        status_topic: str | None = None,
        *,
        dead_letters: DeadLetterSink,
        health: Health | None = None,
        metrics: RouterMetrics | None = None,
        limits: Limits = DEFAULT_LIMITS,
        backoff: tuple[float, float] = (0.2, 5.0),
        consumer_options: dict[str, Any] | None = None,
        max_outbox_backlog: int = 0,
    ) -> None:
        self.max_outbox_backlog = max_outbox_backlog  # 0: no limit
        self.store, self.setup, self.clock = store, setup, clock
        self.alerts_topic, self.status_topic = alerts_topic, status_topic
        self.dead_letters, self.metrics, self.limits = dead_letters, metrics, limits
        self.health = health or Health(clock)
        self.backoff = backoff
        self.consumer_options = consumer_options or {}

    def source(self, topic: str) -> str:
        return "status" if topic == self.status_topic else "alerts"

    async def apply(self, topic: str, value: bytes | None) -> Applied:
        """Act on one record; raises RecordError (dead-letter it) or a Redis error (retry)."""
        doc = decode_object(value, self.limits)
        if topic == self.status_topic:
            closed = parse_status(doc)
            item_id = await self.store.resolve_loan(closed.loan_id, closed.resolution, self.clock())
            return Applied("resolve" if item_id else "none", item_id)
        try:
            alert = parse_alert(doc)
        except AlertFormatError as exc:
            raise RecordError("bad_alert", str(exc)) from None
        routes = self.setup.routes_for(alert)
        return await self.store.apply_alert(
            alert,
            routes,
            self.clock(),
            outbox=lambda item_id, assignee, _item: alert_entries(alert, routes, item_id, assignee),
        )

    async def handle(self, msg: ConsumerRecord[Any, Any]) -> Applied | None:
        """Apply ``msg`` or dead-letter it; raises :class:`RedisFault` when Redis failed."""
        try:
            return await self.apply(msg.topic, msg.value)
        except RecordError as exc:
            await self._dead_letter(msg, exc.reason, str(exc))
        except Exception as exc:
            if (reason := redis_fault(exc)) is not None:
                raise RedisFault(reason, exc) from exc
            log.exception(
                "record handling failed; dead-lettered",
                extra={"topic": msg.topic, "partition": msg.partition, "offset": msg.offset},
            )
            await self._dead_letter(msg, "handler_error", f"{type(exc).__name__}: {exc}")
        return None

    async def _dead_letter(self, msg: ConsumerRecord[Any, Any], reason: str, error: str) -> None:
        source = self.source(msg.topic)
        letter = DeadLetter(
            source, msg.topic, msg.partition, msg.offset, msg.key, reason, error, msg.value
        )
        await self.dead_letters.send(letter)
        if self.metrics is not None:
            self.metrics.dead_letter(source, reason)
        log.warning(
            "record dead-lettered",
            extra={
                "topic": msg.topic,
                "partition": msg.partition,
                "offset": msg.offset,
                "reason": reason,
                "error": error[:300],
            },
        )

    async def process(
        self, consumer: Any, batch: dict[TopicPartition, Sequence[ConsumerRecord[Any, Any]]]
    ) -> RedisFault | None:
        """Handle a fetched batch, committing each partition's progress; on a Redis fault,
        rewind every partition to its first unhandled record and return the fault."""
        pending = list(batch.items())
        for index, (tp, messages) in enumerate(pending):
            done = 0
            fault: RedisFault | None = None
            for msg in messages:
                try:
                    await self.handle(msg)
                except RedisFault as exc:
                    fault = exc
                    break
                done += 1
            if done:
                await self.dead_letters.flush()  # a dead letter is durable before its commit
                await consumer.commit({tp: messages[done - 1].offset + 1})
            if fault is not None:
                consumer.seek(tp, messages[done].offset)
                for later_tp, later in pending[index + 1 :]:
                    consumer.seek(later_tp, later[0].offset)
                return fault
        return None

    async def wait_for_redis(self, consumer: Any, fault: RedisFault, stop: asyncio.Event) -> None:
        """Degraded: every partition paused, polls kept up (so the group keeps us), Redis probed
        with a write until it takes one; then resume."""
        backoff = Backoff(*self.backoff)
        self.health.degrade(COMPONENT, fault.reason, fault.error)
        while not stop.is_set():
            assigned = consumer.assignment()
            consumer.pause(*assigned)
            stray = await consumer.getmany(timeout_ms=int(backoff.next() * 1000))
            for tp, messages in stray.items():  # a partition assigned while paused
                consumer.seek(tp, messages[0].offset)
            try:
                await self.store.probe()
            except Exception as exc:
                if (reason := redis_fault(exc)) is None:
                    raise
                self.health.degrade(COMPONENT, reason, exc)
                continue
            consumer.resume(*consumer.assignment())
            self.health.recover(COMPONENT)
            return

    async def backlog(self) -> int:
        return await notification_backlog(self.store.r, self.store.p)

    async def hold_while_backlogged(self, consumer: Any, stop: asyncio.Event) -> None:
        """Back-pressure: while the notifier is more than ``max_outbox_backlog`` entries
        behind, consume nothing (partitions paused, polls kept up), so a slow notifier makes
        the backlog wait in Kafka, not in Redis memory."""
        held = False
        while not stop.is_set() and await self.backlog() > self.max_outbox_backlog:
            if not held:
                log.info("outbox backlog over its limit: consuming paused")
                held = True
            consumer.pause(*consumer.assignment())
            stray = await consumer.getmany(timeout_ms=100)
            for tp, messages in stray.items():
                consumer.seek(tp, messages[0].offset)
        if held:
            consumer.resume(*consumer.assignment())

    def topics(self) -> list[str]:
        return [self.alerts_topic] + ([self.status_topic] if self.status_topic else [])

    async def run(self, bootstrap: str, group: str, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            *self.topics(),
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=200,
            **self.consumer_options,
        )
        await consumer.start()
        try:
            while not stop.is_set():
                if self.max_outbox_backlog:
                    await self.hold_while_backlogged(consumer, stop)
                batch = await consumer.getmany(timeout_ms=500)
                fault = await self.process(consumer, batch)
                if fault is not None:
                    await self.wait_for_redis(consumer, fault, stop)
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
