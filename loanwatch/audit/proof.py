"""A loan's chain proof: its audit records and the hash links to a signed checkpoint (pure).

For each audit record about the loan (a *member*), the proof carries the records of the chain
from it up to and including the next checkpoint, as their exact bytes (canonical JSON text).
Each record's hash is named as ``prev`` by the one after it, and the checkpoint's Ed25519
signature covers its own ``seq`` and the hash of the record before it: so the member is the
record at that ``seq`` of the chain the key holder signed, and cannot have been changed
without breaking a link or the signature. Members after the chain's last checkpoint end at
the head instead, and are reported ``unsigned`` (protected by the links only, like every
record there: docs/audit.md).

:func:`check_proof` also ties the history's steps to the members: the input's SHA-256, the
loan's state hash (of the step's ``state``), the alert ids and dead-letter reasons.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from loanwatch.audit.chain import GENESIS, canonical, checkpoint_message, sha256_hex
from loanwatch.audit.keys import verifies

FORMAT = "loanwatch-loan-proof-v1"


def make_proof(partition: int, raws: Sequence[bytes], members: Sequence[int]) -> dict[str, Any]:
    """The proof of ``members`` (seqs) from the chain ``raws`` (record bytes, index = seq)."""
    kinds = [orjson.loads(r).get("kind") for r in raws]
    segments: list[list[str]] = []
    covered = -1  # last seq in a segment so far
    for m in sorted(set(members)):
        if m <= covered:
            continue
        end = m
        while end < len(raws) - 1 and not (end > m and kinds[end] == "checkpoint"):
            end += 1
        segments.append([r.decode() for r in raws[m : end + 1]])
        covered = end
    last = max((i for i, k in enumerate(kinds) if k == "checkpoint"), default=-1)
    unsigned = [m for m in sorted(set(members)) if m > last]
    return {
        "format": FORMAT,
        "partition": partition,
        "members": sorted(set(members)),
        "segments": segments,
        "head": {"seq": len(raws) - 1, "hash": sha256_hex(raws[-1]) if raws else GENESIS},
        "unsigned": unsigned,
    }


@dataclass(slots=True)
class ProofCheck:
    problems: list[str] = field(default_factory=list)
    signed: list[int] = field(default_factory=list)  # members under a verified checkpoint
    unsigned: list[int] = field(default_factory=list)  # members between the last one and the head

    @property
    def ok(self) -> bool:
        return not self.problems


def check_proof(history: Mapping[str, Any], trusted: Mapping[str, Ed25519PublicKey]) -> ProofCheck:
    """Check ``history["proof"]`` and that ``history["steps"]`` are what its members say."""
    out = ProofCheck()
    proof = history.get("proof") or {}
    if proof.get("format") != FORMAT:
        out.problems.append(f"unknown proof format {proof.get('format')!r}")
        return out
    p = proof.get("partition")
    by_seq: dict[int, dict[str, Any]] = {}
    for i, segment in enumerate(proof.get("segments") or []):
        bad = _segment(p, segment, trusted, proof.get("head") or {}, by_seq, out)
        if bad:
            out.problems.append(f"segment {i}: {bad}")
    members = [int(m) for m in proof.get("members") or []]
    for m in members:
        if m not in by_seq:
            out.problems.append(f"member seq {m} is in no segment")
    out.signed = sorted(set(out.signed) & set(members))
    out.unsigned = sorted(set(out.unsigned) & set(members))
    for step in history.get("steps") or []:
        bad = _step(str(history.get("loan_id")), step, by_seq, set(members))
        if bad:
            out.problems.append(f"step seq {step.get('audit_seq')}: {bad}")
    for alert in history.get("alerts") or []:
        rec = by_seq.get(alert.get("audit_seq"))
        if rec is None or alert.get("alert_id") not in (rec.get("alerts") or []):
            out.problems.append(f"alert {alert.get('alert_id')!r} is not in its audit record")
    return out


def _segment(
    p: Any,
    segment: Sequence[str],
    trusted: Mapping[str, Ed25519PublicKey],
    head: Mapping[str, Any],
    by_seq: dict[int, dict[str, Any]],
    out: ProofCheck,
) -> str | None:
    prev_hash: str | None = None
    prev_seq: int | None = None
    seqs: list[int] = []
    rec: dict[str, Any] = {}
    for text in segment:
        raw = text.encode()
        try:
            rec = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return "a record is not JSON (altered)"
        if not isinstance(rec, dict) or canonical(rec) != raw:
            return "a record is not canonical JSON (altered)"
        seq = rec.get("seq")
        if rec.get("partition") != p or not isinstance(seq, int):
            return f"record seq {seq!r} is not of partition {p}"
        if prev_seq is not None and (seq != prev_seq + 1 or rec.get("prev") != prev_hash):
            return f"record seq {seq} does not name the hash of the record before (altered)"
        prev_hash, prev_seq = sha256_hex(raw), seq
        seqs.append(seq)
        by_seq[seq] = rec
    if not seqs:
        return "empty"
    if rec.get("kind") == "checkpoint":
        bad = _signature(rec, trusted)
        if bad:
            return bad
        out.signed.extend(seqs)
        return None
    if prev_seq != head.get("seq") or prev_hash != head.get("hash"):
        return "ends neither at a checkpoint nor at the chain head"
    out.unsigned.extend(seqs)
    return None


def _signature(rec: Mapping[str, Any], trusted: Mapping[str, Ed25519PublicKey]) -> str | None:
    key = trusted.get(str(rec.get("key_id")))
    if key is None:
        return f"checkpoint seq {rec.get('seq')} signed by an untrusted key {rec.get('key_id')!r}"
    try:
        signature = bytes.fromhex(str(rec.get("signature")))
    except ValueError:
        return f"checkpoint seq {rec.get('seq')}: signature is not hex"
    message = checkpoint_message(
        int(rec["partition"]), int(rec["seq"]), str(rec["prev"]), rec.get("business_date")
    )
    if not verifies(key, signature, message):
        return f"checkpoint seq {rec.get('seq')}: signature does not verify"
    return None


def _step(
    loan_id: str, step: Mapping[str, Any], by_seq: Mapping[int, dict[str, Any]], members: set[int]
) -> str | None:
    seq = step.get("audit_seq")
    rec = by_seq.get(seq) if isinstance(seq, int) and seq in members else None
    if rec is None or rec.get("kind") != "input":
        return "not an input record of the proof"
    if (rec.get("topic"), rec.get("offset")) != (step.get("topic"), step.get("offset")):
        return "topic/offset differ from the record's"
    if step.get("input_base64") is not None:
        value = base64.b64decode(str(step["input_base64"]))
    else:
        value = str(step.get("input") or "").encode()
    if sha256_hex(value) != rec.get("input_sha256"):
        return "the input's SHA-256 is not the record's input_sha256"
    if not set(step.get("alerts") or []) <= set(rec.get("alerts") or []):
        return "alert ids not in the record"
    if rec.get("loan_id") == loan_id and not step.get("own"):
        return "the record names the loan: its state is part of the proof (own step)"
    if step.get("own"):
        if rec.get("loan_id") != loan_id:
            return f"the record names loan {rec.get('loan_id')!r}"
        state = step.get("state")
        digest = sha256_hex(canonical(state)) if state is not None else None
        if digest != rec.get("state_sha256"):
            return "the state's hash is not the record's state_sha256"
        if list(step.get("dead_letters") or []) != list(rec.get("dead_letters") or []):
            return "dead-letter reasons differ from the record's"
    return None
