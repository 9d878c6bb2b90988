"""The collector API on a real port: bearer auth, my queue, claim/ack/resolve on real Redis, and
contacts/promises published to a real Kafka topic and read back (SPEC §1 shape, money strings)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from loanwatch.routing.alert import parse_alert
from loanwatch.routing.api import MAX_BODY_BYTES, build_app, event_id_for
from loanwatch.routing.auth import ApiClient, ApiClients, token_digest
from loanwatch.routing.config import load_compliance, load_routing
from loanwatch.routing.contacts import ContactBook
from loanwatch.routing.workitems import WorkItems, connect

from .live import create_topics

SETUP = load_routing()
NOW = datetime.fromisoformat("2026-03-05T10:00:00+08:00")  # consumer-early: c-zhao on call
EARLY = frozenset({"consumer-early"})
CLIENTS = ApiClients(
    [
        ApiClient("c-zhao", token_digest("tok-zhao"), "collector", "c-zhao", EARLY),
        ApiClient("c-li", token_digest("tok-li"), "collector", "c-li", EARLY),
        ApiClient("s-chen", token_digest("tok-chen"), "collector", "s-chen"),  # sme, no teams
        ApiClient("sup-wu", token_digest("tok-sup"), "supervisor", "sup-wu"),
        ApiClient("crm", token_digest("tok-crm"), "system"),
    ]
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def api(
    kafka_bootstrap: str, redis_url: str, unique_name: Callable[[str], str]
) -> AsyncIterator[dict[str, Any]]:
    client = connect(redis_url)
    prefix = unique_name("api") + ":"
    topic = unique_name("collections")
    await create_topics(kafka_bootstrap, topic)  # a deployment's input topic: it exists
    store = WorkItems(client, SETUP, prefix)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    app = build_app(store, producer, topic, CLIENTS, lambda: NOW, load_compliance())
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
        yield {"http": http, "store": store, "topic": topic, "bootstrap": kafka_bootstrap}
    await runner.cleanup()
    await producer.stop()
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def read_back(bootstrap: str, topic: str, n: int) -> list[tuple[bytes, dict[str, Any]]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        out: list[tuple[bytes, dict[str, Any]]] = []
        while len(out) < n:
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, "nothing read back from Kafka"
            for messages in batch.values():
                out += [(m.key, json.loads(m.value)) for m in messages]
        return out
    finally:
        await consumer.stop()


async def test_token_required(api: dict[str, Any]) -> None:
    async with api["http"].get("/queue") as resp:
        assert resp.status == 401
    async with api["http"].get("/queue", headers=auth("nope")) as resp:
        assert resp.status == 401


async def test_queue_claim_ack_resolve(api: dict[str, Any]) -> None:
    alert = parse_alert(
        {
            "alert_id": "q1",
            "kind": "overdue",
            "severity": "warning",
            "loan_id": "LQ",
            "borrower_id": "BQ",
            "business_date": "2026-03-05",
            "bucket": "M1",
            "dpd": 1,
            "overdue_amount": "10.00",
            "product": "consumer",
        }
    )
    await api["store"].apply_alert(alert, SETUP.routes_for(alert), NOW)
    http = api["http"]
    async with http.get("/queue", headers=auth("tok-zhao")) as resp:
        items = (await resp.json())["items"]
    assert [(i["item_id"], i["state"], i["alerts"]) for i in items] == [
        ("wi-LQ-q1", "triggered", 1)
    ]
    async with http.post("/items/wi-LQ-q1/ack", headers=auth("tok-zhao")) as resp:
        assert resp.status == 200 and (await resp.json())["state"] == "acknowledged"
    async with http.post("/items/wi-LQ-q1/claim", headers=auth("tok-li")) as resp:
        assert resp.status == 409  # acknowledged and held by c-zhao
    async with http.post("/items/nope/claim", headers=auth("tok-li")) as resp:
        assert resp.status == 404
    async with http.post("/items/wi-LQ-q1/resolve", headers=auth("tok-zhao")) as resp:
        assert (await resp.json())["resolution"] == "resolved_by:c-zhao"
    async with http.get("/queue", headers=auth("tok-zhao")) as resp:
        assert (await resp.json())["items"] == []


async def test_contact_and_promise_published_to_kafka(api: dict[str, Any]) -> None:
    http = api["http"]
    promise = {"amount": "1500.00", "promised_date": "2026-03-10", "promise_id": "P-1"}
    async with http.post("/loans/LN-1/promises", json=promise, headers=auth("tok-crm")) as resp:
        assert resp.status == 201
    contact = {"channel": "call", "outcome": "reached", "borrower_id": "B-1"}
    async with http.post(
        "/loans/LN-1/contacts",
        json=contact,
        headers=auth("tok-crm") | {"Idempotency-Key": "ev-contact-1"},
    ) as resp:
        assert resp.status == 201
    async with http.post(
        "/loans/LN-1/promises",
        json={"amount": 1500, "promised_date": "2026-03-10"},
        headers=auth("tok-crm"),
    ) as resp:
        assert resp.status == 400  # a JSON number for money is rejected (SPEC §1)
    [(k1, p), (k2, c)] = await read_back(api["bootstrap"], api["topic"], 2)
    assert k1 == k2 == b"LN-1"
    assert p["type"] == "promise_to_pay" and p["amount"] == "1500.00"
    assert p["promise_id"] == "P-1" and p["promised_date"] == "2026-03-10"
    assert p["occurred_at"] == "2026-03-05T10:00:00+08:00" and p["event_id"]
    assert c["event_id"] != "ev-contact-1"  # namespaced by the client, never raw
    assert c == {
        "event_id": event_id_for(CLIENTS.clients[4], "ev-contact-1"),
        "type": "contact_logged",
        "occurred_at": "2026-03-05T10:00:00+08:00",
        "loan_id": "LN-1",
        "channel": "call",
        "outcome": "reached",
        "collector_id": "crm",
    }
    # The logged conversation feeds compliance: the history has it.
    history = await ContactBook(api["store"].r, api["store"].p).history("B-1", NOW)
    assert [(h.channel, h.outcome) for h in history] == [("call", "reached")]


async def test_a_contact_logged_with_its_own_time_keeps_it(api: dict[str, Any]) -> None:
    """A call logged after it ended, or a portfolio on a business clock, gives ``occurred_at``."""
    http = api["http"]
    earlier = "2026-03-04T16:30:00+08:00"  # yesterday afternoon (NOW is 10:00 the next day)
    contact = {"channel": "sms", "outcome": "sent", "borrower_id": "B-2", "occurred_at": earlier}
    async with http.post("/loans/LN-2/contacts", json=contact, headers=auth("tok-sup")) as resp:
        assert resp.status == 201
    for bad, why in (
        ("2026-03-04T16:30:00", "UTC offset"),  # no offset: whose 16:30?
        ("yesterday", "UTC offset"),
        ("2026-03-05T10:06:00+08:00", "ahead of the API's clock"),  # NOW + 6 min
    ):
        body = {**contact, "occurred_at": bad}
        async with http.post("/loans/LN-2/contacts", json=body, headers=auth("tok-sup")) as resp:
            assert resp.status == 400 and why in (await resp.json())["error"], bad
    promise = {"amount": "20.00", "promised_date": "2026-03-09", "occurred_at": earlier}
    async with http.post("/loans/LN-2/promises", json=promise, headers=auth("tok-sup")) as resp:
        assert resp.status == 201
    [(_, c), (_, p)] = await read_back(api["bootstrap"], api["topic"], 2)  # the rejects: none
    assert c["occurred_at"] == p["occurred_at"] == earlier
    # Compliance counts the contact when it happened (a frequency cap's window), not when logged.
    history = await ContactBook(api["store"].r, api["store"].p).history("B-2", NOW)
    assert [(h.at, h.channel) for h in history] == [(datetime.fromisoformat(earlier), "sms")]


def overdue(alert_id: str, loan: str, product: str = "consumer") -> Any:
    return parse_alert(
        {
            "alert_id": alert_id,
            "kind": "overdue",
            "severity": "warning",
            "loan_id": loan,
            "borrower_id": f"B{loan}",
            "business_date": "2026-03-05",
            "bucket": "M1",
            "dpd": 1,
            "overdue_amount": "10.00",
            "product": product,
        }
    )


async def test_a_collector_gets_403_on_another_teams_item_and_loan(api: dict[str, Any]) -> None:
    store, http = api["store"], api["http"]
    for alert in (overdue("t1", "LT-1"), overdue("t2", "LT-2", product="sme")):
        await store.apply_alert(alert, SETUP.routes_for(alert), NOW)
    sme_item = "wi-LT-2-t2"  # owned by sme-collections (s-chen on call)
    assert (await store.get(sme_item))["team"] == "sme-collections"
    for action in ("claim", "ack", "resolve"):
        async with http.post(f"/items/{sme_item}/{action}", headers=auth("tok-li")) as resp:
            assert resp.status == 403, action
    promise = {"amount": "10.00", "promised_date": "2026-03-10"}
    async with http.post("/loans/LT-2/promises", json=promise, headers=auth("tok-li")) as resp:
        assert resp.status == 403
    async with http.post(
        "/loans/LT-2/contacts", json={"channel": "call", "outcome": "x"}, headers=auth("tok-li")
    ) as resp:
        assert resp.status == 403
    async with http.get("/loans/LT-2/contact-check", headers=auth("tok-li")) as resp:
        assert resp.status == 403
    async with http.post("/loans/LT-9/promises", json=promise, headers=auth("tok-li")) as resp:
        assert resp.status == 403  # no open item at all: not theirs either
    assert (await store.get(sme_item))["state"] == "triggered"  # untouched
    # The owner acts on it; their own team's item is theirs; a supervisor acts on any.
    async with http.post(f"/items/{sme_item}/ack", headers=auth("tok-chen")) as resp:
        assert resp.status == 200  # s-chen: assigned to them (on call), no teams needed
    async with http.post("/loans/LT-1/promises", json=promise, headers=auth("tok-li")) as resp:
        assert resp.status == 201
    async with http.post(f"/items/{sme_item}/resolve", headers=auth("tok-sup")) as resp:
        assert (await resp.json())["resolution"] == "resolved_by:sup-wu"
    async with http.post("/items/wi-LT-1-t1/claim", headers=auth("tok-crm")) as resp:
        assert resp.status == 403  # a system client does not work items


async def test_idempotency_keys_are_namespaced_per_client(api: dict[str, Any]) -> None:
    http = api["http"]
    body = {"channel": "call", "outcome": "reached"}
    ids = []
    for token in ("tok-crm", "tok-crm", "tok-sup"):
        headers = auth(token) | {"Idempotency-Key": "same-key"}
        async with http.post("/loans/LI-1/contacts", json=body, headers=headers) as resp:
            assert resp.status == 201
            ids.append((await resp.json())["event_id"])
    assert ids[0] == ids[1] != ids[2]  # a retry dedupes; another client's key never collides
    assert "same-key" not in ids[0]
    headers = auth("tok-crm") | {"Idempotency-Key": "k" * 201}
    async with http.post("/loans/LI-1/contacts", json=body, headers=headers) as resp:
        assert resp.status == 400


async def test_body_and_field_limits(api: dict[str, Any]) -> None:
    http = api["http"]
    big = {"channel": "call", "outcome": "x", "pad": "y" * MAX_BODY_BYTES}
    async with http.post("/loans/LB-1/contacts", json=big, headers=auth("tok-crm")) as resp:
        assert resp.status == 413
    for bad in (
        {"channel": "call", "outcome": "o" * 65},
        {"channel": ["call"], "outcome": "x"},
        {"channel": "call", "outcome": "x", "borrower_id": "B 1; DROP"},
    ):
        async with http.post("/loans/LB-1/contacts", json=bad, headers=auth("tok-crm")) as resp:
            assert resp.status == 400, bad
    promise = {"amount": "1.00", "promised_date": "2026-03-10", "promise_id": "p" * 129}
    async with http.post("/loans/LB-1/promises", json=promise, headers=auth("tok-crm")) as resp:
        assert resp.status == 400
    async with http.post(
        "/loans/" + "L" * 129 + "/promises", json=promise, headers=auth("tok-crm")
    ) as resp:
        assert resp.status == 400


async def test_a_treatment_action_taken_or_refused_is_a_contact_logged_event(
    api: dict[str, Any],
) -> None:
    """`POST /loans/{id}/actions` (docs/strategies.md): on loan.collections, so in the audit
    record and in the replayed history; the outcome is in the one vocabulary."""
    from loanwatch.ledger.contact_outcomes import CONTACT_OUTCOMES

    http = api["http"]
    taken = {"action": "field_visit", "outcome": "taken", "borrower_id": "B-7"}
    async with http.post("/loans/LN-7/actions", json=taken, headers=auth("tok-crm")) as resp:
        assert resp.status == 201
    refused = {"action": "restructure_offer", "outcome": "refused"}
    async with http.post("/loans/LN-7/actions", json=refused, headers=auth("tok-crm")) as resp:
        assert resp.status == 201
    for bad, why in (
        ({"action": "pigeon", "outcome": "taken"}, "action must be one of"),
        ({"action": "email", "outcome": "maybe"}, "outcome must be taken or refused"),
    ):
        async with http.post("/loans/LN-7/actions", json=bad, headers=auth("tok-crm")) as resp:
            assert resp.status == 400 and why in (await resp.json())["error"], bad
    [(k1, a), (k2, b)] = await read_back(api["bootstrap"], api["topic"], 2)  # rejects: none
    assert k1 == k2 == b"LN-7"
    assert (a["type"], a["channel"], a["outcome"], a["action"]) == (
        "contact_logged",
        "visit",
        "action_taken",
        "field_visit",
    )
    assert (b["channel"], b["outcome"], b["action"]) == (
        "letter",
        "action_refused",
        "restructure_offer",
    )
    assert a["collector_id"] == b["collector_id"] == "crm" and a["event_id"] != b["event_id"]
    assert {a["outcome"], b["outcome"]} <= set(CONTACT_OUTCOMES)
