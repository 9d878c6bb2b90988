"""Notifications end to end, nothing mocked: SMS and a signed webhook received by a local aiohttp
server, email by a local aiosmtpd SMTP server, the outbox and deferrals in the real Redis.
Quiet hours defer the SMS (recorded, not dropped) until the clock reaches 08:00."""

from __future__ import annotations

import base64
import copy
import socket
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiosmtpd.controller import Controller

from loanwatch.routing.alert import parse_alert
from loanwatch.routing.config import DEFAULT_ROUTING, load_compliance, routing_from_mapping
from loanwatch.routing.contacts import ContactBook
from loanwatch.routing.notify.plan import alert_entries
from loanwatch.routing.notify.senders import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    EmailSender,
    SmsGateway,
    WebhookSender,
    verify,
)
from loanwatch.routing.notify.worker import NotifyWorker, RetryPolicy, Senders
from loanwatch.routing.workitems import WorkItems, connect

from ..pre_due import PRE_DUE
from .routing_support import FixedClock, http_receiver

SECRET = b"test-webhook-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """A local HTTP server standing in for the SMS gateway and the collectors' CRM."""

    def __init__(self) -> None:
        self.sms: list[tuple[dict[str, Any], str | None]] = []
        self.hooks: list[tuple[bytes, dict[str, str]]] = []
        self.sms_status = 200

    async def on_sms(self, request: web.Request) -> web.Response:
        self.sms.append((await request.json(), request.headers.get("Authorization")))
        return web.Response(status=self.sms_status)

    async def on_hook(self, request: web.Request) -> web.Response:
        self.hooks.append((await request.read(), dict(request.headers)))
        return web.Response(status=204)


class Mailbox:
    def __init__(self) -> None:
        self.mails: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    async with http_receiver({"/sms": rec.on_sms, "/hook": rec.on_hook}) as base:
        yield rec, base


@pytest.fixture
def mailbox() -> Any:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture
async def env(
    redis_url: str, unique_name: Callable[[str], str], receiver: tuple[Receiver, str], mailbox: Any
) -> AsyncIterator[dict[str, Any]]:
    rec, base = receiver
    box, smtp_port = mailbox
    doc = copy.deepcopy(yaml.safe_load(DEFAULT_ROUTING.read_text()))
    doc["webhooks"]["crm"]["url"] = f"{base}/hook"
    setup = routing_from_mapping(doc)
    client = connect(redis_url)
    prefix = unique_name("nt") + ":"
    clock = FixedClock("2026-03-05T10:00:00+08:00")
    async with aiohttp.ClientSession() as session:
        senders = Senders(
            sms=SmsGateway(session, f"{base}/sms", "gw-user", "gw-pass"),
            email=EmailSender("127.0.0.1", smtp_port, "loanwatch@test"),
            webhook=WebhookSender(session, setup.webhooks, SECRET),
            alertmanager=None,
        )
        worker = NotifyWorker(
            client,
            prefix,
            setup,
            load_compliance(),
            senders,
            clock,
            RetryPolicy(attempts=3, base=0.01, cap=0.02),
        )
        await worker.ensure_group()
        yield {
            "rec": rec,
            "box": box,
            "setup": setup,
            "redis": client,
            "prefix": prefix,
            "clock": clock,
            "worker": worker,
            "store": WorkItems(client, setup, prefix),
        }
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


ALERT = {
    "alert_id": "n1",
    "kind": "overdue",
    "severity": "warning",
    "loan_id": "LN-9",
    "borrower_id": "B-9",
    "business_date": "2026-03-05",
    "bucket": "M1",
    "dpd": 3,
    "overdue_amount": "2500.00",
    "product": "sme",
    "region": "north",
    "due_date": "2026-03-02",
    "currency": "CNY",
}


async def route_alert(env: dict[str, Any], doc: dict[str, Any]) -> None:
    alert = parse_alert(doc)
    routes = env["setup"].routes_for(alert)
    await env["store"].apply_alert(
        alert,
        routes,
        env["clock"].now,
        outbox=lambda iid, who, _i: alert_entries(alert, routes, iid, who),
    )


