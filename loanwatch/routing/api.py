"""The collector API (aiohttp): my queue, claim/ack/resolve, and logging contacts and promises.

Bearer-token authentication against hashed tokens, with scopes (:mod:`loanwatch.routing.auth`):
a collector acts only on items assigned to them or their teams (403 otherwise). A client's
``Idempotency-Key`` is namespaced by the client and hashed into the event id (never used raw:
it could collide with, and dedupe away, another producer's event). Bodies are capped at
:data:`MAX_BODY_BYTES` and every text field at a length. Contacts and promises
are published as SPEC §1 ``contact_logged`` / ``promise_to_pay`` events (money as strings) to
``loan.collections`` keyed by ``loan_id``, and contacts also feed the compliance history. It
never logs request bodies (they may hold notes about a person).

``occurred_at`` is the API's clock by default; a body may give its own (a call logged after it
ended, or a portfolio on a business clock: ``clock: event`` deployments replaying past dates,
where a wall-clock stamp would age every loan of the partition to today). It must carry a UTC
offset and not lie ahead of the API's clock by more than :data:`FUTURE_SKEW`.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CONTENT_TYPE_LATEST

from loanwatch.ledger.money import MoneyError, format_money, parse_money
from loanwatch.routing.auth import ApiClient, ApiClients
from loanwatch.routing.compliance import CHANNELS, ComplianceConfig, ContactRecord, Deferred, check
from loanwatch.routing.contacts import ContactBook
from loanwatch.routing.errors import WorkItemError
from loanwatch.routing.workitems import WorkItems, item_json
from loanwatch.streams.partitioning import partition_for

CLIENT = web.RequestKey("client", ApiClient)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
FUTURE_SKEW = timedelta(minutes=5)  # client clocks run a little ahead; a contact is not foretold
MAX_BODY_BYTES = 16 * 1024
MAX_ID_CHARS = 128  # loan, borrower, promise ids
MAX_TEXT_CHARS = 64  # outcome, number key
MAX_IDEMPOTENCY_KEY_CHARS = 200
_ID = re.compile(r"^[A-Za-z0-9._:@-]+$")


#: Treatment actions (config/strategies.yaml) and the SPEC §1 contact channel each is logged on.
ACTION_CHANNELS = {
    "sms_reminder": "sms",
    "email": "email",
    "call_priority": "call",
    "restructure_offer": "letter",
    "field_visit": "visit",
    "legal_referral": "letter",
    "agency_placement": "letter",
}


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def occurred_at(doc: Mapping[str, Any], now: datetime) -> datetime:
    """The body's ``occurred_at`` (ISO-8601 with an offset, not after ``now`` + skew) or ``now``."""
    given = doc.get("occurred_at")
    if given is None:
        return now
    try:
        stamp = datetime.fromisoformat(given) if isinstance(given, str) else None
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        raise _bad("occurred_at must be an ISO-8601 time with a UTC offset")
    if stamp > now + FUTURE_SKEW:
        raise _bad(f"occurred_at {given} is ahead of the API's clock ({now.isoformat()})")
    return stamp


def _forbidden(message: str) -> web.HTTPForbidden:
    return web.HTTPForbidden(text=json.dumps({"error": message}), content_type="application/json")


def short_text(value: object, name: str, limit: int, pattern: re.Pattern[str] | None = None) -> str:
    """A required string field of at most ``limit`` characters (matching ``pattern``)."""
    if not isinstance(value, str) or not value or len(value) > limit:
        raise _bad(f"{name} must be a string of 1 to {limit} characters")
    if pattern is not None and not pattern.match(value):
        raise _bad(f"{name} may hold letters, digits and . _ : @ - only")
    return value


