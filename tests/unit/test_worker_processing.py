"""The worker's ledger processor without Kafka, over in-memory tables.

The Faust agents only group batches, set the current event and send the outbox; everything
they decide is here, so these tests pin it: outputs, dead letters with their source, a
restart from the tables alone, cross-default inside a borrower's partition, misplaced records.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from loanwatch.agents.ledger import Inbound, LedgerProcessor, Outbox
from loanwatch.ledger.policy import Policy
from loanwatch.metrics.catalog import register_pipeline_metrics
from loanwatch.streams.partitioning import learn, owner_key, partition_for
from loanwatch.streams.topics import TopicNames, route_event

from .ledger_helpers import event, opened, paid, tick

N = 4
NAMES = TopicNames()


@dataclass
class Tables:
    loans: dict[str, bytes] = field(default_factory=dict)
    seen: dict[str, bytes] = field(default_factory=dict)
    meta: dict[str, bytes] = field(default_factory=dict)
    orphans: dict[str, bytes] = field(default_factory=dict)


class Pipeline:
    """Drives the processor the way the agent does, records placed as our producer places them."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.registry = CollectorRegistry()
        self.metrics = register_pipeline_metrics(self.registry)
        self.ledger = LedgerProcessor(
            Policy(), NAMES, tables, self.metrics, partitions=N, clock_follows_events=True
        )
        self.alerts: list[dict[str, Any]] = []
        self.letters: list[dict[str, Any]] = []
        self.status: list[dict[str, Any]] = []
        self.directory: dict[str, str] = {}
        self.offset = 0

    # Offsets (and timestamps) go on across restarts, as the topics' do.
    _clock = itertools.count(1)

    def _run(
        self,
        partition: int,
        topic: str,
        key: str | None,
        value: bytes | None,
        offset: int | None = None,
    ) -> None:
        self.offset = offset if offset is not None else next(Pipeline._clock)
        out = Outbox()
        self.ledger.ensure([partition])
        msg = Inbound(
            topic, partition, self.offset, float(self.offset), key.encode() if key else None, value
        )
        self.ledger.handle(msg, out)
        self.ledger.flush(partition)
        self.ledger.outputs_flushed()
        self.alerts += [orjson.loads(v) for _, v in out.alerts]
        self.letters += [orjson.loads(v) for _, v in out.dead_letters]
        self.status += [orjson.loads(v) for _, v in out.status]

    def resend(self, obj: dict[str, Any], offset: int) -> None:
        """The same record again (after a crash, before its offset was committed)."""
        route = route_event(obj, NAMES)
        owner = owner_key(obj, self.directory) or route.key
        assert owner is not None
        self._run(partition_for(owner, N), route.topic, route.key, orjson.dumps(obj), offset)

    def send(self, obj: dict[str, Any] | bytes, partition: int | None = None) -> None:
        if isinstance(obj, bytes):
            self._run(partition or 0, NAMES.payments, None, obj)
            return
        route = route_event(obj, NAMES)
        learn(obj, self.directory)
        owner = owner_key(obj, self.directory) or route.key
        parts = range(N) if owner is None else [partition_for(owner, N)]
        for p in parts if partition is None else [partition]:
            self._run(p, route.topic, route.key, orjson.dumps(obj))


SHORT = [("2026-01-31", "100.00", "0.00", "0.00")]
LONG = [("2027-01-31", "800.00", "0.00", "0.00")]


def test_alerts_and_cross_default_inside_the_borrowers_partition() -> None:
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
    # the same step as the cause, as in replay: the floor and its own class together
    cross_s = next(a for a in pipe.alerts if a["kind"] == "cross_default" and a["loan_id"] == "S")
    assert cross_s["classification"] == "substandard"


