"""Horizons on the real Redis: ``seen:*`` keys carry their TTL, a resolved item is archived
(acknowledged) before it is deleted and kept when it changed meanwhile, the outbox is trimmed
only below what the notifier acknowledged, the capped streams stay capped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest

from loanwatch.routing.housekeeping import Horizons, Housekeeper
from loanwatch.routing.notify.worker import GROUP
from loanwatch.routing.workitems import WorkItems, connect

from .test_routing_workitems import SETUP, T0, alert, record

HORIZONS = Horizons(
    seen_ttl=timedelta(hours=2), resolved_retention=timedelta(minutes=10), archive_batch=2
)


class RecordingProducer:
    """Stands in for AIOKafkaProducer.send: returns a future that the test can hold back."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []
        self.ack = asyncio.Event()
        self.ack.set()

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        self.sent.append((topic, value, key))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def later() -> None:
            await self.ack.wait()
            future.set_result(None)

        asyncio.get_running_loop().create_task(later())
        return future


@pytest.fixture
async def env(redis_url: str, unique_name: Callable[[str], str]) -> AsyncIterator[dict[str, Any]]:
    client = connect(redis_url)
    prefix = unique_name("hk") + ":"
    producer = RecordingProducer()
    yield {
        "r": client,
        "p": prefix,
        "store": WorkItems(client, SETUP, prefix, horizons=HORIZONS),
        "producer": producer,
        "hk": Housekeeper(client, prefix, producer, "archive", HORIZONS),
    }
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_seen_keys_expire_after_their_horizon(env: dict[str, Any]) -> None:
    a = alert("s1", loan="LS1")
    await env["store"].apply_alert(a, SETUP.routes_for(a), T0, outbox=record)
    ttl = await env["r"].ttl(env["p"] + "seen:s1")
    assert 2 * 3600 - 5 <= ttl <= 2 * 3600


async def test_resolved_items_are_archived_then_deleted(env: dict[str, Any]) -> None:
    store, r, p, hk = env["store"], env["r"], env["p"], env["hk"]
    for n in range(5):
        a = alert(f"o{n}", loan=f"LH{n}")
        await store.apply_alert(a, SETUP.routes_for(a), T0, outbox=record)
    for n in range(4):
        c = alert(f"c{n}", kind="cured", loan=f"LH{n}")
        await store.apply_alert(c, SETUP.routes_for(c), T0, outbox=record)
    assert await hk.run_once(T0 + timedelta(minutes=9)) == (0, 0)  # inside the retention
    # Item 3 changes after the archiver read it (a late alert of a closed loan updates it):
    # that version is not deleted; the next round archives the new one.
    real_send = env["producer"].send

    async def send_then_touch(topic: str, value: bytes, key: bytes | None = None) -> Any:
        if b"wi-LH3-o3" in value and not any(
            b"wi-LH3-o3" in v for _t, v, _k in env["producer"].sent
        ):
            await r.hset(p + "wi:wi-LH3-o3", "updated_at", "changed")
        return await real_send(topic, value, key)

    env["producer"].send = send_then_touch
    archived, _ = await hk.run_once(T0 + timedelta(minutes=11))
    assert archived == 3
    assert await r.exists(p + "wi:wi-LH3-o3") == 1
    assert await hk.run_once(T0 + timedelta(minutes=11)) == (1, 0)
    items = [orjson.loads(v)["item"] for _t, v, _k in env["producer"].sent]
    assert sorted({i["item_id"] for i in items}) == [f"wi-LH{n}-o{n}" for n in range(4)]
    assert all(i["state"] == "resolved" for i in items)
    for n in range(4):
        assert await r.exists(p + f"wi:wi-LH{n}-o{n}") == 0
    assert await r.hget(p + "wi:wi-LH4-o4", "state") == "triggered"  # open: never archived
    assert await r.zcard(p + "resolved") == 0


async def test_nothing_is_deleted_before_the_archive_acknowledged(env: dict[str, Any]) -> None:
    store, r, p, hk, producer = env["store"], env["r"], env["p"], env["hk"], env["producer"]
    for kind, aid in (("overdue", "o"), ("cured", "c")):
        a = alert(aid, kind=kind, loan="LA")
        await store.apply_alert(a, SETUP.routes_for(a), T0, outbox=record)
    producer.ack.clear()
    task = asyncio.create_task(hk.run_once(T0 + timedelta(hours=1)))
    await asyncio.sleep(0.3)
    assert not task.done() and await r.exists(p + "wi:wi-LA-o") == 1
    producer.ack.set()
    assert (await task)[0] == 1
    assert await r.exists(p + "wi:wi-LA-o") == 0


async def test_outbox_is_trimmed_only_below_what_the_notifier_acknowledged(
    env: dict[str, Any],
) -> None:
    r, p, hk = env["r"], env["p"], env["hk"]
    ids = [await r.xadd(p + "outbox", {"n": str(i)}) for i in range(300)]
    assert await hk.trim_outbox() == 0  # no notifier group: nothing known delivered
    await r.xgroup_create(p + "outbox", GROUP, id="0")
    read = await r.xreadgroup(GROUP, "c", {p + "outbox": ">"}, count=250)
    delivered = [i for i, _f in read[0][1]]
    await r.xack(p + "outbox", GROUP, *delivered[:200])  # 50 delivered, not acknowledged
    await hk.trim_outbox()
    left = [i for i, _f in await r.xrange(p + "outbox")]
    assert ids[200:] == left[-100:]  # every unacknowledged or unread entry is still there
    assert ids[200] in left
    await r.xack(p + "outbox", GROUP, *delivered[200:])
    await r.xreadgroup(GROUP, "c", {p + "outbox": ">"})
    await r.xack(p + "outbox", GROUP, *ids[250:])
    await hk.trim_outbox()
    assert await r.xlen(p + "outbox") < 300
