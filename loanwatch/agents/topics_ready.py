"""Start-up gate: no batch is processed before the worker's own topics are known with partitions.

A brand-new deployment (new app id) creates its tables' changelog topics at start-up, and a
topic created a moment ago can be reported by the broker with **no partitions** for a while.
Seen once in CI (noted in 02b3fce, when table writes were still ``table[key] = value``) with a
backlog already waiting: the first assignment came from metadata that had the changelog topics
with 0 partitions, the ledger's first batch wrote a table right away, and Faust's check before
the changelog send raised ``PartitionsMismatch`` ("source topic has 8 partitions, the changelog
topic 0"); the worker exited, a restart worked.

Where Faust looks: ``Table.__setitem__`` -> ``Collection.partition_for_key`` ->
``_verify_source_topic_partitions``, which compares ``app.consumer.topic_partitions()`` of the
source topic and of the changelog. That is the consumer group coordinator's
``_metadata_snapshot`` (``len(cluster.partitions_for_topic(t) or [])`` of the *consumer's*
aiokafka client, taken when the leader assigns and on every metadata update): a topic missing or
listed with no partitions counts as 0. The same metadata made Faust's assignor skip the
changelogs ("Ignoring missing topic"), so the tables had no active partitions in that
generation. The worker's own table writes no longer go through that check (``agents/bulk.py``
sends the changelog records itself and waits for the *producer's* metadata of each topic), but
the consumer's stale view stayed: nothing refreshes it before ``consumer_metadata_max_age_ms``
(5 minutes), and until then the tables are inactive (RocksDB iteration, which rebuilds the
partition runtimes after a rebalance, sees none of their rows; ``GET /loans`` owner lookup) and
a worker joining the group gets no changelog partitions, so it restores none of its tables
(``tests/integration/test_live_fresh_deployment.py``: its loans were 404 before this gate).

:class:`TopicsReady` is awaited by the agents before their first batch (and by a start-up
task): it makes sure Faust has declared the topics (created with their configuration, not
auto-created by a metadata request; see below), then refreshes the metadata of the producer's
and the consumer's aiokafka clients until every topic is listed with its expected partition
count. A refresh that makes the changelogs appear in the group leader's consumer metadata also
makes aiokafka rejoin the group, so the tables' partitions are assigned now, not minutes later.
A topic that never appears within the timeout, or appears with another partition count, is a
:class:`TopicsNotReady` error that names each topic and what each client sees (the worker then
exits with it instead of running half set up).

``auto.create.topics.enable`` (off in ``config/kafka/server.properties``, as it should be in
production; on, a broker lets a metadata request create a topic): aiokafka asks for metadata
with ``allow_auto_topic_creation`` set, so on such a broker a metadata request that names a
topic before it exists creates it with the broker's defaults (delete policy, 7 days'
retention; not a compacted changelog) and Faust's later declaration then skips it as existing.
It is not what makes a new topic show 0 partitions (without it the broker answers "unknown
topic", which the clients count as 0 just the same), but it is why this gate declares first and
only then adds the topics to the clients' metadata.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol

from loanwatch.agents.faust_internals import consumer_client, kafka_producer

log = logging.getLogger("loanwatch.worker")

READY_TIMEOUT = 60.0  # seconds for the worker's topics to appear in the metadata
REFRESH_INTERVAL = 0.2
LOG_EVERY = 5.0  # seconds between "still waiting" lines

Expected = Mapping[str, int | None]  # topic -> partition count (None: any, but some)


class TopicsNotReady(RuntimeError):
    """The worker's topics are not (all) known with their partitions: it must not process."""


class MetadataView(Protocol):
    """One client's view of the cluster metadata."""

    name: str

    def partitions(self, topic: str) -> set[int] | None: ...

    async def refresh(self, topics: Collection[str]) -> None:
        """Track ``topics`` and fetch the metadata again."""


async def _refresh(client: Any, topics: Collection[str]) -> None:
    for topic in topics:
        client.add_topic(topic)  # tracked from now on (a no-op for topics already tracked)
    await client.force_metadata_update()


class ClientMetadata:
    """An aiokafka client (``AIOKafkaClient``) running on the current event loop."""

    def __init__(self, name: str, client: Any) -> None:
        self.name = name
        self.client = client

    def partitions(self, topic: str) -> set[int] | None:
        found = self.client.cluster.partitions_for_topic(topic)
        return set(found) if found is not None else None

    async def refresh(self, topics: Collection[str]) -> None:
        await _refresh(self.client, topics)


class ConsumerThreadMetadata(ClientMetadata):
    """The consumer's aiokafka client, which lives on Faust's consumer thread (its own loop)."""

    def __init__(self, name: str, thread: Any, client: Any) -> None:
        super().__init__(name, client)
        self.thread = thread

    async def refresh(self, topics: Collection[str]) -> None:
        await self.thread.call_thread(_refresh, self.client, list(topics))


def _problems(
    views: Sequence[MetadataView], expected: Mapping[str, Expected]
) -> dict[str, dict[str, tuple[bool, str]]]:
    """client name -> topic -> (is it a partition count mismatch, what is wrong)."""
    out: dict[str, dict[str, tuple[bool, str]]] = {}
    for view in views:
        for topic, want in expected.get(view.name, {}).items():
            found = view.partitions(topic)
            if not found:
                what = (False, "unknown" if found is None else "0 partitions")
            elif want is not None and len(found) != want:
                what = (True, f"{len(found)} partitions, expected {want}")
            else:
                continue
            out.setdefault(view.name, {})[topic] = what
    return out


