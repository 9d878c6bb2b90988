"""Notifications at most once per alert and channel across crashes, and one channel's dead
gateway never delaying another channel's page. Real Redis, real HTTP receivers (aiohttp).

The crash is injected into the SMS sender: a ``Crash`` (a ``BaseException``, as a SIGKILL
would be to the code after it) raised just before the gateway is called (between the
reservation and the send) or just after it accepted (between the send and its confirmation).
The worker is then "restarted" (a fresh ``NotifyWorker`` on the same Redis and consumer name).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from loanwatch.routing.config import DEFAULT_ROUTING, load_compliance
from loanwatch.routing.contacts import ContactBook
from loanwatch.routing.notify.senders import SmsGateway
from loanwatch.routing.notify.worker import NotifyWorker, Senders
from loanwatch.routing.templates import Message

from .routing_support import SERVE_SECRETS, ServeProcess, wait_until
from .test_routing_notify import ALERT, env, mailbox, receiver, route_alert  # noqa: F401
from .test_routing_outage import Hooks, hooks, private_redis  # noqa: F401
from .test_routing_redis_durability import PrivateRedis
from .test_routing_router import alert_doc, free_port, make_topic, produce

SMS_KEY = "n1:sme:sms:borrower"


class Crash(BaseException):
    """The process dying at the injection point."""


class CrashingSms:
    """The real SMS gateway client, with a crash injected before or after the call."""

    def __init__(self, inner: SmsGateway, when: str) -> None:
        self.inner, self.when = inner, when

    async def send(self, phone: str, message: Message, ref: str) -> None:
        if self.when == "before":
            raise Crash
        await self.inner.send(phone, message, ref)
        raise Crash


def crashing_worker(env: dict[str, Any], when: str) -> NotifyWorker:  # noqa: F811
    worker: NotifyWorker = env["worker"]
    assert worker.senders.sms is not None
    senders = Senders(
        CrashingSms(worker.senders.sms, when),  # type: ignore[arg-type]
        worker.senders.email,
        worker.senders.webhook,
        None,
    )
    return NotifyWorker(
        env["redis"], env["prefix"], env["setup"], load_compliance(), senders, env["clock"]
    )


async def history(env: dict[str, Any]) -> list[tuple[str, str]]:  # noqa: F811
    rows = await ContactBook(env["redis"], env["prefix"]).history("B-9", env["clock"].now)
    return [(h.channel, h.outcome) for h in rows]


@pytest.fixture
async def debtor(env: dict[str, Any]) -> AsyncIterator[None]:  # noqa: F811
    await ContactBook(env["redis"], env["prefix"]).set_debtor(
        "B-9", phone="+8613800000000", jurisdiction="CN", locale="zh-CN"
    )
    await route_alert(env, ALERT)  # route "sme": sms:borrower, email:oncall, webhook:crm
    yield


@pytest.mark.usefixtures("debtor")
async def test_crash_between_reserve_and_send_sends_once_and_counted_once(
    env: dict[str, Any],  # noqa: F811
) -> None:
    r, p = env["redis"], env["prefix"]
    with pytest.raises(Crash):
        await crashing_worker(env, "before").run_once("w1", block_ms=100)
    assert env["rec"].sms == []  # the crash came before the gateway was called
    assert (await r.get(p + f"sent:{SMS_KEY}")).startswith("reserved:")
    assert await history(env) == [("sms", "sent")]  # counted before the send, for the caps

    assert await env["worker"].run_once("w1", block_ms=100) == 3  # restarted
    [(sms, _auth)] = env["rec"].sms
    assert sms["ref"] == SMS_KEY  # the key the gateway deduplicates by
    assert (await r.get(p + f"sent:{SMS_KEY}")).startswith("sent:")
    assert await history(env) == [("sms", "sent")]  # not counted twice
    assert len(env["rec"].hooks) == 1 and len(env["box"].mails) == 1
    assert await env["worker"].run_once("w1", block_ms=100) == 0


@pytest.mark.usefixtures("debtor")
async def test_crash_after_the_gateway_accepted_resends_with_the_same_key(
    env: dict[str, Any],  # noqa: F811
) -> None:
    with pytest.raises(Crash):
        await crashing_worker(env, "after").run_once("w1", block_ms=100)
    assert [s["ref"] for s, _a in env["rec"].sms] == [SMS_KEY]
    assert await env["worker"].run_once("w1", block_ms=100) == 3
    # The confirmation was lost with the process: the SMS is offered again, with the same
    # Idempotency-Key / ref, so the gateway delivers it once. Contact counted once.
    refs = [s["ref"] for s, _a in env["rec"].sms]
    assert refs == [SMS_KEY, SMS_KEY]
    assert await history(env) == [("sms", "sent")]
    assert await env["worker"].run_once("w1", block_ms=100) == 0


# --- one dead gateway, one page on another channel ------------------------------------------


class Gateways:
    """An SMS gateway that never answers (it notes each request its client gave up on), and the
    CRM webhook, noting for each page how many SMS requests had been given up before it."""

    def __init__(self) -> None:
        self.sms_calls = 0
        self.sms_given_up = 0
        self.most_in_flight = 0
        self.hooks: dict[str, int] = {}

    async def on_sms(self, request: web.Request) -> web.Response:
        self.sms_calls += 1
        self.most_in_flight = max(self.most_in_flight, self.sms_calls - self.sms_given_up)
        while request.transport is not None and not request.transport.is_closing():
            await asyncio.sleep(0.02)  # hang until the notifier's 10 s timeout closes it
        self.sms_given_up += 1
        return web.Response(status=200)

    async def on_hook(self, request: web.Request) -> web.Response:
        self.hooks.setdefault(request.headers["Idempotency-Key"], self.sms_given_up)
        return web.Response(status=204)


@pytest.fixture
async def gateways() -> AsyncIterator[tuple[Gateways, str]]:
    gw = Gateways()
    app = web.Application()
    app.router.add_post("/sms", gw.on_sms)
    app.router.add_post("/hook", gw.on_hook)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield gw, f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
def serve_proc(tmp_path: Path) -> Iterator[list[ServeProcess]]:
    procs: list[ServeProcess] = []
    yield procs
    for proc in procs:
        proc.stop()
        print(proc.tail(3000))


async def test_a_dead_sms_gateway_does_not_delay_a_page_on_another_channel(
    kafka_bootstrap: str,
    private_redis: PrivateRedis,  # noqa: F811
    gateways: tuple[Gateways, str],
    unique_name: Callable[[str], str],
    tmp_path: Path,
    serve_proc: list[ServeProcess],
) -> None:
    gw, base = gateways
    doc = copy.deepcopy(yaml.safe_load(DEFAULT_ROUTING.read_text()))
    doc["webhooks"]["crm"]["url"] = f"{base}/hook"
    for member in ("c-li", "c-wang", "c-zhao"):
        doc["collectors"][member]["phone"] = "+8613900000000"
    route = next(r for r in doc["routes"] if r["name"] == "consumer-early")
    route["channels"] = ["sms:oncall", "webhook:crm"]  # SMS first: the serial worker waited
    routing = tmp_path / "routing.yaml"
    routing.write_text(yaml.safe_dump(doc, sort_keys=False))
    alerts = unique_name("alerts")
    await make_topic(kafka_bootstrap, alerts)
    n = 20
    await produce(kafka_bootstrap, alerts, [alert_doc(i) for i in range(n)])
    settings = {
        "LOANWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LOANWATCH_ALERTS_TOPIC": alerts,
        "LOANWATCH_STATUS_TOPIC": "",
        "LOANWATCH_ROUTER_DEAD_LETTER_TOPIC": unique_name("dead"),
        "LOANWATCH_ARCHIVE_TOPIC": unique_name("archive"),
        "LOANWATCH_CONSUMER_GROUP": unique_name("g"),
        "LOANWATCH_REDIS_URL": private_redis.url,
        "LOANWATCH_REDIS_PREFIX": "gw:",
        "LOANWATCH_ROUTING_CONFIG": str(routing),
        **SERVE_SECRETS,
        "LOANWATCH_API_PORT": str(free_port()),
        "LOANWATCH_SMS_GATEWAY_URL": f"{base}/sms",
        "LOANWATCH_NOTIFY_MAX_ATTEMPTS": "5",
        "LOANWATCH_NOTIFY_CONCURRENCY": '{"sms": 4}',
    }
    proc = ServeProcess(settings, tmp_path / "serve.log")
    serve_proc.append(proc)
    proc.start()

    async def all_paged() -> bool:
        assert proc.alive(), proc.tail()
        return len(gw.hooks) == n

    await wait_until(all_paged, "every webhook page", timeout=120)

    async def sms_lane_full() -> bool:
        return gw.sms_calls >= 4

    await wait_until(sms_lane_full, "4 SMS in flight", timeout=10)
    print(f"{n} webhook pages while {gw.sms_calls} SMS calls hang")
    # A serial notifier sends alert 2's page only after alert 1's SMS was given up (its 10 s
    # timeout, and the retries): that page would note at least one SMS given up. With a lane
    # per channel every page arrives while the first SMS requests still hang.
    assert set(gw.hooks.values()) == {0}, gw.hooks
    assert gw.most_in_flight == 4  # the SMS lane's concurrency bound: 4 in flight, no more