def event_id_for(client: ApiClient, key: str | None) -> str:
    """The published event's id: the client's ``Idempotency-Key`` namespaced by the client
    and hashed (the same key from two clients never meets), else a fresh one."""
    if key is None:
        return f"api-{uuid.uuid4().hex}"
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_CHARS or not key.isprintable():
        raise _bad(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable characters")
    digest = hashlib.sha256(f"{client.client_id}\x00{key}".encode()).hexdigest()[:32]
    return f"api-{digest}"


def build_app(
    store: WorkItems,
    producer: AIOKafkaProducer,
    topic: str,
    clients: ApiClients,
    clock: Callable[[], datetime],
    rules: ComplianceConfig | None = None,
    metrics: Callable[[], Awaitable[bytes]] | None = None,
    health: Callable[[], dict[str, Any]] | None = None,
    number_secret: bytes = b"",
) -> web.Application:
    """The API; with ``metrics``, also ``GET /metrics`` (no token: Prometheus scrapes it);
    with ``health``, ``GET /healthz`` (no token): 200 when ok, 503 with the reasons when
    degraded."""
    book = ContactBook(store.r, store.p, number_secret)

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (metrics is not None and request.path == METRICS_PATH) or (
            health is not None and request.path == HEALTH_PATH
        ):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        client = (
            clients.authenticate(header.removeprefix("Bearer ").strip())
            if header.startswith("Bearer ")
            else None
        )
        if client is None:
            raise web.HTTPUnauthorized(
                text='{"error": "bearer token required"}', content_type="application/json"
            )
        request[CLIENT] = client
        return await handler(request)

    async def loan_in_reach(request: web.Request) -> str:
        """The path's loan id, when the client may act on that loan (403 otherwise)."""
        loan_id = short_text(request.match_info["loan_id"], "loan_id", MAX_ID_CHARS, _ID)
        client = request[CLIENT]
        if client.scope in ("supervisor", "system"):
            return loan_id
        item_id = await store.r.get(store.k("loan", loan_id))
        open_item = await store.get(item_id) if item_id else None
        if not client.may_touch_loan(open_item):
            raise _forbidden(f"loan {loan_id!r} has no open item of yours or your teams")
        return loan_id

    async def body(request: web.Request) -> dict[str, Any]:
        try:
            doc = await request.json()
        except ValueError as exc:
            raise _bad("body must be a JSON object") from exc
        if not isinstance(doc, dict):
            raise _bad("body must be a JSON object")
        return doc

    async def publish(loan_id: str, event: dict[str, Any], borrower: object = None) -> None:
        # On the borrower's partition, where the worker keeps the loan (streams.partitioning);
        # a loan with no work item and no borrower given goes by its key (the worker parks it
        # and dead-letters it as unknown_loan if it is not there).
        owner = borrower if isinstance(borrower, str) and borrower else None
        owner = owner or await store.borrower_of(loan_id)
        partition = None
        if owner is not None:
            partition = partition_for(owner, len(await producer.partitions_for(topic)))
        await producer.send_and_wait(
            topic, json.dumps(event).encode(), key=loan_id.encode(), partition=partition
        )

    def event_base(request: web.Request, kind: str, at: datetime) -> dict[str, Any]:
        event_id = event_id_for(request[CLIENT], request.headers.get("Idempotency-Key"))
        return {"event_id": event_id, "type": kind, "occurred_at": at.isoformat(timespec="seconds")}

    async def queue(request: web.Request) -> web.Response:
        items = await store.queue(request[CLIENT].actor)
        return web.json_response({"items": [item_json(i) for i in items]})

    async def item_action(request: web.Request) -> web.Response:
        item_id, action = request.match_info["item_id"], request.match_info["action"]
        client: ApiClient = request[CLIENT]
        who = client.actor
        short_text(item_id, "item_id", 2 * MAX_ID_CHARS + 8, _ID)
        item = await store.get(item_id)
        if not item:
            return web.json_response({"error": f"no work item {item_id!r}"}, status=404)
        if not client.may_act_on(item):
            raise _forbidden(f"work item {item_id!r} is not yours or your teams'")
        try:
            if action == "claim":
                item = await store.claim(item_id, who, clock())
            elif action == "ack":
                item = await store.ack(item_id, who, clock())
            else:
                item = await store.resolve(item_id, f"resolved_by:{who}", clock())
        except WorkItemError as exc:
            status = 404 if "no work item" in str(exc) else 409
            return web.json_response({"error": str(exc)}, status=status)
        return web.json_response(item_json(item))

    async def contacts(request: web.Request) -> web.Response:
        loan_id, doc = await loan_in_reach(request), await body(request)
        channel, outcome = doc.get("channel"), doc.get("outcome")
        if not isinstance(channel, str) or channel not in CHANNELS:
            raise _bad(f"channel must be one of {sorted(CHANNELS)}")
        outcome = short_text(outcome, "outcome", MAX_TEXT_CHARS)
        for name, limit in (("borrower_id", MAX_ID_CHARS), ("number_key", MAX_TEXT_CHARS)):
            if doc.get(name) is not None:
                short_text(doc[name], name, limit, _ID)
        at = occurred_at(doc, clock())
        event = event_base(request, "contact_logged", at) | {
            "loan_id": loan_id,
            "channel": channel,
            "outcome": outcome,
            "collector_id": request[CLIENT].actor,
        }
        await publish(loan_id, event, doc.get("borrower_id"))
        if isinstance(doc.get("borrower_id"), str):
            await book.record(
                ContactRecord(
                    at, loan_id, doc["borrower_id"], channel, outcome, doc.get("number_key")
                )
            )
        return web.json_response(event, status=201)

    async def actions(request: web.Request) -> web.Response:
        """A treatment action taken or refused: a ``contact_logged`` in the audit record."""
        loan_id, doc = await loan_in_reach(request), await body(request)
        action, outcome = doc.get("action"), doc.get("outcome")
        if action not in ACTION_CHANNELS:
            raise _bad(f"action must be one of {sorted(ACTION_CHANNELS)}")
        if outcome not in ("taken", "refused"):
            raise _bad("outcome must be taken or refused")
        if doc.get("borrower_id") is not None:
            short_text(doc["borrower_id"], "borrower_id", MAX_ID_CHARS, _ID)
        event = event_base(request, "contact_logged", occurred_at(doc, clock())) | {
            "loan_id": loan_id,
            "channel": ACTION_CHANNELS[action],
            "outcome": f"action_{outcome}",
            "action": action,
            "collector_id": request[CLIENT].actor,
        }
        await publish(loan_id, event, doc.get("borrower_id"))
        return web.json_response(event, status=201)

    async def promises(request: web.Request) -> web.Response:
        loan_id, doc = await loan_in_reach(request), await body(request)
        if doc.get("promise_id") is not None:
            short_text(doc["promise_id"], "promise_id", MAX_ID_CHARS, _ID)
        try:
            amount = parse_money(doc.get("amount"))
        except MoneyError as exc:
            raise _bad(str(exc)) from exc
        if amount <= 0:
            raise _bad("amount must be > 0")
        try:
            promised = date.fromisoformat(str(doc.get("promised_date")))
        except ValueError as exc:
            raise _bad("promised_date must be YYYY-MM-DD") from exc
        event = event_base(request, "promise_to_pay", occurred_at(doc, clock())) | {
            "loan_id": loan_id,
            "promise_id": str(doc.get("promise_id") or f"pr-{uuid.uuid4().hex[:12]}"),
            "amount": format_money(amount),
            "promised_date": promised.isoformat(),
        }
        await publish(loan_id, event, doc.get("borrower_id"))
        return web.json_response(event, status=201)

    async def may_contact(request: web.Request) -> web.Response:
        loan_id = await loan_in_reach(request)
        borrower_id, channel = (
            request.query.get("borrower_id", ""),
            request.query.get("channel", "call"),
        )
        debtor = await book.debtor(borrower_id)
        if rules is None or debtor is None:
            return web.json_response({"error": "unknown borrower or no rules"}, status=404)
        now = clock()
        decision = check(
            rules, debtor.request(loan_id, channel), await book.history(borrower_id, now), now
        )
        if isinstance(decision, Deferred):
            until = decision.until.isoformat() if decision.until else None
            return web.json_response(
                {"allowed": False, "until": until, "reason": decision.reason, "rule": decision.rule}
            )
        return web.json_response({"allowed": True})

    async def scrape(_request: web.Request) -> web.Response:
        assert metrics is not None
        return web.Response(body=await metrics(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_request: web.Request) -> web.Response:
        assert health is not None
        report = health()
        return web.json_response(report, status=200 if report["status"] == "ok" else 503)

    app = web.Application(middlewares=[auth], client_max_size=MAX_BODY_BYTES)
    if metrics is not None:
        app.router.add_get(METRICS_PATH, scrape)
    if health is not None:
        app.router.add_get(HEALTH_PATH, healthz)
    app.router.add_get("/queue", queue)
    app.router.add_post("/items/{item_id}/{action:claim|ack|resolve}", item_action)
    app.router.add_post("/loans/{loan_id}/contacts", contacts)
    app.router.add_post("/loans/{loan_id}/promises", promises)
    app.router.add_post("/loans/{loan_id}/actions", actions)
    app.router.add_get("/loans/{loan_id}/contact-check", may_contact)
    return app
