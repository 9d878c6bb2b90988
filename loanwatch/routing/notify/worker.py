"""The notification worker: drains the outbox stream, checks compliance, sends, retries.

Outbox entries are read through a consumer group (claim/ack), each delivered at least once and
deduplicated by its key. A borrower contact first passes :func:`compliance.check`: a deferred
one is parked in ``deferred`` (sorted by the allowed instant) and pumped back when due, a
do-not-contact one (or one without contact details) in the ``held`` stream (capped); each
suppression is appended to ``suppressions`` with its rule and reason. A send that fails after
its retries goes to the ``dead`` stream. It never logs a phone number, address or message body.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from redis.exceptions import ResponseError

from loanwatch.routing.compliance import ComplianceConfig, ContactRecord, Deferred, check
from loanwatch.routing.config import RoutingSetup
from loanwatch.routing.contacts import ContactBook
from loanwatch.routing.faults import redis_fault
from loanwatch.routing.housekeeping import Horizons, seconds
from loanwatch.routing.notify.reserve import RESERVED, Reservations
from loanwatch.routing.notify.retry import with_retries
from loanwatch.routing.notify.senders import (
    AlertmanagerSender,
    EmailSender,
    SmsGateway,
    WebhookSender,
)
from loanwatch.routing.outbox_streams import LANES, OTHER, all_streams, lane
from loanwatch.routing.templates import MessageContext, render

log = logging.getLogger("loanwatch.routing.notify")
GROUP = "notifier"
DEFAULT_CONCURRENCY = 8
DEFAULT_HORIZONS = Horizons()


class DeadLetterMetrics(Protocol):
    def dead_letter(self, source: str, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Senders:
    sms: SmsGateway | None
    email: EmailSender | None
    webhook: WebhookSender | None
    alertmanager: AlertmanagerSender | None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    base: float = 1.0
    cap: float = 60.0


def _context(e: dict[str, str]) -> MessageContext:
    return MessageContext(
        loan_ref=e.get("loan_id", ""),
        kind=e.get("kind", ""),
        amount=Decimal(e.get("amount") or "0"),
        currency=e.get("currency", "CNY"),
        due_date=date.fromisoformat(e["due_date"]) if e.get("due_date") else None,
        dpd=int(e.get("dpd") or 0),
        bucket=e.get("bucket", ""),
        priority=e.get("priority", "P3"),
        item_id=e.get("item_id", ""),
    )


class NotifyWorker:
    def __init__(
        self,
        redis: Any,
        prefix: str,
        setup: RoutingSetup,
        rules: ComplianceConfig,
        senders: Senders,
        clock: Callable[[], datetime],
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], Awaitable[None]] | None = None,
        metrics: DeadLetterMetrics | None = None,
        horizons: Horizons = DEFAULT_HORIZONS,
        concurrency: Mapping[str, int] | None = None,
        number_secret: bytes = b"",
    ) -> None:
        self.horizons = horizons
        self.concurrency = dict(concurrency or {})
        self.r, self.p, self.setup, self.rules = redis, prefix, setup, rules
        self.senders, self.clock, self.retry = senders, clock, retry
        self.book = ContactBook(redis, prefix, number_secret)
        self.reservations = Reservations(redis, prefix, seconds(horizons.sent_ttl), self.book)
        self.sleep = sleep
        self.metrics = metrics

    def k(self, name: str) -> str:
        return self.p + name

    def lane(self, channel: str) -> str:
        return lane(self.p, channel)

    def streams(self) -> list[str]:
        """The outbox and every lane (what housekeeping trims and back-pressure counts)."""
        return all_streams(self.p)

    async def ensure_group(self) -> None:
        for stream in self.streams():
            try:
                await self.r.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _read(
        self, stream: str, consumer: str, count: int, block_ms: int | None
    ) -> list[tuple[str, dict[str, str]]]:
        """Pending entries first (read before a crash, never acknowledged), then new ones."""
        out: list[tuple[str, dict[str, str]]] = []
        for start in ("0", ">"):
            reply = await self.r.xreadgroup(
                GROUP,
                consumer,
                {stream: start},
                count=count,
                block=None if start == "0" or out else block_ms,
            )
            for _stream, entries in reply or []:
                out.extend(entries)
        return out

    async def dispatch_once(self, consumer: str, block_ms: int = 1000, count: int = 200) -> int:
        """Move outbox entries to their channel's lane (atomically: added there and
        acknowledged here in one transaction); returns how many were moved."""
        entries = await self._read(self.k("outbox"), consumer, count, block_ms)
        if entries:
            async with self.r.pipeline(transaction=True) as pipe:
                for entry_id, fields in entries:
                    if fields:  # an entry trimmed away while pending comes back empty
                        pipe.xadd(self.lane(fields.get("channel", "")), fields)
                    pipe.xack(self.k("outbox"), GROUP, entry_id)
                await pipe.execute()
        return len(entries)

    async def run_lane(
        self, channel: str, consumer: str, block_ms: int | None = 1000, count: int = 50
    ) -> int:
        """Handle a batch of one channel's entries, at most ``concurrency`` sends at a time;
        each entry is acknowledged once handled. A slow or dead gateway holds up its own lane
        only."""
        stream = self.lane(channel)
        entries = await self._read(stream, consumer, count, block_ms)
        limit = asyncio.Semaphore(self.concurrency.get(channel, DEFAULT_CONCURRENCY))

        async def one(entry_id: str, fields: dict[str, str]) -> None:
            async with limit:
                if fields:
                    await self.handle_isolated(fields)
                await self.r.xack(stream, GROUP, entry_id)

        await asyncio.gather(*(one(i, f) for i, f in entries))
        return len(entries)

    async def run_once(self, consumer: str, block_ms: int = 1000, count: int = 50) -> int:
        """Dispatch, then handle every lane once; returns how many entries were handled (the
        service runs the dispatcher and each lane as loops of their own instead)."""
        await self.dispatch_once(consumer, block_ms, count)
        handled = 0
        for channel in (*LANES, OTHER):
            handled += await self.run_lane(channel, consumer, None, count)
        return handled

    async def handle_isolated(self, e: dict[str, str]) -> None:
        """Handle one entry; an error that is not Redis's dead-letters the entry (never a
        crash loop: the entry is acknowledged after its dead letter). Redis errors propagate:
        the entry stays pending and the supervisor retries it once Redis is back."""
        try:
            await self.handle(e)
        except Exception as exc:
            if redis_fault(exc) is not None:
                raise
            log.exception("outbox entry failed; dead-lettered", extra={"key": e.get("key")})
            await self._dead(e, 0, f"{type(exc).__name__}: {exc}", reason="handler_error")

    async def pump_deferred(self, now: datetime) -> int:
        """Put deferred sends whose allowed instant has come back on the outbox."""
        due = await self.r.zrangebyscore(self.k("deferred"), "-inf", now.timestamp())
        for member in due:
            try:
                entry = json.loads(member)
                if not isinstance(entry, dict):
                    raise ValueError("deferred entry is not a JSON object")
                fields = {str(k): str(v) for k, v in entry.items()} | {"deferred": "1"}
            except ValueError as exc:
                await self.r.zrem(self.k("deferred"), member)
                await self._dead({"raw": member[:2000]}, 0, str(exc), reason="bad_deferred")
                continue
            async with self.r.pipeline(transaction=True) as pipe:
                pipe.zrem(self.k("deferred"), member)
                pipe.xadd(self.k("outbox"), fields)
                await pipe.execute()
        return len(due)

    async def handle(self, e: dict[str, str]) -> None:
        key = e.get("key", "")
        state = await self.reservations.state(key) if key else None
        if state is not None and not state.startswith(RESERVED):
            return  # sent before a crash, not yet acknowledged
        resend = state is not None  # reserved, then the process died before confirming
        contact: ContactRecord | None = None
        channel, target = e.get("channel", ""), e.get("target", "")
        meta = {
            "key": key,
            "loan_id": e.get("loan_id"),
            "item_id": e.get("item_id"),
            "channel": channel,
            "target": target,
        }
        now = self.clock()
        send: Callable[[], Awaitable[None]]
        if target == "borrower":
            debtor = await self.book.debtor(e.get("borrower_id", ""))
            if debtor is None or (debtor.phone if channel == "sms" else debtor.email) is None:
                await self._suppress(e, None, "no_contact_details", "no contact point on file")
                return
            request = debtor.request(e.get("loan_id", ""), channel)
            # A re-send was checked (and counted) when it was reserved: not again.
            decision = (
                None
                if resend
                else check(
                    self.rules, request, await self.book.history(debtor.borrower_id, now), now
                )
            )
            if isinstance(decision, Deferred):
                await self._suppress(e, decision.until, decision.rule, decision.reason)
                return
            contact = ContactRecord(
                now, e.get("loan_id", ""), debtor.borrower_id, channel, "sent", request.number
            )
            message = render(_context(e), "borrower", debtor.locale)
            if channel == "sms" and self.senders.sms:
                sms, phone = self.senders.sms, debtor.phone or ""
                send = lambda: sms.send(phone, message, key)  # noqa: E731
            elif channel == "email" and self.senders.email:
                mail, to = self.senders.email, debtor.email or ""
                send = lambda: mail.send(to, message, key)  # noqa: E731
            else:
                await self._dead(e, 0, f"no {channel} sender configured", reason="no_sender")
                return
        elif target == "oncall" or channel in ("sms", "email"):
            collector = self.setup.collectors.get(e.get("oncall", ""))
            address = (
                None
                if collector is None
                else (collector.phone if channel == "sms" else collector.email)
            )
            if collector is None or address is None:
                await self._dead(
                    e, 0, f"on-call collector has no {channel} contact point", reason="no_contact"
                )
                return
            message = render(_context(e), "oncall", collector.locale)
            sender = self.senders.sms if channel == "sms" else self.senders.email
            if sender is None:
                await self._dead(e, 0, f"no {channel} sender configured", reason="no_sender")
                return
            send = lambda: sender.send(address, message, key)  # noqa: E731
        elif channel == "webhook" and self.senders.webhook:
            hook = self.senders.webhook
            payload = {k: v for k, v in e.items() if k not in ("attempt", "deferred")}
            send = lambda: hook.send(target, payload, key)  # noqa: E731
        elif channel == "alertmanager" and self.senders.alertmanager:
            am = self.senders.alertmanager
            labels = alertmanager_labels(e)
            notes = {
                "loan_id": e.get("loan_id", ""),
                "item_id": e.get("item_id", ""),
                "summary": f"{e.get('kind')} loan {e.get('loan_id')} {e.get('bucket')}",
            }
            send = lambda: am.send(labels, notes)  # noqa: E731
        else:
            await self._dead(e, 0, f"no sender for channel {channel!r}", reason="no_sender")
            return
        if not key:
            pass  # an entry without a key (none are made) cannot be made idempotent
        elif resend:
            log.warning(
                "re-sending a reserved notification (crash before its confirmation); the "
                "receiver sees the same Idempotency-Key",
                extra=meta,
            )
        elif not await self.reservations.reserve(key, contact, now):
            return  # another notifier reserved it first
        ok, tries, error = await with_retries(
            send,
            self.retry.attempts,
            self.retry.base,
            self.retry.cap,
            **({"sleep": self.sleep} if self.sleep else {}),
        )
        if not ok:
            # Never delivered: released, so that re-driving the dead letter (or a re-delivery
            # after a crash) may try again; the contact stays counted (the caps err on the side
            # of the borrower).
            if key:
                await self.reservations.release(key)
            await self._dead(e, tries, error)
            return
        if key:
            await self.reservations.confirm(key, now)
        log.info("notification sent", extra=meta | {"tries": tries})

    async def _suppress(
        self, e: dict[str, str], until: datetime | None, rule: str, reason: str
    ) -> None:
        """Record the suppression and park the send: deferred to ``until``, or held."""
        now = self.clock()
        record = {
            "key": e.get("key", ""),
            "loan_id": e.get("loan_id", ""),
            "item_id": e.get("item_id", ""),
            "channel": e.get("channel", ""),
            "rule": rule,
            "reason": reason,
            "until": until.isoformat() if until else "",
            "at": now.isoformat(),
        }
        cap = self.horizons.stream_max_len
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.xadd(self.k("suppressions"), record, maxlen=cap, approximate=True)
            if until is None:  # never sendable as it stands: kept for the operators, capped
                pipe.xadd(self.k("held"), e, maxlen=cap, approximate=True)
            else:
                pipe.zadd(self.k("deferred"), {json.dumps(e, sort_keys=True): until.timestamp()})
            await pipe.execute()
        log.info(
            "contact suppressed",
            extra={k: record[k] for k in ("key", "loan_id", "channel", "rule", "reason", "until")},
        )

    async def _dead(
        self, e: dict[str, str], tries: int, error: str, reason: str = "delivery_failed"
    ) -> None:
        await self.r.xadd(
            self.k("dead"),
            maxlen=self.horizons.stream_max_len,
            approximate=True,
            fields=e
            | {
                "source": "outbox",
                "reason": reason,
                "tries": str(tries),
                "error": error[:500],
                "at": self.clock().isoformat(),
            },
        )
        if self.metrics is not None:
            self.metrics.dead_letter("outbox", reason)
        log.warning(
            "notification dead-lettered",
            extra={
                "key": e.get("key"),
                "loan_id": e.get("loan_id"),
                "channel": e.get("channel"),
                "tries": tries,
                "reason": reason,
                "error": error[:300],
            },
        )


ALERTMANAGER_LABELS = ("kind", "severity", "team", "priority", "product", "region", "bucket")


def alertmanager_labels(entry: Mapping[str, Any]) -> dict[str, str]:
    """The labels of a loan alert forwarded to Alertmanager (``alertname`` LoanwatchAlert).

    ``loan_id`` is a label: Alertmanager identifies an alert by its labels, so without it the
    alerts of two loans in the same bucket/team/product/region were one alert (and the inhibit
    rule of config/alertmanager/alertmanager.yml compares it, so one loan's critical alert does
    not mute another loan's warning).
    """
    labels = {"alertname": "LoanwatchAlert"}
    for key in (*ALERTMANAGER_LABELS, "loan_id"):
        value = entry.get(key)
        labels[key] = "" if value is None else str(value)
    return labels
