"""The audit chain, its verification and the live trail's restart rule, without Kafka."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from loanwatch.audit import keys
from loanwatch.audit.chain import GENESIS, Chain, ChainHead, canonical, sha256_hex
from loanwatch.audit.kafka_io import Stored
from loanwatch.audit.trail import AuditTrail, head_key
from loanwatch.audit.verify import verify
from loanwatch.ledger.policy import Policy

pytestmark = pytest.mark.unit

KEY = Ed25519PrivateKey.generate()
SIGNER = keys.Signer(KEY)


def _chain(days: list[str], marks_at: int | None = None, every: int = 1000) -> list[Stored]:
    chain = Chain(ChainHead(0), SIGNER, every)
    for i, day in enumerate(days):
        chain.input(
            topic="loan.payments",
            offset=i,
            ts=1000 + i,
            value=f'{{"n":{i}}}'.encode(),
            loan_id="L1",
            state_sha256="ab" * 32,
            alerts=[],
            dead_letters=[],
            business_date=day,
        )
        if marks_at == i:
            chain.marks([("loan.clock", 0), ("loan.clock", 1)])
    return [Stored(0, o, 0, None, v) for o, v in enumerate(chain.take())]


def _problems(stored: list[Stored], key: Any = None) -> list[str]:
    report = verify({0: stored}, [key or KEY.public_key()])
    return [str(p) for p in report.problems]


def test_records_link_by_hash_and_checkpoints_close_each_day() -> None:
    stored = _chain(["2026-01-01", "2026-01-01", "2026-01-02", "2026-01-03"])
    records = [orjson.loads(s.value or b"") for s in stored]
    assert [r["kind"] for r in records] == [
        "input",
        "input",
        "checkpoint",
        "input",
        "checkpoint",
        "input",
    ]
    assert records[0]["prev"] == GENESIS
    for before, after, rec in zip(stored, stored[1:], records[1:], strict=False):
        assert rec["prev"] == sha256_hex(before.value or b"")
        assert after.value == canonical(rec)
    assert [r["seq"] for r in records] == list(range(6))
    assert records[2]["business_date"] == "2026-01-01"  # the day it closes
    assert _problems(stored) == []


def test_a_checkpoint_every_n_records() -> None:
    stored = _chain(["2026-01-01"] * 7, every=3)
    kinds = [orjson.loads(s.value or b"")["kind"] for s in stored]
    assert kinds.count("checkpoint") == 2


def test_each_tampering_is_named() -> None:
    stored = _chain([f"2026-01-{d:02d}" for d in (1, 1, 1, 2, 2, 2)], marks_at=1)
    assert _problems(stored) == []
    k = next(i for i, s in enumerate(stored) if i >= 4 and b'"kind":"input"' in (s.value or b""))
    flipped = bytearray(stored[k].value or b"")
    at = bytes(flipped).index(b'"input_sha256":"') + 20
    flipped[at] = ord("0") if flipped[at] != ord("0") else ord("1")
    copy = [*stored[:k], Stored(0, k, 0, None, bytes(flipped)), *stored[k + 1 :]]
    assert _problems(copy) == [
        f"partition 0 offset {k} seq {k}: altered: its hash is not the "
        "one the next record names as prev"
    ]
    deleted = [Stored(0, o, 0, None, s.value) for o, s in enumerate(stored[:k] + stored[k + 1 :])]
    assert f"record seq {k} missing (deleted)" in _problems(deleted)[0]
    swapped = [*stored[:k], stored[k + 1], stored[k], *stored[k + 2 :]]
    swapped = [Stored(0, o, 0, None, s.value) for o, s in enumerate(swapped)]
    assert f"reordered: seq {k + 1} comes before seq {k}" in _problems(swapped)[0]
    other = Ed25519PrivateKey.generate()
    assert "untrusted key" in _problems(stored, other.public_key())[0]
    gap = [*stored[:k], *(Stored(0, s.offset + 1, 0, None, s.value) for s in stored[k:])]
    assert f"audit offsets {k}..{k} missing" in _problems(gap)[0]


def test_a_retried_copy_is_counted_and_a_lane_gap_is_named() -> None:
    stored = _chain(["2026-01-01"] * 3)
    again = [*stored[:2], stored[1], *stored[2:]]
    again = [Stored(0, o, 0, None, s.value) for o, s in enumerate(again)]
    report = verify({0: again}, [KEY.public_key()])
    assert report.ok and report.partitions[0].resends == 1
    chain = Chain(ChainHead(0), SIGNER)
    for offset in (0, 1, 3):
        chain.input(
            topic="loan.payments",
            offset=offset,
            ts=0,
            value=b"{}",
            loan_id=None,
            state_sha256=None,
            alerts=[],
            dead_letters=[],
            business_date=None,
        )
    holes = [Stored(0, o, 0, None, v) for o, v in enumerate(chain.take())]
    assert "loan.payments/0 offsets 2..2 not accounted for" in _problems(holes)[0]
    report = verify({0: stored}, [KEY.public_key()], lane_ends={("loan.payments", 0): 5})
    assert "offsets 3..4 not audited (yet)" in str(report.problems[0])


@dataclass
class Inbound:
    topic: str
    partition: int
    offset: int
    timestamp: float
    value: bytes | None


@dataclass
class Engine:
    clock: Any = date(2026, 1, 1)
    loans: dict[str, Any] = field(default_factory=dict)


class Bulk:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def add(self, topic: str, partition: int, key: Any, value: Any, *a: Any, **k: Any) -> None:
        self.sent.append(value)


class Heads:
    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def set(self, partition: int, key: str, value: bytes) -> None:
        self.values[key] = value


class Tail:
    def __init__(self, topic: list[bytes]) -> None:
        self.topic = topic

    async def read(self, partition: int, start: int) -> tuple[list[bytes], int]:
        return self.topic[start:], len(self.topic)


def _trail(topic: list[bytes], heads: Heads, bulk: Bulk) -> AuditTrail:
    return AuditTrail("loan.audit", SIGNER, Policy(), outputs=bulk, heads=heads, tail=Tail(topic))


async def test_a_crash_re_read_adds_no_record_and_the_chain_goes_on_from_the_topic() -> None:
    topic: list[bytes] = []
    heads, bulk = Heads(), Bulk()
    trail = _trail(topic, heads, bulk)
    await trail.prepare(0, lambda: None)
    engine = Engine()
    for offset in range(3):
        trail.record(Inbound("loan.payments", 0, offset, 1.0, b"{}"), [], [], engine)
    trail.flush(0)
    topic.extend(bulk.sent)  # acknowledged (phase 0)...
    stored_head = heads.values[head_key(0)]
    # ...a second batch is sent too, but the crash comes before its meta record is stored
    for offset in range(3, 5):
        trail.record(Inbound("loan.payments", 0, offset, 1.0, b"{}"), [], [], engine)
    trail.marks(0, [("loan.clock", 0)])
    bulk.sent.clear()
    trail.flush(0)
    topic.extend(bulk.sent)

    restarted, bulk2 = _trail(topic, Heads(), Bulk()), Bulk()
    restarted.outputs = bulk2
    await restarted.prepare(0, lambda: stored_head)
    for offset in range(3, 6):  # the re-read, then a new record
        restarted.record(Inbound("loan.payments", 0, offset, 1.0, b"{}"), [], [], engine)
    restarted.marks(0, [("loan.clock", 0), ("loan.clock", 1)])
    restarted.flush(0)
    assert restarted.skipped == 3 and restarted.forks == 0
    topic.extend(bulk2.sent)
    assert len(bulk2.sent) == 2  # offset 5, and the new mark
    stored = [Stored(0, o, 0, None, v) for o, v in enumerate(topic)]
    assert _problems(stored) == []


def test_keys_are_made_once_and_named_by_their_public_key(tmp_path: Path) -> None:
    path = tmp_path / "k" / "signing.pem"
    assert keys.generate(path) is True
    first = path.read_bytes()
    assert keys.generate(path) is False and path.read_bytes() == first
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    public = keys.load_public(keys.public_path(path))
    assert keys.key_id(public) == keys.Signer.from_file(path).key_id
    with pytest.raises(keys.AuditKeyError):
        keys.generate(path, exist_ok=False)
    with pytest.raises(keys.AuditKeyError, match="does not exist"):
        keys.load_private(tmp_path / "missing.pem")


async def test_inputs_re_read_from_an_older_committed_offset_add_no_record() -> None:
    """Offsets are committed later than the state: a restart re-reads records before the head."""
    topic: list[bytes] = []
    heads, bulk = Heads(), Bulk()
    trail = _trail(topic, heads, bulk)
    await trail.prepare(0, lambda: None)
    for batch in (range(0, 3), range(3, 6)):
        for offset in batch:
            trail.record(Inbound("loan.payments", 0, offset, 1.0, b"{}"), [], [], Engine())
        trail.flush(0)
    topic.extend(bulk.sent)
    restarted, bulk2 = _trail(topic, Heads(), Bulk()), Bulk()
    restarted.outputs = bulk2
    await restarted.prepare(0, lambda: heads.values[head_key(0)])  # everything stored
    for offset in range(0, 7):  # the committed offset was 0
        restarted.record(Inbound("loan.payments", 0, offset, 1.0, b"{}"), [], [], Engine())
    restarted.flush(0)
    assert restarted.skipped == 6 and len(bulk2.sent) == 1
    topic.extend(bulk2.sent)
    assert _problems([Stored(0, o, 0, None, v) for o, v in enumerate(topic)]) == []


def test_the_archive_gives_back_what_kafka_held_by_business_day(tmp_path: Path) -> None:
    from loanwatch.audit.archive import read_audit, read_inputs, write_archive

    stored = _chain(["2026-01-01", "2026-01-01", "2026-01-02"], marks_at=0)
    inputs = {
        0: {
            ("loan.payments", i): Stored(0, i, 1000 + i, b"L1", f'{{"n":{i}}}'.encode())
            for i in range(3)
        }
    }
    write_archive(tmp_path, {0: stored}, inputs)
    days = sorted(d.name for d in (tmp_path / "audit").iterdir())
    assert days == ["date=2026-01-01", "date=2026-01-02"]
    assert [s.value for s in read_audit(tmp_path)[0]] == [s.value for s in stored]
    assert read_inputs(tmp_path, 0) == inputs[0]
    assert verify(read_audit(tmp_path), [KEY.public_key()]).ok


def test_the_live_trail_hashing_the_engines_own_views_writes_the_same_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The live trail hashes the view the engine already made (``reuse_views``); replay makes
    each from scratch. On portfolio-101 every record is byte-identical both ways, and the
    engine's view is what the live trail hashed for nearly every input (else it proves
    nothing)."""
    from loanwatch.ledger.loan import LoanViews

    from ..audit_log import audited

    log = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / "portfolio-101"
    lines = (log / "events.jsonl").read_bytes().splitlines()
    made: list[int] = []
    original = LoanViews.current

    def counted(self: LoanViews, *args: Any) -> Any:
        found = original(self, *args)
        made.append(found is not None)
        return found

    monkeypatch.setattr(LoanViews, "current", counted)
    fresh, _ = audited(lines)
    assert not made  # replay's way: views made from scratch
    live, _ = audited(lines, reuse_views=True)
    assert {p: [s.value for s in v] for p, v in live.items()} == {
        p: [s.value for s in v] for p, v in fresh.items()
    }
    assert len(made) > 100 and sum(made) > 0.9 * len(made), (sum(made), len(made))
