"""Redis bounded by design: ``routes serve`` on a private Redis with ``maxmemory 16mb``
(``noeviction``) routes a stream of alerts (each loan falls overdue, then is cured) and Redis
stays under the limit with nothing lost: every work item archived to Kafka before Redis forgot
it, every webhook received exactly once, no OOM on the way.

The count is ``--soak-alerts`` (CI default 20,000; the issue's figure is 200,000). The horizons
are short so that a soak of minutes exercises them (production: docs/reliability.md).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from loanwatch.routing.workitems import connect

from .routing_support import ServeProcess, read_all, wait_until
from .test_routing_outage import Hooks, hooks, private_redis, serve_env  # noqa: F401
from .test_routing_redis_durability import PrivateRedis
from .test_routing_router import alert_doc, make_topic, produce

LIMIT = 16 * 1024 * 1024


def alerts_for(loans: int) -> list[dict[str, Any]]:
    out = []
    for i in range(loans):
        out.append(alert_doc(i))
        cured = alert_doc(i, kind="cured") | {"alert_id": f"cu-{i}", "severity": "info"}
        cured |= {"bucket": "M0", "dpd": 0, "overdue_amount": "0.00"}
        out.append(cured)
    return out


@pytest.mark.timeout(7200)  # 200,000 alerts take about 10 minutes on two cores
async def test_soak_16mb_redis_stays_bounded_and_loses_nothing(
    kafka_bootstrap: str,
    private_redis: PrivateRedis,  # noqa: F811
    hooks: tuple[Hooks, str],  # noqa: F811
    unique_name: Callable[[str], str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    alerts_total = int(request.config.getoption("--soak-alerts"))
    loans = alerts_total // 2
    rec, hook_url = hooks
    admin = connect(private_redis.url)
    await admin.config_set("maxmemory", "16mb")
    made: dict[str, str] = {}

    def names(role: str) -> str:
        return made.setdefault(role, unique_name(role))

    env = serve_env(kafka_bootstrap, private_redis, hook_url, names, tmp_path) | {
        "LOANWATCH_SEEN_TTL_HOURS": str(30 / 3600),  # 30 s
        "LOANWATCH_SENT_TTL_HOURS": str(30 / 3600),
        "LOANWATCH_RESOLVED_RETENTION_HOURS": str(1 / 3600),  # 1 s
        "LOANWATCH_ESCALATION_INTERVAL_SECONDS": "0.5",
        "LOANWATCH_STREAM_MAX_LEN": "1000",
        "LOANWATCH_MAX_OUTBOX_BACKLOG": "5000",
        "LOANWATCH_ARCHIVE_TOPIC": names("archive"),
    }
    alerts = env["LOANWATCH_ALERTS_TOPIC"]
    await make_topic(kafka_bootstrap, alerts)
    started = time.monotonic()
    await produce(kafka_bootstrap, alerts, alerts_for(loans))
    print(f"produced {2 * loans} alerts in {time.monotonic() - started:.1f}s")
    proc = ServeProcess(env, tmp_path / "serve.log")
    proc.start()
    peak = 0
    expected = {f"al-{i}:consumer-early:webhook:crm" for i in range(loans)}
    expected |= {f"cu-{i}:cured:webhook:crm" for i in range(loans)}
    try:
        started = time.monotonic()

        async def done() -> bool:
            nonlocal peak
            assert proc.alive(), proc.tail()
            info = await admin.info("memory")
            peak = max(peak, int(info["used_memory"]))
            assert peak < LIMIT, f"used_memory {peak} reached the limit"
            return len(set(rec.keys)) >= len(expected)

        await wait_until(done, "every webhook", timeout=max(300, alerts_total / 40))
        elapsed = time.monotonic() - started

        async def archived() -> bool:
            return await admin.zcard("out:resolved") == 0 and not await admin.exists("out:loan:L0")

        await wait_until(archived, "every resolved item archived", timeout=60)
        async with aiohttp.ClientSession() as session:
            port = env["LOANWATCH_API_PORT"]
            async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                metrics = await resp.text()
        info = await admin.info("memory")
        peak = max(peak, int(info["used_memory_peak"]))
    finally:
        code = proc.stop()
        print(proc.tail(1500))
        await admin.aclose()
    rate = 2 * loans / elapsed
    print(f"{2 * loans} alerts routed in {elapsed:.1f}s ({rate:.0f}/s), redis peak {peak} bytes")
    assert code == 0
    assert peak < LIMIT
    assert not re.search(r'loanwatch_router_redis_faults_total\{[^}]*reason="oom"', metrics)
    sends = Counter(rec.keys)
    assert set(sends) == expected
    assert [k for k, n in sends.items() if n > 1] == []  # each webhook once
    archive = [
        orjson.loads(v or b"") for _k, v in await read_all(kafka_bootstrap, names("archive"))
    ]
    items = {a["item"]["item_id"]: a["item"] for a in archive}
    assert set(items) == {f"wi-L{i}-al-{i}" for i in range(loans)}  # every item, kept in Kafka
    assert {i["state"] for i in items.values()} == {"resolved"}
    assert {i["resolution"] for i in items.values()} == {"cured"}
