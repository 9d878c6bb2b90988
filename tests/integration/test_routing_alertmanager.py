"""The ``alertmanager`` channel against the stack's real Alertmanager (API v2), nothing mocked.

Alerts go the router's way: ``WorkItems.apply_alert`` writes the outbox in the real Redis, the
``NotifyWorker`` drains it and ``AlertmanagerSender`` posts to ``/api/v2/alerts``; the test reads
them back with ``GET /api/v2/alerts?filter=...``. Every alert carries a ``region`` unique to the
test, so runs sharing the Alertmanager never see each other's alerts. A silence on that label,
created first, keeps the shared receivers (webhooks on 127.0.0.1:9095) from being paged; at
teardown the test's alerts are resolved and the silence expired. A critical ``LoanwatchAlert``
mutes the warnings of its own loan and kind (``inhibit_rules``), so a test that sends one uses
loan ids unique to the run."""

from __future__ import annotations

import asyncio
import copy
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import yaml

from loanwatch.routing.alert import parse_alert
from loanwatch.routing.config import DEFAULT_ROUTING, load_compliance, routing_from_mapping
from loanwatch.routing.errors import DeliveryError
from loanwatch.routing.notify.plan import alert_entries
from loanwatch.routing.notify.senders import AlertmanagerSender
from loanwatch.routing.notify.worker import NotifyWorker, RetryPolicy, Senders
from loanwatch.routing.workitems import WorkItems, connect

from .routing_support import FixedClock

RETRY = RetryPolicy(attempts=3, base=0.01, cap=0.02)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def alert_doc(region: str, alert_id: str, loan_id: str, **extra: Any) -> dict[str, Any]:
    """An overdue alert in a late bucket: route ``late-stage`` (team late-stage, P1)."""
    return {
        "alert_id": alert_id,
        "kind": "overdue",
        "severity": "warning",
        "loan_id": loan_id,
        "borrower_id": f"B-{loan_id}",
        "business_date": "2026-03-05",
        "bucket": "M4",
        "dpd": 95,
        "overdue_amount": "3200.00",
        "product": "consumer",
        "region": region,
        "due_date": "2025-12-01",
        "currency": "CNY",
    } | extra


class Env:
    def __init__(
        self, am: str, session: aiohttp.ClientSession, region: str, redis: Any, prefix: str
    ) -> None:
        self.am, self.session, self.region = am, session, region
        self.redis, self.prefix = redis, prefix
        self.clock = FixedClock("2026-03-05T22:00:00+08:00")
        doc = copy.deepcopy(yaml.safe_load(DEFAULT_ROUTING.read_text()))
        # Only the Alertmanager channel on the route under test: every dead letter or
        # suppression the test sees is about that channel.
        for route in doc["routes"]:
            if route["name"] == "late-stage":
                route["channels"] = ["alertmanager"]
        self.setup = routing_from_mapping(doc)
        self.store = WorkItems(redis, self.setup, prefix)
        self.sleeps: list[float] = []

    def worker(self, base_url: str) -> NotifyWorker:
        senders = Senders(
            sms=None,
            email=None,
            webhook=None,
            alertmanager=AlertmanagerSender(self.session, base_url),
        )

        async def sleep(delay: float) -> None:
            self.sleeps.append(delay)

        return NotifyWorker(
            self.redis,
            self.prefix,
            self.setup,
            load_compliance(),
            senders,
            self.clock,
            RETRY,
            sleep=sleep,
        )

    async def route(self, doc: dict[str, Any]) -> str:
        alert = parse_alert(doc)
        routes = self.setup.routes_for(alert)
        assert [r.name for r in routes] == ["late-stage"]
        applied = await self.store.apply_alert(
            alert,
            routes,
            self.clock.now,
            outbox=lambda iid, who, _i: alert_entries(alert, routes, iid, who),
        )
        return applied.action

    async def alerts(self, *matchers: str) -> list[dict[str, Any]]:
        """This run's alerts in the real Alertmanager (silenced ones included)."""
        params = [("filter", f'region="{self.region}"')] + [("filter", m) for m in matchers]
        async with self.session.get(f"{self.am}/api/v2/alerts", params=params) as resp:
            assert resp.status == 200, await resp.text()
            found: list[dict[str, Any]] = await resp.json()
        return found

    async def xrange(self, stream: str) -> list[dict[str, str]]:
        return [fields for _id, fields in await self.redis.xrange(self.prefix + stream)]


