"""Dead letters of the router: records it read but cannot act on, kept with the reason.

Published to a Kafka topic (``LOANWATCH_ROUTER_DEAD_LETTER_TOPIC``, default
``loan.router-dead-letters``), not to Redis: a record must be dead-lettered even while Redis
refuses writes. Each letter is one JSON object: the source topic, partition, offset and key, the
machine-readable ``reason``, a human ``error`` and the original payload (as text when it is
UTF-8, else base64; cut at ``max_payload`` bytes, with its full size and SHA-256). The router
commits a record's offset only after its dead letter is acknowledged (:meth:`flush`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

import orjson


@dataclass(frozen=True, slots=True)
class DeadLetter:
    source: str  # alerts | status
    topic: str
    partition: int
    offset: int
    key: bytes | None
    reason: str
    error: str
    payload: bytes | None


class DeadLetterSink(Protocol):
    async def send(self, letter: DeadLetter) -> None:
        """Queue ``letter``; it is durable only once :meth:`flush` returned."""

    async def flush(self) -> None:
        """Wait until every letter sent so far is acknowledged (raises if one failed)."""


def encode(letter: DeadLetter, max_payload: int = 65_536) -> bytes:
    raw = letter.payload or b""
    cut = raw[:max_payload]
    doc: dict[str, Any] = {
        "source": letter.source,
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "key": letter.key.decode("utf-8", "replace") if letter.key is not None else None,
        "reason": letter.reason,
        "error": letter.error[:500],
        "payload_bytes": len(raw),
        "payload_sha256": hashlib.sha256(raw).hexdigest(),
        "payload_truncated": len(cut) < len(raw),
    }
    try:
        doc["payload"] = cut.decode("utf-8")
    except UnicodeDecodeError:
        doc["payload_base64"] = base64.b64encode(cut).decode()
    return orjson.dumps(doc)


class KafkaDeadLetters:
    """Publishes letters (acks as the producer passed in says: ``all`` in the service);
    :meth:`flush` waits for their acknowledgements, so a batch's letters travel together."""

    def __init__(self, producer: Any, topic: str, max_payload: int = 65_536) -> None:
        self.producer, self.topic, self.max_payload = producer, topic, max_payload
        self.pending: list[asyncio.Future[Any]] = []

    async def send(self, letter: DeadLetter) -> None:
        future = await self.producer.send(
            self.topic, encode(letter, self.max_payload), key=letter.key
        )
        self.pending.append(future)

    async def flush(self) -> None:
        pending, self.pending = self.pending, []
        if pending:
            await asyncio.gather(*pending)


class RecordingDeadLetters:
    """A sink that keeps the letters in memory (tests, and ``routes`` tooling)."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    async def send(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    async def flush(self) -> None:
        return None
