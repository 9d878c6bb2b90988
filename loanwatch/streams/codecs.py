"""Codecs for state kept in Kafka: a loan's hot record, its terms and its history entries.

FORMAT 2, a fixed binary layout (``struct``, little-endian), versioned by its first byte:

- the **hot record** (:func:`encode_loan`): identity, cursor, what is paid on the cursor's
  installment, credit, rule memory, last snapshot, open promises, merge position. About
  130 bytes for a typical loan, whatever its age or schedule length: no schedule, no
  payments, no ids in it;
- the **terms** (:func:`encode_terms`): one record per opening or revision, written once;
  due dates as int32 ordinals and amounts as int64 cents, in arrays;
- **history entries** and **applied-id marks** (:func:`encode_entry`, :func:`encode_applied`),
  one small immutable record each (JSON for entries: read only by reversals).

A FORMAT 1 record (the JSON object of the earlier code: it starts with ``{``) is still read:
:func:`migrate_legacy` turns it into the hot state, its terms, its history and its applied
ids, so a running deployment upgrades in place (the store rewrites it in FORMAT 2 with its
next flush). Nothing here executes code on decode, and no cache lives at module level.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from loanwatch.ledger.history import AppliedAt, Entry, Paid, Reversal, Revised
from loanwatch.ledger.loan import ACTIVE, LoanState, Promise, rebuild
from loanwatch.ledger.policy import CLASSES, Policy
from loanwatch.ledger.records import InstallmentTerms
from loanwatch.ledger.terms import Terms, make_terms, terms_from_arrays

FORMAT = 2
LEGACY_FORMAT = 1
_V2 = 2
_STATUSES = (ACTIVE, "closed", "written_off", "sold")
_STATUS_CODE = {s: i for i, s in enumerate(_STATUSES)}
_CLASS_CODE = {c: i for i, c in enumerate(CLASSES)}
_NONE = 255
# rev, cursor, paid principal/interest/fee, credit, step, entries, last dpd, then the dates
# closed_on, watch_until, obs_end, current_since, evaluated_on as ordinals (0: none).
_FIXED = struct.Struct("<IIqqqqIIIiiiii")
_HEAD = struct.Struct("<BBBBB")  # version, status, last class, restructure floor, flags
_POSITION = struct.Struct("<qHq")
_PROMISE = struct.Struct("<qiIq")  # amount, promised date, step, paid
_TERMS_HEAD = struct.Struct("<BI")
_LITTLE = sys.byteorder == "little"


class StateFormatError(ValueError):
    """A stored record is in no format this version reads: upgrade loanwatch, or restore
    the tables from the changelog of a version that wrote it."""


def _ordinal(day: date | None) -> int:
    return day.toordinal() if day is not None else 0


def _day(ordinal: int) -> date | None:
    return date.fromordinal(ordinal) if ordinal else None


def _put_text(out: bytearray, text: str) -> None:
    raw = text.encode()
    if len(raw) < 255:
        out.append(len(raw))
    else:
        out.append(255)
        out += struct.pack("<I", len(raw))
    out += raw


def _get_text(raw: bytes, at: int) -> tuple[str, int]:
    size = raw[at]
    at += 1
    if size == 255:
        (size,) = struct.unpack_from("<I", raw, at)
        at += 4
    return raw[at : at + size].decode(), at + size


# --- the hot record ---


def encode_loan(loan: LoanState) -> bytes:
    """The loan's hot state (FORMAT 2); its terms and history are separate records."""
    floor = loan.restructure_floor
    flags = loan.npl | (loan.cross_default << 1) | ((loan.position is not None) << 2)
    out = bytearray(
        _HEAD.pack(
            _V2,
            _STATUS_CODE[loan.status],
            _CLASS_CODE[loan.last_class],
            _CLASS_CODE[floor] if floor is not None else _NONE,
            flags,
        )
    )
    for text in (loan.loan_id, loan.borrower_id, loan.product, loan.region, loan.currency):
        _put_text(out, text)
    _put_text(out, loan.last_bucket)
    out += _FIXED.pack(
        loan.rev,
        loan.cursor,
        loan.paid_principal,
        loan.paid_interest,
        loan.paid_fee,
        loan.credit,
        loan.step,
        loan.entries,
        loan.last_dpd,
        _ordinal(loan.closed_on),
        _ordinal(loan.watch_until),
        _ordinal(loan.obs_end),
        _ordinal(loan.current_since),
        _ordinal(loan.evaluated_on),
    )
    if loan.position is not None:
        out += _POSITION.pack(*loan.position)
    out.append(len(loan.promises))
    for p in loan.promises:
        _put_text(out, p.promise_id)
        out += _PROMISE.pack(p.amount, p.promised_date.toordinal(), p.step, p.paid)
    return bytes(out)


