"""HTTP views of a worker on the Faust web server: one loan, health, progress.

``GET /loans/{loan_id}``: a loan lives on its borrower's partition, which its id does not
tell; the worker looks in its own partitions, then asks the other workers of the group (one
hop, ``forwarded=1``). ``GET /loans/{loan_id}/history``: the loan's audited timeline with its
chain proof (loanwatch.audit.loan), read from Kafka and replayed by the partition's owner.
``GET /healthz`` is 200 ``ok`` only when the worker owns partitions,
its topics are ready and no partition is stalled; else 503 with the reason.
``GET /metrics`` renders the worker's own registry (Faust's Prometheus sensor is not installed).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
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
    from loanwatch.routing.config import RoutingSetup

log = logging.getLogger("loanwatch.worker")


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
            forwarded = await _forward(web, request, worker, f"/loans/{loan_id}")
            if forwarded is not None or loan is None:
                return forwarded or web.json({"error": f"no loan {loan_id!r}"}, status=404)
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

    @app.page("/loans/{loan_id}/history")
    async def get_history(web: View, request: Request, loan_id: str) -> Response:
        """The loan's audited timeline with its chain proof, checked (docs/audit.md)."""
        raw = tables.loans.get(loan_id)
        p = partition_for(peek_borrower(raw), worker.settings.partitions) if raw else None
        if p is None or not _active_here(worker, p):
            if request.query.get("forwarded"):
                return web.json({"error": f"no loan {loan_id!r} here"}, status=404)
            forwarded = await _forward(web, request, worker, f"/loans/{loan_id}/history")
            return forwarded or web.json({"error": f"no loan {loan_id!r}"}, status=404)
        if not worker.settings.audit:
            return web.json({"error": "the audit trail is off (LOANWATCH_AUDIT)"}, status=404)
        doc = await history_of(worker, loan_id, p)
        return web.bytes(orjson.dumps(doc), content_type="application/json")

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


async def _forward(web: View, request: Request, worker: Worker, path: str) -> Response | None:
    """The first other worker's answer that is not 404 (one hop); None: none has it."""
    for peer in _peer_urls(worker):
        try:
            async with worker.app.http_client.get(f"{peer}{path}?forwarded=1") as resp:
                if resp.status != 404:
                    body = await resp.read()
                    return web.bytes(body, content_type="application/json", status=resp.status)
        except (aiohttp.ClientError, TimeoutError):
            continue  # a peer gone since the last rebalance
    return None


def _early_warning(path: Path | None) -> Any:
    """The worker's early-warning file (validated at start-up), or None."""
    if path is None:
        return None
    from loanwatch.early_warning.config import load_early_warning

    return load_early_warning(path)


async def history_of(worker: Worker, loan_id: str, partition: int) -> dict[str, Any]:
    """Read the partition's chain and inputs from Kafka, replay them off the event loop,
    check the proof with the worker's own key; the document with a ``check`` object."""
    from loanwatch.audit import kafka_io, keys
    from loanwatch.audit.loan import loan_history
    from loanwatch.audit.proof import check_proof

    names, settings = worker.names, worker.settings
    bootstrap = kafka_io.bootstrap_of(settings.broker)
    chain = (await kafka_io.read_topic(bootstrap, names.audit, [partition])).get(partition, [])
    lanes = (*names.inputs(), names.commands)
    inputs = await kafka_io.read_inputs(bootstrap, lanes, partition)
    found = await asyncio.to_thread(
        loan_history,
        loan_id,
        partition,
        chain,
        inputs,
        worker.policy,
        names,
        settings.partitions,
        _routing(settings.config_dir / "routing.yaml"),
        _early_warning(settings.early_warning_file),
    )
    public = keys.load_public(settings.audit_key_file)
    check = check_proof(found.document, {keys.key_id(public): public})
    divergences = [str(d) for d in found.report.divergences]
    return found.document | {
        "check": {
            "ok": check.ok and not divergences,
            "problems": check.problems,
            "replay_divergences": divergences,
            "signed": check.signed,
            "unsigned": check.unsigned,
            "key_id": keys.key_id(public),
        }
    }


def _routing(path: Path) -> RoutingSetup | None:
    """The routing table beside the policy, if there is a valid one (for the work items)."""
    from loanwatch.routing.config import load_routing
    from loanwatch.routing.errors import ConfigError

    if not path.is_file():
        return None
    try:
        return load_routing(path)
    except ConfigError as exc:
        log.warning("history without work items: %s", exc)
        return None


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
