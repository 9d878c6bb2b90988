"""Kafka security end to end: a worker, our producer and the router through the stack's
SASL_SSL listener (SCRAM-SHA-512 over TLS with the CA the stack made), as production runs.

The worker's Faust clients and its lane read-back, ``LogProducer`` (topic creation, the
directory, the sends) and ``routes serve`` all take ``LOANWATCH_KAFKA_*``; the log's states
equal replay's and every alert becomes the router's work. A wrong password is refused.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from loanwatch.stack import kafka_tls
from loanwatch.stack.paths import StackPaths
from loanwatch.stack.services import port_open
from loanwatch.streams.kafka_security import KafkaSecurity
from loanwatch.streams.topics import TopicNames

from .live import (
    Processed,
    WorkerProcess,
    assert_live_equals_replay,
    free_port,
    publish_log,
    read_topic,
    wait_ready,
)
from .routing_support import SERVE_SECRETS, ServeProcess, wait_until
from .test_live_workers import _log


def _material(stack_paths: StackPaths) -> kafka_tls.TlsMaterial:
    material = kafka_tls.load(stack_paths.service_dir("kafka"))
    assert material is not None and port_open(kafka_tls.SASL_PORT), (
        "the stack's broker has no SASL_SSL listener (started before it existed): "
        "`loanwatch stack down` then `loanwatch stack up`"
    )
    return material


async def test_a_wrong_password_is_refused(stack_paths: StackPaths) -> None:
    material = _material(stack_paths)
    options = KafkaSecurity(
        security_protocol="SASL_SSL",
        sasl_username=material.scram_user,
        sasl_password="wrong",  # type: ignore[arg-type]
        ssl_ca_file=material.ca_file,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_tls.SASL_BOOTSTRAP, **options.client_options()
    )
    with pytest.raises(KafkaError):
        await producer.start()
    await producer.stop()


async def test_worker_producer_and_router_through_sasl_ssl(
    kafka_bootstrap: str,
    redis_url: str,
    stack_paths: StackPaths,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = _material(stack_paths).client_env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # this process's LogProducer: SASL_SSL too
    prefix = unique_name("lwsasl") + "."
    names = TopicNames().with_prefix(prefix)
    worker = WorkerProcess(
        app_id=prefix.rstrip("."),
        prefix=prefix,
        data_dir=tmp_path / "w",
        extra_args=("--broker", f"kafka://{kafka_tls.SASL_BOOTSTRAP}"),
        extra_env=env,
    )
    lines, as_of, expected = _log()
    redis_prefix = unique_name("sasl") + ":"
    router = ServeProcess(
        env
        | SERVE_SECRETS
        | {
            "LOANWATCH_KAFKA_BOOTSTRAP": kafka_tls.SASL_BOOTSTRAP,
            "LOANWATCH_ALERTS_TOPIC": names.alerts,
            "LOANWATCH_STATUS_TOPIC": names.status,
            "LOANWATCH_ROUTER_DEAD_LETTER_TOPIC": unique_name("dead"),
            "LOANWATCH_ARCHIVE_TOPIC": unique_name("archive"),
            "LOANWATCH_CONSUMER_GROUP": unique_name("g"),
            "LOANWATCH_REDIS_URL": redis_url,
            "LOANWATCH_REDIS_PREFIX": redis_prefix,
            "LOANWATCH_API_PORT": str(free_port()),
            "LOANWATCH_NOTIFY_MAX_ATTEMPTS": "1",
        },
        tmp_path / "router.log",
    )
    worker.start()
    try:
        await wait_ready([worker])
        produced = await publish_log(kafka_tls.SASL_BOOTSTRAP, names, lines, as_of=as_of)
        async with Processed(kafka_bootstrap, [worker]) as processed:  # observed in plaintext
            await processed(produced)
        await assert_live_equals_replay(kafka_bootstrap, names, [worker], expected)
        ids = {a["alert_id"] for a in await read_topic(kafka_bootstrap, names.alerts)}
        assert ids
        router.start()
        from loanwatch.routing.workitems import connect

        client = connect(redis_url)
        try:

            async def routed() -> bool:
                seen = [k async for k in client.scan_iter(match=redis_prefix + "seen:*")]
                assert router.alive(), router.tail()
                return len(seen) >= len(ids)

            await wait_until(routed, "every alert routed through SASL_SSL", timeout=120)
        finally:
            keys = [k async for k in client.scan_iter(match=redis_prefix + "*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()
    except BaseException:
        print(worker.log_tail(), router.tail())
        raise
    finally:
        router.stop()
        worker.kill(signal.SIGTERM)