def peek_borrower(raw: bytes) -> str:
    """The borrower id of a hot record (FORMAT 2 or 1) without decoding the rest."""
    if is_legacy(raw):
        return str(orjson.loads(raw)["id"][1])
    at = _HEAD.size
    _, at = _get_text(raw, at)
    borrower, _ = _get_text(raw, at)
    return borrower


def is_legacy(raw: bytes) -> bool:
    """A FORMAT 1 record (a JSON object)."""
    return raw[:1] == b"{"


def decode_loan(raw: bytes, terms_of: Callable[[int], Terms]) -> LoanState:
    """Inverse of :func:`encode_loan`; ``terms_of(rev)`` reads the loan's terms record."""
    if not raw or raw[0] != _V2:
        version = "1 (JSON; use migrate_legacy)" if is_legacy(raw) else repr(raw[:1])
        raise StateFormatError(f"unknown loan state format {version}")
    _, status, last_class, floor, flags = _HEAD.unpack_from(raw, 0)
    at = _HEAD.size
    texts: list[str] = []
    for _ in range(6):
        text, at = _get_text(raw, at)
        texts.append(text)
    loan_id, borrower_id, product, region, currency, bucket = texts
    (rev, cursor, pp, pi, pf, credit, step, entries, dpd, closed, watch, obs, since, evaluated) = (
        _FIXED.unpack_from(raw, at)
    )
    at += _FIXED.size
    position: tuple[int, int, int] | None = None
    if flags & 4:
        ts, rank, offset = _POSITION.unpack_from(raw, at)
        position = (ts, rank, offset)
        at += _POSITION.size
    promises: list[Promise] = []
    count = raw[at]
    at += 1
    for _ in range(count):
        pid, at = _get_text(raw, at)
        amount, promised, pstep, paid = _PROMISE.unpack_from(raw, at)
        at += _PROMISE.size
        promises.append(Promise(pid, amount, date.fromordinal(promised), pstep, paid))
    return LoanState(
        loan_id=loan_id,
        borrower_id=borrower_id,
        product=product,
        region=region,
        currency=currency,
        terms=terms_of(rev),
        rev=rev,
        cursor=cursor,
        paid_principal=pp,
        paid_interest=pi,
        paid_fee=pf,
        credit=credit,
        promises=tuple(promises),
        status=_STATUSES[status],
        closed_on=_day(closed),
        step=step,
        watch_until=_day(watch),
        obs_end=_day(obs),
        restructure_floor=CLASSES[floor] if floor != _NONE else None,
        npl=bool(flags & 1),
        current_since=_day(since),
        cross_default=bool(flags & 2),
        last_dpd=dpd,
        last_bucket=bucket,
        last_class=CLASSES[last_class],
        evaluated_on=_day(evaluated),
        entries=entries,
        position=position,
    )


# --- terms ---


def _array(code: str, raw: bytes | memoryview) -> array[int]:
    values = array(code)
    values.frombytes(raw)
    if not _LITTLE:  # pragma: no cover - stored little-endian
        values.byteswap()
    return values


def _le(values: array[int]) -> bytes:
    if _LITTLE:
        return values.tobytes()
    swapped = array(values.typecode, values)  # pragma: no cover
    swapped.byteswap()  # pragma: no cover
    return swapped.tobytes()  # pragma: no cover


def encode_terms(terms: Terms) -> bytes:
    """One schedule: n, then due ordinals (int32) and principal, interest, fee (int64)."""
    dues = terms.dues if terms.dues.typecode == "i" else array("i", terms.dues)
    return b"".join(
        (
            _TERMS_HEAD.pack(_V2, len(dues)),
            _le(dues),
            _le(terms.principal),
            _le(terms.interest),
            _le(terms.fee),
        )
    )


def decode_terms(raw: bytes) -> Terms:
    version, n = _TERMS_HEAD.unpack_from(raw, 0)
    if version != _V2:
        raise StateFormatError(f"unknown terms format {version}")
    view = memoryview(raw)
    at = _TERMS_HEAD.size
    dues = _array("i", view[at : at + 4 * n])
    at += 4 * n
    amounts = []
    for _ in range(3):
        amounts.append(_array("q", view[at : at + 8 * n]))
        at += 8 * n
    return terms_from_arrays(dues, amounts[0], amounts[1], amounts[2])


# --- history entries and applied ids ---


def encode_entry(entry: Entry) -> bytes:
    if isinstance(entry, Paid):
        body: list[Any] = ["p", entry.payment_id, entry.amount, entry.step, entry.day.toordinal()]
        if not entry.in_ledger or entry.reversed:
            body += [entry.in_ledger, entry.reversed]
        return orjson.dumps(body)
    if isinstance(entry, Revised):
        return orjson.dumps(["v", entry.rev])
    return orjson.dumps(["r", entry.payment_id])


def decode_entry(raw: bytes) -> Entry:
    body = orjson.loads(raw)
    kind = body[0]
    if kind == "p":
        flags = body[5:7] if len(body) > 5 else [True, False]
        return Paid(
            body[1], body[2], body[3], date.fromordinal(body[4]), bool(flags[0]), bool(flags[1])
        )
    if kind == "v":
        return Revised(int(body[1]))
    if kind == "r":
        return Reversal(body[1])
    raise StateFormatError(f"unknown history entry {kind!r}")


