"""One loan's early-warning state: the behaviour counters the features are read from.

A frozen record with a JSON codec (the live worker stores it beside the loan, keyed
``early_warning/<loan_id>`` in the partition's meta table). Bounded: a few integers, the days
late of the last :data:`LATE_KEPT` installments and at most :data:`MONTHS_KEPT` month entries.
No behaviour beyond encoding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date
from operator import attrgetter
from typing import Any

import orjson

LATE_KEPT = 6  # days late of the most recent settled installments (newest first)
MONTHS_KEPT = 6  # the worst bucket per month, for "worst bucket in the last 6 months"


@dataclass(frozen=True, slots=True)
class Scored:
    """The last score of a loan (what ``GET /loans/{id}`` and the state file show)."""

    on: date
    due_date: date
    probability: float
    points: int
    reasons: tuple[str, ...]
    model_version: str


@dataclass(frozen=True, slots=True)
class EWState:
    loan_id: str
    borrower_id: str
    opened_on: date
    principal: int  # cents at opening (the denominator of "share of principal repaid")
    open_due: date | None = None  # due date of the oldest installment still owing (last seen)
    late: tuple[int, ...] = ()  # days late of the last settled installments, newest first
    payments: int = 0
    partial_payments: int = 0  # payments that left the oldest owing installment paid in part
    reversals: int = 0
    promises_made: int = 0
    promises_broken: int = 0
    unanswered: int = 0  # streak of unanswered contact attempts (a conversation resets it)
    signals: tuple[int, int, int] = (0, 0, 0)  # risk signals reaching the loan: low, medium, high
    # (month number, worst bucket rank in the month, bucket rank at its last change), oldest first
    months: tuple[tuple[int, int, int], ...] = ()
    carry: int = 0  # bucket rank at the end of the last month dropped from ``months``
    scored_due: date | None = None  # the due date last scored
    wake: date | None = None  # the next date to score on
    last: Scored | None = None

    def to_json(self) -> dict[str, Any]:
        last = self.last
        return {
            "loan_id": self.loan_id,
            "borrower_id": self.borrower_id,
            "opened_on": self.opened_on.isoformat(),
            "principal": self.principal,
            "open_due": _iso(self.open_due),
            "late": list(self.late),
            "payments": self.payments,
            "partial_payments": self.partial_payments,
            "reversals": self.reversals,
            "promises_made": self.promises_made,
            "promises_broken": self.promises_broken,
            "unanswered": self.unanswered,
            "signals": list(self.signals),
            "months": [list(m) for m in self.months],
            "carry": self.carry,
            "scored_due": _iso(self.scored_due),
            "wake": _iso(self.wake),
            "last": None
            if last is None
            else {
                "on": last.on.isoformat(),
                "due_date": last.due_date.isoformat(),
                "probability": last.probability,
                "points": last.points,
                "reasons": list(last.reasons),
                "model_version": last.model_version,
            },
        }


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _date(raw: Any) -> date | None:
    return date.fromisoformat(raw) if isinstance(raw, str) else None


def state_from_json(doc: dict[str, Any]) -> EWState:
    last = doc.get("last")
    sig = [int(x) for x in doc.get("signals") or (0, 0, 0)]
    return EWState(
        loan_id=str(doc["loan_id"]),
        borrower_id=str(doc["borrower_id"]),
        opened_on=date.fromisoformat(doc["opened_on"]),
        principal=int(doc["principal"]),
        open_due=_date(doc.get("open_due")),
        late=tuple(int(x) for x in doc.get("late") or ()),
        payments=int(doc.get("payments", 0)),
        partial_payments=int(doc.get("partial_payments", 0)),
        reversals=int(doc.get("reversals", 0)),
        promises_made=int(doc.get("promises_made", 0)),
        promises_broken=int(doc.get("promises_broken", 0)),
        unanswered=int(doc.get("unanswered", 0)),
        signals=(sig[0], sig[1], sig[2]),
        months=tuple((int(a), int(b), int(c)) for a, b, c in doc.get("months") or ()),
        carry=int(doc.get("carry", 0)),
        scored_due=_date(doc.get("scored_due")),
        wake=_date(doc.get("wake")),
        last=None
        if not isinstance(last, dict)
        else Scored(
            on=date.fromisoformat(last["on"]),
            due_date=date.fromisoformat(last["due_date"]),
            probability=float(last["probability"]),
            points=int(last["points"]),
            reasons=tuple(str(r) for r in last["reasons"]),
            model_version=str(last["model_version"]),
        ),
    )


def encode_state(state: EWState, partition: int | None = None) -> bytes:
    doc = state.to_json()
    if partition is not None:
        doc["partition"] = partition
    return orjson.dumps(doc)


def decode_state(raw: bytes) -> EWState:
    return state_from_json(orjson.loads(raw))


_FIELDS = tuple(f.name for f in fields(EWState))
_SETTER = {name: getattr(EWState, name).__set__ for name in _FIELDS}  # slot descriptors
_VALUES = attrgetter(*_FIELDS)


def _make_evolve() -> Callable[..., EWState]:
    """``evolve`` as straight-line code, one slot store per field (no loop, no zip): it runs
    about twice a scored or paying event, and the loop was half its cost."""
    body = [
        "def evolve(state, **changes):",
        "    new = _new(_cls)",
        "    v = _values(state)",
        "    if changes:",
        "        v = list(v)",
        "        for name, value in changes.items():",
        "            v[_index[name]] = value",
        *(f"    _set{i}(new, v[{i}])" for i in range(len(_FIELDS))),
        "    return new",
    ]
    scope: dict[str, Any] = {
        "_new": object.__new__,
        "_cls": EWState,
        "_values": _VALUES,
        "_index": {name: i for i, name in enumerate(_FIELDS)},
        **{f"_set{i}": _SETTER[name] for i, name in enumerate(_FIELDS)},
    }
    exec("\n".join(body), scope)  # generated from the dataclass's own fields
    made: Callable[..., EWState] = scope["evolve"]
    return made


#: ``dataclasses.replace`` for a state, several times faster (it runs on every event); an
#: unknown field name raises KeyError.
evolve: Callable[..., EWState] = _make_evolve()
