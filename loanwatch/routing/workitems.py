"""Work items in Redis: one per loan per delinquency episode, triggered -> acknowledged -> resolved.

Keys (all under a prefix): ``wi:<id>`` hash of the item; ``seen:<alert_id>`` makes every alert
apply once (idempotent by ``alert_id``: a re-fired or re-delivered alert changes nothing);
``loan:<loan_id>`` the loan's open item; ``closed:<loan_id>`` (with a TTL) a loan closed on
``loan.accounts``, so an alert of that loan read after its ``loan_closed`` (the topics are not
ordered against each other) leaves a resolved item and sends nothing; ``open:<team>`` and
``mine:<collector>`` sorted sets (queues); ``esc`` the escalation deadlines; ``resolved`` the
resolved items by resolution time (archived to Kafka and deleted after their retention, see
:mod:`loanwatch.routing.housekeeping`); ``outbox`` the notification stream. ``seen:*`` keys
expire after ``horizons.seen_ttl``. Each change,
with the notifications it causes, is one MULTI/EXEC under WATCH, so a crash leaves all or none.
Never stores names, phone numbers or message texts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import WatchError

from loanwatch.routing.alert import AlertRecord
from loanwatch.routing.config import RoutingSetup
from loanwatch.routing.episodes import Plan, item_id_for, plan
from loanwatch.routing.errors import WorkItemError
from loanwatch.routing.faults import redis_fault
from loanwatch.routing.housekeeping import Horizons, seconds
from loanwatch.routing.routes import Route

log = logging.getLogger("loanwatch.routing.workitems")
# (item_id, assignee, item fields) -> outbox entries to add in the same transaction
Outbox = Callable[[str, str | None, Mapping[str, str]], Sequence[Mapping[str, str]]]
WORKITEMS_OPEN_METRIC = "loanwatch_workitems_open"
# redis-py's stubs type every reply as ``bytes | str``; the client is built with
# ``decode_responses=True`` (see :func:`connect`), so replies are ``str`` and we type them loosely.
Pipeline = Any
Redis = Any
CLOSED_LOAN_TTL = timedelta(days=30)
DEFAULT_HORIZONS = Horizons()


@dataclass(frozen=True, slots=True)
class Applied:
    action: str  # create | update | reroute | resolve | none | duplicate | closed
    item_id: str | None


@dataclass(frozen=True, slots=True)
class Escalated:
    item_id: str
    level: int
    assignee: str | None


#: (item field, alert label) pairs recorded when the alert carries them (strategies configured).
TREATMENT_FIELDS = (
    ("segment", "segment"),
    ("experiment", "experiment"),
    ("arm", "arm"),
    ("last_action", "action"),
)


def _no_outbox(item_id: str, assignee: str | None, item: Mapping[str, str]) -> list[dict[str, str]]:
    return []


class WorkItems:
    """The work-item store. ``now`` is always passed in: tests drive time by hand."""

    def __init__(
        self,
        redis: Redis,
        setup: RoutingSetup,
        prefix: str = "lw:",
        closed_ttl: timedelta = CLOSED_LOAN_TTL,
        on_dead: Callable[[str, str], None] | None = None,
        horizons: Horizons = DEFAULT_HORIZONS,
    ) -> None:
        self.horizons = horizons
        self.on_dead = on_dead  # (source, reason) of each dead letter, for the metric
        self.r = redis
        self.setup = setup
        self.p = prefix
        self.closed_ttl = closed_ttl

    def k(self, *parts: str) -> str:
        return self.p + ":".join(parts)

    async def borrower_of(self, loan_id: str) -> str | None:
        """The borrower of a loan that has (or had) a work item here, else None."""
        item_id = await self.r.get(self.k("loan", loan_id))
        if not item_id:
            return None
        found = (await self.get(str(item_id))).get("borrower_id")
        return found or None

    async def probe(self) -> None:
        """One small write: raises the Redis error while Redis is down or refusing writes."""
        await self.r.set(self.k("health", "probe"), "1", px=60_000)

    async def get(self, item_id: str) -> dict[str, str]:
        item: dict[str, str] = await self.r.hgetall(self.k("wi", item_id))
        return item

    async def apply_alert(
        self,
        alert: AlertRecord,
        routes: tuple[Route, ...],
        now: datetime,
        outbox: Outbox = _no_outbox,
    ) -> Applied:
        """Create, update, re-route or resolve the loan's item for ``alert``, exactly once."""
        seen, loan_key = self.k("seen", alert.alert_id), self.k("loan", alert.loan_id)
        closed_key = self.k("closed", alert.loan_id)
        async with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(seen, loan_key, closed_key)
                    if await pipe.exists(seen):
                        return Applied("duplicate", await pipe.get(seen) or None)
                    open_id = await pipe.get(loan_key)
                    closed: dict[str, str] = await pipe.hgetall(closed_key)
                    item: dict[str, str] = {}
                    if open_id:
                        await pipe.watch(self.k("wi", open_id))
                        item = await pipe.hgetall(self.k("wi", open_id))
                    decision = plan(alert, routes, item or None)
                    pipe.multi()
                    action: str
                    if not closed:
                        action = decision.action
                        item_id = self._queue_plan(pipe, decision, alert, item, now, outbox)
                    else:
                        action = "closed"
                        item_id = self._queue_closed(pipe, decision, alert, item, closed, now)
                    pipe.set(seen, item_id or "-", ex=seconds(self.horizons.seen_ttl))
                    await pipe.execute()
                    log.info(
                        "alert applied",
                        extra={
                            "alert_id": alert.alert_id,
                            "loan_id": alert.loan_id,
                            "kind": alert.kind,
                            "action": action,
                            "item_id": item_id,
                        },
                    )
                    return Applied(action, item_id)
                except WatchError:
                    continue

    def _queue_closed(
        self,
        pipe: Pipeline,
        decision: Plan,
        alert: AlertRecord,
        item: dict[str, str],
        closed: Mapping[str, str],
        now: datetime,
    ) -> str | None:
        """An alert of a loan already closed: keep the record, resolved, and notify nobody.

        The alert was fired before the loan closed but read after its ``loan_closed``; nobody
        should work (or text the borrower about) a closed loan. The first such alert that
        would open an item leaves one, already resolved; later ones update that item.
        """
        reason = closed.get("reason", "loan_closed")
        if item and item.get("state") != "resolved":
            self._queue_resolve(pipe, item, reason, now)
            return item["item_id"]
        if closed.get("item_id"):
            pipe.hset(self.k("wi", closed["item_id"]), mapping=self._item_fields(alert, now))
            pipe.hincrby(self.k("wi", closed["item_id"]), "alerts", 1)
            return closed["item_id"]
        if decision.action not in ("create", "reroute") or decision.route is None:
            return None
        item_id = item_id_for(alert)
        pipe.hset(self.k("closed", alert.loan_id), "item_id", item_id)  # keeps the key's TTL
        ts = now.isoformat()
        pipe.hset(
            self.k("wi", item_id),
            mapping=self._item_fields(alert, now)
            | {
                "item_id": item_id,
                "loan_id": alert.loan_id,
                "borrower_id": alert.borrower_id,
                "team": decision.route.team,
                "route": decision.route.name,
                "priority": decision.route.priority,
                "policy": decision.route.escalation,
                "level": "0",
                "assignee": "",
                "product": alert.label("product") or "",
                "region": alert.label("region") or "",
                "due_date": alert.due_date or "",
                "created_at": ts,
                "opened_by": alert.alert_id,
                "alerts": "1",
                "state": "resolved",
                "resolved_at": ts,
                "resolution": reason,
            },
        )
        pipe.zadd(self.k("resolved"), {item_id: now.timestamp()})
        return item_id

    @staticmethod
    def _item_fields(alert: AlertRecord, now: datetime) -> dict[str, str]:
        fields = {
            "last_alert_id": alert.alert_id,
            "last_kind": alert.kind,
            "severity": alert.severity,
            "bucket": alert.label("bucket") or "",
            "dpd": alert.label("dpd") or "0",
            "overdue_amount": alert.label("overdue_amount") or "0.00",
            "updated_at": now.isoformat(),
        }
        # Classified treatment (issue 18): the loan's segment and arm, its latest action.
        for name, label in TREATMENT_FIELDS:
            value = alert.label(label)
            if value is not None:
                fields[name] = value
        return fields

    def _queue_plan(
        self,
        pipe: Pipeline,
        decision: Plan,
        alert: AlertRecord,
        item: dict[str, str],
        now: datetime,
        outbox: Outbox,
    ) -> str | None:
        ts = now.isoformat()
        fields = self._item_fields(alert, now)
        if decision.action == "none":
            entries = outbox("", None, fields)
        elif decision.action == "resolve":
            self._queue_resolve(pipe, item, decision.reason, now)
            entries = outbox(item["item_id"], item.get("assignee") or None, item | fields)
        elif decision.action == "update":
            pipe.hset(self.k("wi", item["item_id"]), mapping=fields)
            pipe.hincrby(self.k("wi", item["item_id"]), "alerts", 1)
            entries = outbox(item["item_id"], item.get("assignee") or None, item | fields)
        else:
            assert decision.route is not None
            item_id = item["item_id"] if item else item_id_for(alert)
            route = decision.route
            assignee = (
                self.setup.resolve(self.setup.table.policy(route).levels[0].notify, route.team, now)
                or ""
            )
            new = fields | {
                "item_id": item_id,
                "loan_id": alert.loan_id,
                "borrower_id": alert.borrower_id,
                "team": route.team,
                "route": route.name,
                "priority": route.priority,
                "policy": route.escalation,
                "level": "0",
                "state": "triggered",
                "assignee": assignee,
                "product": alert.label("product") or "",
                "region": alert.label("region") or "",
                "due_date": alert.due_date or "",
            }
            if not item:
                new |= {"created_at": ts, "opened_by": alert.alert_id}
            else:  # re-route: leave the old team's queue and assignee
                pipe.zrem(self.k("open", item["team"]), item_id)
                if item.get("assignee"):
                    pipe.zrem(self.k("mine", item["assignee"]), item_id)
            pipe.hset(self.k("wi", item_id), mapping=new)
            pipe.hincrby(self.k("wi", item_id), "alerts", 1)
            pipe.set(self.k("loan", alert.loan_id), item_id)
            pipe.zadd(self.k("open", route.team), {item_id: now.timestamp()})
            if assignee:
                pipe.zadd(self.k("mine", assignee), {item_id: now.timestamp()})
            self._queue_deadline(pipe, item_id, route.escalation, 0, now)
            self._add_outbox(pipe, outbox(item_id, assignee or None, item | new))
            return item_id
        self._add_outbox(pipe, entries)
        return item.get("item_id")

    def _add_outbox(self, pipe: Pipeline, entries: Sequence[Mapping[str, str]]) -> None:
        for entry in entries:
            pipe.xadd(self.k("outbox"), dict(entry))

    def _queue_deadline(
        self, pipe: Pipeline, item_id: str, policy: str, level: int, now: datetime
    ) -> None:
        timeout = self.setup.table.policies[policy].timeout(level)
        if timeout is None:
            pipe.zrem(self.k("esc"), item_id)
        else:
            pipe.zadd(self.k("esc"), {item_id: (now + timeout).timestamp()})

    def _queue_resolve(
        self, pipe: Pipeline, item: Mapping[str, str], reason: str, now: datetime
    ) -> None:
        item_id = item["item_id"]
        pipe.hset(
            self.k("wi", item_id),
            mapping={
                "state": "resolved",
                "resolved_at": now.isoformat(),
                "resolution": reason,
                "updated_at": now.isoformat(),
            },
        )
        pipe.zrem(self.k("open", item["team"]), item_id)
        if item.get("assignee"):
            pipe.zrem(self.k("mine", item["assignee"]), item_id)
        pipe.zrem(self.k("esc"), item_id)
        pipe.delete(self.k("loan", item["loan_id"]))
        pipe.zadd(self.k("resolved"), {item_id: now.timestamp()})  # archived after retention

    async def _transition(
        self, item_id: str, change: Callable[[Pipeline, dict[str, str]], None]
    ) -> dict[str, str]:
        key = self.k("wi", item_id)
        async with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    item: dict[str, str] = await pipe.hgetall(key)
                    if not item:
                        raise WorkItemError(f"no work item {item_id!r}")
                    pipe.multi()
                    change(pipe, item)
                    await pipe.execute()
                    return await self.get(item_id)
                except WatchError:
                    continue

    async def claim(self, item_id: str, collector: str, now: datetime) -> dict[str, str]:
        """``collector`` takes the item (and so acknowledges it); refused when another has it."""

        def change(pipe: Pipeline, item: dict[str, str]) -> None:
            if item["state"] == "resolved":
                raise WorkItemError(f"work item {item_id!r} is resolved")
            if item["state"] == "acknowledged" and item.get("assignee") not in ("", collector):
                raise WorkItemError(f"work item {item_id!r} is held by another collector")
            if item.get("assignee"):
                pipe.zrem(self.k("mine", item["assignee"]), item_id)
            pipe.zadd(self.k("mine", collector), {item_id: now.timestamp()})
            pipe.hset(
                self.k("wi", item_id),
                mapping={
                    "assignee": collector,
                    "state": "acknowledged",
                    "acked_at": now.isoformat(),
                    "updated_at": now.isoformat(),
                },
            )
            pipe.zrem(self.k("esc"), item_id)

        return await self._transition(item_id, change)

    async def ack(self, item_id: str, collector: str, now: datetime) -> dict[str, str]:
        """Acknowledge: stops the escalation. Idempotent for the same collector."""

        def change(pipe: Pipeline, item: dict[str, str]) -> None:
            if item["state"] == "resolved":
                raise WorkItemError(f"work item {item_id!r} is resolved")
            if item["state"] == "acknowledged":
                return
            pipe.hset(
                self.k("wi", item_id),
                mapping={
                    "state": "acknowledged",
                    "acked_by": collector,
                    "acked_at": now.isoformat(),
                    "updated_at": now.isoformat(),
                },
            )
            pipe.zrem(self.k("esc"), item_id)

        return await self._transition(item_id, change)

    async def resolve(self, item_id: str, reason: str, now: datetime) -> dict[str, str]:
        def change(pipe: Pipeline, item: dict[str, str]) -> None:
            if item["state"] != "resolved":
                self._queue_resolve(pipe, item, reason, now)

        return await self._transition(item_id, change)

    async def resolve_loan(self, loan_id: str, reason: str, now: datetime) -> str | None:
        """A closed loan: resolve its open item (returns its id, None when none) and remember
        the closure for ``closed_ttl``, so an alert of the loan read later opens nothing."""
        loan_key, closed_key = self.k("loan", loan_id), self.k("closed", loan_id)
        async with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(loan_key)
                    item_id: str | None = await pipe.get(loan_key)
                    item: dict[str, str] = {}
                    if item_id:
                        await pipe.watch(self.k("wi", item_id))
                        item = await pipe.hgetall(self.k("wi", item_id))
                    pipe.multi()
                    pipe.hset(closed_key, "reason", reason)
                    pipe.expire(closed_key, max(1, int(self.closed_ttl.total_seconds())))
                    if item and item.get("state") != "resolved":
                        self._queue_resolve(pipe, item, reason, now)
                    elif item_id:  # a dangling index: drop it
                        pipe.delete(loan_key)
                    await pipe.execute()
                    return str(item_id) if item else None
                except WatchError:
                    continue

    async def escalate_due(self, now: datetime, outbox: Outbox = _no_outbox) -> list[Escalated]:
        """Move every item not acknowledged in time to its policy's next level."""
        due = await self.r.zrangebyscore(self.k("esc"), "-inf", now.timestamp())
        done = []
        for item_id in due:
            result: list[Escalated] = []

            def change(
                pipe: Pipeline,
                item: dict[str, str],
                iid: str = item_id,
                out: list[Escalated] = result,
            ) -> None:
                if item["state"] != "triggered":
                    pipe.zrem(self.k("esc"), iid)
                    return
                policy = self.setup.table.policies[item["policy"]]
                level = int(item["level"]) + 1
                if level >= len(policy.levels):
                    pipe.zrem(self.k("esc"), iid)
                    return
                who = self.setup.resolve(policy.levels[level].notify, item["team"], now) or ""
                if item.get("assignee"):
                    pipe.zrem(self.k("mine", item["assignee"]), iid)
                if who:
                    pipe.zadd(self.k("mine", who), {iid: now.timestamp()})
                changed = {
                    "level": str(level),
                    "assignee": who,
                    "escalated_at": now.isoformat(),
                    "updated_at": now.isoformat(),
                }
                pipe.hset(self.k("wi", iid), mapping=changed)
                self._queue_deadline(pipe, iid, item["policy"], level, now)
                self._add_outbox(pipe, outbox(iid, who or None, item | changed))
                out.append(Escalated(iid, level, who or None))

            try:
                await self._transition(item_id, change)
            except Exception as exc:
                if redis_fault(exc) is not None:
                    raise
                await self._dead_escalation(item_id, exc, now)
                continue
            done.extend(result)
        return done

    async def _dead_escalation(self, item_id: str, exc: Exception, now: datetime) -> None:
        """An item whose escalation cannot be computed loses its deadline (else it would be
        retried, and fail, on every tick) and is recorded in the ``dead`` stream."""
        log.exception("escalation failed; item dead-lettered", extra={"item_id": item_id})
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.zrem(self.k("esc"), item_id)
            pipe.xadd(
                self.k("dead"),
                maxlen=self.horizons.stream_max_len,
                approximate=True,
                fields={
                    "source": "timer",
                    "reason": "handler_error",
                    "item_id": item_id,
                    "error": f"{type(exc).__name__}: {exc}"[:500],
                    "at": now.isoformat(),
                },
            )
            await pipe.execute()
        if self.on_dead is not None:
            self.on_dead("timer", "handler_error")

    async def queue(self, collector: str) -> list[dict[str, str]]:
        """The collector's open items, oldest first."""
        ids = await self.r.zrange(self.k("mine", collector), 0, -1)
        items = [await self.get(i) for i in ids]
        return [i for i in items if i and i.get("state") != "resolved"]

    async def open_counts(self) -> dict[str, int]:
        """Open items per team, for the ``loanwatch_workitems_open{team}`` gauge."""
        return {team: int(await self.r.zcard(self.k("open", team))) for team in self.setup.teams}


def connect(url: str, username: str | None = None, password: str | None = None) -> Redis:
    """A redis asyncio client that decodes replies to ``str``; ``username``/``password`` (an
    ACL user, or ``requirepass`` with no user) override what the URL carries."""
    from redis.asyncio import Redis as AsyncRedis

    auth: dict[str, Any] = {k: v for k, v in (("username", username), ("password", password)) if v}
    return AsyncRedis.from_url(url, decode_responses=True, **auth)


def item_json(item: Mapping[str, str]) -> dict[str, Any]:
    """An item for the API: the stored fields, with counters as numbers."""
    out: dict[str, Any] = dict(item)
    for key in ("alerts", "level", "dpd"):
        if key in out:
            out[key] = int(out[key])
    return out
