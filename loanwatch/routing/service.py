"""The composition root of ``loanwatch routes serve``: wires settings, Redis, Kafka, senders.

Runs four loops until SIGINT/SIGTERM: the router (Kafka -> work items + outbox), the notifier
(outbox -> SMS/email/webhook/Alertmanager), the escalation and deferred-send timer, and the
collector API (with the service's own ``/metrics``). With ``register_target`` the API's port is
registered as a Prometheus file_sd target of the ``loanwatch-router`` job while the service
runs (the file is removed when it stops). Nothing is instantiated at import time; this is the
only module that does wiring.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from loanwatch.routing.api import build_app
from loanwatch.routing.auth import parse_clients
from loanwatch.routing.config import RoutingSetup, load_compliance, load_routing
from loanwatch.routing.deadletters import KafkaDeadLetters
from loanwatch.routing.errors import ConfigError
from loanwatch.routing.faults import redis_fault
from loanwatch.routing.health import Backoff, Health
from loanwatch.routing.housekeeping import Horizons, Housekeeper
from loanwatch.routing.kafka_topics import ensure_topics
from loanwatch.routing.metrics import RouterMetrics
from loanwatch.routing.notify.lanes import Lane
from loanwatch.routing.notify.senders import (
    AlertmanagerSender,
    EmailSender,
    SmsGateway,
    WebhookSender,
)
from loanwatch.routing.notify.worker import (
    DEFAULT_CONCURRENCY,
    NotifyWorker,
    RetryPolicy,
    Senders,
)
from loanwatch.routing.outbox_streams import LANES, OTHER
from loanwatch.routing.router import Router
from loanwatch.routing.settings import RouterSettings
from loanwatch.routing.supervise import pause, supervise
from loanwatch.routing.wire import Limits
from loanwatch.routing.workitems import WorkItems, connect
from loanwatch.stack import targets
from loanwatch.stack.log import JsonFormatter
from loanwatch.stack.paths import default_paths
from loanwatch.streams.kafka_security import KafkaSecurity

log = logging.getLogger("loanwatch.routing")


def wall_clock() -> datetime:
    return datetime.now(UTC)


def configure_logging() -> None:
    if any(isinstance(h.formatter, JsonFormatter) for h in log.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def _timer_step(
    router: Router,
    worker: NotifyWorker,
    housekeeper: Housekeeper,
    every: float,
    stop: asyncio.Event,
) -> Callable[[], Awaitable[None]]:
    async def step() -> None:
        now = wall_clock()
        await router.escalate(now)
        await worker.pump_deferred(now)
        await housekeeper.run_once(now)
        await pause(stop, every)

    return step


def _notifier_steps(
    worker: NotifyWorker, housekeeper: Housekeeper, lanes: list[Lane]
) -> dict[str, Callable[[], Awaitable[None]]]:
    """The dispatcher (outbox -> lanes) and one loop per channel lane: a dead gateway holds
    up its own channel only."""
    consumer = lanes[0].consumer
    ready = asyncio.Event()

    async def dispatch() -> None:
        if not ready.is_set():
            await worker.ensure_group()
            ready.set()
        if await worker.dispatch_once(consumer, block_ms=500):
            await housekeeper.trim_outbox()  # what was just acknowledged leaves Redis

    def lane_step(lane: Lane) -> Callable[[], Awaitable[None]]:
        async def step() -> None:
            await ready.wait()
            await lane.step()

        return step

    return {"notifier": dispatch} | {f"notify-{lane.channel}": lane_step(lane) for lane in lanes}


def target_labels(settings: RouterSettings) -> dict[str, str]:
    """Target labels of the router's file_sd entry (``portfolio`` only when one is set)."""
    labels = {"job_hint": "router"}
    if settings.portfolio:
        labels["portfolio"] = settings.portfolio
    return labels


