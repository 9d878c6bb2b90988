"""HTTP views of a worker on the Faust web server: one loan, health, progress.

``GET /loans/{loan_id}``: a loan lives on its borrower's partition, which its id does not
tell; the worker looks in its own partitions, then asks the other workers of the group (one
hop, ``forwarded=1``). ``GET /healthz`` is 200 ``ok`` only when the worker owns partitions,
its topics are ready and no partition is stalled; else 503 with the reason.
``GET /metrics`` renders the worker's own registry (Faust's Prometheus sensor is not installed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from loanwatch.agents.state import load_loan
from loanwatch.ledger.loan import LoanState, view
from loanwatch.streams.codecs import peek_borrower
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
        raw = tables.loans.get(loan_id)
        p = partition_for(peek_borrower(raw), worker.settings.partitions) if raw else None
        loan = _stored(tables.loans, loan_id, worker) if raw is not None else None
        if loan is None or not _active_here(worker, p):
            # not here, or only a standby copy here: the owner answers on its own clock
            if request.query.get("forwarded"):
                return web.json({"error": f"no loan {loan_id!r} here"}, status=404)
            for peer in _peer_urls(worker):
                try:
                    async with app.http_client.get(f"{peer}/loans/{loan_id}?forwarded=1") as resp:
                        if resp.status != 404:
                            body = await resp.read()
                            return web.bytes(
                                body, content_type="application/json", status=resp.status
                            )
                except (aiohttp.ClientError, TimeoutError):
                    continue  # a peer gone since the last rebalance
            if loan is None:
                return web.json({"error": f"no loan {loan_id!r}"}, status=404)
        assert loan is not None
        runtime = ledger.runtimes.get(p) if p is not None else None
        clock = runtime.engine.clock if runtime else None
        if clock is None:
            clock = loan.closed_on or loan.evaluated_on
        if clock is None:
            return web.json({"error": "loan has no business date yet"}, status=503)
        state: dict[str, Any] = view(loan, clock, worker.policy).to_json()
        if runtime is not None and runtime.treatment is not None:  # segment, arm (issue 18)
            state.update(runtime.treatment.describe(loan_id))
        if runtime is not None and runtime.early_warning is not None:  # last score (issue 17)
            state.update(runtime.early_warning.describe(loan_id))
        return web.json(state)

    @app.page("/healthz")
    async def healthz(web: View, request: Request) -> Response:
        assigned = sorted(
            f"{tp.topic}:{tp.partition}"
            for tp in app.assignor.assigned_actives()
            if tp.topic == worker.names.accounts
        )
        problems = health_problems(worker, assigned)
        body: dict[str, Any] = {
            "status": problems[0][0] if problems else "ok",
            "reasons": [reason for _, reason in problems],
            "app_id": worker.settings.app_id,
            "clock": worker.settings.clock or worker.policy.clock,
            "partitions": ledger.clocks(),
            "assigned": assigned,
        }
        return web.json(body, status=503 if problems else 200)

    @app.page("/progress")
    async def progress(web: View, request: Request) -> Response:
        return web.bytes(
            orjson.dumps({"offsets": dict(ledger.progress)}), content_type="application/json"
        )


def _stored(table: Any, loan_id: str, worker: Worker) -> LoanState | None:
    """The loan as this worker's store holds it; None while its terms are not here (a copy
    still being restored: the owner answers)."""
    try:
        return load_loan(table, loan_id, worker.policy)
    except KeyError:
        return None


def _active_here(worker: Worker, partition: int | None) -> bool:
    """Does this worker own ``partition`` as an active (not standby) assignment?"""
    if partition is None:
        return False
    if partition in worker.ledger.runtimes:
        return True
    return any(
        tp.partition == partition and tp.topic == worker.names.accounts
        for tp in worker.app.assignor.assigned_actives()
    )


def _peer_urls(worker: Worker) -> list[str]:
    """The web URLs of the group's other workers (from the assignor's table metadata)."""
    me = str(worker.app.conf.canonical_url).rstrip("/")
    hosts = worker.app.router.table_metadata(worker.tables.loans.name)
    return [str(h).rstrip("/") for h in hosts if str(h).rstrip("/") != me]


def health_problems(worker: Worker, assigned: list[str]) -> list[tuple[str, str]]:
    """(status, reason) of what keeps this worker from being healthy; empty when ok."""
    problems: list[tuple[str, str]] = []
    if not assigned:
        problems.append(("not ready", "no input partition assigned"))
    stalled = worker.ledger.stalled
    if stalled:
        problems.append(("stalled", stalled))
    return problems
