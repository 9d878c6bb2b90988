"""``audit verify``'s checks over one audit topic's records (pure: records in, a report out).

Per partition: every record is canonical JSON of its own partition, ``seq`` runs 0, 1, 2…,
each ``prev`` is the SHA-256 of the record before (the first: 64 zeros), every checkpoint's
signature verifies under a trusted key over :func:`~loanwatch.audit.chain.checkpoint_message`,
and every offset of every input lane is accounted for exactly once (an ``input`` record or a
``marks`` entry), from offset 0 without a gap. A byte-identical copy of an earlier record (a
producer retry) is counted, not an error. The first problem of each partition names the record
(partition, audit offset, seq) and what is wrong; checking that partition stops there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from loanwatch.audit.chain import GENESIS, canonical, checkpoint_message, sha256_hex
from loanwatch.audit.kafka_io import Stored
from loanwatch.audit.keys import key_id, verifies


@dataclass(frozen=True, slots=True)
class Problem:
    partition: int
    offset: int | None  # in the audit topic
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = f"partition {self.partition}"
        if self.offset is not None:
            where += f" offset {self.offset}"
        if self.seq is not None:
            where += f" seq {self.seq}"
        return f"{where}: {self.message}"


@dataclass(slots=True)
class PartitionSummary:
    partition: int
    records: int = 0
    inputs: int = 0
    marks: int = 0
    checkpoints: int = 0
    resends: int = 0
    head: str = GENESIS
    business_date: str | None = None
    lanes: dict[str, int] = field(default_factory=dict)  # topic -> next offset accounted for


@dataclass(slots=True)
class Report:
    partitions: list[PartitionSummary] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    records: Mapping[int, Sequence[Stored]],
    keys: Sequence[Ed25519PublicKey],
    *,
    lane_ends: Mapping[tuple[str, int], int] | None = None,
) -> Report:
    """Check every partition's chain; ``lane_ends`` (input end offsets): all must be audited."""
    trusted = {key_id(k): k for k in keys}
    report = Report()
    for p in sorted(records):
        summary = PartitionSummary(p)
        report.partitions.append(summary)
        problem = _chain(p, list(records[p]), trusted, summary)
        if problem is None:
            problem = _lanes_complete(p, summary, lane_ends)
        if problem is not None:
            report.problems.append(problem)
    return report


def _decode(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) and canonical(obj) == raw else None


def _chain(
    p: int, stored: list[Stored], trusted: Mapping[str, Ed25519PublicKey], s: PartitionSummary
) -> Problem | None:
    hashes: list[str] = []  # by seq
    offsets: list[int] = []  # audit offset of each seq
    lanes: dict[str, dict[int, int]] = {}  # topic -> input offset -> seq accounting for it
    prev_offset: int | None = None
    for i, item in enumerate(stored):
        if prev_offset is not None and item.offset != prev_offset + 1:
            missing = f"{prev_offset + 1}..{item.offset - 1}"
            return Problem(p, item.offset, None, f"audit offsets {missing} missing (deleted)")
        prev_offset = item.offset
        raw = item.value or b""
        digest = sha256_hex(raw)
        rec = _decode(item.value)
        if rec is None:
            return Problem(p, item.offset, None, "not a canonical JSON object (altered)")
        seq = rec.get("seq")
        expected = len(hashes)
        if isinstance(seq, int) and 0 <= seq < expected and hashes[seq] == digest:
            s.resends += 1  # the same bytes again: a producer retry
            continue
        if rec.get("partition") != p:
            return Problem(p, item.offset, _int(seq), f"names partition {rec.get('partition')!r}")
        if seq != expected:
            return _misplaced(p, item, rec, expected, hashes, stored[i + 1 :])
        if rec.get("prev") != (hashes[-1] if hashes else GENESIS):
            return _broken_link(p, stored, i, offsets, hashes, digest)
        kind = rec.get("kind")
        if kind == "checkpoint":
            bad = _checkpoint(rec, trusted)
            if bad:
                return Problem(p, item.offset, seq, bad)
            s.checkpoints += 1
        elif kind == "input":
            s.inputs += 1
            s.business_date = rec.get("business_date")
            bad = _account(lanes, str(rec.get("topic")), rec.get("offset"), seq)
            if bad:
                return Problem(p, item.offset, seq, bad)
        elif kind == "marks":
            s.marks += 1
            for topic, offset in rec.get("marks") or []:
                bad = _account(lanes, str(topic), offset, seq)
                if bad:
                    return Problem(p, item.offset, seq, bad)
        else:
            return Problem(p, item.offset, seq, f"unknown kind {kind!r}")
        hashes.append(digest)
        offsets.append(item.offset)
        s.records += 1
        s.head = digest
    return _lane_gaps(p, lanes, offsets, s)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _misplaced(
    p: int,
    item: Stored,
    rec: dict[str, Any],
    expected: int,
    hashes: list[str],
    rest: list[Stored],
) -> Problem:
    seq = rec.get("seq")
    if rec.get("prev") == (hashes[-1] if hashes else GENESIS):
        return Problem(p, item.offset, _int(seq), f"seq altered ({seq!r}, {expected} expected)")
    later = [x for x in rest if (d := _decode(x.value)) is not None and d.get("seq") == expected]
    if later:
        return Problem(
            p,
            item.offset,
            _int(seq),
            f"reordered: seq {seq} comes before seq {expected} (at offset {later[0].offset})",
        )
    return Problem(
        p, item.offset, _int(seq), f"record seq {expected} missing (deleted) before this one"
    )


