"""``audit loan`` / ``GET /loans/{id}/history``: one loan's history with its chain proof.

The loan's partition chain is replayed through the worker's own ledger processor
(:func:`loanwatch.audit.replay.replay_partition`: every input's hash, state hash and alert id
is checked on the way, so the history is the one the live worker had); after each input the
loan is looked at, and the inputs that concerned it become the timeline's steps
(:mod:`loanwatch.audit.history`) and the proof's members (:mod:`loanwatch.audit.proof`).

No I/O here: the chain and the inputs are handed in (Kafka or the archive, by the caller).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from loanwatch.agents.ledger import LedgerProcessor, Outbox
from loanwatch.audit.history import Observation, build_timeline, class_floors, tracked
from loanwatch.audit.kafka_io import Stored
from loanwatch.audit.proof import make_proof
from loanwatch.audit.replay import Inputs, ReplayReport, replay_partition
from loanwatch.early_warning.config import EarlyWarningPolicy
from loanwatch.ledger.loan import view
from loanwatch.ledger.policy import Policy
from loanwatch.routing.config import RoutingSetup
from loanwatch.streams.topics import TopicNames

NO_WORK_ITEMS = {
    "available": False,
    "why": "no routing table given: work items are derived from the alerts with the router's "
    "routes (audit loan --routing FILE; the worker: routing.yaml in its config folder)",
}


class LoanNotFound(LookupError):
    """No audit record names this loan: check the id and the topic prefix or archive."""


def chain_of(stored: Sequence[Stored]) -> tuple[list[bytes], list[dict[str, Any]]]:
    """A partition's record bytes and decoded records by seq (retried copies dropped)."""
    raws: dict[int, bytes] = {}
    for item in stored:
        if item.value is not None:
            raws.setdefault(int(orjson.loads(item.value)["seq"]), item.value)
    ordered = [raws[k] for k in sorted(raws)]
    return ordered, [orjson.loads(r) for r in ordered]


def partition_of(chains: Mapping[int, Sequence[Stored]], loan_id: str) -> int:
    """The partition whose chain holds the loan: its records with a state hash (a record
    naming the loan elsewhere, misplaced and dead-lettered, has none); else any naming it."""
    needle = orjson.dumps(loan_id)
    named: int | None = None
    for p in sorted(chains):
        for item in chains[p]:
            if item.value and needle in item.value:
                rec = orjson.loads(item.value)
                if rec.get("kind") == "input" and rec.get("loan_id") == loan_id:
                    if rec.get("state_sha256") is not None:
                        return p
                    named = p if named is None else named
    if named is None:
        raise LoanNotFound(f"no audit record names loan {loan_id!r}")
    return named


@dataclass(frozen=True, slots=True)
class LoanHistory:
    document: dict[str, Any]  # the timeline with its "proof"
    report: ReplayReport  # the replay's check of the chain up to where it stopped


def loan_history(
    loan_id: str,
    partition: int,
    stored: Sequence[Stored],
    inputs: Inputs,
    policy: Policy,
    names: TopicNames,
    partitions: int,
    routing: RoutingSetup | None = None,
    early_warning: EarlyWarningPolicy | None = None,
) -> LoanHistory:
    """Replay ``partition``'s chain and gather the loan's timeline and proof; with
    ``routing``, the work items its alerts open (:mod:`loanwatch.audit.workitems`); with
    ``early_warning``, the workers' early-warning file (its alert ids are in the chain)."""
    raws, records = chain_of(stored)
    observations: list[Observation] = []
    last: dict[str, Any] = {}
    final: dict[str, Any] | None = None

    def look(rec: dict[str, Any], out: Outbox, processor: LedgerProcessor) -> None:
        nonlocal last, final
        engine = processor.runtimes[partition].engine
        loan = engine.loans.get(loan_id)
        after = floors = None
        if loan is not None and engine.clock is not None:
            after = view(loan, engine.clock, policy).to_json()
            floors = class_floors(loan, engine.clock, policy)
            final = after
        mine = [d for d in (orjson.loads(v) for _, v in out.alerts) if d.get("loan_id") == loan_id]
        now = tracked(after)
        if rec.get("loan_id") == loan_id or mine or (now and now != last):
            stored_input = inputs.get((str(rec["topic"]), int(rec["offset"])))
            value = stored_input.value if stored_input is not None else None
            observations.append(Observation(rec, value, after, floors or {}, mine))
        if now:
            last = now

    report = ReplayReport()
    replay_partition(
        partition,
        records,
        inputs,
        policy,
        names,
        partitions,
        report,
        on_record=look,
        early_warning=early_warning,
    )
    document = build_timeline(loan_id, partition, observations, final)
    document["proof"] = make_proof(partition, raws, [int(o.record["seq"]) for o in observations])
    document["work_items"] = NO_WORK_ITEMS
    if routing is not None:
        from loanwatch.audit.workitems import derive_work_items

        state = document["state"] or {}
        closed = state.get("as_of") if state.get("status", "active") != "active" else None
        document["work_items"] = {
            "available": True,
            "derived": "from the alerts above with the router's routes and episode rules; "
            "claims, acknowledgements and escalations are in the router's store",
            "items": derive_work_items(document["alerts"], routing, closed),
        }
    return LoanHistory(document, report)
