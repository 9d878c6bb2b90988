"""The pipeline's Prometheus metrics, declared in one place.

Every counter, histogram and gauge the workers update is created here, by
:func:`register_pipeline_metrics`, on a registry the composition root passes in. Names use
base units (``_seconds``, ``_total``, currency units for amounts) and labels whose values come
from small closed sets (topic, event type, bucket, product, region, ...).

This module must never create a metric at import time (tests need a fresh registry each) and
must never take a loan id, borrower id, event id or any other unbounded value as a label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Label values the pipeline uses; documented here so dashboards and rules agree with the code.
EVENT_RESULTS: Final = ("applied", "duplicate", "parked", "rejected")
PROMISE_OUTCOMES: Final = ("made", "kept", "broken")

# Event-time lag spans milliseconds (live) to days (a replayed or late backlog).
EVENT_TIME_LAG_BUCKETS: Final = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0,
)  # fmt: skip
# Event received -> alert sent: the desk expects well under a second.
ALERT_LATENCY_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
BATCH_SIZE_BUCKETS: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
# One released batch holds the event loop: tens of ms live, a few hundred on a backlog.
BATCH_SECONDS_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PipelineMetrics:
    """The metric objects of one worker; pass it to whatever updates them."""

    events: Counter
    dead_letters: Counter
    alerts: Counter
    bucket_transitions: Counter
    cures: Counter
    promises: Counter
    payments: Counter
    payment_amount: Counter
    contacts: Counter
    event_time_lag: Histogram
    alert_latency: Histogram
    batch_size: Histogram
    batch_seconds: Histogram
    held: Gauge
    forced_releases: Counter
    gaps: Counter
    gaps_accepted: Counter
    awaited_resumes: Counter
    rebalances: Counter
    assigned: Gauge
    consumer_lag: Gauge
    business_date: Gauge
    last_event: Gauge
    audit_records: Counter
    audit_bytes: Counter
    audit_seconds: Counter
    audit_skipped: Counter
    audit_forks: Counter


def register_pipeline_metrics(registry: CollectorRegistry) -> PipelineMetrics:
    """Create every pipeline metric on ``registry`` and return them.

    Call once per registry: a second call on the same registry raises ``ValueError``
    (duplicated timeseries), which is how a double wiring shows up.
    """
    r = registry
    return PipelineMetrics(
        events=Counter(
            "loanwatch_events_total",
            "Events consumed, by topic, event type and result "
            "(applied | duplicate | parked | rejected).",
            ["topic", "type", "result"],
            registry=r,
        ),
        dead_letters=Counter(
            "loanwatch_dead_letters_total",
            "Events sent to the dead-letter topic, by machine-readable reason.",
            ["reason"],
            registry=r,
        ),
        alerts=Counter(
            "loanwatch_alerts_total",
            "Loan alerts emitted on loan.alerts, by kind and severity.",
            ["kind", "severity"],
            registry=r,
        ),
        bucket_transitions=Counter(
            "loanwatch_bucket_transitions_total",
            "Loans moving between delinquency buckets (M0->Mx overdue, Mx->M0 cured, "
            "Mx->My bucket_changed).",
            ["from_bucket", "to_bucket", "product"],
            registry=r,
        ),
        cures=Counter(
            "loanwatch_cures_total",
            "Loans whose DPD went back to 0, by the bucket they left.",
            ["from_bucket", "product"],
            registry=r,
        ),
        promises=Counter(
            "loanwatch_promises_total",
            "Promises to pay, by outcome (made | kept | broken).",
            ["outcome", "product"],
            registry=r,
        ),
        payments=Counter(
            "loanwatch_payments_total",
            "Payments applied (reversals not subtracted).",
            ["product", "region"],
            registry=r,
        ),
        payment_amount=Counter(
            "loanwatch_payment_amount_total",
            "Sum of applied payment amounts, in currency units.",
            ["product", "region", "currency"],
            registry=r,
        ),
        contacts=Counter(
            "loanwatch_contacts_total",
            "Collection contacts logged, by channel.",
            ["channel"],
            registry=r,
        ),
        event_time_lag=Histogram(
            "loanwatch_event_time_lag_seconds",
            "Wall clock at processing minus the event's occurred_at.",
            buckets=EVENT_TIME_LAG_BUCKETS,
            registry=r,
        ),
        alert_latency=Histogram(
            "loanwatch_alert_latency_seconds",
            "Time from receiving an event to sending the alert it caused.",
            buckets=ALERT_LATENCY_BUCKETS,
            registry=r,
        ),
        batch_size=Histogram(
            "loanwatch_batch_size",
            "Events per batch taken from a stream.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        ),
        batch_seconds=Histogram(
            "loanwatch_batch_processing_seconds",
            "Time the ledger stage takes for one released batch: processing, sending its "
            "changelog records and outputs, acking (other tasks of the worker wait meanwhile).",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=r,
        ),
        held=Gauge(
            "loanwatch_input_held_messages",
            "Input messages received but held until the other input topics of their "
            "partition are known up to their timestamp (timestamp alignment).",
            registry=r,
        ),
        forced_releases=Counter(
            "loanwatch_alignment_forced_total",
            "Times a partition stopped waiting for an input topic after the longest "
            "idle wait (LOANWATCH_ALIGN_MAX_IDLE) and processed out of certain order.",
            registry=r,
        ),
        gaps=Counter(
            "loanwatch_alignment_gaps_total",
            "Records an input partition delivered after a gap (records before them skipped "
            "by the consumer), refused and fetched again (docs/design.md, ordering rule 5).",
            registry=r,
        ),
        gaps_accepted=Counter(
            "loanwatch_alignment_gaps_accepted_total",
            "Gaps in an input partition processed past because fetching again brought "
            "nothing (records gone from the broker); 0 expected, alerted on.",
            registry=r,
        ),
        awaited_resumes=Counter(
            "loanwatch_alignment_resumed_total",
            "Times an input partition the aligner waits for was found paused by something "
            "other than the aligner (the worker's queues never pause one) and fetched again.",
            registry=r,
        ),
        rebalances=Counter(
            "loanwatch_rebalances",
            "Partition assignments this worker received (one per rebalance of its group).",
            registry=r,
        ),
        assigned=Gauge(
            "loanwatch_assigned_partitions",
            "Input topic-partitions this worker owns now.",
            registry=r,
        ),
        consumer_lag=Gauge(
            "loanwatch_consumer_lag_messages",
            "End offset minus committed offset, per owned topic partition.",
            ["topic", "partition"],
            registry=r,
        ),
        business_date=Gauge(
            "loanwatch_business_date_timestamp_seconds",
            "The engine clock: local midnight of the current business date, as a unix time.",
            registry=r,
        ),
        last_event=Gauge(
            "loanwatch_last_event_timestamp_seconds",
            "Wall-clock unix time at which the last event was processed.",
            registry=r,
        ),
        audit_records=Counter(
            "loanwatch_audit_records_total",
            "Audit records appended to the chains (docs/audit.md), by kind: input | marks | "
            "checkpoint (one signed checkpoint each).",
            ["kind"],
            registry=r,
        ),
        audit_bytes=Counter(
            "loanwatch_audit_bytes_total",
            "Bytes of the audit records appended (their canonical JSON values).",
            registry=r,
        ),
        audit_seconds=Counter(
            "loanwatch_audit_seconds_total",
            "Time the audit trail took in the ledger stage: records, state hashes, "
            "checkpoint signatures, queuing them and the chain heads, reading a chain's tail.",
            registry=r,
        ),
        audit_skipped=Counter(
            "loanwatch_audit_rereads_skipped_total",
            "Inputs and marks read again after a restart that were already in the chain "
            "(no second record).",
            registry=r,
        ),
        audit_forks=Counter(
            "loanwatch_audit_forks_total",
            "Audit records found at a partition's restore that do not continue the stored "
            "chain head (two writers of one partition); 0 expected, audit verify names them.",
            registry=r,
        ),
    )
