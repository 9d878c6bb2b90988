"""Publish an event log to Kafka the way the live pipeline expects to read it (SPEC §1-§2).

What it guarantees, and why:

- **Routing** comes from :func:`loanwatch.streams.topics.route_event`: each event goes to its
  type's topic keyed by ``loan_id`` (``borrower_id`` for borrower-level signals), on its
  **borrower's** partition (:mod:`loanwatch.streams.partitioning`). A ``clock_tick`` carries
  no loan, so it is written to **every** partition of the clock topic. A line that is not a
  JSON object is sent unchanged, without a key, to the accounts topic, so the worker
  dead-letters it (``malformed_json``) instead of it being lost here.
- **Order**: record timestamps strictly increase in log order (explicit ``timestamp_ms``, never
  behind the wall clock, +1 ms per event; the copies of one broadcast tick share theirs), so a
  worker can merge its input topics by timestamp and see the log's order again. The producer is
  idempotent (``acks=all``) so a retry cannot reorder or duplicate a partition.
- **Lane watermarks**: every ``mark_every`` steps or ``mark_interval`` seconds (0.1), at the
  end, and while a pace holds a step, each input topic-partition gets a *mark* (empty value,
  header ``loanwatch.mark``) stamped with the latest timestamp given: the worker then knows
  that lane holds nothing earlier still to come, and never has to guess from timing
  (docs/design.md, "Ordering").
- **Clock sync** (``sync_clock``, on by default): a worker keeps one event clock per partition,
  replay one clock for the whole log. Left alone, a partition whose loans have no events for a
  while keeps an old date while the others move on: its loans age only when its next event
  comes (late alerts, stale DPD in the gauges, or never at the end of a log). Before the first
  event of each new business date (later than every date seen so far in the log, and not
  refused by the clock-jump guard) a synthetic ``clock_tick`` for that date (``event_id``
  ``sync-<date>``) goes to every partition, so each partition's clock equals the log's global
  clock C (SPEC §2) at the same point of the log, and the live states and alerts equal the
  replay's.
- ``as_of``: stop before the first event dated after it, then tick ``as_of`` to every partition
  (SPEC §7's ``--as-of``, live).

This module must never interpret an event beyond routing and reading its business date: no
validation, no repair, no dropping. Validation is the worker's job, with dead letters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import (
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as KafkaTP
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from loanwatch.ledger.clock import jumps_too_far
from loanwatch.ledger.parse import business_date_of, decode
from loanwatch.ledger.policy_file import load_policy
from loanwatch.ledger.records import Rejection
from loanwatch.streams.kafka_security import KafkaSecurity
from loanwatch.streams.partitioning import MARK_HEADER, learn, owner_key, partition_for
from loanwatch.streams.topics import TopicNames, route_event

log = logging.getLogger("loanwatch.streams.producer")

TOPIC_ALREADY_EXISTS = 36
TopicPartition = tuple[str, int]
Produced = dict[TopicPartition, int]
Barrier = Callable[[Produced], Awaitable[None]]
Item = bytes | str | Mapping[str, Any]


class ProduceError(Exception):
    """Publishing the log failed; the message says what to check."""


class TopicSetupError(ProduceError):
    """A topic could not be created: check the broker is up (``loanwatch stack status``)."""


class ProgressTimeout(ProduceError):
    """The workers did not process what was produced in time: read ``run/worker.log``."""


# --- the pure part: what to send, in which order -------------------------------------------


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One Kafka record. ``partition`` None: Kafka's partitioner picks it from the key."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None


StepKind = Literal["event", "raw", "sync_tick", "as_of_tick"]


@dataclass(frozen=True, slots=True)
class Step:
    """One logical event and its records (several for a broadcast tick), in log order.

    ``new_day`` is True when the step moves the log's clock past every date seen before it;
    ``event`` is the decoded event of an ``event`` step (for pacing), else None.
    """

    kind: StepKind
    records: tuple[OutRecord, ...]
    business_date: date | None
    new_day: bool = False
    event: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


def tick_step(
    event_id: str, day: date, topic: str, partitions: int, kind: StepKind, new_day: bool = True
) -> Step:
    """A clock_tick for ``day`` written to every partition of the clock topic."""
    value = orjson.dumps({"event_id": event_id, "type": "clock_tick", "business_date": str(day)})
    records = tuple(OutRecord(topic, None, value, p) for p in range(partitions))
    return Step(kind, records, day, new_day)


def _decode_item(item: Item) -> tuple[bytes, dict[str, Any] | None]:
    if isinstance(item, Mapping):
        return orjson.dumps(dict(item)), dict(item)
    raw = item.encode("utf-8") if isinstance(item, str) else item
    obj = decode(raw)
    return raw, None if isinstance(obj, Rejection) else obj


def plan(
    items: Iterable[Item],
    *,
    names: TopicNames,
    partitions: int,
    tz: ZoneInfo,
    sync_clock: bool = True,
    as_of: date | None = None,
    max_clock_jump_days: int | None = None,
    directory: MutableMapping[str, str] | None = None,
) -> Iterator[Step]:
    """The steps that publish ``items`` (raw lines or decoded events), in log order.

    ``directory`` (loan id -> borrower id) places each loan event on its borrower's partition;
    it learns from the openings it meets (pass one filled beforehand for openings that come
    after their loan's other events). The log's clock follows SPEC §2 as the engine does: a
    duplicate id or an event the clock-jump guard refuses moves it not, so no sync tick is made
    for it.
    """
    latest: date | None = None
    book: MutableMapping[str, str] = directory if directory is not None else {}
    moved: set[str] = set()  # ids that already moved the clock (a duplicate moves it not)
    for item in items:
        raw, obj = _decode_item(item)
        if obj is None:
            yield Step("raw", (OutRecord(names.accounts, None, raw),), None)
            continue
        day = business_date_of(obj, tz)
        if as_of is not None and day is not None and day > as_of:
            break
        is_tick = obj.get("type") == "clock_tick"
        eid = obj.get("event_id")
        duplicate = isinstance(eid, str) and eid in moved
        refused = (
            not is_tick and day is not None and jumps_too_far(latest, day, max_clock_jump_days)
        )
        new_day = day is not None and not duplicate and not refused
        new_day = new_day and (latest is None or (day is not None and day > latest))
        if day is not None and not duplicate and not refused and isinstance(eid, str):
            moved.add(eid)
        if new_day and day is not None:
            latest = day
            if sync_clock and not is_tick:
                yield tick_step(f"sync-{day}", day, names.clock, partitions, "sync_tick")
                new_day = False
        route = route_event(obj, names)
        if is_tick:
            records = tuple(OutRecord(route.topic, None, raw, p) for p in range(partitions))
        else:
            learn(obj, book)
            key = route.key.encode("utf-8") if route.key is not None else None
            owner = owner_key(obj, book)
            part = partition_for(owner, partitions) if owner is not None else None
            records = (OutRecord(route.topic, key, raw, part),)
        yield Step("event", records, day, new_day, obj)
    if as_of is not None:
        new_day = latest is None or as_of > latest
        yield tick_step(f"as-of-{as_of}", as_of, names.clock, partitions, "as_of_tick", new_day)


def scan_directory(items: Iterable[Item]) -> dict[str, str]:
    """Every loan's borrower from the openings of a log (read before publishing it)."""
    found: dict[str, str] = {}
    for item in items:
        _, obj = _decode_item(item)
        if obj is not None:
            learn(obj, found)
    return found


def looking_ahead(
    items: Iterable[Item], directory: MutableMapping[str, str], window: int
) -> Iterator[Item]:
    """``items`` unchanged, learning the openings of the next ``window`` items first.

    A live stream cannot be scanned beforehand; an event of a loan whose opening follows it
    closely (the simulator's orphans) is still placed on its borrower's partition.
    """
    ahead: deque[Item] = deque()
    source = iter(items)
    for item in source:
        ahead.append(item)
        obj = item if isinstance(item, Mapping) else _decode_item(item)[1]
        if obj is not None:
            learn(obj, directory)
        if len(ahead) > window:
            yield ahead.popleft()
    while ahead:
        yield ahead.popleft()


class Timestamps:
    """Strictly increasing record timestamps in ms: never behind ``now_ms()``, +1 per event."""

    def __init__(self, now_ms: Callable[[], int] | None = None) -> None:
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._last = 0

    def next(self) -> int:
        self._last = max(self._last + 1, self._now_ms())
        return self._last

    @property
    def last(self) -> int:
        """The latest timestamp given (0 before the first)."""
        return self._last


# --- the Kafka part ------------------------------------------------------------------------


def prefixed(prefix: str, names: TopicNames | None = None) -> TopicNames:
    """``names`` (default: the SPEC names) with every topic prefixed."""
    return (names or TopicNames()).with_prefix(prefix)


def topic_list(names: TopicNames) -> list[str]:
    """Every topic of ``names``: inputs, alerts, dead letters, status and the internal ones."""
    return [
        *names.inputs(),
        names.alerts,
        names.dead_letters,
        names.status,
        names.directory,
        names.commands,
        names.audit,
    ]


#: Topic configs of the topics that are not plain logs.
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    "directory": {"cleanup.policy": "compact"},
    # The auditor's trail outlives the inputs' 7 days: never deleted by time or size.
    "audit": {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"},
}


def _new_topic(
    names: TopicNames, topic: str, partitions: int, replication_factor: int = 1
) -> NewTopic:
    field = {names.directory: "directory", names.audit: "audit"}.get(topic)
    config = TOPIC_CONFIGS[field] if field else {}
    return NewTopic(topic, partitions, replication_factor, topic_configs=config)


def kafka_options() -> dict[str, Any]:
    """TLS and SASL of this process's Kafka clients (``LOANWATCH_KAFKA_*``, plaintext if unset)."""
    return KafkaSecurity().client_options()


async def wait_until_served(
    bootstrap: str, topics: list[str], partitions: int, timeout: float = 30.0
) -> None:
    """Until the leader of every partition of ``topics`` answers a ListOffsets request.

    The broker's metadata names a leader before that broker serves the partition; the
    consumer's ``end_offsets`` retries through exactly that window.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, client_id="loanwatch-admin", **kafka_options()
    )
    await consumer.start()
    try:
        tps = [KafkaTP(t, p) for t in topics for p in range(partitions)]
        await asyncio.wait_for(consumer.end_offsets(tps), timeout)
    except TimeoutError as exc:
        raise TopicSetupError(f"partitions of {topics} not served after {timeout:g} s") from exc
    finally:
        await consumer.stop()


async def ensure_topics(
    bootstrap: str, names: TopicNames, partitions: int, replication_factor: int = 1
) -> list[str]:
    """Create every missing topic of ``names``; return the ones created.

    Idempotent. An existing topic with another partition count is left alone and logged: the
    producer broadcasts ticks to the partitions the topic really has. Returns once every
    partition of the created topics answers (a producer sending at once met
    ``NotLeaderForPartitionError`` retries, a warning per partition, on every first run).
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="loanwatch-admin", **kafka_options()
    )
    try:
        await admin.start()
        existing = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics()}
        missing = [t for t in topic_list(names) if t not in existing]
        for topic in topic_list(names):
            if topic in existing and existing[topic] != partitions:
                log.warning(
                    "topic has another partition count",
                    extra={"topic": topic, "partitions": existing[topic], "wanted": partitions},
                )
        if missing:
            response = await admin.create_topics(
                [_new_topic(names, t, partitions, replication_factor) for t in missing]
            )
            for entry in getattr(response, "topic_errors", []):
                if entry[1] not in (0, TOPIC_ALREADY_EXISTS):
                    raise TopicSetupError(f"cannot create topic {entry[0]!r}: error {entry[1:]}")
            log.info("topics created", extra={"topics": missing, "partitions": partitions})
            await wait_until_served(bootstrap, missing, partitions)
        return missing
    except ProduceError:
        raise
    except Exception as exc:
        raise TopicSetupError(f"cannot create topics on {bootstrap}: {exc!r}") from exc
    finally:
        await admin.close()


