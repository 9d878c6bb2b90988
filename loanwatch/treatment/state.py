"""One loan's treatment state: its segment, arm, path progress and the context rules read.

A frozen record with a JSON codec (the live worker stores it beside the loan, keyed
``treatment/<loan_id>`` in the partition's meta table). No behaviour beyond encoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from loanwatch.treatment.segments import LoanContext


@dataclass(frozen=True, slots=True)
class TreatmentState:
    loan_id: str
    borrower_id: str
    segment: str | None = None
    previous: str | None = None  # the segment before the last change
    since: date | None = None  # the business date the loan entered its segment (day 0)
    experiment: str | None = None
    arm: str | None = None
    path: str | None = None
    done: int = 0  # actions of the path already taken
    ctx: LoanContext = field(default_factory=LoanContext)
    wake: date | None = None  # the next date the tracker must look at the loan

    def to_json(self) -> dict[str, Any]:
        return {
            "loan_id": self.loan_id,
            "borrower_id": self.borrower_id,
            "segment": self.segment,
            "previous": self.previous,
            "since": self.since.isoformat() if self.since else None,
            "experiment": self.experiment,
            "arm": self.arm,
            "path": self.path,
            "done": self.done,
            "ctx": {
                "broken_promises": self.ctx.broken_promises,
                "hardship": self.ctx.hardship,
                "unanswered": self.ctx.unanswered,
                "reached": self.ctx.reached,
                "early_warning": self.ctx.early_warning,
            },
            "wake": self.wake.isoformat() if self.wake else None,
        }


def _date(raw: Any) -> date | None:
    return date.fromisoformat(raw) if isinstance(raw, str) else None


def state_from_json(doc: dict[str, Any]) -> TreatmentState:
    ctx = doc.get("ctx") or {}
    return TreatmentState(
        loan_id=str(doc["loan_id"]),
        borrower_id=str(doc["borrower_id"]),
        segment=doc.get("segment"),
        previous=doc.get("previous"),
        since=_date(doc.get("since")),
        experiment=doc.get("experiment"),
        arm=doc.get("arm"),
        path=doc.get("path"),
        done=int(doc.get("done", 0)),
        ctx=LoanContext(
            broken_promises=int(ctx.get("broken_promises", 0)),
            hardship=bool(ctx.get("hardship", False)),
            unanswered=int(ctx.get("unanswered", 0)),
            reached=bool(ctx.get("reached", False)),
            early_warning=ctx.get("early_warning"),
        ),
        wake=_date(doc.get("wake")),
    )


def encode_state(state: TreatmentState, partition: int | None = None) -> bytes:
    doc = state.to_json()
    if partition is not None:
        doc["partition"] = partition
    return orjson.dumps(doc)


def decode_state(raw: bytes) -> TreatmentState:
    return state_from_json(orjson.loads(raw))