def register_target(settings: RouterSettings) -> Path:
    """Write ``router-<port>.json`` for the API's ``/metrics``; return its path."""
    folder = settings.prometheus_targets_dir or default_paths().prometheus_router_targets
    address = targets.scrape_address(settings.api_host, settings.api_port)
    for stale in targets.prune_dead(folder):
        log.info(
            "stale prometheus target removed (its process is gone)", extra={"file": str(stale)}
        )
    path = targets.write_target(
        folder,
        f"router-{settings.api_port}",
        address,
        target_labels(settings),
        owner_pid=os.getpid(),
    )
    log.info("prometheus target registered", extra={"file": str(path), "target": address})
    return path


async def check_redis_persistence(redis: Any) -> None:
    """Warn when Redis may forget acknowledged writes; never stop start-up over it (Redis may
    be down right now, or the ACL user may not be allowed CONFIG: the loops then degrade)."""
    try:
        aof = await redis.config_get("appendonly")
    except Exception as exc:
        if redis_fault(exc) is None:
            raise
        log.warning("could not check redis appendonly", extra={"error": str(exc)[:300]})
        return
    if aof.get("appendonly") != "yes":
        log.warning("redis appendonly is off: a Redis restart may lose the last writes")


MIN_SECRET_CHARS = 16


def kafka_options() -> dict[str, Any]:
    """The TLS/SASL options of every Kafka client (``LOANWATCH_KAFKA_*``), validated."""
    try:
        return KafkaSecurity().client_options()
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        raise ConfigError(f"Kafka security settings: {problems}") from None


def check_secrets(settings: RouterSettings, setup: RoutingSetup) -> None:
    """Refuse to start with a secret that is missing or too short where it is needed."""
    hooks = sorted(
        f"{route.name} -> {ch}"
        for route in (*setup.table.routes, setup.table.default)
        for ch in route.channels
        if ch.kind == "webhook"
    )
    if hooks and len(settings.webhook_secret.get_secret_value()) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"LOANWATCH_WEBHOOK_SECRET: empty or shorter than {MIN_SECRET_CHARS} characters, "
            f"but routes send signed webhooks ({hooks[0]}, ...): set it to the key the "
            "receivers verify with (docs/security.md)"
        )
    if len(settings.contact_key_secret.get_secret_value()) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"LOANWATCH_CONTACT_KEY_SECRET: empty or shorter than {MIN_SECRET_CHARS} characters: "
            "set a random secret (it keys the phone-number hashes of the contact history; "
            "changing it resets the frequency counts per number)"
        )
    if settings.api_tokens is not None:
        raise ConfigError(
            "LOANWATCH_API_TOKENS (plaintext tokens) is no longer read: declare the clients in "
            "LOANWATCH_API_CLIENTS with the sha256 of each token and a scope (docs/security.md)"
        )
    if settings.smtp_username and settings.smtp_security == "none":
        raise ConfigError(
            "LOANWATCH_SMTP_USERNAME is set with LOANWATCH_SMTP_SECURITY=none: the password "
            "would cross the network in clear; use starttls or tls"
        )


