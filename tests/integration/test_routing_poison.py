"""Poison in the notifier's and the timer's inputs, on the real Redis: an outbox entry whose
handling raises, a deferred send that is not JSON, a work item whose escalation policy is gone.
Each is dead-lettered (``dead`` stream, with its reason) and the loop goes on with the rest;
run again, nothing is re-read (no crash loop)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from prometheus_client import CollectorRegistry

from loanwatch.routing.config import DEFAULT_ROUTING, load_compliance, routing_from_mapping
from loanwatch.routing.metrics import RouterMetrics
from loanwatch.routing.notify.senders import WebhookSender
from loanwatch.routing.notify.worker import GROUP, NotifyWorker, RetryPolicy, Senders
from loanwatch.routing.workitems import WorkItems, connect

from .test_routing_router import free_port
from .test_routing_workitems import T0, alert, record


class Hooks:
    def __init__(self) -> None:
        self.keys: list[str] = []

    async def on_hook(self, request: web.Request) -> web.Response:
        self.keys.append(request.headers["Idempotency-Key"])
        return web.Response(status=204)


@pytest.fixture
async def env(redis_url: str, unique_name: Callable[[str], str]) -> AsyncIterator[dict[str, Any]]:
    hooks = Hooks()
    app = web.Application()
    app.router.add_post("/hook", hooks.on_hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    doc = copy.deepcopy(yaml.safe_load(DEFAULT_ROUTING.read_text()))
    doc["webhooks"]["crm"]["url"] = f"http://127.0.0.1:{port}/hook"
    setup = routing_from_mapping(doc)
    client = connect(redis_url)
    prefix = unique_name("px") + ":"
    store = WorkItems(client, setup, prefix)
    metrics = RouterMetrics(CollectorRegistry(), store)
    store.on_dead = metrics.dead_letter
    async with aiohttp.ClientSession() as session:
        worker = NotifyWorker(
            client,
            prefix,
            setup,
            load_compliance(),
            Senders(None, None, WebhookSender(session, setup.webhooks, b"s3cret"), None),
            lambda: T0,
            RetryPolicy(attempts=1, base=0.01, cap=0.01),
            metrics=metrics,
        )
        await worker.ensure_group()
        yield {
            "worker": worker,
            "store": store,
            "redis": client,
            "p": prefix,
            "hooks": hooks,
            "metrics": metrics,
        }
    await runner.cleanup()
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def hook_entry(n: int, **changes: str) -> dict[str, str]:
    return {
        "alert_id": f"a{n}",
        "item_id": f"wi-L{n}-a{n}",
        "loan_id": f"L{n}",
        "kind": "overdue",
        "channel": "webhook",
        "target": "crm",
        "amount": "10.00",
        "key": f"a{n}:r:webhook:crm",
    } | changes


async def test_a_poison_outbox_entry_is_dead_lettered_and_never_re_read(
    env: dict[str, Any],
) -> None:
    r, p, worker = env["redis"], env["p"], env["worker"]
    # An on-call email whose amount is not a number: rendering it raises (InvalidOperation).
    poison = hook_entry(1, channel="email", target="oncall", oncall="c-li", amount="12,50")
    for entry in (poison, hook_entry(2), hook_entry(3)):
        await r.xadd(p + "outbox", entry)
    assert await worker.run_once("c1", block_ms=10) == 3
    assert env["hooks"].keys == ["a2:r:webhook:crm", "a3:r:webhook:crm"]
    [(_id, dead)] = await r.xrange(p + "dead")
    assert (dead["key"], dead["reason"], dead["source"]) == (
        poison["key"],
        "handler_error",
        "outbox",
    )
    assert "InvalidOperation" in dead["error"]
    for stream in (p + "outbox", p + "lane:email", p + "lane:webhook"):
        pending = await r.xpending(stream, GROUP)
        assert pending["pending"] == 0, stream  # acknowledged after its dead letter
    assert await worker.run_once("c1", block_ms=10) == 0  # a restart re-reads nothing
    assert (
        env["metrics"].registry.get_sample_value(
            "loanwatch_router_dead_letters_total", {"source": "outbox", "reason": "handler_error"}
        )
        == 1.0
    )


async def test_a_non_json_deferred_send_is_dead_lettered_and_the_rest_pumped(
    env: dict[str, Any],
) -> None:
    r, p, worker = env["redis"], env["p"], env["worker"]
    due = (T0 - timedelta(minutes=1)).timestamp()
    await r.zadd(p + "deferred", {"{not json": due, '["a list"]': due})
    await r.zadd(p + "deferred", {'{"key": "ok", "channel": "webhook", "target": "crm"}': due})
    assert await worker.pump_deferred(T0) == 3
    assert await r.zcard(p + "deferred") == 0
    assert [e["key"] for _i, e in await r.xrange(p + "outbox")] == ["ok"]
    reasons = sorted(e["reason"] for _i, e in await r.xrange(p + "dead"))
    assert reasons == ["bad_deferred", "bad_deferred"]


async def test_an_item_that_cannot_escalate_is_dead_lettered_and_others_escalate(
    env: dict[str, Any],
) -> None:
    store, r, p = env["store"], env["redis"], env["p"]
    for n in (1, 2):
        a = alert(f"e{n}", loan=f"LE{n}")
        await store.apply_alert(a, store.setup.routes_for(a), T0, outbox=record)
    # Item 1's policy was removed from routing.yaml after it opened (a config change).
    await r.hset(p + "wi:wi-LE1-e1", "policy", "removed-policy")
    later = T0 + timedelta(hours=1)
    escalated = await store.escalate_due(later, outbox=record)
    assert [e.item_id for e in escalated] == ["wi-LE2-e2"]
    [(_id, dead)] = await r.xrange(p + "dead")
    assert (dead["item_id"], dead["source"], dead["reason"]) == (
        "wi-LE1-e1",
        "timer",
        "handler_error",
    )
    assert "KeyError" in dead["error"]
    assert await r.zscore(p + "esc", "wi-LE1-e1") is None  # not retried (and failed) each tick
    assert await store.escalate_due(later + timedelta(minutes=1), outbox=record) == []
    assert (
        env["metrics"].registry.get_sample_value(
            "loanwatch_router_dead_letters_total", {"source": "timer", "reason": "handler_error"}
        )
        == 1.0
    )
