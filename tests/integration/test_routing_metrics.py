"""The router service's own ``/metrics``: ``loanwatch routes serve`` (the real composition root)
exposes ``loanwatch_workitems_open{team}`` read from Redis at scrape time, without a token, while
the rest of the collector API still asks for one."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from loanwatch.routing.auth import token_digest
from loanwatch.routing.workitems import connect

from .routing_support import SERVE_SECRETS
from .test_routing_router import (
    alert_doc,
    closed_verdict,
    free_port,
    make_topic,
    produce,
    start_router,
)


@pytest.fixture
async def redis_and_prefix(
    redis_url: str, unique_name: Callable[[str], str]
) -> AsyncIterator[tuple[Any, str]]:
    client = connect(redis_url)
    prefix = unique_name("rm") + ":"
    yield client, prefix
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def gauge(text: str, team: str) -> float | None:
    found = re.search(rf'^loanwatch_workitems_open\{{team="{team}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else None


async def test_serve_exposes_open_work_items_per_team(
    kafka_bootstrap: str,
    redis_url: str,
    redis_and_prefix: tuple[Any, str],
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    client, prefix = redis_and_prefix
    alerts, status, group = unique_name("alerts"), unique_name("status"), unique_name("g")
    await make_topic(kafka_bootstrap, alerts)
    await make_topic(kafka_bootstrap, status)
    await produce(kafka_bootstrap, alerts, [alert_doc(i) for i in range(3)])
    port = free_port()
    env = {
        "LOANWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LOANWATCH_ALERTS_TOPIC": alerts,
        "LOANWATCH_STATUS_TOPIC": status,
        "LOANWATCH_ROUTER_DEAD_LETTER_TOPIC": unique_name("dead"),
        "LOANWATCH_CONSUMER_GROUP": group,
        "LOANWATCH_REDIS_URL": redis_url,
        "LOANWATCH_REDIS_PREFIX": prefix,
        "LOANWATCH_API_PORT": str(port),
        "LOANWATCH_API_CLIENTS": json.dumps(
            {
                "c-li": {
                    "token_sha256": token_digest("tok"),
                    "scope": "collector",
                    "collector": "c-li",
                }
            }
        ),
        "LOANWATCH_ARCHIVE_TOPIC": unique_name("archive"),
        **SERVE_SECRETS,
        "LOANWATCH_NOTIFY_MAX_ATTEMPTS": "1",
    }
    log = tmp_path / "router.log"
    proc = start_router(env, log)
    url = f"http://127.0.0.1:{port}"

    async def scrape(session: aiohttp.ClientSession) -> str:
        async with session.get(f"{url}/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            return await resp.text()

    async def until(session: aiohttp.ClientSession, team: str, value: float) -> str:
        deadline = time.monotonic() + 60
        while True:
            try:
                text = await scrape(session)
                if gauge(text, team) == value:
                    return text
            except aiohttp.ClientConnectionError:
                pass  # not listening yet
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"gauge never reached {value}"
            await asyncio.sleep(0.2)

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            text = await until(session, "consumer-early", 3)
            assert gauge(text, "risk-desk") == 0  # every configured team has a series
            async with session.get(f"{url}/queue") as resp:
                assert resp.status == 401  # only /metrics is open
            await produce(kafka_bootstrap, status, [closed_verdict("L2")])
            await until(session, "consumer-early", 2)
    except BaseException:
        print(log.read_text()[-3000:])
        raise
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    assert await client.exists(prefix + "closed:L2")