async def run_service(settings: RouterSettings) -> None:
    configure_logging()
    setup = load_routing(settings.routing_config)
    rules = load_compliance(settings.compliance_config)
    check_secrets(settings, setup)
    clients = parse_clients(settings.api_clients, setup.teams)
    kafka = kafka_options()
    number_secret = settings.contact_key_secret.get_secret_value().encode()
    redis = connect(
        settings.redis_url,
        settings.redis_username,
        settings.redis_password.get_secret_value() or None,
    )
    await check_redis_persistence(redis)
    horizons = Horizons(
        seen_ttl=timedelta(hours=settings.seen_ttl_hours),
        sent_ttl=timedelta(hours=settings.sent_ttl_hours),
        resolved_retention=timedelta(hours=settings.resolved_retention_hours),
        stream_max_len=settings.stream_max_len,
    )
    store = WorkItems(
        redis,
        setup,
        settings.redis_prefix,
        closed_ttl=timedelta(days=settings.closed_loan_ttl_days),
        horizons=horizons,
    )
    metrics = RouterMetrics(CollectorRegistry(), store)
    store.on_dead = metrics.dead_letter
    health = Health(wall_clock, metrics)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await ensure_topics(
        settings.kafka_bootstrap,
        [settings.router_dead_letter_topic, settings.archive_topic],
        settings.topic_partitions,
        settings.topic_replication_factor,
        kafka,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True, **kafka
    )
    await producer.start()
    retry = (settings.redis_retry_initial_seconds, settings.redis_retry_max_seconds)
    async with aiohttp.ClientSession() as session:
        senders = Senders(
            sms=SmsGateway(
                session,
                settings.sms_gateway_url,
                settings.sms_gateway_user,
                settings.sms_gateway_password.get_secret_value(),
            )
            if settings.sms_gateway_url
            else None,
            email=EmailSender(
                settings.smtp_host,
                settings.smtp_port,
                settings.smtp_from,
                settings.smtp_security,
                settings.smtp_username,
                settings.smtp_password.get_secret_value(),
                str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
            ),
            webhook=WebhookSender(
                session, setup.webhooks, settings.webhook_secret.get_secret_value().encode()
            ),
            alertmanager=AlertmanagerSender(session, settings.alertmanager_url)
            if settings.alertmanager_url
            else None,
        )
        worker = NotifyWorker(
            redis,
            settings.redis_prefix,
            setup,
            rules,
            senders,
            wall_clock,
            RetryPolicy(
                settings.notify_max_attempts,
                settings.notify_backoff_seconds,
                settings.notify_backoff_max_seconds,
            ),
            metrics=metrics,
            horizons=horizons,
            concurrency=settings.notify_concurrency,
            number_secret=number_secret,
        )
        housekeeper = Housekeeper(
            redis, settings.redis_prefix, producer, settings.archive_topic, horizons
        )
        router = Router(
            store,
            setup,
            wall_clock,
            settings.alerts_topic,
            settings.status_topic or None,
            dead_letters=KafkaDeadLetters(
                producer, settings.router_dead_letter_topic, settings.record_max_bytes
            ),
            health=health,
            metrics=metrics,
            limits=Limits(settings.record_max_bytes, settings.record_max_depth),
            backoff=retry,
            max_outbox_backlog=settings.max_outbox_backlog,
            consumer_options=kafka,
        )
        app = build_app(
            store,
            producer,
            settings.collections_topic,
            clients,
            wall_clock,
            rules,
            metrics=metrics.exposition,
            health=health.report,
            number_secret=number_secret,
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.api_host, settings.api_port).start()
        log.info(
            "router started", extra={"api_port": settings.api_port, "topic": settings.alerts_topic}
        )
        target = register_target(settings) if settings.register_target else None

        consumer = f"{socket.gethostname()}-notifier"
        lanes = [
            Lane(
                worker,
                channel,
                consumer,
                settings.notify_concurrency.get(channel, DEFAULT_CONCURRENCY),
                block_ms=500,
            )
            for channel in (*LANES, OTHER)
        ]

        async def route() -> None:
            await router.run(settings.kafka_bootstrap, settings.consumer_group, stop)

        loops = {
            "router": route,
            **_notifier_steps(worker, housekeeper, lanes),
            "timer": _timer_step(
                router, worker, housekeeper, settings.escalation_interval_seconds, stop
            ),
        }
        tasks = [
            asyncio.create_task(
                supervise(name, step, stop, health, Backoff(*retry), metrics), name=name
            )
            for name, step in loops.items()
        ]
        try:
            await stop.wait()
        finally:
            if target is not None:
                targets.remove_target(target)
                log.info("prometheus target removed", extra={"file": str(target)})
            stop.set()
            # The loops see ``stop`` and finish their step (a send, a commit); then cancel.
            _, late = await asyncio.wait(tasks, timeout=15)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for lane in lanes:
                await lane.drain(5)
            await runner.cleanup()
            await producer.stop()
            await redis.aclose()
