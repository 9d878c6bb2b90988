"""The collector API (aiohttp): my queue, claim/ack/resolve, and logging contacts and promises.

Bearer-token authentication (tokens from settings map to collector ids). Contacts and promises
are published as SPEC §1 ``contact_logged`` / ``promise_to_pay`` events (money as strings) to
``loan.collections`` keyed by ``loan_id``, and contacts also feed the compliance history. It
never logs request bodies (they may hold notes about a person).

``occurred_at`` is the API's clock by default; a body may give its own (a call logged after it
ended, or a portfolio on a business clock: ``clock: event`` deployments replaying past dates,
where a wall-clock stamp would age every loan of the partition to today). It must carry a UTC
offset and not lie ahead of the API's clock by more than :data:`FUTURE_SKEW`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CONTENT_TYPE_LATEST

from loanwatch.ledger.money import MoneyError, format_money, parse_money
from loanwatch.routing.compliance import CHANNELS, ComplianceConfig, ContactRecord, Deferred, check
from loanwatch.routing.contacts import ContactBook
from loanwatch.routing.errors import WorkItemError
from loanwatch.routing.workitems import WorkItems, item_json

COLLECTOR = web.RequestKey("collector", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
FUTURE_SKEW = timedelta(minutes=5)  # client clocks run a little ahead; a contact is not foretold


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


def build_app(
    store: WorkItems,
    producer: AIOKafkaProducer,
    topic: str,
    tokens: Mapping[str, str],
    clock: Callable[[], datetime],
    rules: ComplianceConfig | None = None,
    metrics: Callable[[], Awaitable[bytes]] | None = None,
    health: Callable[[], dict[str, Any]] | None = None,
) -> web.Application:
    """The API; with ``metrics``, also ``GET /metrics`` (no token: Prometheus scrapes it);
    with ``health``, ``GET /healthz`` (no token): 200 when ok, 503 with the reasons when
    degraded."""
    book = ContactBook(store.r, store.p)

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (metrics is not None and request.path == METRICS_PATH) or (
            health is not None and request.path == HEALTH_PATH
        ):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        collector = (
            tokens.get(header.removeprefix("Bearer ").strip())
            if header.startswith("Bearer ")
            else None
        )
        if collector is None:
            raise web.HTTPUnauthorized(
                text='{"error": "bearer token required"}', content_type="application/json"
            )
        request[COLLECTOR] = collector
        return await handler(request)

    async def body(request: web.Request) -> dict[str, Any]:
        try:
            doc = await request.json()
        except ValueError as exc:
            raise _bad("body must be a JSON object") from exc
        if not isinstance(doc, dict):
            raise _bad("body must be a JSON object")
        return doc

    async def publish(loan_id: str, event: dict[str, Any]) -> None:
        await producer.send_and_wait(topic, json.dumps(event).encode(), key=loan_id.encode())

    def event_base(request: web.Request, kind: str, at: datetime) -> dict[str, Any]:
        event_id = request.headers.get("Idempotency-Key") or f"api-{uuid.uuid4().hex}"
        return {"event_id": event_id, "type": kind, "occurred_at": at.isoformat(timespec="seconds")}

    async def queue(request: web.Request) -> web.Response:
        items = await store.queue(request[COLLECTOR])
        return web.json_response({"items": [item_json(i) for i in items]})

    async def item_action(request: web.Request) -> web.Response:
        item_id, action = request.match_info["item_id"], request.match_info["action"]
        who: str = request[COLLECTOR]
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
        loan_id, doc = request.match_info["loan_id"], await body(request)
        channel, outcome = doc.get("channel"), doc.get("outcome")
        if channel not in CHANNELS:
            raise _bad(f"channel must be one of {sorted(CHANNELS)}")
        if not isinstance(outcome, str) or not outcome:
            raise _bad("outcome is required")
        at = occurred_at(doc, clock())
        event = event_base(request, "contact_logged", at) | {
            "loan_id": loan_id,
            "channel": channel,
            "outcome": outcome,
            "collector_id": request[COLLECTOR],
        }
        await publish(loan_id, event)
        if isinstance(doc.get("borrower_id"), str):
            await book.record(
                ContactRecord(
                    at, loan_id, doc["borrower_id"], channel, outcome, doc.get("number_key")
                )
            )
        return web.json_response(event, status=201)

    async def promises(request: web.Request) -> web.Response:
        loan_id, doc = request.match_info["loan_id"], await body(request)
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
        await publish(loan_id, event)
        return web.json_response(event, status=201)

    async def may_contact(request: web.Request) -> web.Response:
        loan_id = request.match_info["loan_id"]
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

    app = web.Application(middlewares=[auth])
    if metrics is not None:
        app.router.add_get(METRICS_PATH, scrape)
    if health is not None:
        app.router.add_get(HEALTH_PATH, healthz)
    app.router.add_get("/queue", queue)
    app.router.add_post("/items/{item_id}/{action:claim|ack|resolve}", item_action)
    app.router.add_post("/loans/{loan_id}/contacts", contacts)
    app.router.add_post("/loans/{loan_id}/promises", promises)
    app.router.add_get("/loans/{loan_id}/contact-check", may_contact)
    return app
