"""``loanwatch routes serve`` (the real composition root, a subprocess) through Redis faults:
its private Redis stopped for ~30 s then restarted on the same data dir, and Redis answering
``OOM`` to every write. The service stays alive, ``/healthz`` and
``loanwatch_router_degraded`` say degraded (with the reason) while it lasts, and afterwards
every alert has its work item and every notification reached the receiver exactly once.

The shared stack's Redis is never touched: each test starts its own ``redis-server`` on a free
port and a temporary dir (the stack's config file copied, AOF on).
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
import yaml
from aiohttp import web

from loanwatch.routing.backlog import notification_backlog
from loanwatch.routing.config import DEFAULT_ROUTING
from loanwatch.routing.workitems import connect
from loanwatch.stack import packaged, redis_auth
from loanwatch.stack.errors import StackError

from .routing_support import SERVE_SECRETS, ServeProcess, wait_until
from .test_routing_redis_durability import PrivateRedis
from .test_routing_router import alert_doc, free_port, make_topic, produce

OUTAGE_SECONDS = 30.0  # the figure; the router's retry cap is 1 s, so it does not matter


class Hooks:
    """The collectors' CRM: records every webhook POST by its Idempotency-Key."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    async def on_hook(self, request: web.Request) -> web.Response:
        await request.read()
        self.keys.append(request.headers["Idempotency-Key"])
        return web.Response(status=204)


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[Hooks, str]]:
    rec = Hooks()
    app = web.Application()
    app.router.add_post("/hook", rec.on_hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield rec, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def serve_env(
    kafka_bootstrap: str, redis: PrivateRedis, hook_url: str, names: Callable[[str], str], tmp: Path
) -> dict[str, str]:
    doc = copy.deepcopy(yaml.safe_load(DEFAULT_ROUTING.read_text()))
    doc["webhooks"]["crm"]["url"] = hook_url
    routing = tmp / "routing.yaml"
    routing.write_text(yaml.safe_dump(doc, sort_keys=False))
    return {
        "LOANWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LOANWATCH_ALERTS_TOPIC": names("alerts"),
        "LOANWATCH_STATUS_TOPIC": "",
        "LOANWATCH_ROUTER_DEAD_LETTER_TOPIC": names("dead"),
        "LOANWATCH_CONSUMER_GROUP": names("g"),
        "LOANWATCH_REDIS_URL": redis.url,
        "LOANWATCH_REDIS_PREFIX": "out:",
        "LOANWATCH_ROUTING_CONFIG": str(routing),
        **SERVE_SECRETS,
        "LOANWATCH_API_PORT": str(free_port()),
        "LOANWATCH_ALERTMANAGER_URL": "",
        "LOANWATCH_SMS_GATEWAY_URL": "",
        "LOANWATCH_NOTIFY_MAX_ATTEMPTS": "3",
        "LOANWATCH_NOTIFY_BACKOFF_SECONDS": "0.05",
        "LOANWATCH_REDIS_RETRY_INITIAL_SECONDS": "0.1",
        "LOANWATCH_REDIS_RETRY_MAX_SECONDS": "1.0",
    }


async def health(session: aiohttp.ClientSession, port: int) -> tuple[int, dict[str, Any]]:
    try:
        async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
            return resp.status, await resp.json()
    except aiohttp.ClientConnectionError:
        return 0, {}


async def degraded_gauge(session: aiohttp.ClientSession, port: int, component: str) -> float:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200  # /metrics answers while Redis is down
        text = await resp.text()
    found = re.search(
        rf'^loanwatch_router_degraded\{{component="{component}"\}} (\S+)$', text, re.M
    )
    assert found, text[:2000]
    return float(found.group(1))


async def outbox_settled(redis_url: str) -> bool:
    """Every outbox and lane entry read and acknowledged by the notifier (nothing in flight)."""
    client = connect(redis_url)
    try:
        return await notification_backlog(client, "out:") == 0
    finally:
        await client.aclose()


def expected_keys(start: int, stop: int) -> set[str]:
    return {f"al-{i}:consumer-early:webhook:crm" for i in range(start, stop)}


@pytest.fixture
def serve(
    kafka_bootstrap: str,
    private_redis: PrivateRedis,
    hooks: tuple[Hooks, str],
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> Iterator[tuple[ServeProcess, dict[str, str]]]:
    made: dict[str, str] = {}

    def names(role: str) -> str:
        return made.setdefault(role, unique_name(role))

    env = serve_env(kafka_bootstrap, private_redis, hooks[1], names, tmp_path)
    proc = ServeProcess(env, tmp_path / "serve.log")
    yield proc, env
    code = proc.stop()
    print(proc.tail())
    assert code in (0, None), f"routes serve exited with {code}"


async def routed(
    proc: ServeProcess, hooks: Hooks, session: aiohttp.ClientSession, port: int, n: int
) -> None:
    async def all_sent() -> bool:
        assert proc.alive(), proc.tail()
        return set(hooks.keys) >= expected_keys(0, n)

    await wait_until(all_sent, f"{n} webhooks", timeout=120)


async def test_redis_stopped_then_restarted_degrades_and_loses_nothing(
    kafka_bootstrap: str,
    private_redis: PrivateRedis,
    hooks: tuple[Hooks, str],
    serve: tuple[ServeProcess, dict[str, str]],
) -> None:
    proc, env = serve
    rec = hooks[0]
    port = int(env["LOANWATCH_API_PORT"])
    alerts = env["LOANWATCH_ALERTS_TOPIC"]
    await make_topic(kafka_bootstrap, alerts)
    await produce(kafka_bootstrap, alerts, [alert_doc(i) for i in range(40)])
    proc.start()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        await routed(proc, rec, session, port, 40)
        await wait_until(lambda: outbox_settled(private_redis.url), "outbox drained")
        assert (await health(session, port))[0] == 200

        private_redis.stop()  # SIGTERM: Redis writes its AOF and exits
        stopped = time.monotonic()
        await produce(kafka_bootstrap, alerts, [alert_doc(i) for i in range(40, 80)])

        async def degraded() -> bool:
            status, body = await health(session, port)
            return status == 503 and {"router", "notifier"} <= set(body["degraded"])

        await wait_until(degraded, "healthz degraded", timeout=30)
        _, body = await health(session, port)
        assert body["status"] == "degraded"
        assert body["degraded"]["router"]["reason"] == "unavailable"
        assert await degraded_gauge(session, port, "router") == 1.0
        while time.monotonic() - stopped < OUTAGE_SECONDS:
            assert proc.alive(), proc.tail()
            await asyncio.sleep(1.0)
        assert set(rec.keys) == expected_keys(0, 40)  # nothing could be sent meanwhile

        private_redis.start()  # same port, same dir
        await routed(proc, rec, session, port, 80)

        async def healthy() -> bool:
            return (await health(session, port))[0] == 200

        await wait_until(healthy, "healthz ok again", timeout=30)
        assert await degraded_gauge(session, port, "router") == 0.0
        await wait_until(lambda: outbox_settled(private_redis.url), "outbox drained")
    assert proc.alive(), proc.tail()
    sends = Counter(rec.keys)
    assert set(sends) == expected_keys(0, 80)
    assert [k for k, n in sends.items() if n > 1] == []  # every notification sent once
    client = connect(private_redis.url)
    try:
        assert len([k async for k in client.scan_iter(match="out:seen:*")]) == 80
        assert await client.xlen("out:dead") == 0
    finally:
        await client.aclose()


async def test_redis_oom_degrades_then_recovers(
    kafka_bootstrap: str,
    private_redis: PrivateRedis,
    hooks: tuple[Hooks, str],
    serve: tuple[ServeProcess, dict[str, str]],
) -> None:
    proc, env = serve
    rec = hooks[0]
    port = int(env["LOANWATCH_API_PORT"])
    alerts = env["LOANWATCH_ALERTS_TOPIC"]
    await make_topic(kafka_bootstrap, alerts)
    await produce(kafka_bootstrap, alerts, [alert_doc(i) for i in range(20)])
    proc.start()
    admin = connect(private_redis.url)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            await routed(proc, rec, session, port, 20)
            await wait_until(lambda: outbox_settled(private_redis.url), "outbox drained")
            # Far below what it uses: every write is refused with OOM (noeviction).
            await admin.config_set("maxmemory", "1mb")
            await produce(kafka_bootstrap, alerts, [alert_doc(i) for i in range(20, 60)])

            async def oom() -> bool:
                status, body = await health(session, port)
                return status == 503 and body["degraded"].get("router", {}).get("reason") == "oom"

            await wait_until(oom, "healthz degraded by OOM", timeout=30)
            assert await degraded_gauge(session, port, "router") == 1.0
            await asyncio.sleep(5)  # it keeps retrying, alive, sending nothing new
            assert proc.alive(), proc.tail()
            assert set(rec.keys) == expected_keys(0, 20)

            await admin.config_set("maxmemory", "256mb")
            await routed(proc, rec, session, port, 60)

            async def healthy() -> bool:
                return (await health(session, port))[0] == 200

            await wait_until(healthy, "healthz ok after OOM", timeout=30)
            assert await degraded_gauge(session, port, "router") == 0.0
            await wait_until(lambda: outbox_settled(private_redis.url), "outbox drained")
            async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                text = await resp.text()
            faults = re.findall(
                r'^loanwatch_router_redis_faults_total\{component="router",reason="oom"\} (\S+)$',
                text,
                re.M,
            )
            assert faults and float(faults[0]) >= 1, text[:3000]
        sends = Counter(rec.keys)
        assert set(sends) == expected_keys(0, 60)
        assert [k for k, n in sends.items() if n > 1] == []
        assert len([k async for k in admin.scan_iter(match="out:seen:*")]) == 60
    finally:
        await admin.aclose()
    assert proc.alive(), proc.tail()
    print(json.dumps(dict(Counter(rec.keys).most_common(3))))


async def test_serve_authenticates_to_a_redis_with_an_acl_user(
    kafka_bootstrap: str,
    private_redis: PrivateRedis,
    hooks: tuple[Hooks, str],
    serve: tuple[ServeProcess, dict[str, str]],
) -> None:
    proc, env = serve
    rec = hooks[0]
    admin = connect(private_redis.url)
    try:
        # A user allowed only the router's keys and the commands it runs; no default user.
        await admin.execute_command(
            "ACL", "SETUSER", "router", "on", ">router-pass", "~out:*", "&*", "+@all", "-@dangerous"
        )
        await admin.execute_command("ACL", "SETUSER", "default", "off")
    finally:
        await admin.aclose()
    port = int(env["LOANWATCH_API_PORT"])
    alerts = env["LOANWATCH_ALERTS_TOPIC"]
    await make_topic(kafka_bootstrap, alerts)
    await produce(kafka_bootstrap, alerts, [alert_doc(i) for i in range(5)])
    proc.env |= {"LOANWATCH_REDIS_USERNAME": "router", "LOANWATCH_REDIS_PASSWORD": "router-pass"}
    proc.start()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        await routed(proc, rec, session, port, 5)
        assert (await health(session, port))[0] == 200
    assert "router-pass" not in proc.tail(100_000)  # the secret is never logged
    user = connect(private_redis.url, "router", "router-pass")
    try:
        assert len([k async for k in user.scan_iter(match="out:seen:*")]) == 5
    finally:
        await user.aclose()


async def test_serve_uses_the_password_the_stack_gives_a_running_redis(
    kafka_bootstrap: str,
    private_redis: PrivateRedis,
    hooks: tuple[Hooks, str],
    serve: tuple[ServeProcess, dict[str, str]],
    tmp_path: Path,
) -> None:
    """What the next ``stack up`` does to a Redis started without a password, then its restart
    with the stack's ``--include auth.conf``; ``routes serve`` reads the password file."""
    proc, env = serve
    auth = redis_auth.ensure(tmp_path / "stack-redis")
    assert redis_auth.apply_to_running(private_redis.port, auth)  # had none: CONFIG SET, live
    assert not redis_auth.apply_to_running(private_redis.port, auth)  # idempotent
    with pytest.raises(redis.AuthenticationError):
        packaged.redis_ping(private_redis.port)  # no password: refused
    assert packaged.redis_ping(private_redis.port, auth.password)
    stranger = redis_auth.RedisAuth(tmp_path, "not-the-password")
    with pytest.raises(StackError, match="other than"):
        redis_auth.apply_to_running(private_redis.port, stranger)
    private_redis.stop()
    private_redis.extra_args = ("--include", str(auth.conf_file))  # as the stack starts it
    private_redis.start()
    with pytest.raises(redis.AuthenticationError):
        packaged.redis_ping(private_redis.port)
    port = int(env["LOANWATCH_API_PORT"])
    alerts = env["LOANWATCH_ALERTS_TOPIC"]
    await make_topic(kafka_bootstrap, alerts)
    await produce(kafka_bootstrap, alerts, [alert_doc(i) for i in range(5)])
    proc.env |= {"LOANWATCH_REDIS_PASSWORD_FILE": str(auth.directory / "password")}
    proc.start()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        await routed(proc, hooks[0], session, port, 5)
        assert (await health(session, port))[0] == 200
    assert auth.password not in proc.tail(100_000)  # the secret is never logged
    client = connect(redis_auth.url(private_redis.port, auth))
    try:
        assert len([k async for k in client.scan_iter(match="out:seen:*")]) == 5
    finally:
        await client.aclose()