def test_the_borrower_book_is_rebuilt_from_the_loans_after_a_restart() -> None:
    tables = Tables()
    first = Pipeline(tables)
    first.send(opened("S", "2026-01-01", SHORT, borrower="G"))
    first.send(opened("L", "2026-01-01", LONG, borrower="G"))
    second = Pipeline(tables)
    second.directory = dict(first.directory)
    second.send(tick("2026-05-02"))
    assert {(a["kind"], a["loan_id"]) for a in second.alerts if "cross" in a["kind"]} == {
        ("cross_default", "S"),
        ("cross_default", "L"),
    }


def test_a_record_naming_a_borrower_of_another_partition_is_wrong_partition() -> None:
    pipe = Pipeline(Tables())
    home = partition_for("G", N)
    away = (home + 1) % N
    pipe.send(opened("S", "2026-01-01", SHORT, borrower="G"), partition=away)
    signal = event("risk_signal", None, "2026-01-02", borrower_id="G", signal="x", severity="high")
    pipe.send(signal, partition=away)
    assert [d["reason"] for d in pipe.letters] == ["wrong_partition"] * 2
    assert pipe.letters[0]["partition"] == away and "partition" in pipe.letters[0]["message"]
    assert pipe.ledger.views() == []
    # the same opening on its borrower's partition is applied
    pipe.send(opened("S", "2026-01-01", SHORT, borrower="G"))
    assert [v.loan_id for v in pipe.ledger.views()] == ["S"]
    assert (
        pipe.registry.get_sample_value(
            "loanwatch_dead_letters_total", {"reason": "wrong_partition"}
        )
        == 2
    )


def test_an_accepted_closure_is_published_on_the_status_topic_a_rejected_one_is_not() -> None:
    pipe = Pipeline(Tables())
    pipe.send(opened("A", "2026-01-01", SHORT, borrower="G"))
    bad = event("loan_closed", "A", "2026-01-02", reason="stolen")
    pipe.send(bad)
    assert pipe.status == [] and [d["reason"] for d in pipe.letters] != []
    good = event("loan_closed", "A", "2026-01-03", reason="sold")
    pipe.send(good)
    assert pipe.status == [
        {
            "kind": "loan_closed",
            "event_id": good["event_id"],
            "loan_id": "A",
            "borrower_id": "G",
            "status": "sold",
            "reason": "sold",
            "business_date": "2026-01-03",
        }
    ]
    pipe.send(good)  # a duplicate delivery publishes nothing more
    assert len(pipe.status) == 1


def test_an_expired_orphan_keeps_the_source_of_its_record() -> None:
    pipe = Pipeline(Tables())
    pipe.send(paid("Z", "2026-01-03", "1.00"))
    parked_at = pipe.offset
    pipe.send(tick("2026-01-20"))
    (letter,) = pipe.letters
    assert letter["reason"] == "unknown_loan"
    assert (letter["topic"], letter["partition"], letter["offset"]) == (
        NAMES.payments,
        partition_for("Z", N),
        parked_at,
    )


def test_an_oversized_input_makes_a_bounded_dead_letter_with_its_length_and_digest() -> None:
    import hashlib

    pipe = Pipeline(Tables())
    huge = b'{"event_id":"h","type":"payment_received","detail":"' + b"x" * 2_000_000 + b'"}'
    pipe.send(huge)
    pipe.send(b"[" * 100_000)  # deep nesting
    assert len(pipe.letters) == 2
    first = pipe.letters[0]
    assert first["raw_length"] == len(huge) and first["raw_truncated"] is True
    assert first["raw_sha256"] == hashlib.sha256(huge).hexdigest()
    assert len(orjson.dumps(first)) < 64 * 1024
    assert pipe.letters[1]["reason"] == "malformed_json"


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


