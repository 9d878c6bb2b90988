"""Which errors degrade the service (Redis faults, with their reason) and which are a record's
own (dead-lettered): redis-py's mapped classes, pipeline-wrapped messages, unknown replies."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ExecAbortError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from loanwatch.routing.faults import FAULT_REASONS, redis_fault
from loanwatch.routing.health import Backoff, Health
from loanwatch.routing.metrics import RouterMetrics
from loanwatch.routing.supervise import supervise


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (RedisConnectionError("Connection refused"), "unavailable"),
        (ConnectionRefusedError(111, "refused"), "unavailable"),
        (BusyLoadingError("Redis is loading the dataset in memory"), "unavailable"),
        (RedisTimeoutError("Timeout reading from socket"), "timeout"),
        (OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), "oom"),
        (
            OutOfMemoryError(
                'Command # 1 (HSET k f v) of pipeline caused error: ("command not allowed",)'
            ),
            "oom",
        ),
        (ResponseError("MISCONF Redis is configured to save RDB snapshots, but ..."), "misconf"),
        (
            ResponseError("Command # 3 (XADD ...) of pipeline caused error: MISCONF Redis is"),
            "misconf",
        ),
        (ReadOnlyError("You can't write against a read only replica."), "readonly"),
        (AuthenticationError("invalid username-password pair"), "auth"),
        (NoPermissionError("this user has no permissions to run the 'config' command"), "auth"),
        (ExecAbortError("Transaction discarded because of previous errors."), "refused"),
        (ResponseError("ERR something Redis never said before"), "refused"),
    ],
)
def test_redis_faults_and_their_reasons(exc: BaseException, reason: str) -> None:
    assert redis_fault(exc) == reason
    assert reason in FAULT_REASONS


@pytest.mark.parametrize(
    "exc",
    [ValueError("bad amount"), KeyError("policy"), TypeError("unhashable"), ZeroDivisionError()],
)
def test_a_records_own_errors_are_not_redis_faults(exc: BaseException) -> None:
    assert redis_fault(exc) is None


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_supervise_survives_errors_degrades_on_redis_and_recovers() -> None:
    registry = CollectorRegistry()
    metrics = RouterMetrics(registry, store=None)  # type: ignore[arg-type]
    health = Health(FakeClock(), metrics)
    stop = asyncio.Event()
    seen: list[str] = []
    script = [
        KeyError("a bug in one step"),
        OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        RedisConnectionError("refused"),
        None,
    ]

    async def step() -> None:
        outcome = script[len(seen)] if len(seen) < len(script) else None
        seen.append(type(outcome).__name__)
        if len(seen) == 3:  # degraded by the OOM of step 2, before its retry
            assert health.report()["degraded"]["notifier"]["reason"] == "oom"
            assert (
                registry.get_sample_value("loanwatch_router_degraded", {"component": "notifier"})
                == 1.0
            )
        if outcome is not None:
            raise outcome
        stop.set()

    await asyncio.wait_for(
        supervise("notifier", step, stop, health, Backoff(0.001, 0.01), metrics), 5
    )
    assert seen == ["KeyError", "OutOfMemoryError", "ConnectionError", "NoneType"]
    assert health.ok and health.report() == {"status": "ok", "degraded": {}}
    assert registry.get_sample_value("loanwatch_router_degraded", {"component": "notifier"}) == 0.0
    assert (
        registry.get_sample_value("loanwatch_router_loop_errors_total", {"loop": "notifier"}) == 1.0
    )
    for reason in ("oom", "unavailable"):
        assert (
            registry.get_sample_value(
                "loanwatch_router_redis_faults_total", {"component": "notifier", "reason": reason}
            )
            == 1.0
        )


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    backoff = Backoff(0.2, 1.0)
    assert [backoff.next() for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    backoff.reset()
    assert backoff.next() == 0.2
