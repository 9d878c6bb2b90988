"""The composition root of a worker: the Faust app, its topics, tables, agents and web views.

:func:`build_worker` wires everything from :class:`WorkerSettings`; nothing is created at
import time. Agents stay short (group a batch by partition, call the processors, send the
outbox, flush the producer, ack); every rule lives in :mod:`loanwatch.ledger`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import faust
from faust.types import TP
from prometheus_client import CollectorRegistry

from loanwatch.agents.batching import batches
from loanwatch.agents.bulk import BulkProducer, TableWriter
from loanwatch.agents.faust_fixes import (
    deliver_rereads,
    eager_message_delivery,
    fewer_stream_yields,
    queues_wait_when_full,
    reseek_after_resume,
    rewind_uncommitted_partitions,
    seeks_keep_commits,
)
from loanwatch.agents.ledger import LedgerProcessor
from loanwatch.agents.ledger_stage import LedgerStage
from loanwatch.agents.messages import tick_command
from loanwatch.agents.metrics_wiring import wire_metrics
from loanwatch.agents.settings import WorkerSettings
from loanwatch.agents.state import TableSinks
from loanwatch.agents.topics_ready import TopicsReady
from loanwatch.agents.web import register_views
from loanwatch.audit import keys
from loanwatch.audit.kafka_io import KafkaTail, bootstrap_of
from loanwatch.audit.trail import AuditTrail
from loanwatch.early_warning.config import load_early_warning
from loanwatch.ledger.policy import Policy
from loanwatch.ledger.policy_file import load_policy
from loanwatch.metrics.catalog import PipelineMetrics, register_pipeline_metrics
from loanwatch.metrics.early_warning import EarlyWarningCounters, register_early_warning_metrics
from loanwatch.metrics.flows import FlowCollector
from loanwatch.metrics.labels import load_labels
from loanwatch.metrics.portfolio import PortfolioCollector
from loanwatch.metrics.treatment import TreatmentCounters, register_treatment_metrics
from loanwatch.streams.kafka_security import KafkaSecurity
from loanwatch.streams.producer import TOPIC_CONFIGS
from loanwatch.streams.topics import TopicNames
from loanwatch.treatment.config import load_strategies

log = logging.getLogger("loanwatch.worker")


@dataclass(slots=True)
class Worker:
    """Everything one worker process runs, wired together."""

    app: faust.App
    settings: WorkerSettings
    policy: Policy
    names: TopicNames
    registry: CollectorRegistry
    metrics: PipelineMetrics
    ledger: LedgerProcessor
    tables: Any


def build_worker(settings: WorkerSettings) -> Worker:
    rewind_uncommitted_partitions()  # see faust_fixes: else records can be skipped for good
    deliver_rereads()  # see faust_fixes: re-fetched records after a rebalance are not dropped
    seeks_keep_commits()  # see faust_fixes: a seek racing a commit stopped all later commits
    eager_message_delivery()  # see faust_fixes: no tasks per fetched message
    fewer_stream_yields()  # see faust_fixes: no event-loop turn per streamed event
    policy = load_policy(settings.config_dir)
    labels = load_labels(settings.config_dir)  # bounded product / region label values
    strategies = (  # classified treatment: only where configured (docs/strategies.md)
        load_strategies(settings.strategies_file, policy) if settings.strategies_file else None
    )
    early_warning = (  # pre-due scores: only where configured (docs/early-warning.md)
        load_early_warning(settings.early_warning_file) if settings.early_warning_file else None
    )
    clock = settings.clock or policy.clock
    names = settings.topic_names()
    n = settings.partitions
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        broker_credentials=KafkaSecurity().faust_credentials(),
        store=settings.store,
        topic_partitions=n,
        topic_replication_factor=settings.topic_replication_factor,
        datadir=str(settings.data_dir),
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        canonical_url=f"http://{settings.web_host}:{settings.web_port}",
        web_tables_enabled=False,
        broker_commit_interval=settings.commit_interval,
        table_standby_replicas=settings.standby_replicas,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=min(3.0, settings.session_timeout / 4),
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # Records held for timestamp alignment stay unacked across batches: a rebalance must
        # not wait for them (LedgerStage.revoke drops them; the next owner reads them again).
        stream_wait_empty=False,
    )
    # The ledger stage's aligner is the only flow control on the input partitions: Faust's
    # queues make the fetcher wait when full instead of pausing partitions (faust_fixes).
    queues_wait_when_full(app)
    # Records a resume of the flow cleared from the stream queues are fetched again (faust_fixes).
    reseek_after_resume(app)

    def topic(*topic_names: str) -> faust.TopicT:
        return app.topic(
            *topic_names, key_serializer="raw", value_serializer="raw", partitions=n, internal=True
        )

    def table(name: str) -> Any:
        return app.Table(name, default=None, partitions=n, key_type=str, value_type=bytes)

    tables = _Tables(
        loans=table("loans"),
        seen=table("seen"),
        meta=table("meta"),
        orphans=table("orphans"),
    )
    registry = CollectorRegistry()
    metrics = register_pipeline_metrics(registry)
    # The ledger's table writes and outputs leave as one record batch per partition (bulk.py).
    bulk = BulkProducer(app)
    # RocksDB writes of a partition's flush are one WriteBatch, applied once the batch's
    # outputs and changelogs are acknowledged. Phases: outputs (0), then loans, orphans, seen
    # ids, clock, each acknowledged before the next (bulk.py: any crash prefix is safe).
    sinks = TableSinks(
        loans=TableWriter(tables.loans, bulk, batched=True, phase=1),
        seen=TableWriter(tables.seen, bulk, batched=True, phase=3),
        meta=TableWriter(tables.meta, bulk, batched=True, phase=4),
        orphans=TableWriter(tables.orphans, bulk, batched=True, phase=2),
    )
    treatment_sink = treatment_counters = None
    if strategies is not None:  # states acknowledged with the loans they derive from (phase 1)
        treatment_sink = TableWriter(tables.meta, bulk, batched=True, phase=1)
        treatment_metrics = register_treatment_metrics(registry)
        treatment_counters = TreatmentCounters(treatment_metrics, strategies)
    ew_sink = ew_counters = None
    if early_warning is not None:  # the same: a state leaves with the loans it read (phase 1)
        ew_sink = TableWriter(tables.meta, bulk, batched=True, phase=1)
        ew_metrics = register_early_warning_metrics(registry)
        ew_counters = EarlyWarningCounters(ew_metrics, early_warning.scorecard, labels)
    ledger = LedgerProcessor(
        policy,
        names,
        tables,
        metrics,
        partitions=n,
        clock_follows_events=clock == "event",
        loan_cache=settings.loan_cache,
        sinks=sinks,
        labels=labels,
        strategies=strategies,
        treatment_sink=treatment_sink,
        treatment_counters=treatment_counters,
        early_warning=early_warning,
        early_warning_sink=ew_sink,
        early_warning_counters=ew_counters,
    )
    registry.register(
        PortfolioCollector(ledger.views, buckets=[b for b, _ in policy.buckets], labels=labels)
    )
    registry.register(FlowCollector(ledger.flows, policy.tz, [b for b, _ in policy.buckets]))
    # Faust's Prometheus sensor is not installed: it updates labelled series for every message
    # and table access (~6 % of a drain's samples); rebalances are counted below instead.
    worker = Worker(app, settings, policy, names, registry, metrics, ledger, tables)

    # A borrower's loans share a partition (streams.partitioning): no borrower round trip.
    inputs = topic(*names.inputs(), names.commands)
    commands = topic(names.commands)  # internal: the wall clock's ticks, one per partition
    alerts = topic(names.alerts)
    dead_letters = topic(names.dead_letters)
    status = topic(names.status)

    # The auditor's trail: one chain per input partition, its records sent with the outputs.
    audit_topic = app.topic(
        names.audit,
        key_serializer="raw",
        value_serializer="raw",
        partitions=n,
        internal=True,
        config=dict(TOPIC_CONFIGS["audit"]),
    )
    audit = _audit_trail(settings, policy, names, bulk, sinks, metrics) if settings.audit else None
    stage = LedgerStage(worker, bulk, audit)

    # No batch before the changelog and output topics are declared and known, with n partitions,
    # to the producer and the consumer (a new deployment over a backlog raced them: topics_ready).
    table_list = (tables.loans, tables.seen, tables.meta, tables.orphans)
    changelogs = [t.changelog_topic for t in table_list]
    co_partitioned = [*(c.get_topic_name() for c in changelogs), names.commands]
    keyed_outputs = (names.alerts, names.dead_letters, names.status)  # any partition count
    ready = TopicsReady(
        app,
        declare=lambda: (*changelogs, alerts, dead_letters, status, commands, audit_topic),
        topics=lambda: {
            **dict.fromkeys((*co_partitioned, names.audit), n),
            **dict.fromkeys(keyed_outputs),
        },
        consumer_topics=lambda: co_partitioned,
    )

    @app.agent(inputs, name="ledger", concurrency=1)
    async def ledger_agent(stream: Any) -> None:
        # One loop, no background buffer (agents/batching.py). Acks are the stage's, once the
        # batch's outputs are stored.
        queue = stream.channel.queue
        taken = batches(
            stream.noack().events(),
            waiting=lambda: not queue.empty(),
            max_size=settings.batch_size,
            within=settings.batch_within,
        )
        async for events in taken:
            await ready.wait()
            await stage.take(stream, events)

    @app.timer(interval=settings.batch_within * 2)  # type: ignore[untyped-decorator]
    async def ledger_wake() -> None:
        await stage.wake()

    @app.task  # type: ignore[untyped-decorator]
    async def declare_outputs() -> None:
        # Send-only topics are not declared by Faust: the gate creates them (n partitions, RF 1),
        # at start-up; it fails the worker if the topics are not ready in time.
        await ready.wait()

    if clock == "wall":

        @app.timer(interval=settings.wall_tick_seconds)  # type: ignore[untyped-decorator]
        async def wall_clock() -> None:
            await ready.wait()
            today = datetime.now(policy.tz).date()
            for tp in app.assignor.assigned_actives():
                if tp.topic == names.commands:
                    await commands.send(value=tick_command(today), partition=tp.partition)

    async def on_revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked: set[TP] = args[0] if args else kwargs.get("revoked", set())
        await stage.revoke({tp.partition for tp in revoked})
        try:  # what the finished batch acked (Faust does not wait for held records)
            await app.consumer.commit()
        except Exception as exc:
            log.warning("commit on revoke failed: %r (the next owner re-reads more)", exc)

    async def on_assigned(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        assigned: set[TP] = args[0] if args else kwargs.get("assigned", set())
        metrics.rebalances.inc()
        metrics.assigned.set(sum(1 for tp in assigned if tp.topic in stage.aligner))

    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]

    register_views(worker)
    wire_metrics(worker)
    return worker


def _audit_trail(
    settings: WorkerSettings,
    policy: Policy,
    names: TopicNames,
    bulk: BulkProducer,
    sinks: TableSinks,
    metrics: PipelineMetrics,
) -> AuditTrail:
    """The trail with its signing key (the demo key is made if missing; any other must exist)."""
    if settings.demo_audit_key and keys.generate(settings.audit_key_file):
        log.warning(
            "made the demo audit signing key %s: set LOANWATCH_AUDIT_KEY_FILE to a managed key "
            "outside the demo",
            settings.audit_key_file,
        )
    return AuditTrail(
        names.audit,
        keys.Signer.from_file(settings.audit_key_file),
        policy,
        outputs=bulk,
        heads=sinks.meta,
        tail=KafkaTail(bootstrap_of(settings.broker), names.audit),
        checkpoint_every=settings.audit_checkpoint_every,
        metrics=metrics,
    )


@dataclass(frozen=True, slots=True)
class _Tables:
    loans: Any
    seen: Any
    meta: Any
    orphans: Any
