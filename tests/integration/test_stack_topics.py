"""Leftover topics are deleted from the real broker: by ``stack prune-topics`` and teardowns."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from click.testing import CliRunner

from loanwatch.stack.cli import stack
from loanwatch.stack.topics import list_matching, with_prefixes

from .live import delete_scratch_topics


async def _create(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, 2, 1) for n in names])
    finally:
        await admin.close()


def _present(bootstrap: str, prefixes: list[str]) -> list[str]:
    return asyncio.run(list_matching(bootstrap, with_prefixes(prefixes)))


def test_prune_topics_deletes_the_prefixed_topics_and_only_them(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    doomed, kept = unique_name("prune"), unique_name("keep")
    names = [f"{doomed}.loan.accounts", f"{doomed}-loans-changelog", f"{kept}.loan.accounts"]
    asyncio.run(_create(kafka_bootstrap, names))
    assert _present(kafka_bootstrap, [doomed, kept]) == sorted(names)

    dry = CliRunner().invoke(stack, ["prune-topics", "--dry-run", doomed])
    assert dry.exit_code == 0, dry.output
    assert "would delete 2 topics" in dry.output
    assert _present(kafka_bootstrap, [doomed]) == sorted(names[:2])

    done = CliRunner().invoke(stack, ["prune-topics", doomed])
    assert done.exit_code == 0, done.output
    assert "deleted 2 topics" in done.output
    assert _present(kafka_bootstrap, [doomed]) == []
    assert _present(kafka_bootstrap, [kept]) == [f"{kept}.loan.accounts"]


def test_a_passed_tests_topics_are_deleted_by_its_teardown_helper(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    prefix, other = unique_name("lwdel"), unique_name("lwother")
    names = [f"{prefix}.loan.clock", f"{prefix}-meta-changelog", f"{other}.loan.clock"]
    asyncio.run(_create(kafka_bootstrap, names))
    delete_scratch_topics([prefix])
    assert _present(kafka_bootstrap, [prefix]) == []
    assert _present(kafka_bootstrap, [other]) == [f"{other}.loan.clock"]
