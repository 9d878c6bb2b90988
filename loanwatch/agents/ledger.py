"""The ledger stage: input messages of one partition through its engine, outputs collected.

Framework-free on purpose: the Faust agent (``app.py``) groups a batch by partition, sets the
current event, calls :meth:`LedgerProcessor.handle` per message and :meth:`flush` per
partition, then sends the outbox and acks. Rules stay in the engine; this only translates.

A partition holds whole borrowers (:mod:`loanwatch.streams.partitioning`), so its engine is
replay's engine with the same in-memory borrower book: cross-default and borrower-keyed
signals are decided within the step, as replay decides them. A record that names a borrower
of another partition is dead-lettered ``wrong_partition``: processed here it would split the
borrower's loans between two engines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson

from loanwatch.agents import early_warning_store as ew_store
from loanwatch.agents.messages import dead_letter_record
from loanwatch.agents.runtime import PartitionRuntime
from loanwatch.agents.state import TableSink, TableSinks, decode_stored, is_loan_key
from loanwatch.agents.treatment_store import scan_states
from loanwatch.early_warning.config import EarlyWarningPolicy
from loanwatch.ledger.alerts import Alert
from loanwatch.ledger.engine import DeadLetter, Output
from loanwatch.ledger.money import parse_money
from loanwatch.ledger.parse import EVENT_TYPES, business_date_of, decode
from loanwatch.ledger.policy import Policy
from loanwatch.ledger.records import Rejection
from loanwatch.ledger.view import LoanView
from loanwatch.metrics.catalog import PipelineMetrics
from loanwatch.metrics.early_warning import EarlyWarningCounters
from loanwatch.metrics.flows import PartitionFlows
from loanwatch.metrics.labels import DEFAULT_LABELS, UNKNOWN, LabelAllowList
from loanwatch.metrics.treatment import TreatmentCounters
from loanwatch.streams.codecs import peek_borrower
from loanwatch.streams.partitioning import partition_for
from loanwatch.streams.topics import TopicNames
from loanwatch.treatment.model import Strategies


@dataclass(frozen=True, slots=True)
class Inbound:
    """What the ledger needs of one Kafka message."""

    topic: str
    partition: int
    offset: int
    timestamp: float  # seconds
    key: bytes | None
    value: bytes | None


@dataclass(slots=True)
class Outbox:
    alerts: list[tuple[str, bytes]] = field(default_factory=list)
    dead_letters: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    # the ledger's verdicts on a loan's lifecycle (accepted closures), keyed by loan id
    status: list[tuple[str, bytes]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.alerts) + len(self.dead_letters) + len(self.status)


class LedgerProcessor:
    def __init__(
        self,
        policy: Policy,
        names: TopicNames,
        tables: Any,
        metrics: PipelineMetrics,
        *,
        partitions: int,
        clock_follows_events: bool,
        loan_cache: int = 2000,
        sinks: TableSinks | None = None,
        labels: LabelAllowList = DEFAULT_LABELS,
        strategies: Strategies | None = None,
        treatment_sink: TableSink | None = None,
        treatment_counters: TreatmentCounters | None = None,
        early_warning: EarlyWarningPolicy | None = None,
        early_warning_sink: TableSink | None = None,
        early_warning_counters: EarlyWarningCounters | None = None,
    ) -> None:
        self.policy = policy
        # Early warning (issue 17): off unless early_warning.yaml is configured.
        self.early_warning = early_warning
        self.early_warning_sink = early_warning_sink
        self.early_warning_counters = early_warning_counters
        # Classified treatment (issue 18): off unless strategies are configured.
        self.strategies = strategies
        self.treatment_sink = treatment_sink
        self.treatment_counters = treatment_counters
        self.labels = labels  # product and region label values, bounded (config/metrics.yaml)
        self.sinks = sinks if sinks is not None else TableSinks.direct(tables)
        self.names = names
        self.tables = tables
        self.metrics = metrics
        self.partitions = partitions
        self.clock_follows_events = clock_follows_events
        self.loan_cache = loan_cache
        self.runtimes: dict[int, PartitionRuntime] = {}
        self.stalled = ""  # why processing stands still (empty: it does not), for /healthz
        # the aligner's tie-break order: part of a record's merge position
        self._rank = {t: i for i, t in enumerate((*names.inputs(), names.commands))}
        self.progress: dict[str, int] = {}  # published after the outputs are flushed
        self._handled: dict[str, int] = {}
        # Labelled series by (metric, label values): ``labels()`` validates and locks per call.
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    # --- partitions ---

    def ensure(
        self, partitions: Iterable[int], before_restore: Callable[[int], None] | None = None
    ) -> None:
        """Build the runtimes of partitions seen for the first time (one scan of the table).

        A loan lives on its borrower's partition; a parked event on the one it came in on.
        ``before_restore(p)`` (live: point Faust's current event at partition ``p``) runs
        before each restore: a table read goes to the current event's partition, and a stale
        one from another partition would read that partition's clock record, or none.
        """
        missing = {p for p in partitions if p not in self.runtimes}
        if not missing:
            return
        loans: dict[int, list[tuple[str, bytes]]] = {p: [] for p in missing}
        for key, raw in self.tables.loans.items():
            if raw is None or not is_loan_key(key):
                continue  # a loan's terms, history entries and applied ids are read with it
            p = partition_for(peek_borrower(raw), self.partitions)
            if p in missing:
                loans[p].append((key, raw))
        orphans: dict[int, list[tuple[str, list[date]]]] = {p: [] for p in missing}
        for key, raw in self.tables.orphans.items():
            if raw is None:
                continue
            items = orjson.loads(raw)
            if not items:
                continue
            p = items[0].get("partition")
            p = p if isinstance(p, int) else partition_for(key, self.partitions)
            if p in missing:
                orphans[p].append((key, [date.fromisoformat(i["parked_on"]) for i in items]))
        treatment = (
            scan_states(self.tables.meta, self.partitions, missing)
            if self.strategies is not None
            else {}
        )
        warning = (
            ew_store.scan_states(self.tables.meta, self.partitions, missing)
            if self.early_warning is not None
            else {}
        )
        for p in sorted(missing):
            runtime = PartitionRuntime(
                p,
                self.policy,
                self.tables,
                clock_follows_events=self.clock_follows_events,
                loan_cache=self.loan_cache,
                sinks=self.sinks,
                strategies=self.strategies,
                treatment_sink=self.treatment_sink,
                early_warning=self.early_warning,
                early_warning_sink=self.early_warning_sink,
            )
            if before_restore is not None:
                before_restore(p)
            table, policy = self.tables.loans, self.policy
            decoded = [decode_stored(table, key, raw, policy) for key, raw in loans[p]]
            runtime.restore(decoded, orphans[p], treatment.get(p, ()), warning.get(p, ()))
            self.runtimes[p] = runtime

    def revoke(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.runtimes.pop(p, None)

    def views(self) -> list[LoanView]:
        """Latest view of every loan in the partitions this worker owns now."""
        return [v for rt in list(self.runtimes.values()) for v in list(rt.engine.views.values())]

    def flows(self) -> list[PartitionFlows]:
        """Each owned partition's clock and business-day flows (metrics.flows)."""
        return [PartitionFlows(rt.engine.clock, rt.flows) for rt in list(self.runtimes.values())]

    def clocks(self) -> dict[int, str | None]:
        return {
            p: rt.engine.clock.isoformat() if rt.engine.clock else None
            for p, rt in sorted(self.runtimes.items())
        }

    # --- messages ---

    def handle(self, msg: Inbound, out: Outbox) -> None:
        runtime = self.runtimes[msg.partition]
        started = time.monotonic()
        if msg.topic == self.names.commands:
            kind = "command"
            try:
                result = self._command(runtime, msg)
            except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
                # never crash on a bad internal record
                letter = DeadLetter(
                    "bad_command",
                    f"internal command not understood: {exc!r}",
                    (msg.value or b"").decode("utf-8", "replace"),
                )
                self._dead_letter(letter, msg, out)
                result = Output(result="rejected")
        else:
            result, kind = self._event(runtime, msg, out)
        self._child(self.metrics.events, msg.topic, kind, result.result).inc()
        tracker = runtime.early_warning
        if tracker is not None and tracker.scores:
            scores, tracker.scores = tracker.scores, []
            if self.early_warning_counters is not None:
                self.early_warning_counters.scored(scores)
        for alert in result.alerts:
            self._emit_alert(alert, out)
            self._flows(runtime, alert)
        for loan_id in result.kept_promises:
            seen = runtime.engine.views.get(loan_id)
            product = self.labels.product(seen.product) if seen else UNKNOWN
            self._child(self.metrics.promises, "kept", product).inc()
        for letter in result.rejects:
            self._dead_letter(letter, None, out)
        if result.alerts:
            self.metrics.alert_latency.observe(time.monotonic() - started)
        self._handled[f"{msg.topic}:{msg.partition}"] = msg.offset

    def commit_state(self) -> None:
        """Apply the queued table writes: call once the batch's outputs and changelog are acked."""
        sinks = self.sinks
        for sink in (sinks.loans, sinks.seen, sinks.orphans, sinks.meta):
            sink.commit()
        if self.treatment_sink is not None:
            self.treatment_sink.commit()
        if self.early_warning_sink is not None:
            self.early_warning_sink.commit()

    def outputs_flushed(self) -> None:
        """The batch's outputs are acknowledged by Kafka: its offsets count as processed."""
        self.progress.update(self._handled)
        self._handled.clear()

    def flush(self, partition: int) -> int:
        """Persist one partition's changes (its exposure changes left with each message)."""
        runtime = self.runtimes[partition]
        written = runtime.flush()
        clocks = [rt.engine.clock for rt in self.runtimes.values() if rt.engine.clock is not None]
        if clocks:  # the latest business date among the owned partitions (they move together)
            midnight = datetime.combine(max(clocks), datetime.min.time(), self.policy.tz)
            self.metrics.business_date.set(midnight.timestamp())
        return written

    def _event(self, runtime: PartitionRuntime, msg: Inbound, out: Outbox) -> tuple[Output, str]:
        raw = msg.value or b""
        obj = decode(raw)
        if isinstance(obj, Rejection):
            letter = DeadLetter(obj.reason, obj.message, raw.decode("utf-8", "replace"))
            self._dead_letter(letter, msg, out)
            return Output(result="rejected"), "malformed"
        kind = obj.get("type")
        kind = kind if isinstance(kind, str) and kind in EVENT_TYPES else "unknown"  # bounded label
        misplaced = self._misplaced(runtime, obj, msg.partition)
        if misplaced is not None:
            self._dead_letter(misplaced, msg, out)
            return Output(result="rejected"), kind
        stamp = round((msg.timestamp or 0.0) * 1000)  # a record without a timestamp: first
        position = (stamp, self._rank.get(msg.topic, 9), msg.offset)
        clock, before = self._before_day(runtime, business_date_of(obj, self.policy.tz))
        result = runtime.engine.process(
            obj, source=(msg.topic, msg.partition, msg.offset), position=position
        )
        self._day_started(runtime, clock, before)
        if runtime.treatment is not None:  # the treatment layer's one hook (issue 18)
            runtime.treatment.observe(runtime.engine, obj, result)
        if runtime.early_warning is not None:  # after treatment, as replay runs them (issue 17)
            runtime.early_warning.observe(runtime.engine, obj, result)
        own = [r for r in result.rejects if r.event is obj]
        for letter in own:
            self._dead_letter(letter, msg, out)
        result.rejects = [r for r in result.rejects if r.event is not obj]
        if result.result == "applied":
            self._count_applied(runtime, kind, obj)
            if kind in ("loan_closed", "loan_opened"):  # an opening may apply a parked closure
                self._publish_status(runtime, obj, out)
        return result, kind

    def _misplaced(
        self, runtime: PartitionRuntime, obj: dict[str, Any], p: int
    ) -> DeadLetter | None:
        """A record naming a borrower of another partition (another partitioner upstream)."""
        borrower = obj.get("borrower_id")
        if not isinstance(borrower, str) or not borrower:
            return None
        kind, loan_id = obj.get("type"), obj.get("loan_id")
        if kind == "loan_opened":
            if isinstance(loan_id, str) and runtime.engine.loans.get(loan_id) is not None:
                return None  # the engine says duplicate_loan
        elif kind != "risk_signal" or loan_id:
            return None
        want = partition_for(borrower, self.partitions)
        if want == p:
            return None
        return DeadLetter(
            "wrong_partition",
            f"borrower {borrower!r} belongs to partition {want}, not {p}: publish by the "
            "borrower's partition (docs/design.md, Ordering)",
            obj,
        )

    def _publish_status(self, runtime: PartitionRuntime, obj: dict[str, Any], out: Outbox) -> None:
        loan_id = obj.get("loan_id")
        loan = runtime.engine.loans.get(loan_id) if isinstance(loan_id, str) else None
        if loan is None or loan.active or runtime.engine.clock is None:
            return
        closing = obj if obj.get("type") == "loan_closed" else None
        body = {
            "kind": "loan_closed",
            "event_id": closing.get("event_id") if closing else None,
            "loan_id": loan.loan_id,
            "borrower_id": loan.borrower_id,
            "status": loan.status,
            "reason": closing.get("reason") if closing else loan.status,
            "business_date": (loan.closed_on or runtime.engine.clock).isoformat(),
        }
        out.status.append((loan.loan_id, orjson.dumps(body)))

    def _command(self, runtime: PartitionRuntime, msg: Inbound) -> Output:
        """An internal record: the wall clock's tick for this partition."""
        body = orjson.loads(msg.value or b"{}")
        if not isinstance(body, dict) or body.get("kind") != "clock_tick":
            raise ValueError(f"unknown internal record {body!r}")
        day = date.fromisoformat(body["business_date"])
        clock, before = self._before_day(runtime, day)
        result = runtime.engine.advance(day)
        self._day_started(runtime, clock, before)
        if runtime.treatment is not None:
            runtime.treatment.observe(runtime.engine, None, result)
        if runtime.early_warning is not None:
            runtime.early_warning.observe(runtime.engine, None, result)
        return result

    # --- business-day flows (metrics.flows: roll and cure rates by business day) ---

    @staticmethod
    def _before_day(
        runtime: PartitionRuntime, day: date | None
    ) -> tuple[date | None, list[str] | None]:
        """The clock, and (only when ``day`` may begin a new business day) the buckets of the
        partition's active loans before the record ages them: the new day's starting point."""
        clock = runtime.engine.clock
        if day is None or (clock is not None and day <= clock):
            return clock, None
        return clock, runtime.active_buckets()

    @staticmethod
    def _day_started(
        runtime: PartitionRuntime, clock: date | None, before: list[str] | None
    ) -> None:
        now = runtime.engine.clock
        if before is not None and now is not None and (clock is None or now > clock):
            runtime.flows.day_started(now, before)
            runtime.flows_dirty = True

    def _flows(self, runtime: PartitionRuntime, alert: Alert) -> None:
        extra = alert.extra
        if alert.kind == "overdue":
            moved = ("M0", alert.view.bucket)
        elif alert.kind == "bucket_changed":
            moved = (str(extra["from_bucket"]), str(extra["to_bucket"]))
        elif alert.kind == "cured":
            moved = (str(extra["from_bucket"]), "M0")
        else:
            return
        runtime.flows.moved(alert.business_date, *moved)
        runtime.flows_dirty = True

    # --- outputs and counters ---

    def _child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, looked up once (label values are bounded sets)."""
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def _emit_alert(self, alert: Alert, out: Outbox) -> None:
        out.alerts.append((alert.loan_id, orjson.dumps(alert.to_json())))
        m, extra, child = self.metrics, alert.extra, self._child
        product = self.labels.product(alert.view.product)
        child(m.alerts, alert.kind, alert.severity).inc()
        if alert.kind == "overdue":
            child(m.bucket_transitions, "M0", alert.view.bucket, product).inc()
        elif alert.kind == "bucket_changed":
            child(m.bucket_transitions, extra["from_bucket"], extra["to_bucket"], product).inc()
        elif alert.kind == "cured":
            child(m.bucket_transitions, extra["from_bucket"], "M0", product).inc()
            child(m.cures, extra["from_bucket"], product).inc()
        elif alert.kind == "promise_broken":
            child(m.promises, "broken", product).inc()
        if self.treatment_counters is not None:
            self.treatment_counters.alert(alert)

    def _dead_letter(self, letter: DeadLetter, msg: Inbound | None, out: Outbox) -> None:
        """``msg`` None: a consequence of another record (a parked event: its own source)."""
        source = (msg.topic, msg.partition, msg.offset) if msg else letter.source
        record = dead_letter_record(
            letter,
            topic=source[0] if source else None,
            partition=source[1] if source else None,
            offset=source[2] if source else None,
            raw=msg.value if msg else None,
        )
        key = msg.key if msg else _loan_key(letter.event)
        out.dead_letters.append((key, record))
        self._child(self.metrics.dead_letters, letter.reason).inc()

    def _count_applied(self, runtime: PartitionRuntime, kind: str, obj: dict[str, Any]) -> None:
        m, child = self.metrics, self._child
        loan = runtime.engine.views.get(str(obj.get("loan_id")))
        product = self.labels.product(loan.product) if loan else UNKNOWN
        region = self.labels.region(loan.region) if loan else UNKNOWN
        if kind == "payment_received":
            child(m.payments, product, region).inc()
            currency = loan.currency if loan else "unknown"
            # Exact until here; Prometheus samples are floats, converted at the edge only.
            child(m.payment_amount, product, region, currency).inc(
                float(parse_money(obj["amount"]))
            )
        elif kind == "promise_to_pay":
            child(m.promises, "made", product).inc()
        elif kind == "contact_logged":
            child(m.contacts, str(obj.get("channel"))).inc()
        if self.treatment_counters is not None and runtime.treatment is not None:
            currency = loan.currency if loan else "unknown"
            self.treatment_counters.applied(runtime.treatment, kind, obj, currency)
        stamp = obj.get("occurred_at")
        if isinstance(stamp, str):
            try:
                occurred = datetime.fromisoformat(stamp).timestamp()
            except ValueError:
                return
            m.event_time_lag.observe(max(0.0, time.time() - occurred))
            m.last_event.set(occurred)


def _loan_key(event: Any) -> bytes | None:
    loan_id = event.get("loan_id") if isinstance(event, dict) else None
    return loan_id.encode("utf-8") if isinstance(loan_id, str) else None
