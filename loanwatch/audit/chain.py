"""The audit chain of one partition: its record format, hashes and checkpoints (pure).

Every record is one canonical JSON object (keys sorted, no whitespace, UTF-8) and is stored as
those exact bytes; its **hash** is the SHA-256 of them. Each record names the hash of the
record before it in its partition (``prev``; the first names 64 zeros) and its place
(``seq``, from 0). Three kinds:

- ``input``: one per processed input record (commands included): where it came from
  (``topic``, ``partition``, ``offset``, ``ts``), the SHA-256 of its bytes, the loan it names
  and that loan's state hash after it (:mod:`loanwatch.audit.state_hash`), the alert ids and
  dead-letter reasons it produced, and the partition's business date after it;
- ``marks``: the lane marks (``loanwatch.mark`` records) a batch consumed, so that every
  offset of every input lane is accounted for;
- ``checkpoint``: an Ed25519 signature over :func:`checkpoint_message` (partition, seq,
  head = ``prev``, business date), at each business day's end and every N records.

Nothing here does I/O; the live trail, verify and replay share it. docs/audit.md is the
auditor's description of the same format.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from loanwatch.audit.keys import Signer

VERSION = 1
GENESIS = "0" * 64


def canonical(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, compact separators, UTF-8."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checkpoint_message(partition: int, seq: int, head: str, business_date: str | None) -> bytes:
    """The bytes a checkpoint signs: ``loanwatch-audit-v1|<partition>|<seq>|<head>|<date>``."""
    return f"loanwatch-audit-v{VERSION}|{partition}|{seq}|{head}|{business_date or ''}".encode()


@dataclass(slots=True)
class ChainHead:
    """Where one partition's chain stands: what the next record needs, and what is stored.

    ``next_offset`` is a lower bound of the audit topic offset of the next record (the
    restore reads the topic's tail from there; a record sent twice by a retry only moves the
    real offset further).
    """

    partition: int
    count: int = 0  # records so far = the next record's seq
    head: str = GENESIS  # hash of the last record
    business_date: str | None = None  # of the last input record
    since_checkpoint: int = 0  # records since the last checkpoint
    next_offset: int = 0
    # Per input lane (topic of this partition): the next offset not yet in the chain. A lane
    # is read in offset order, so everything below it is recorded (input or mark).
    lanes: dict[str, int] = field(default_factory=dict)

    def account(self, topic: str, offset: int) -> None:
        if offset >= self.lanes.get(topic, 0):
            self.lanes[topic] = offset + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "count": self.count,
            "head": self.head,
            "business_date": self.business_date,
            "since_checkpoint": self.since_checkpoint,
            "next_offset": self.next_offset,
            "lanes": self.lanes,
        }

    @classmethod
    def from_json(cls, partition: int, obj: dict[str, Any]) -> ChainHead:
        return cls(
            partition=partition,
            count=int(obj["count"]),
            head=str(obj["head"]),
            business_date=obj.get("business_date"),
            since_checkpoint=int(obj.get("since_checkpoint", 0)),
            next_offset=int(obj.get("next_offset", 0)),
            lanes={str(k): int(v) for k, v in (obj.get("lanes") or {}).items()},
        )


@dataclass(slots=True)
class Chain:
    """Appends records to one partition's chain; each append returns the record's bytes."""

    head: ChainHead
    signer: Signer
    checkpoint_every: int = 1000
    pending: list[bytes] = field(default_factory=list)  # appended, not yet handed out
    counts: dict[str, int] = field(default_factory=dict)  # appended by kind, for metrics

    def input(
        self,
        *,
        topic: str,
        offset: int,
        ts: int,
        value: bytes | None,
        loan_id: str | None,
        state_sha256: str | None,
        alerts: list[str],
        dead_letters: list[str],
        business_date: str | None,
    ) -> None:
        h = self.head
        if h.business_date is not None and business_date != h.business_date:
            self.checkpoint()  # the previous business day ends here
        elif h.since_checkpoint >= self.checkpoint_every:
            self.checkpoint()
        self._append(
            {
                "kind": "input",
                "topic": topic,
                "offset": offset,
                "ts": ts,
                "input_sha256": sha256_hex(value or b""),
                "loan_id": loan_id,
                "state_sha256": state_sha256,
                "alerts": alerts,
                "dead_letters": dead_letters,
                "business_date": business_date,
            }
        )
        h.business_date = business_date
        h.account(topic, offset)

    def marks(self, marks: list[tuple[str, int]]) -> None:
        if marks:
            self._append({"kind": "marks", "marks": [list(m) for m in sorted(marks)]})
            for topic, offset in marks:
                self.head.account(topic, offset)

    def checkpoint(self) -> None:
        h = self.head
        message = checkpoint_message(h.partition, h.count, h.head, h.business_date)
        self._append(
            {
                "kind": "checkpoint",
                "business_date": h.business_date,
                "key_id": self.signer.key_id,
                "signature": self.signer.sign(message).hex(),
            }
        )
        h.since_checkpoint = 0

    def take(self) -> list[bytes]:
        out, self.pending = self.pending, []
        return out

    def _append(self, body: dict[str, Any]) -> None:
        h = self.head
        body.update(v=VERSION, partition=h.partition, seq=h.count, prev=h.head)
        raw = canonical(body)
        self.pending.append(raw)
        self.counts[body["kind"]] = self.counts.get(body["kind"], 0) + 1
        h.head = sha256_hex(raw)
        h.count += 1
        h.since_checkpoint += 1
        h.next_offset += 1


def follow(head: ChainHead, raw: bytes) -> dict[str, Any]:
    """Advance ``head`` over a record read back from the audit topic; return it decoded."""
    record: dict[str, Any] = orjson.loads(raw)
    head.head = sha256_hex(raw)
    head.count = int(record["seq"]) + 1
    if record.get("kind") == "checkpoint":
        head.since_checkpoint = 0
    else:
        head.since_checkpoint += 1
    if record.get("kind") == "input":
        head.business_date = record.get("business_date")
        head.account(str(record["topic"]), int(record["offset"]))
    elif record.get("kind") == "marks":
        for topic, offset in record.get("marks") or []:
            head.account(str(topic), int(offset))
    return record