def test_a_restart_from_a_state_cut_between_two_loans_of_a_step_repairs_the_floor() -> None:
    """A crash stored the NPL loan's step but not its sibling's floor: the restart sets it."""
    from loanwatch.agents.state import load_loan
    from loanwatch.ledger.loan import set_cross_default
    from loanwatch.streams.codecs import encode_loan

    def stored(loan_id: str) -> Any:  # the hot record read back with its terms
        loan = load_loan(tables.loans, loan_id)
        assert loan is not None
        return loan

    tables = Tables()
    first = Pipeline(tables)
    first.send(opened("S", "2026-01-01", SHORT, borrower="G"))
    first.send(opened("L", "2026-01-01", LONG, borrower="G"))
    first.send(tick("2026-05-02"))
    assert stored("L").cross_default
    tables.loans["L"] = encode_loan(set_cross_default(stored("L"), False))
    second = Pipeline(tables)
    second.directory = dict(first.directory)
    second.ledger.ensure(range(N))
    view = next(v for v in second.ledger.views() if v.loan_id == "L")
    assert view.cross_default and view.classification == "substandard"
    second.send(tick("2026-05-03"))  # the repair is stored with the next flush, silently
    assert stored("L").cross_default
    assert not [a for a in second.alerts if a["kind"] == "cross_default"]


def test_an_orphan_kept_parked_by_a_crash_after_its_loan_opened_is_not_dead_lettered() -> None:
    from loanwatch.agents.state import encode_parked
    from loanwatch.ledger.orphans import Parked
    from loanwatch.ledger.parse import parse_event
    from loanwatch.ledger.records import LoanEvent

    tables = Tables()
    pipe = Pipeline(tables)
    pay = paid("A", "2026-01-03", "10.00")
    pipe.send(pay)
    pipe.send(opened("A", "2026-01-04", SHORT))
    assert "A" not in tables.orphans
    event = parse_event(pay, Policy().tz)
    assert isinstance(event, LoanEvent)
    p = partition_for("B1", N)
    tables.orphans["A"] = encode_parked([Parked(pay, event, date(2026, 1, 3))], p)  # the crash
    later = Pipeline(tables)
    later.directory = dict(pipe.directory)
    later.send(tick("2026-01-20"))
    assert [d["reason"] for d in later.letters] == []


def test_a_record_read_again_after_a_crash_does_nothing_where_its_effect_is_stored() -> None:
    """The store is ahead of the committed offsets after a crash. An orphan payment expired
    (unknown_loan) before its loan opened; read again once the loan exists, its id proves
    nothing (it was never applied), the loan's stored position does."""
    tables = Tables()
    first = Pipeline(tables)
    first.directory["A"] = "B1"
    early = paid("A", "2026-01-03", "100.00")
    first.send(early)
    early_offset = first.offset
    first.send(tick("2026-01-12"))  # the orphan expires
    first.send(opened("A", "2026-01-13", SHORT))
    assert [d["reason"] for d in first.letters] == ["unknown_loan"]
    # The crash cut the last phase: the loans are stored, the partition's clock record is not
    # (it would say "everything through the opening is stored" and skip the record anyway).
    tables.meta.clear()
    second = Pipeline(tables)  # restarted: the offsets committed were older than the store
    second.directory = dict(first.directory)
    second.resend(early, early_offset)
    assert second.letters == [] and second.alerts == []
    from loanwatch.agents.state import load_loan

    loan = load_loan(tables.loans, "A")
    assert loan is not None and loan.outstanding_principal == 10000  # unpaid, as in replay
    assert (
        second.registry.get_sample_value(
            "loanwatch_events_total",
            {"topic": "loan.payments", "type": "payment_received", "result": "duplicate"},
        )
        == 1
    )


def test_product_and_region_labels_of_the_counters_are_bounded() -> None:
    pipe = Pipeline(Tables())
    pipe.send(opened("W", "2026-01-01", SHORT, product="weird-1", region="mars"))
    pipe.send(paid("W", "2026-01-02", "10.00"))
    labels = {"product": "other", "region": "other"}
    assert pipe.registry.get_sample_value("loanwatch_payments_total", labels) == 1
    assert (
        pipe.registry.get_sample_value(
            "loanwatch_payments_total", {"product": "weird-1", "region": "mars"}
        )
        is None
    )