def encode_applied(at: AppliedAt) -> bytes:
    """An applied-id mark: empty, or the merge position of the record that applied it."""
    return _POSITION.pack(*at) if at else b""


def decode_applied(raw: bytes) -> AppliedAt:
    return tuple(_POSITION.unpack(raw)) if raw else ()


# --- FORMAT 1 (JSON) records: the migration ---


@dataclass(slots=True)
class Migrated:
    """What one FORMAT 1 record holds, in FORMAT 2's pieces."""

    loan: LoanState
    terms: list[Terms] = field(default_factory=list)  # by revision number, 0 the opening
    entries: list[Entry] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)


def _legacy_terms(rows: list[list[Any]]) -> Terms:
    return make_terms(
        [InstallmentTerms(r[0], date.fromisoformat(r[1]), r[2], r[3], r[4]) for r in rows]
    )


def migrate_legacy(raw: bytes, policy: Policy | None = None) -> Migrated:
    """A FORMAT 1 record (written by loanwatch before FORMAT 2) as FORMAT 2's pieces.

    The position is rebuilt from the opening and the history with the new arithmetic (a
    FORMAT 1 ledger was, by construction, the fold of its history over its opening: a
    property test held it so). Each promise's running paid amount is computed from the
    record's payments as the old code computed it at the deadline.
    """
    b = orjson.loads(raw)
    if b.get("v") != LEGACY_FORMAT:
        raise StateFormatError(f"unknown loan state format {b.get('v')!r}")
    policy = policy or Policy()
    loan_id, borrower_id, product, region, currency = b["id"]
    terms = [_legacy_terms(b["opening"])]
    payments = [(p[0], p[1], p[2], date.fromisoformat(p[3]), bool(p[4])) for p in b["payments"]]
    matched = [False] * len(payments)
    entries: list[Entry] = []
    ops: list[tuple[str, int] | int] = []
    for op in b["history"]:
        if op[0] == "revise":
            terms.append(_legacy_terms(op[1]))
            entries.append(Revised(len(terms) - 1))
            ops.append(len(terms) - 1)
            continue
        pid, amount = op[1], op[2]
        k = _match(payments, matched, pid, amount)
        if k is None:  # pragma: no cover - a FORMAT 1 record always lists its payments
            raise StateFormatError(f"payment {pid!r} of loan {loan_id!r} is not in its list")
        matched[k] = True
        _, _, step, day, rev_flag = payments[k]
        entries.append(Paid(pid, amount, step, day, True, rev_flag))
        ops.append((pid, amount))
    gone = [
        Paid(p[0], p[1], p[2], p[3], False, True) for k, p in enumerate(payments) if not matched[k]
    ]
    entries = [*gone, *entries]
    promises = tuple(
        Promise(
            pr[0],
            pr[1],
            date.fromisoformat(pr[2]),
            pr[3],
            sum(
                p[1]
                for p in payments
                if p[2] > pr[3] and p[3] <= date.fromisoformat(pr[2]) and not p[4]
            ),
        )
        for pr in b["promises"]
    )
    last = b["last"]
    loan = LoanState(
        loan_id=loan_id,
        borrower_id=borrower_id,
        product=product,
        region=region,
        currency=currency,
        terms=terms[-1],
        rev=len(terms) - 1,
        promises=promises,
        status=b["status"],
        closed_on=_iso(b["closed_on"]),
        step=b["step"],
        watch_until=_iso(b["watch_until"]),
        obs_end=_iso(b["obs_end"]),
        restructure_floor=b["restructure_floor"],
        npl=b["npl"],
        current_since=_iso(b["current_since"]),
        cross_default=b["cross_default"],
        last_dpd=last[0],
        last_bucket=last[1],
        last_class=last[2],
        evaluated_on=_iso(b["evaluated_on"]),
        entries=len(entries),
        position=_position(b.get("pos")),
    )
    rebuild(loan, lambda rev: terms[rev], ops, policy)
    return Migrated(loan, terms, entries, sorted(b["applied"]))


def _match(
    payments: list[tuple[str, int, int, date, bool]], matched: list[bool], pid: str, amount: int
) -> int | None:
    """The payment a FORMAT 1 ledger operation stands for: not reversed first, oldest first."""
    for want_reversed in (False, True):
        for k, p in enumerate(payments):
            if not matched[k] and p[0] == pid and p[1] == amount and p[4] == want_reversed:
                return k
    return None


def _iso(value: str | None) -> date | None:
    return date.fromisoformat(value) if value is not None else None


def _position(raw: Any) -> tuple[int, int, int] | None:
    if not raw:
        return None
    ts, rank, offset = raw
    return (int(ts), int(rank), int(offset))
