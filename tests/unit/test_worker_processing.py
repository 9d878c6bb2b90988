"""The worker's stages without Kafka: the ledger and borrower processors over in-memory tables.

The Faust agents only group batches, set the current event and send the outbox; everything
they decide is here, so these tests pin it: outputs, dead letters with their source, a
restart from the tables alone, and the borrower round trip through commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from loanwatch.agents.borrower import BorrowerProcessor
from loanwatch.agents.ledger import Inbound, LedgerProcessor, Outbox
from loanwatch.ledger.policy import Policy
from loanwatch.metrics.catalog import register_pipeline_metrics
from loanwatch.streams.partitioning import partition_for
from loanwatch.streams.topics import TopicNames, route_event

from .ledger_helpers import event, opened, paid, tick

N = 4
NAMES = TopicNames()


@dataclass
class Tables:
    loans: dict[str, bytes] = field(default_factory=dict)
    seen: dict[str, bytes] = field(default_factory=dict)
    meta: dict[str, bytes] = field(default_factory=dict)
    borrowers: dict[str, bytes] = field(default_factory=dict)
    orphans: dict[str, bytes] = field(default_factory=dict)


class Pipeline:
    """Drives the processors the way the agents do, with the commands fed back."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.registry = CollectorRegistry()
        self.metrics = register_pipeline_metrics(self.registry)
        self.ledger = LedgerProcessor(
            Policy(), NAMES, tables, self.metrics, partitions=N, clock_follows_events=True
        )
        self.borrowers = BorrowerProcessor(tables.borrowers, Policy().cross_default_share)
        self.alerts: list[dict[str, Any]] = []
        self.letters: list[dict[str, Any]] = []
        self.offset = 0

    def _run(self, partition: int, topic: str, key: str | None, value: bytes | None) -> None:
        self.offset += 1
        out = Outbox()
        self.ledger.ensure([partition])
        msg = Inbound(topic, partition, self.offset, 0.0, key.encode() if key else None, value)
        self.ledger.handle(msg, out)
        self.ledger.flush(partition)
        self.ledger.outputs_flushed()
        self.alerts += [orjson.loads(v) for _, v in out.alerts]
        self.letters += [orjson.loads(v) for _, v in out.dead_letters]
        for _, value_, _stamp in out.exposures:
            commands: list[tuple[str, bytes]] = []
            assert self.borrowers.handle(value_, commands) is None
            for loan_id, command in commands:
                self._run(partition_for(loan_id, N), NAMES.commands, loan_id, command)

    def send(self, obj: dict[str, Any] | bytes) -> None:
        if isinstance(obj, bytes):
            self._run(0, NAMES.payments, None, obj)
            return
        route = route_event(obj, NAMES)
        parts = range(N) if route.key is None else [partition_for(route.key, N)]
        for p in parts:
            self._run(p, route.topic, route.key, orjson.dumps(obj))


SHORT = [("2026-01-31", "100.00", "0.00", "0.00")]
LONG = [("2027-01-31", "800.00", "0.00", "0.00")]


def test_alerts_and_cross_default_through_the_borrower_round_trip() -> None:
    pipe = Pipeline(Tables())
    pipe.send(opened("S", "2026-01-01", SHORT, borrower="G"))
    pipe.send(opened("L", "2026-01-01", LONG, borrower="G"))
    pipe.send(tick("2026-05-02"))
    kinds = {(a["kind"], a["loan_id"], a["business_date"]) for a in pipe.alerts}
    assert ("overdue", "S", "2026-02-01") in kinds
    assert ("cross_default", "S", "2026-05-02") in kinds
    assert ("cross_default", "L", "2026-05-02") in kinds
    cross_l = next(a for a in pipe.alerts if a["kind"] == "cross_default" and a["loan_id"] == "L")
    assert cross_l["borrower_npl_share"] == "0.1111" and cross_l["dpd"] == 0


