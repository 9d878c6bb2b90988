"""Work items against the real Redis: idempotent by alert_id, one item per episode, escalation
after the ack timeout, auto-resolve on cure and on a closed loan, per-team open counts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from loanwatch.routing.alert import AlertRecord, parse_alert
from loanwatch.routing.config import load_routing
from loanwatch.routing.errors import WorkItemError
from loanwatch.routing.workitems import WorkItems, connect

SETUP = load_routing()
T0 = datetime.fromisoformat("2026-03-05T10:00:00+08:00")  # consumer-early: c-zhao on call


def alert(alert_id: str, kind: str = "overdue", loan: str = "L1", **extra: Any) -> AlertRecord:
    body = {
        "alert_id": alert_id,
        "kind": kind,
        "severity": "warning",
        "loan_id": loan,
        "borrower_id": "B1",
        "business_date": "2026-03-05",
        "bucket": "M1",
        "dpd": 1,
        "overdue_amount": "120.00",
        "product": "consumer",
        "region": "east",
        "due_date": "2026-03-04",
    }
    return parse_alert(body | extra)


@pytest.fixture
async def store(redis_url: str, unique_name: Callable[[str], str]) -> AsyncIterator[WorkItems]:
    client = connect(redis_url)
    prefix = unique_name("wi") + ":"
    yield WorkItems(client, SETUP, prefix)
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def apply(store: WorkItems, a: AlertRecord, now: datetime = T0) -> tuple[str, str | None]:
    applied = await store.apply_alert(a, SETUP.routes_for(a), now, outbox=record)
    return applied.action, applied.item_id


def record(item_id: str, assignee: str | None, item: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"item_id": item_id, "to": assignee or "", "kind": item.get("last_kind", "")}]


async def test_redelivered_alert_never_duplicates(store: WorkItems) -> None:
    action, item_id = await apply(store, alert("a1"))
    assert action == "create" and item_id == "wi-L1-a1"
    for _ in range(3):  # re-delivery of the same alert: nothing changes, nothing is queued
        assert await apply(store, alert("a1")) == ("duplicate", item_id)
    # A later alert of the same episode updates the same item.
    assert await apply(store, alert("a2", kind="promise_broken")) == ("update", item_id)
    item = await store.get(item_id)
    assert item["alerts"] == "2" and item["last_kind"] == "promise_broken"
    assert item["assignee"] == "c-zhao" and item["state"] == "triggered"
    assert await store.open_counts() == {
        t: (1 if t == "consumer-early" else 0) for t in SETUP.teams
    }
    assert await store.r.xlen(store.k("outbox")) == 2  # one per applied alert, none for duplicates
    assert [i["item_id"] for i in await store.queue("c-zhao")] == [item_id]


async def test_escalation_after_ack_timeout_and_ack_stops_it(store: WorkItems) -> None:
    _, item_id = await apply(store, alert("e1"))
    assert item_id
    assert await store.escalate_due(T0 + timedelta(minutes=29)) == []
    escalated = await store.escalate_due(T0 + timedelta(minutes=30), outbox=record)
    assert [(e.item_id, e.level) for e in escalated] == [(item_id, 1)]
    item = await store.get(item_id)
    # standard policy level 1 = on call of late-stage at 10:30 on Thursday of week 9: l-zhou
    assert item["level"] == "1" and item["assignee"] == escalated[0].assignee == "l-zhou"
    assert await store.queue("c-zhao") == []
    # Next deadline is 1h after the escalation; acknowledging stops it.
    await store.ack(item_id, "l-zhou", T0 + timedelta(minutes=40))
    assert await store.escalate_due(T0 + timedelta(hours=5)) == []
    assert (await store.get(item_id))["state"] == "acknowledged"


async def test_escalates_to_last_level_then_stops(store: WorkItems) -> None:
    _, item_id = await apply(store, alert("x1"))
    now = T0
    levels = []
    for _ in range(4):
        now += timedelta(hours=2)
        levels += [e.level for e in await store.escalate_due(now)]
    assert levels == [1, 2]
    assert (await store.get(item_id))["assignee"] == "ops-duty"


async def test_cure_resolves_and_next_overdue_opens_new_episode(store: WorkItems) -> None:
    _, first = await apply(store, alert("c1"))
    assert await apply(store, alert("c2", kind="cured", bucket="M0", severity="info")) == (
        "resolve",
        first,
    )
    item = await store.get(first or "")
    assert item["state"] == "resolved" and item["resolution"] == "cured"
    assert await store.queue("c-zhao") == []
    assert (await store.open_counts())["consumer-early"] == 0
    assert await store.escalate_due(T0 + timedelta(days=1)) == []
    action, second = await apply(store, alert("c3"))
    assert action == "create" and second != first


async def test_reroute_to_more_urgent_team_and_claim(store: WorkItems) -> None:
    _, item_id = await apply(store, alert("r1"))
    assert item_id
    await store.claim(item_id, "c-li", T0 + timedelta(minutes=5))
    with pytest.raises(WorkItemError, match="held by another"):
        await store.claim(item_id, "c-wang", T0 + timedelta(minutes=6))
    action, same = await apply(
        store, alert("r2", kind="bucket_changed", bucket="M4", severity="critical")
    )
    assert (action, same) == ("reroute", item_id)
    item = await store.get(item_id)
    assert (
        item["team"] == "late-stage" and item["priority"] == "P1" and item["state"] == "triggered"
    )
    counts = await store.open_counts()
    assert counts["late-stage"] == 1 and counts["consumer-early"] == 0
    assert await store.queue("c-li") == []


async def test_closed_loan_resolves_its_item(store: WorkItems) -> None:
    _, item_id = await apply(store, alert("z1", loan="L7"))
    assert await store.resolve_loan("L7", "loan_closed:repaid", T0) == item_id
    assert (await store.get(item_id or ""))["resolution"] == "loan_closed:repaid"
    assert await store.resolve_loan("L7", "loan_closed:repaid", T0) is None
    with pytest.raises(WorkItemError, match="resolved"):
        await store.ack(item_id or "", "c-li", T0)


async def test_alert_read_after_loan_closed_leaves_a_resolved_item_and_sends_nothing(
    store: WorkItems,
) -> None:
    # loan.accounts and loan.alerts are not ordered: the loan's closure is read first.
    assert await store.resolve_loan("L8", "loan_closed:repaid", T0) is None
    assert await store.r.ttl(store.k("closed", "L8")) > 0  # remembered for a while only
    action, item_id = await apply(store, alert("c1", loan="L8"))
    assert (action, item_id) == ("closed", "wi-L8-c1")
    item = await store.get("wi-L8-c1")
    assert (item["state"], item["resolution"], item["team"]) == (
        "resolved",
        "loan_closed:repaid",
        "consumer-early",
    )
    assert item["assignee"] == ""
    assert await store.r.get(store.k("loan", "L8")) is None
    assert (await store.open_counts())["consumer-early"] == 0
    assert await store.r.zcard(store.k("esc")) == 0
    assert await store.r.xlen(store.k("outbox")) == 0  # nobody paged, borrower not texted
    # Later alerts of the closed loan (and re-deliveries) change nothing.
    assert await apply(store, alert("c2", kind="bucket_changed", loan="L8")) == (
        "closed",
        "wi-L8-c1",
    )
    assert (await store.get("wi-L8-c1"))["alerts"] == "2"
    assert await apply(store, alert("c4", kind="cured", loan="L8")) == ("closed", "wi-L8-c1")
    assert (await store.get("wi-L8-c1"))["state"] == "resolved"
    assert await apply(store, alert("c1", loan="L8")) == ("duplicate", "wi-L8-c1")
    assert await store.r.xlen(store.k("outbox")) == 0
    # Another loan is not affected.
    assert (await apply(store, alert("c3", loan="L9")))[0] == "create"


async def test_closure_is_forgotten_after_its_ttl(store: WorkItems) -> None:
    short = WorkItems(store.r, SETUP, store.p, closed_ttl=timedelta(seconds=1))
    await short.resolve_loan("L10", "loan_closed:sold", T0)
    await store.r.pexpire(store.k("closed", "L10"), 1)  # let it lapse now, without sleeping
    while await store.r.exists(store.k("closed", "L10")):
        pass
    assert (await apply(short, alert("d1", loan="L10")))[0] == "create"
