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
from loanwatch.routing.api import build_app
from loanwatch.routing.config import load_compliance, load_routing
from loanwatch.routing.contacts import ContactBook
from loanwatch.routing.workitems import WorkItems, connect

from .live import create_topics

SETUP = load_routing()
NOW = datetime.fromisoformat("2026-03-05T10:00:00+08:00")  # consumer-early: c-zhao on call
TOKENS = {"tok-zhao": "c-zhao", "tok-li": "c-li"}


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
    app = build_app(store, producer, topic, TOKENS, lambda: NOW, load_compliance())
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
    async with http.post("/loans/LN-1/promises", json=promise, headers=auth("tok-li")) as resp:
        assert resp.status == 201
    contact = {"channel": "call", "outcome": "connected", "borrower_id": "B-1"}
    async with http.post(
        "/loans/LN-1/contacts",
        json=contact,
        headers=auth("tok-li") | {"Idempotency-Key": "ev-contact-1"},
    ) as resp:
        assert resp.status == 201
    async with http.post(
        "/loans/LN-1/promises",
        json={"amount": 1500, "promised_date": "2026-03-10"},
        headers=auth("tok-li"),
    ) as resp:
        assert resp.status == 400  # a JSON number for money is rejected (SPEC §1)
    [(k1, p), (k2, c)] = await read_back(api["bootstrap"], api["topic"], 2)
    assert k1 == k2 == b"LN-1"
    assert p["type"] == "promise_to_pay" and p["amount"] == "1500.00"
    assert p["promise_id"] == "P-1" and p["promised_date"] == "2026-03-10"
    assert p["occurred_at"] == "2026-03-05T10:00:00+08:00" and p["event_id"]
    assert c == {
        "event_id": "ev-contact-1",
        "type": "contact_logged",
        "occurred_at": "2026-03-05T10:00:00+08:00",
        "loan_id": "LN-1",
        "channel": "call",
        "outcome": "connected",
        "collector_id": "c-li",
    }
    # The logged conversation feeds compliance: the history has it.
    history = await ContactBook(api["store"].r, api["store"].p).history("B-1", NOW)
    assert [(h.channel, h.outcome) for h in history] == [("call", "connected")]


async def test_a_contact_logged_with_its_own_time_keeps_it(api: dict[str, Any]) -> None:
    """A call logged after it ended, or a portfolio on a business clock, gives ``occurred_at``."""
    http = api["http"]
    earlier = "2026-03-04T16:30:00+08:00"  # yesterday afternoon (NOW is 10:00 the next day)
    contact = {"channel": "sms", "outcome": "sent", "borrower_id": "B-2", "occurred_at": earlier}
    async with http.post("/loans/LN-2/contacts", json=contact, headers=auth("tok-li")) as resp:
        assert resp.status == 201
    for bad, why in (
        ("2026-03-04T16:30:00", "UTC offset"),  # no offset: whose 16:30?
        ("yesterday", "UTC offset"),
        ("2026-03-05T10:06:00+08:00", "ahead of the API's clock"),  # NOW + 6 min
    ):
        body = {**contact, "occurred_at": bad}
        async with http.post("/loans/LN-2/contacts", json=body, headers=auth("tok-li")) as resp:
            assert resp.status == 400 and why in (await resp.json())["error"], bad
    promise = {"amount": "20.00", "promised_date": "2026-03-09", "occurred_at": earlier}
    async with http.post("/loans/LN-2/promises", json=promise, headers=auth("tok-li")) as resp:
        assert resp.status == 201
    [(_, c), (_, p)] = await read_back(api["bootstrap"], api["topic"], 2)  # the rejects: none
    assert c["occurred_at"] == p["occurred_at"] == earlier
    # Compliance counts the contact when it happened (a frequency cap's window), not when logged.
    history = await ContactBook(api["store"].r, api["store"].p).history("B-2", NOW)
    assert [(h.at, h.channel) for h in history] == [(datetime.fromisoformat(earlier), "sms")]