def _broken_link(
    p: int, stored: list[Stored], i: int, offsets: list[int], hashes: list[str], digest: str
) -> Problem:
    """Record i does not name the hash of record i-1: which of the two was altered?

    If record i's own hash is what its successor names, record i is intact and i-1 was
    altered; otherwise record i was (its ``prev`` field, or more).
    """
    nxt = _decode(stored[i + 1].value) if i + 1 < len(stored) else None
    seq = len(hashes)
    if nxt is not None and nxt.get("prev") == digest and hashes:
        return Problem(
            p,
            offsets[-1],
            seq - 1,
            "altered: its hash is not the one the next record names as prev",
        )
    return Problem(p, stored[i].offset, seq, "altered: prev is not the hash of the record before")


def _checkpoint(rec: dict[str, Any], trusted: Mapping[str, Ed25519PublicKey]) -> str | None:
    kid = rec.get("key_id")
    key = trusted.get(str(kid))
    if key is None:
        return f"checkpoint signed by an untrusted key {kid!r}"
    try:
        signature = bytes.fromhex(str(rec.get("signature")))
    except ValueError:
        return "checkpoint signature is not hex"
    message = checkpoint_message(
        int(rec["partition"]), int(rec["seq"]), str(rec["prev"]), rec.get("business_date")
    )
    if not verifies(key, signature, message):
        return "checkpoint signature does not verify (forged or altered)"
    return None


def _account(lanes: dict[str, dict[int, int]], topic: str, offset: Any, seq: int) -> str | None:
    if not isinstance(offset, int):
        return f"input offset {offset!r} is not an integer"
    lane = lanes.setdefault(topic, {})
    if offset in lane:
        return f"{topic} offset {offset} accounted for twice (first by seq {lane[offset]})"
    lane[offset] = seq
    return None


def _lane_gaps(
    p: int, lanes: dict[str, dict[int, int]], offsets: list[int], s: PartitionSummary
) -> Problem | None:
    for topic in sorted(lanes):
        lane = lanes[topic]
        ordered = sorted(lane)
        expected = 0
        for offset in ordered:
            if offset != expected:
                seq = lane[offset]
                return Problem(
                    p,
                    offsets[seq] if seq < len(offsets) else None,
                    seq,
                    f"{topic}/{p} offsets {expected}..{offset - 1} not accounted for "
                    "(inputs never audited)",
                )
            expected = offset + 1
        s.lanes[topic] = expected
    return None


def _lanes_complete(
    p: int, s: PartitionSummary, lane_ends: Mapping[tuple[str, int], int] | None
) -> Problem | None:
    if lane_ends is None:
        return None
    for (topic, partition), end in sorted(lane_ends.items()):
        if partition != p:
            continue
        done = s.lanes.get(topic, 0)
        if done < end:
            return Problem(
                p, None, None, f"{topic}/{p} offsets {done}..{end - 1} not audited (yet)"
            )
    return None