async def test_sms_email_and_signed_webhook_delivered(env: dict[str, Any]) -> None:
    await ContactBook(env["redis"], env["prefix"]).set_debtor(
        "B-9", phone="+8613800000000", jurisdiction="CN", locale="zh-CN"
    )
    await route_alert(env, ALERT)  # route "sme": sms:borrower, email:oncall, webhook:crm
    assert await env["worker"].run_once("w1", block_ms=100) == 3
    rec, box = env["rec"], env["box"]
    [(sms, auth)] = rec.sms
    assert sms["to"] == "+8613800000000" and "LN-9" in sms["text"] and "2,500.00" in sms["text"]
    assert auth == "Basic " + base64.b64encode(b"gw-user:gw-pass").decode()
    [(body, headers)] = rec.hooks
    assert verify(SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    assert not verify(b"wrong", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    assert b'"loan_id":"LN-9"' in body and b"+8613800000000" not in body
    [mail] = box.mails
    assert mail["To"] == "s-chen@collections.example"  # on call for sme-collections that week
    assert "LN-9" in str(make_header(decode_header(mail["Subject"])))
    # Re-delivery of the same outbox entries sends nothing twice.
    history = await ContactBook(env["redis"], env["prefix"]).history("B-9", env["clock"].now)
    assert [(h.channel, h.outcome) for h in history] == [("sms", "sent")]


async def test_quiet_hours_defer_sms_until_eight(env: dict[str, Any]) -> None:
    await ContactBook(env["redis"], env["prefix"]).set_debtor(
        "B-9", phone="+8613800000000", jurisdiction="CN"
    )
    env["clock"].now = datetime.fromisoformat("2026-03-05T23:30:00+08:00")
    await route_alert(env, ALERT)
    assert await env["worker"].run_once("w1", block_ms=100) == 3
    assert env["rec"].sms == [] and len(env["rec"].hooks) == 1  # the webhook is not a contact
    r, p = env["redis"], env["prefix"]
    [(_, supp)] = await r.xrange(p + "suppressions")
    assert supp["rule"] == "cn_quiet_hours" and supp["until"] == "2026-03-06T08:00:00+08:00"
    assert "+86" not in str(supp)
    assert await env["worker"].pump_deferred(env["clock"].now + timedelta(hours=8)) == 0
    env["clock"].now = datetime.fromisoformat("2026-03-06T08:00:00+08:00")
    assert await env["worker"].pump_deferred(env["clock"].now) == 1
    assert await env["worker"].run_once("w1", block_ms=100) == 1
    assert len(env["rec"].sms) == 1


async def test_failed_sends_are_retried_then_dead_lettered(env: dict[str, Any]) -> None:
    await ContactBook(env["redis"], env["prefix"]).set_debtor("B-9", phone="+8613800000000")
    env["rec"].sms_status = 503
    await route_alert(env, ALERT)
    await env["worker"].run_once("w1", block_ms=100)
    assert len(env["rec"].sms) == 3  # three attempts with backoff
    [(_, dead)] = await env["redis"].xrange(env["prefix"] + "dead")
    assert dead["channel"] == "sms" and dead["tries"] == "3" and "503" in dead["error"]
    # No contact point on file: suppressed with a reason, not sent, not lost.
    await route_alert(env, ALERT | {"alert_id": "n2", "borrower_id": "B-none", "loan_id": "LN-10"})
    await env["worker"].run_once("w1", block_ms=100)
    reasons = [e["rule"] for _, e in await env["redis"].xrange(env["prefix"] + "suppressions")]
    assert reasons == ["no_contact_details"]


async def test_pre_due_reminder_waits_for_quiet_hours_then_goes_in_the_borrowers_language(
    env: dict[str, Any],
) -> None:
    await ContactBook(env["redis"], env["prefix"]).set_debtor(
        "B-9", phone="+8613800000000", jurisdiction="CN", locale="zh-CN"
    )
    env["clock"].now = datetime.fromisoformat("2026-03-05T23:30:00+08:00")
    await route_alert(env, PRE_DUE)  # route "pre-due-risk": sms:borrower, webhook:crm
    assert await env["worker"].run_once("w1", block_ms=100) == 2
    assert env["rec"].sms == []
    [(body, _)] = env["rec"].hooks
    assert b'"probability":"0.4127"' in body and b'"reason_codes":"late_1>3,' in body
    [(_, supp)] = await env["redis"].xrange(env["prefix"] + "suppressions")
    assert supp["rule"] == "cn_quiet_hours" and supp["until"] == "2026-03-06T08:00:00+08:00"
    env["clock"].now = datetime.fromisoformat("2026-03-06T08:00:00+08:00")
    assert await env["worker"].pump_deferred(env["clock"].now) == 1
    assert await env["worker"].run_once("w1", block_ms=100) == 1
    [(sms, _)] = env["rec"].sms
    assert "还款日提醒" in sms["text"] and PRE_DUE["due_date"] in sms["text"]
    assert "0.41" not in sms["text"] and "逾期" not in sms["text"]
    # no work item: the loan is not delinquent
    assert not [k async for k in env["redis"].scan_iter(match=env["prefix"] + "wi:*")]
