"""A tiny Faust app for the integration smoke test: one agent, one table, one output topic.

Run as a real worker:  python smoke_app.py worker -l info --web-port PORT
Configured only by the environment (set by the test): SMOKE_APP_ID, SMOKE_BROKER,
SMOKE_IN_TOPIC, SMOKE_OUT_TOPIC. Each input record {"key": str} increments the table count
of its key; the agent then forwards {"key", "count"} to the output topic.
"""

from __future__ import annotations

import os
from typing import Any

import faust


def create_app() -> tuple[faust.App, Any]:
    app = faust.App(
        os.environ["SMOKE_APP_ID"],
        broker=f"kafka://{os.environ['SMOKE_BROKER']}",
        store="memory://",
        topic_partitions=1,
        web_enabled=True,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        web_tables_enabled=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
    )
    source = app.topic(os.environ["SMOKE_IN_TOPIC"], value_serializer="json", partitions=1)
    sink = app.topic(os.environ["SMOKE_OUT_TOPIC"], value_serializer="json", partitions=1)
    counts = app.Table("smoke-counts", default=int, partitions=1)

    @app.agent(source, concurrency=1)
    async def count(stream: faust.StreamT[dict[str, Any]]) -> None:
        async for event in stream:
            key = str(event["key"])
            counts[key] += 1
            await sink.send(key=key, value={"key": key, "count": counts[key]})

    return app, count


app, _agent = create_app()

if __name__ == "__main__":
    app.main()
