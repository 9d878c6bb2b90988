"""HTTP views of a worker on the Faust web server: one loan, health, progress.

``GET /loans/{loan_id}`` is routed by Faust to the worker that owns the key's partition.
``GET /metrics`` renders the worker's own registry (Faust's Prometheus sensor is not installed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from loanwatch.ledger.loan import view
from loanwatch.streams.codecs import decode_loan
from loanwatch.streams.partitioning import partition_for

if TYPE_CHECKING:
    from loanwatch.agents.app import Worker


def register_views(worker: Worker) -> None:
    app, ledger, tables = worker.app, worker.ledger, worker.tables

    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        body = generate_latest(worker.registry)
        return web.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/loans/{loan_id}")
    async def get_loan(web: View, request: Request, loan_id: str) -> Response:
        p = partition_for(loan_id, worker.settings.partitions)
        owner = _owner_url(worker, p)
        if owner is not None and owner.rstrip("/") != str(app.conf.canonical_url).rstrip("/"):
            # Another worker owns the key's partition: ask it (one hop, no loops).
            if request.query.get("forwarded"):
                return web.json({"error": "partition moved; retry"}, status=503)
            async with app.http_client.get(f"{owner}/loans/{loan_id}?forwarded=1") as resp:
                return web.bytes(
                    await resp.read(), content_type="application/json", status=resp.status
                )
        raw = tables.loans.get(loan_id)
        if raw is None:
            return web.json({"error": f"no loan {loan_id!r}"}, status=404)
        loan = decode_loan(raw)
        runtime = ledger.runtimes.get(p)
        clock = runtime.engine.clock if runtime else None
        if clock is None:
            clock = loan.closed_on or loan.evaluated_on
        if clock is None:
            return web.json({"error": "loan has no business date yet"}, status=503)
        return web.json(view(loan, clock, worker.policy).to_json())

    @app.page("/healthz")
    async def healthz(web: View, request: Request) -> Response:
        body: dict[str, Any] = {
            "status": "ok",
            "app_id": worker.settings.app_id,
            "clock": worker.settings.clock or worker.policy.clock,
            "partitions": ledger.clocks(),
            "assigned": sorted(
                f"{tp.topic}:{tp.partition}"
                for tp in app.assignor.assigned_actives()
                if tp.topic == worker.names.accounts
            ),
        }
        return web.json(body)

    @app.page("/progress")
    async def progress(web: View, request: Request) -> Response:
        return web.bytes(
            orjson.dumps({"offsets": dict(ledger.progress)}), content_type="application/json"
        )


def _owner_url(worker: Worker, partition: int) -> str | None:
    """The web URL of the worker whose loans-table partition holds ``partition``."""
    table = worker.tables.loans
    topic = table.changelog_topic.get_topic_name()
    metadata = worker.app.router.table_metadata(table.name)
    for host, topics in metadata.items():
        if partition in topics.get(topic, []):
            return str(host)
    return None