@pytest.fixture
async def env(
    alertmanager_url: str, redis_url: str, unique_name: Callable[[str], str]
) -> AsyncIterator[Env]:
    region = unique_name("am")
    prefix = unique_name("amt") + ":"
    redis = connect(redis_url)
    async with aiohttp.ClientSession() as session:
        now = datetime.now(UTC)
        silence = {
            "matchers": [{"name": "region", "value": region, "isRegex": False, "isEqual": True}],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=15)).isoformat(),
            "createdBy": "tests/integration/test_routing_alertmanager.py",
            "comment": "test alerts: keep the shared receivers quiet",
        }
        async with session.post(f"{alertmanager_url}/api/v2/silences", json=silence) as resp:
            assert resp.status == 200, await resp.text()
            silence_id = (await resp.json())["silenceID"]
        env = Env(alertmanager_url, session, region, redis, prefix)
        try:
            yield env
        finally:
            # Resolve this run's alerts (same labels, endsAt now), then lift the silence.
            ended = datetime.now(UTC).isoformat()
            leftovers = await env.alerts()
            if leftovers:
                body = [
                    {
                        "labels": a["labels"],
                        "startsAt": a["startsAt"],
                        "endsAt": ended,
                        "annotations": a["annotations"],
                    }
                    for a in leftovers
                ]
                async with session.post(f"{alertmanager_url}/api/v2/alerts", json=body) as resp:
                    assert resp.status == 200, await resp.text()
            async with session.delete(f"{alertmanager_url}/api/v2/silence/{silence_id}") as resp:
                assert resp.status == 200, await resp.text()
            keys = [k async for k in redis.scan_iter(match=prefix + "*")]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()


async def test_routed_alerts_reach_alertmanager_once_per_loan(env: Env) -> None:
    worker = env.worker(env.am)
    await worker.ensure_group()
    assert await env.route(alert_doc(env.region, "am-1", "LN-A1")) == "create"
    assert await worker.run_once("w1", block_ms=100) == 1

    [alert] = await env.alerts()
    assert alert["labels"] == {
        "alertname": "LoanwatchAlert",
        "kind": "overdue",
        "severity": "warning",
        "team": "late-stage",
        "priority": "P1",
        "product": "consumer",
        "region": env.region,
        "bucket": "M4",
        "loan_id": "LN-A1",
    }
    assert alert["annotations"] == {
        "loan_id": "LN-A1",
        "item_id": "wi-LN-A1-am-1",
        "summary": "overdue loan LN-A1 M4",
    }
    assert alert["status"]["state"] in ("active", "suppressed")
    assert alert["status"]["silencedBy"], "the test's silence must hold its own alerts"
    assert await env.xrange("dead") == []
    [sent_key] = [k async for k in env.redis.scan_iter(match=env.prefix + "sent:*")]
    assert sent_key.startswith(env.prefix + "sent:am-1:late-stage:alertmanager")

    # The next day the loan fires again in the same bucket: the work item is updated and the
    # outbox sends the same labels again; Alertmanager merges it into the same alert.
    env.clock.now += timedelta(days=1)
    again = alert_doc(env.region, "am-2", "LN-A1", business_date="2026-03-06", dpd=96)
    assert await env.route(again) == "update"
    assert await worker.run_once("w1", block_ms=100) == 1
    assert len([k async for k in env.redis.scan_iter(match=env.prefix + "sent:*")]) == 2
    [merged] = await env.alerts()
    assert merged["fingerprint"] == alert["fingerprint"]
    assert merged["startsAt"] == alert["startsAt"]
    assert stamp(merged["updatedAt"]) >= stamp(alert["updatedAt"])

    # Another loan with otherwise identical labels is a second alert, not an overwrite of the
    # first (the loan's id is a label, so the fingerprints differ).
    assert await env.route(alert_doc(env.region, "am-3", "LN-A2")) == "create"
    assert await worker.run_once("w1", block_ms=100) == 1
    both = await env.alerts()
    assert sorted(a["labels"]["loan_id"] for a in both) == ["LN-A1", "LN-A2"]
    assert len({a["fingerprint"] for a in both}) == 2
    [a2] = await env.alerts('loan_id="LN-A2"')
    assert a2["annotations"]["item_id"] == "wi-LN-A2-am-3"
    [a1] = await env.alerts('loan_id="LN-A1"')
    assert a1["fingerprint"] == alert["fingerprint"]
    assert await env.xrange("dead") == []


