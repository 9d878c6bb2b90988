"""Fixtures of the integration tier: the real local stack, started by the project if needed.

Other tests rely on these exact names: ``stack``, ``kafka_bootstrap``, ``redis_url``,
``prometheus_url``, ``alertmanager_url``, ``unique_name``, ``redis_prefix``,
``prometheus_target``.
Nothing here mocks Kafka, Redis or Prometheus. When an integration test fails, the tail of
the broker's log is attached to its report. When it passes, the Kafka topics named after its
``unique_name``s are deleted (a failed test's are kept to look at).
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path

import pytest

from loanwatch.routing.workitems import connect
from loanwatch.stack import manager, services
from loanwatch.stack.errors import StackError
from loanwatch.stack.manager import StackInfo
from loanwatch.stack.paths import StackPaths, default_paths

from .live import delete_scratch_topics

KAFKA_LOG_TAIL_LINES = 60
PASSED = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak-alerts",
        type=int,
        default=20_000,
        help="alerts of the routing Redis soak (test_routing_soak.py); the issue's figure is "
        "200000, the CI default 20000 (two cores)",
    )


@pytest.fixture(scope="session")
def stack_paths() -> StackPaths:
    return default_paths()


@pytest.fixture(scope="session")
def stack(stack_paths: StackPaths) -> StackInfo:
    """The running local stack (``loanwatch stack up`` if it is not; left running after).

    Its ``redis_url`` is the one every integration test uses (with the stack's password once
    it has made one); ``LOANWATCH_TEST_REDIS_URL`` points the tests at another Redis instead.
    """
    try:
        manager.up(stack_paths)
    except StackError as exc:
        pytest.fail(f"could not bring the local stack up:\n{exc}", pytrace=False)
    found = manager.info(stack_paths)  # the Redis URL carries the password the stack made
    other = os.environ.get("LOANWATCH_TEST_REDIS_URL")
    return dataclasses.replace(found, redis_url=other) if other else found


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: StackInfo) -> str:
    return stack.kafka_bootstrap


@pytest.fixture(scope="session")
def redis_url(stack: StackInfo) -> str:
    return stack.redis_url


@pytest.fixture(scope="session")
def prometheus_url(stack: StackInfo) -> str:
    return stack.prometheus_url


@pytest.fixture(scope="session")
def alertmanager_url(stack: StackInfo) -> str:
    return stack.alertmanager_url


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Iterator[Callable[[str], str]]:
    """Factory: ``unique_name("orders")`` -> ``"orders-<test name>-<uuid hex>"``.

    Valid as a Kafka topic, consumer group or Faust app id (letters, digits, '-', '_', '.').
    If the test passes, every topic whose name starts with a name made here is deleted
    (topics, prefixed topics and a Faust app id's changelogs alike).
    """
    made: list[str] = []

    def make(prefix: str = "t") -> str:
        test = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")
        made.append(f"{prefix}-{test}-{uuid.uuid4().hex[:12]}")
        return made[-1]

    yield make
    if made and request.node.stash.get(PASSED, False):
        delete_scratch_topics(made)


@pytest.fixture
async def redis_prefix(redis_url: str, unique_name: Callable[[str], str]) -> AsyncIterator[str]:
    """A Redis key prefix of this test only (``rp-<test>-<hex>:``); its keys are deleted after."""
    prefix = unique_name("rp") + ":"
    yield prefix
    client = connect(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def prometheus_target(
    stack: StackInfo, stack_paths: StackPaths
) -> Iterator[Callable[[str, dict[str, str]], None]]:
    """Factory ``register(host_port, labels)``: a file_sd target scraped by job ``loanwatch``.

    Writes ``run/prometheus/targets/<uuid>.json``; every file written is removed at teardown.
    """
    written: list[Path] = []
    folder = stack_paths.prometheus_targets
    folder.mkdir(parents=True, exist_ok=True)

    def register(host_port: str, labels: dict[str, str]) -> None:
        path = folder / f"test-{uuid.uuid4().hex}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": [host_port], "labels": labels}]))
        tmp.rename(path)  # atomic: Prometheus never reads a half-written file
        written.append(path)

    yield register
    for path in written:
        path.unlink(missing_ok=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure of an integration test, attach the tail of the Kafka broker's log."""
    report = yield
    if report.when == "call":
        item.stash[PASSED] = report.passed
    if report.failed and report.when in ("setup", "call"):
        log_file = default_paths().log_file("kafka")
        text = services.tail(log_file, KAFKA_LOG_TAIL_LINES) or "(empty or missing)"
        report.sections.append((f"kafka broker log (tail of {log_file})", text))
    return report
