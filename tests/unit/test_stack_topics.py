"""Which topics ``loanwatch stack prune-topics`` and the test teardown pick (no broker here)."""

from __future__ import annotations

import pytest

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