async def test_unreachable_alertmanager_is_retried_then_dead_lettered(env: Env) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    worker = env.worker(closed)
    await worker.ensure_group()
    assert await env.route(alert_doc(env.region, "am-x", "LN-X1")) == "create"
    assert await worker.run_once("w1", block_ms=100) == 1

    [dead] = await env.xrange("dead")
    assert dead["channel"] == "alertmanager" and dead["loan_id"] == "LN-X1"
    assert dead["tries"] == str(RETRY.attempts)
    assert "Alertmanager unreachable" in dead["error"]
    assert env.sleeps == [0.01, 0.02]  # backoff between the three tries
    assert [k async for k in env.redis.scan_iter(match=env.prefix + "sent:*")] == []
    # Acked, not retried forever: the outbox has nothing pending.
    assert await worker.run_once("w1", block_ms=100) == 0
    assert await env.alerts() == []  # nothing reached the real Alertmanager


async def test_alertmanager_rejection_is_a_delivery_error(env: Env) -> None:
    """An alert the real Alertmanager refuses (invalid label name) raises, it is not lost."""
    sender = AlertmanagerSender(env.session, env.am + "/")
    with pytest.raises(DeliveryError, match="Alertmanager answered HTTP 400"):
        await sender.send(
            {"alertname": "LoanwatchAlert", "region": env.region, "bad-name": "x"}, {}
        )
    assert await env.alerts() == []


async def test_a_loans_critical_alert_inhibits_only_its_own_warning(env: Env) -> None:
    """The critical-twin inhibit rule of the real Alertmanager, over alerts the router sent.

    A critical ``LoanwatchAlert`` of loan A mutes A's warning of the same kind, not loan B's
    (before ``loan_id`` was an ``equal`` label it muted every loan's warnings). Loan ids are
    unique to the run: the rule compares ``loan_id`` and ``kind``, not ``region``."""
    run = env.region.rsplit("-", 1)[-1]
    loan_a, loan_b = f"LN-{run}-A", f"LN-{run}-B"
    worker = env.worker(env.am)
    await worker.ensure_group()
    assert await env.route(alert_doc(env.region, "inh-1", loan_a, severity="critical")) == "create"
    assert await env.route(alert_doc(env.region, "inh-2", loan_b)) == "create"
    assert await worker.run_once("w1", block_ms=100) == 2
    [critical_a] = await env.alerts(f'loan_id="{loan_a}"', 'severity="critical"')

    # The same loan's warning twin (what a re-sent, lower-severity alert of A would be).
    twin = {**critical_a["labels"], "severity": "warning"}
    sender = AlertmanagerSender(env.session, env.am)
    await sender.send(twin, critical_a["annotations"])
    # A warning of another kind for loan A is another fact for the collector: not muted.
    await sender.send({**twin, "kind": "promise_broken"}, critical_a["annotations"])

    async def inhibited_by(loan_id: str, kind: str = "overdue") -> list[str]:
        [warning] = await env.alerts(f'loan_id="{loan_id}"', 'severity="warning"', f'kind="{kind}"')
        return list(warning["status"]["inhibitedBy"])

    # The inhibitor learns of the firing source asynchronously: wait for A's twin to be muted.
    deadline = asyncio.get_running_loop().time() + 10
    while not await inhibited_by(loan_a):
        assert asyncio.get_running_loop().time() < deadline, "A's warning was never inhibited"
        await asyncio.sleep(0.2)
    assert await inhibited_by(loan_a) == [critical_a["fingerprint"]]
    assert await inhibited_by(loan_b) == []  # another loan's critical alert does not mute it
    assert await inhibited_by(loan_a, "promise_broken") == []
    assert await env.xrange("dead") == []
