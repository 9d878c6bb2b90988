"""A segment change live: the worker (with strategies) is fed by our producer at full speed, the
router turns the path's actions into work items and notifications, the notifier applies
compliance (quiet hours defer the SMS reminder, recorded with its rule, until 08:00).

Everything real: a ``loanwatch worker --strategies`` subprocess on unique prefixed topics, the
broker, Redis under a unique key prefix, the router and notifier in-process, an HTTP receiver
standing in for the SMS gateway and the CRM. No barrier between events: the log is published
at once and the test waits for the end. The live treatment alerts equal replay's, ids included.
"""

from __future__ import annotations

import asyncio
import copy
import json
import signal
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from loanwatch.ledger.policy import Policy
from loanwatch.replay.runner import replay
from loanwatch.routing.config import DEFAULT_ROUTING, load_compliance, routing_from_mapping
from loanwatch.routing.contacts import ContactBook
from loanwatch.routing.deadletters import RecordingDeadLetters
from loanwatch.routing.notify.senders import EmailSender, SmsGateway, WebhookSender
from loanwatch.routing.notify.worker import NotifyWorker, RetryPolicy, Senders
from loanwatch.routing.router import Router
from loanwatch.routing.workitems import WorkItems, connect
from loanwatch.streams.topics import TopicNames
from loanwatch.treatment.arms import arm_of
from loanwatch.treatment.config import load_strategies

from .live import WorkerProcess, free_port, loan_states, produce_log, read_topic, wait_ready
from .routing_support import wait_until

REPO = Path(__file__).resolve().parents[2]
STRATEGIES_FILE = REPO / "config" / "strategies.yaml"
STRATEGIES = load_strategies(STRATEGIES_FILE)
EXPERIMENT = STRATEGIES.experiment_of("early")
assert EXPERIMENT is not None


def _loan_in(arm: str, stem: str) -> str:
    return next(f"{stem}{i}" for i in range(1000) if arm_of(EXPERIMENT, f"{stem}{i}").name == arm)


CHALLENGER = _loan_in("challenger", "LTC-")  # path early-call-first: call P2 day 0, sms day 3
CHAMPION = _loan_in("champion", "LTA-")  # path early-standard: sms day 0, email 5, call P3 10
HARDSHIP = _loan_in("champion", "LTH-")  # reports hardship: restructure offer


