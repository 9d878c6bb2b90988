"""`clock: wall`: the business day follows the wall clock in the portfolio timezone, and a
worker catches up on every missed day (a loan due in the past is aged to today)."""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from loanwatch.ledger.policy import Policy
from loanwatch.streams.producer import ensure_topics
from loanwatch.streams.topics import TopicNames

from .live import PARTITIONS, WorkerProcess, loan_states, read_topic, send_events, wait_ready


async def test_wall_clock_ages_loans_to_today(
    kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    prefix = unique_name("lwwall") + "."
    names = TopicNames().with_prefix(prefix)
    await ensure_topics(kafka_bootstrap, names, PARTITIONS)
    worker = WorkerProcess(
        app_id=prefix.rstrip("."),
        prefix=prefix,
        data_dir=tmp_path / "w",
        extra_args=("--clock", "wall"),
        extra_env={"LOANWATCH_WALL_TICK_SECONDS": "1"},
    )
    today = datetime.now(Policy().tz).date()
    opened_on, due = today - timedelta(days=40), today - timedelta(days=10)
    loan = {
        "event_id": "w-1",
        "type": "loan_opened",
        "occurred_at": f"{opened_on}T09:00:00+08:00",
        "loan_id": "WALL",
        "borrower_id": "B",
        "product": "consumer",
        "region": "east",
        "currency": "CNY",
        "principal": "100.00",
        "installments": [
            {"seq": 1, "due_date": due.isoformat(), "principal": "100.00", "interest": "0.00"}
        ],
    }
    worker.start()
    try:
        await wait_ready([worker])
        await send_events(kafka_bootstrap, names, [loan])
        state: dict[str, Any] = {}
        for _ in range(120):
            await asyncio.sleep(0.5)
            try:
                state = (await loan_states([worker], ["WALL"]))[0]
            except AssertionError:
                continue
            if state.get("as_of") == today.isoformat():
                break
        assert state.get("as_of") == today.isoformat(), state
        assert state["dpd"] == 10 and state["bucket"] == "M1"
        alerts = await read_topic(kafka_bootstrap, names.alerts)
        overdue = [a for a in alerts if a["kind"] == "overdue"]
        assert [a["business_date"] for a in overdue] == [(due + timedelta(days=1)).isoformat()]
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        worker.kill(signal.SIGTERM)