@dataclass(slots=True)
class ProduceReport:
    """What was sent: records per topic, events read, ticks added, last offset per partition."""

    counts: Counter[str] = field(default_factory=Counter)
    events: int = 0
    raw: int = 0
    sync_ticks: int = 0
    marks: int = 0  # lane watermarks sent (not in ``counts``)
    as_of_tick: bool = False
    produced: Produced = field(default_factory=dict)


class KafkaSender(Protocol):
    """The part of ``AIOKafkaProducer`` used here (tests pass a recording fake)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def partitions_for(self, topic: str) -> set[int]: ...
    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]: ...


class LogProducer:
    """Publishes an event log in order (see the module docstring); use ``async with``."""

    def __init__(
        self,
        bootstrap: str,
        names: TopicNames,
        *,
        tz: ZoneInfo | None = None,
        sync_clock: bool = True,
        rate: float = 0.0,
        barrier: Barrier | None = None,
        barrier_every: Literal["event", "day"] = "event",
        timestamps: Timestamps | None = None,
        kafka: KafkaSender | None = None,
        max_clock_jump_days: int | None = None,
        mark_every: int = 500,
        mark_interval: float = 0.1,
        lookahead: int = 1000,
    ) -> None:
        self.names = names
        self.tz = tz or load_policy().tz
        self.max_clock_jump_days = max_clock_jump_days
        self.mark_every = mark_every  # steps between two rounds of lane watermarks
        # seconds between two rounds of marks, while sending and while a pace holds a step: a
        # lane with no record of its own waits at most about this long for its bound (latency)
        self.mark_interval = mark_interval
        self.lookahead = lookahead  # items read ahead to learn borrowers of live streams
        self.sync_clock = sync_clock
        self.rate = rate
        self.barrier = barrier
        self.barrier_every = barrier_every
        self.timestamps = timestamps or Timestamps()
        self._kafka: KafkaSender = kafka or AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            **kafka_options(),
        )
        self._pending: list[asyncio.Future[Any]] = []
        # sends awaited at a flush but not reported as produced: marks, directory records
        self._pending_marks: list[asyncio.Future[Any]] = []
        self._bootstrap = bootstrap
        self._shared_directory = kafka is None  # a real broker: read and extend loan.directory
        self._published: set[str] = set()  # loans whose borrower the directory topic has
        self._partitions = 0
        self._marked_at = 0  # the timestamp of the last round of marks
        self._since_marks = 0
        self._marked_wall = time.monotonic()
        self.report = ProduceReport()

    async def __aenter__(self) -> LogProducer:
        await self._kafka.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._kafka.stop()

    async def partitions(self) -> int:
        """How many partitions the clock topic has (ticks go to each of them)."""
        found = await self._kafka.partitions_for(self.names.clock)
        if not found:
            raise TopicSetupError(f"topic {self.names.clock!r} has no partitions: ensure_topics")
        return len(found)

    async def publish(
        self,
        items: Iterable[Item],
        *,
        as_of: date | None = None,
        on_step: Callable[[Step], None] | None = None,
        pace: Callable[[Step], Awaitable[None]] | None = None,
        directory: MutableMapping[str, str] | None = None,
    ) -> ProduceReport:
        """Send every item (and the ticks and marks the options add), flush, return the counts.

        ``pace``, when given, is awaited before each step is sent (the live simulator holds
        each event until its business time comes round); it replaces ``rate``. While it holds
        a step, every lane gets a watermark each ``mark_interval``. ``directory`` (loan ->
        borrower, e.g. from :func:`scan_directory`) places loan events on their borrower's
        partition; without one, openings are learnt ``lookahead`` items ahead.
        """
        self._partitions = await self.partitions()
        if directory is None and isinstance(items, Sequence):
            directory = scan_directory(items)  # a log in memory: every opening known first
        book: MutableMapping[str, str] = directory if directory is not None else {}
        if self._shared_directory:
            known = await read_directory(self._bootstrap, self.names.directory)
            self._published = set(known)
            for loan_id, borrower in known.items():
                book.setdefault(loan_id, borrower)  # earlier logs' loans
        source = items if directory is not None else looking_ahead(items, book, self.lookahead)
        steps = plan(
            source,
            names=self.names,
            partitions=self._partitions,
            tz=self.tz,
            sync_clock=self.sync_clock,
            as_of=as_of,
            max_clock_jump_days=self.max_clock_jump_days,
            directory=book,
        )
        started = time.monotonic()
        for step in steps:
            if (
                self.barrier is not None
                and step.new_day
                and self.barrier_every == "day"
                and self.report.counts.total()
            ):
                await self._barrier()
            if pace is not None:
                await self._held(pace(step))
            else:
                await self._pace(started, step)
            await self.send_step(step)
            if self._shared_directory and step.event is not None:
                await self._record_borrower(step.event, book)
            if on_step is not None:
                on_step(step)
            self._since_marks += 1
            overdue = time.monotonic() - self._marked_wall >= self.mark_interval
            if self._since_marks >= self.mark_every or overdue:
                await self.send_marks()
            if self.barrier is not None and self.barrier_every == "event":
                await self._barrier()  # without a barrier, sends are flushed in bulk
        await self.send_marks()
        await self._barrier()
        log.info(
            "log published",
            extra={"counts": dict(self.report.counts), "events": self.report.events},
        )
        return self.report

    async def send_marks(self) -> None:
        """A watermark on every input lane: "every record stamped up to now was sent before".

        The worker merges the lanes of a partition by timestamp; a lane with nothing buffered
        blocks that merge until it knows its next record is later than the others' heads. Our
        timestamps strictly increase in send order and a partition keeps a producer's order,
        so a mark stamped with the latest timestamp given proves it for that lane.
        """
        stamp = self.timestamps.last
        self._since_marks = 0
        self._marked_wall = time.monotonic()
        if stamp == 0 or stamp == self._marked_at or not self._partitions:
            return
        self._marked_at = stamp
        for topic in self.names.inputs():
            for p in range(self._partitions):
                future = await self._kafka.send(
                    topic,
                    b"",
                    key=None,
                    partition=p,
                    timestamp_ms=stamp,
                    headers=[(MARK_HEADER, b"1")],
                )
                self._pending_marks.append(future)
                self.report.marks += 1

    async def _record_borrower(self, obj: Mapping[str, Any], book: Mapping[str, str]) -> None:
        """An opening's loan -> borrower on the directory topic (once per loan)."""
        loan_id = obj.get("loan_id")
        if obj.get("type") != "loan_opened" or not isinstance(loan_id, str):
            return
        borrower = book.get(loan_id)
        if borrower is None or loan_id in self._published:
            return
        self._published.add(loan_id)
        future = await self._kafka.send(
            self.names.directory, borrower.encode("utf-8"), key=loan_id.encode("utf-8")
        )
        self._pending_marks.append(future)  # awaited at the next flush, not counted

    async def heartbeat(self) -> None:
        """Marks stamped now on every lane: records others wrote before now may be processed.

        For a producer of ours that has nothing to send but must let a worker go on (its marks
        bound what *it* may still send; another producer's records are ordered by its own).
        """
        self._partitions = self._partitions or await self.partitions()
        self.timestamps.next()
        await self.send_marks()
        await self.flush()

    async def _held(self, waiting: Awaitable[None]) -> None:
        """Await a pace, sending lane watermarks while it holds the next step."""
        task = asyncio.ensure_future(waiting)
        try:
            while not task.done():
                done, _ = await asyncio.wait({task}, timeout=self.mark_interval)
                if not done:
                    await self.send_marks()
            task.result()
        finally:
            task.cancel()

    async def send_step(self, step: Step) -> None:
        """Send one step's records with one timestamp (awaited later, at a flush)."""
        stamp = self.timestamps.next()
        for rec in step.records:
            future = await self._kafka.send(
                rec.topic, rec.value, key=rec.key, partition=rec.partition, timestamp_ms=stamp
            )
            self._pending.append(future)
            self.report.counts[rec.topic] += 1
        self.report.events += step.kind in ("event", "raw")
        self.report.raw += step.kind == "raw"
        self.report.sync_ticks += step.kind == "sync_tick"
        self.report.as_of_tick |= step.kind == "as_of_tick"
        if len(self._pending) + len(self._pending_marks) >= 10_000:
            await self.flush()

    async def flush(self) -> Produced:
        """Wait until everything sent is acknowledged; return the last offset per partition."""
        pending, self._pending = self._pending, []
        marks, self._pending_marks = self._pending_marks, []
        await asyncio.gather(*marks)
        for meta in await asyncio.gather(*pending):
            key = (meta.topic, meta.partition)
            self.report.produced[key] = max(self.report.produced.get(key, -1), meta.offset)
        return self.report.produced

    async def _barrier(self) -> None:
        produced = await self.flush()
        if self.barrier is not None and produced:
            await self.barrier(dict(produced))

    async def _pace(self, started: float, step: Step) -> None:
        if self.rate <= 0 or step.kind not in ("event", "raw"):
            return
        delay = started + self.report.events / self.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def read_directory(bootstrap: str, topic: str, timeout: float = 60.0) -> dict[str, str]:
    """The whole directory topic (loan -> borrower, the latest value per loan)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **kafka_options()
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return {}  # no directory yet: nothing published before
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="loanwatch-admin", **kafka_options()
        )
        await admin.start()
        try:
            described = await admin.describe_topics([topic])
        finally:
            await admin.close()
        parts = {int(p["partition"]) for t in described for p in t.get("partitions", [])}
        tps = [KafkaTP(topic, p) for p in sorted(parts)]
        if not tps:
            return {}
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: dict[str, str] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in tps])

        while await behind():
            if loop.time() > deadline:
                raise ProduceError(f"directory topic {topic!r} not read within {timeout:g} s")
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for rec in records:
                    if rec.key is not None and rec.value:
                        found[rec.key.decode("utf-8", "replace")] = rec.value.decode("utf-8")
        return found
    finally:
        await consumer.stop()


# --- waiting for the workers ---------------------------------------------------------------


async def read_progress(session: aiohttp.ClientSession, url: str) -> dict[TopicPartition, int]:
    """One worker's ``GET /progress`` as {(topic, partition): last processed offset}."""
    async with session.get(url) as resp:
        resp.raise_for_status()
        body = await resp.json()
    out: dict[TopicPartition, int] = {}
    for name, offset in (body.get("offsets") or {}).items():
        topic, _, part = str(name).rpartition(":")
        out[(topic, int(part))] = int(offset)
    return out


async def wait_processed(
    progress_urls: list[str], produced: Mapping[TopicPartition, int], timeout: float
) -> None:
    """Poll the workers until each produced (topic, partition) is processed up to its offset.

    A worker that does not answer yet counts as no progress. Raises :class:`ProgressTimeout`
    naming the partitions still behind.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    behind: dict[TopicPartition, tuple[int, int]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while True:
            seen: dict[TopicPartition, int] = {}
            for url in progress_urls:
                try:
                    for tp, offset in (await read_progress(session, url)).items():
                        seen[tp] = max(seen.get(tp, -1), offset)
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    log.debug("progress not readable", extra={"url": url, "error": repr(exc)})
            behind = {
                tp: (seen.get(tp, -1), off)
                for tp, off in produced.items()
                if seen.get(tp, -1) < off
            }
            if not behind:
                return
            if loop.time() >= deadline:
                raise ProgressTimeout(
                    f"after {timeout}s the workers {progress_urls} are still behind on "
                    f"(topic, partition): (processed, produced) {behind}"
                )
            await asyncio.sleep(0.1)
