"""Which topics ``loanwatch stack prune-topics`` and the test teardown pick (no broker here)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from loanwatch.stack import topics
from loanwatch.stack.topics import matching, scratch, with_prefixes

LEFT_BY_TESTS = [
    "lw-test-live-pipeline-gives-the-replay-resu-1a964fba4399.loan.clock",
    "lw-test-live-pipeline-gives-the-replay-resu-1a964fba4399-loans-changelog",
    "lwjoin-test-a-worker-joining-mid-backlog-skips-f6a0454858c6.loan.signals",
    "alerts-test-router-routes-0123456789ab",
    "lwm-0123456789ab.loan.accounts",
    "lwm-0123456789ab-meta-changelog",
    "bench-20261129001001-loan.accounts",
    "bench-20261129001001-noop-4242-__assignor-__leader",
]
DEPLOYMENTS = [
    "loan.accounts",
    "loanwatch-loans-changelog",
    "prod.loan.payments",
    "demo-20261128-214012.loan.accounts",  # a `make run` demo: the user's to delete
    "payments-test-feed",  # "-test-" alone is not a test's unique name
    "lwm-accounts",
    "bench-results",
    "__consumer_offsets",
]


@pytest.mark.parametrize("name", LEFT_BY_TESTS)
def test_names_tests_and_benchmarks_make_are_scratch(name: str) -> None:
    assert scratch(name)


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_other_names_are_not(name: str) -> None:
    assert not scratch(name)


def test_matching_sorts_and_never_picks_internal_topics() -> None:
    names = ["b.x", "__b.internal", "a.y", "c.z"]
    assert matching(names, lambda _n: True) == ["a.y", "b.x", "c.z"]
    assert matching(names, with_prefixes(["b.", "c"])) == ["b.x", "c.z"]


def test_no_prefix_picks_nothing() -> None:
    assert matching(["a", "b"], with_prefixes([])) == []
    assert matching(["a", "b"], with_prefixes([""])) == []


@dataclass
class _LaggingBroker:
    """An admin client whose metadata lists a deleted topic for a few more polls, and whose
    controller refuses the first deletion of ``refused`` (as when the topic is still settling)."""

    listed: set[str]
    refused: str
    lag: int = 3
    asked: list[list[str]] = field(default_factory=list)
    gone_after: dict[str, int] = field(default_factory=dict)
    polls: int = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def list_topics(self) -> list[str]:
        self.polls += 1
        for name, at in list(self.gone_after.items()):
            if self.polls >= at:
                self.listed.discard(name)
                del self.gone_after[name]
        return sorted(self.listed)

    async def delete_topics(self, names: list[str], timeout_ms: int) -> Any:
        self.asked.append(list(names))
        codes = []
        for name in names:
            if name == self.refused and len(self.asked) == 1:
                codes.append((name, 41))  # NOT_CONTROLLER: ask again
            else:
                codes.append((name, 0))
                self.gone_after[name] = self.polls + self.lag
        return SimpleNamespace(topic_error_codes=codes)


def test_delete_returns_once_the_broker_lists_none_and_asks_again_for_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = _LaggingBroker(listed={"t-a", "t-b", "other"}, refused="t-b")
    monkeypatch.setattr(topics, "_admin", lambda bootstrap, timeout_ms: broker)
    monkeypatch.setattr(asyncio, "sleep", _no_sleep)
    deleted = asyncio.run(topics.delete_topics("x", with_prefixes(["t-"]), timeout_ms=60_000))
    assert deleted == ["t-a", "t-b"]
    assert broker.listed == {"other"}
    assert broker.asked == [["t-a", "t-b"], ["t-b"]]


def test_delete_raises_when_the_topics_never_go(monkeypatch: pytest.MonkeyPatch) -> None:
    broker = _LaggingBroker(listed={"t-a"}, refused="none", lag=10**9)
    monkeypatch.setattr(topics, "_admin", lambda bootstrap, timeout_ms: broker)
    with pytest.raises(TimeoutError, match="t-a"):
        asyncio.run(topics.delete_topics("x", with_prefixes(["t-"]), timeout_ms=300))


_real_sleep = asyncio.sleep


async def _no_sleep(_: float) -> None:
    await _real_sleep(0)