def test_bad_input_is_dead_lettered_with_its_source_and_bytes() -> None:
    pipe = Pipeline(Tables())
    pipe.send(b"\xff not json")
    pipe.send(paid("X", "2026-01-02", "1.00") | {"amount": 1})
    assert [d["reason"] for d in pipe.letters] == ["malformed_json", "bad_amount"]
    assert (
        pipe.letters[0]["raw_encoding"] == "base64" and pipe.letters[0]["topic"] == "loan.payments"
    )
    assert pipe.letters[1]["offset"] is not None
    assert (
        pipe.registry.get_sample_value("loanwatch_dead_letters_total", {"reason": "bad_amount"})
        == 1
    )


def test_a_restarted_worker_continues_from_the_tables_alone() -> None:
    tables = Tables()
    first = Pipeline(tables)
    first.send(opened("A", "2026-01-01", SHORT))
    pay = paid("A", "2026-01-10", "40.00")
    first.send(pay)
    second = Pipeline(tables)  # new process: nothing in memory but the tables
    second.send(pay)  # a re-delivery after the crash
    second.send(tick("2026-02-02"))
    assert [a["kind"] for a in second.alerts] == ["overdue", "classification_changed"]
    assert second.alerts[0]["overdue_amount"] == "60.00"
    assert (
        second.registry.get_sample_value(
            "loanwatch_events_total",
            {"topic": "loan.payments", "type": "payment_received", "result": "duplicate"},
        )
        == 1
    )


def test_orphans_and_the_clock_survive_a_restart() -> None:
    tables = Tables()
    Pipeline(tables).send(paid("A", "2026-01-03", "100.00"))
    later = Pipeline(tables)
    later.send(event("contact_logged", "Z", "2026-01-04", channel="sms", outcome="sent"))
    later.send(opened("A", "2026-01-05", SHORT))
    later.send(tick("2026-03-01"))
    assert later.alerts == []  # the payment parked before the restart paid the loan
    assert [(d["reason"], d["event"]["loan_id"]) for d in later.letters] == [("unknown_loan", "Z")]
    view = next(v for v in later.ledger.views() if v.loan_id == "A")
    assert view.outstanding_principal == 0


def test_orphans_are_one_small_record_per_loan_and_expire_after_a_restart() -> None:
    tables = Tables()
    pipe = Pipeline(tables)
    for i in range(50):
        pipe.send(paid(f"O{i}", "2026-01-03", "1.00"))
    assert sorted(tables.orphans) == sorted(f"O{i}" for i in range(50))
    assert all(len(v) < 1000 for v in tables.orphans.values())
    assert all(len(v) < 200 for v in tables.meta.values())  # the clock only
    later = Pipeline(tables)
    later.send(tick("2026-01-11"))
    assert [d["reason"] for d in later.letters] == ["unknown_loan"] * 50
    assert tables.orphans == {}


def test_portfolio_views_cover_every_loan_after_a_restart() -> None:
    tables = Tables()
    pipe = Pipeline(tables)
    for i in range(12):
        pipe.send(opened(f"L{i}", "2026-01-01", SHORT, borrower=f"B{i}"))
    restarted = Pipeline(tables)
    restarted.ledger.ensure(range(N))
    assert sorted(v.loan_id for v in restarted.ledger.views()) == sorted(f"L{i}" for i in range(12))


def test_kept_promises_are_counted_and_closed_loans_leave_the_active_views() -> None:
    pipe = Pipeline(Tables())
    pipe.send(opened("A", "2026-01-01", SHORT))
    pipe.send(tick("2026-02-05"))
    promise = event(
        "promise_to_pay",
        "A",
        "2026-02-05",
        promise_id="P",
        amount="100.00",
        promised_date="2026-02-10",
    )
    pipe.send(promise)
    pipe.send(paid("A", "2026-02-08", "100.00"))
    pipe.send(tick("2026-02-12"))
    kept = pipe.registry.get_sample_value(
        "loanwatch_promises_total", {"outcome": "kept", "product": "consumer"}
    )
    assert kept == 1
    pipe.send(event("loan_closed", "A", "2026-02-12", reason="repaid"))
    assert [v.status for v in pipe.ledger.views() if v.loan_id == "A"] == ["closed"]