def _line(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def _log() -> list[bytes]:
    """Three loans due 2026-03-01; ticks each day to 2026-03-14; a hardship call on 03-04."""
    lines = []
    for n, loan in enumerate((CHALLENGER, CHAMPION, HARDSHIP)):
        lines.append(
            _line(
                {
                    "event_id": f"tl-open-{n}",
                    "type": "loan_opened",
                    "occurred_at": "2026-02-01T09:00:00+08:00",
                    "loan_id": loan,
                    "borrower_id": f"BT-{n}",
                    "product": "consumer",
                    "region": "east",
                    "currency": "CNY",
                    "principal": "1000.00",
                    "installments": [
                        {
                            "seq": 1,
                            "due_date": "2026-03-01",
                            "principal": "500.00",
                            "interest": "5.00",
                        },
                        {
                            "seq": 2,
                            "due_date": "2026-04-01",
                            "principal": "500.00",
                            "interest": "5.00",
                        },
                    ],
                }
            )
        )
    day = date(2026, 2, 2)
    while day <= date(2026, 3, 14):
        lines.append(
            _line(
                {
                    "event_id": f"tl-tick-{day}",
                    "type": "clock_tick",
                    "business_date": day.isoformat(),
                }
            )
        )
        if day == date(2026, 3, 4):
            contact = {
                "event_id": "tl-hardship",
                "type": "contact_logged",
                "occurred_at": "2026-03-04T15:00:00+08:00",
                "loan_id": HARDSHIP,
                "channel": "call",
                "outcome": "hardship",
                "collector_id": "c-li",
            }
            lines.append(_line(contact))
        day += timedelta(days=1)
    return lines


class Receiver:
    def __init__(self) -> None:
        self.sms: list[dict[str, Any]] = []
        self.hooks: list[dict[str, Any]] = []

    async def on_sms(self, request: web.Request) -> web.Response:
        self.sms.append(await request.json())
        return web.Response(status=200)

    async def on_hook(self, request: web.Request) -> web.Response:
        self.hooks.append(await request.json())
        return web.Response(status=204)


class Clock:
    def __init__(self, at: str) -> None:
        self.now = datetime.fromisoformat(at)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/sms", rec.on_sms)
    app.router.add_post("/hook", rec.on_hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield rec, f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def redis_prefix(redis_url: str, unique_name: Callable[[str], str]) -> AsyncIterator[str]:
    prefix = unique_name("tr") + ":"
    yield prefix
    client = connect(redis_url)
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_a_segment_change_creates_the_paths_work_items_and_compliant_notifications(
    kafka_bootstrap: str,
    redis_url: str,
    redis_prefix: str,
    receiver: tuple[Receiver, str],
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    rec, base = receiver
    doc = copy.deepcopy(yaml.safe_load(DEFAULT_ROUTING.read_text()))
    doc["webhooks"]["crm"]["url"] = f"{base}/hook"
    setup = routing_from_mapping(doc)
    prefix = unique_name("tl") + "."
    names = TopicNames().with_prefix(prefix)
    worker = WorkerProcess(
        app_id=prefix.rstrip("."),
        prefix=prefix,
        data_dir=tmp_path / "w",
        extra_args=("--strategies", str(STRATEGIES_FILE)),
    )
    client = connect(redis_url)
    store = WorkItems(client, setup, redis_prefix)
    # the notifier's instant: 23:30 in Shanghai, inside cn_quiet_hours for sms
    clock = Clock("2026-03-14T23:30:00+08:00")
    stop = asyncio.Event()
    router_task: asyncio.Task[None] | None = None
    log = _log()
    worker.start()
    try:
        await wait_ready([worker])
        await produce_log(kafka_bootstrap, names, log, [worker])  # full speed, one wait at the end
        alerts = await read_topic(kafka_bootstrap, names.alerts)

        # 1. Live equals replay with the same strategies: every alert, ids and fields.
        expected = replay(iter(log), Policy(), strategies=STRATEGIES).alerts
        want = sorted((a.alert_id, json.dumps(a.to_json(), sort_keys=True)) for a in expected)
        got = sorted((a["alert_id"], json.dumps(a, sort_keys=True)) for a in alerts)
        assert got == want
        moves = {(a["loan_id"], a["to_segment"]) for a in alerts if a["kind"] == "segment_changed"}
        assert moves == {(CHALLENGER, "early"), (CHAMPION, "early"), (HARDSHIP, "early"),
                         (HARDSHIP, "hardship")}  # fmt: skip
        [state] = await loan_states([worker], [CHALLENGER])
        assert (state["segment"], state["experiment"], state["arm"]) == (
            "early", "early-2026q2", "challenger",
        )  # fmt: skip

        # 2. The router turns the actions into work items and outbox entries.
        await ContactBook(client, redis_prefix).set_debtor(
            "BT-0", phone="+8613800000000", jurisdiction="CN", locale="zh-CN"
        )
        sink = RecordingDeadLetters()
        router = Router(store, setup, clock, names.alerts, names.status, dead_letters=sink)
        router_task = asyncio.create_task(router.run(kafka_bootstrap, unique_name("router"), stop))

        async def all_applied() -> bool:
            for a in alerts:
                if not await client.exists(store.k("seen", a["alert_id"])):
                    return False
            return True

        await wait_until(all_applied, "every alert applied by the router", timeout=120)
        assert sink.letters == []
        items: dict[str, dict[str, str]] = {}
        for loan in (CHALLENGER, CHAMPION, HARDSHIP):
            item_id = await client.get(store.k("loan", loan))
            assert item_id, loan
            items[loan] = await store.get(item_id)
        # challenger: the day-0 call at P2 re-routed the overdue's P3 item
        call = items[CHALLENGER]
        assert (call["priority"], call["route"], call["team"]) == (
            "P2", "treatment-call-urgent", "consumer-early",
        )  # fmt: skip
        assert (call["segment"], call["experiment"], call["arm"]) == (
            "early", "early-2026q2", "challenger",
        )  # fmt: skip
        # champion: its day-10 call (2026-03-12) at P3 keeps the P3 item, now on its path
        assert items[CHAMPION]["arm"] == "champion"
        assert items[CHAMPION]["priority"] == "P3"
        assert items[HARDSHIP]["segment"] == "hardship"

        # 3. The notifier: quiet hours defer the SMS reminder (recorded with its rule).
        async with aiohttp.ClientSession() as session:
            senders = Senders(
                sms=SmsGateway(session, f"{base}/sms", "gw-user", "gw-pass"),
                email=EmailSender("127.0.0.1", free_port(), "loanwatch@test"),
                webhook=WebhookSender(session, setup.webhooks, b"test-webhook-secret"),
                alertmanager=None,
            )
            notifier = NotifyWorker(
                client, redis_prefix, setup, load_compliance(), senders, clock,
                RetryPolicy(attempts=1, base=0.01, cap=0.02),
            )  # fmt: skip
            await notifier.ensure_group()
            while await notifier.run_once("n1", block_ms=200, count=200):
                pass
            assert rec.sms == []
            supp = [f for _, f in await client.xrange(redis_prefix + "suppressions")]
            quiet = [s for s in supp if s.get("rule") == "cn_quiet_hours"]
            assert quiet and all(s["until"] == "2026-03-15T08:00:00+08:00" for s in quiet)
            hooks = [h for h in rec.hooks if h.get("loan_id") == CHALLENGER]
            assert {h.get("kind") for h in hooks} >= {"segment_changed", "treatment_action"}
            clock.now = datetime.fromisoformat("2026-03-15T08:00:00+08:00")
            assert await notifier.pump_deferred(clock.now) >= 1
            while await notifier.run_once("n1", block_ms=200, count=200):
                pass
            texts = [s["text"] for s in rec.sms if s["to"] == "+8613800000000"]
            assert texts and all(CHALLENGER in t for t in texts)
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        stop.set()
        if router_task is not None:
            await asyncio.wait_for(router_task, 30)
        worker.kill(signal.SIGTERM)
        await client.aclose()