def _describe(problems: Mapping[str, Mapping[str, tuple[bool, str]]]) -> str:
    return "; ".join(
        f"{name}: " + ", ".join(f"{topic} ({what})" for topic, (_, what) in sorted(topics.items()))
        for name, topics in sorted(problems.items())
    )


async def wait_for_metadata(
    views: Sequence[MetadataView],
    expected: Mapping[str, Expected],
    *,
    timeout: float = READY_TIMEOUT,
    interval: float = REFRESH_INTERVAL,
    log_every: float = LOG_EVERY,
) -> float:
    """Refresh each view's metadata until all its topics have their partitions; seconds waited.

    ``expected`` maps a view's name to its topics (topic -> partition count, None for any). A
    topic listed with partitions but another count than expected fails at once (after one
    refresh, so a stale listing is not taken for a mismatch): waiting cannot fix that.
    """
    start = time.monotonic()
    next_log = start + log_every
    refreshed = False
    while True:
        problems = _problems(views, expected)
        waited = time.monotonic() - start
        if not problems:
            if refreshed:
                log.info("worker topics ready after %.1f s", waited)
            return waited
        mismatched = {
            name: {t: p for t, p in topics.items() if p[0]} for name, topics in problems.items()
        }
        mismatched = {name: topics for name, topics in mismatched.items() if topics}
        if refreshed and mismatched:
            message = (
                f"topics with another partition count than the worker's: {_describe(mismatched)}"
            )
            log.error(message)
            raise TopicsNotReady(message)
        if waited > timeout:
            message = (
                f"worker topics not ready after {timeout:.0f} s (metadata refreshed every "
                f"{interval} s): {_describe(problems)}"
            )
            log.error(message)
            raise TopicsNotReady(message)
        if refreshed and time.monotonic() >= next_log:
            log.warning("waiting for the worker topics' partitions: %s", _describe(problems))
            next_log = time.monotonic() + log_every
        remaining = max(timeout - waited, interval)
        results = await asyncio.gather(
            *(
                asyncio.wait_for(view.refresh(list(problems[view.name])), remaining)
                for view in views
                if view.name in problems
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, Exception):
                log.warning("metadata refresh failed (retrying): %r", result)
            elif isinstance(result, BaseException):
                raise result
        refreshed = True
        await asyncio.sleep(interval)


def app_views(app: Any) -> tuple[ClientMetadata, ConsumerThreadMetadata | None]:
    """The producer's and (once started) the consumer's metadata views of a Faust app."""
    producer = ClientMetadata("producer", kafka_producer(app).client)
    found = consumer_client(app)
    if found is None:
        return producer, None
    thread, client = found
    return producer, ConsumerThreadMetadata("consumer", thread, client)


async def wait_for_topics(
    app: Any,
    topics: Expected,
    *,
    consumer_topics: Iterable[str] = (),
    timeout: float = READY_TIMEOUT,
    interval: float = REFRESH_INTERVAL,
) -> float:
    """Wait until the producer knows every topic of ``topics`` with its partition count, and
    the consumer those of ``consumer_topics`` (topics it subscribes to, e.g. the changelogs)."""
    producer, consumer = app_views(app)
    views: list[MetadataView] = [producer]
    expected: dict[str, Expected] = {producer.name: topics}
    wanted = {t: topics.get(t) for t in consumer_topics}
    if consumer is not None and wanted:
        views.append(consumer)
        expected[consumer.name] = wanted
    return await wait_for_metadata(views, expected, timeout=timeout, interval=interval)


class TopicsReady:
    """A one-time gate: awaited before processing; the first caller does the work.

    ``declare`` are Faust topics (changelog and output topics) to declare first: Faust's
    ``maybe_declare`` creates each with its configuration once and is cached afterwards.
    ``topics`` lists what the producer must know (topic -> partitions, None for any count);
    ``consumer_topics`` what the consumer must know too. A failure is raised to every waiter
    and not remembered: the next wait tries again.
    """

    def __init__(
        self,
        app: Any,
        *,
        declare: Callable[[], Iterable[Any]],
        topics: Callable[[], Expected],
        consumer_topics: Callable[[], Iterable[str]] = lambda: (),
        timeout: float = READY_TIMEOUT,
        interval: float = REFRESH_INTERVAL,
        wait: Callable[..., Awaitable[float]] = wait_for_topics,
    ) -> None:
        self.app = app
        self._declare = declare
        self._topics = topics
        self._consumer_topics = consumer_topics
        self.timeout = timeout
        self.interval = interval
        self._wait = wait
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()
        self.waited: float | None = None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def wait(self) -> None:
        if self._ready.is_set():
            return
        async with self._lock:
            if self._ready.is_set():
                return
            for topic in self._declare():
                await topic.maybe_declare()
            self.waited = await self._wait(
                self.app,
                self._topics(),
                consumer_topics=self._consumer_topics(),
                timeout=self.timeout,
                interval=self.interval,
            )
            self._ready.set()
