"""The internal messages between the ledger and borrower agents, and dead-letter records.

Plain JSON with explicit fields; amounts in cents. Pure functions, no Kafka here.
"""

from __future__ import annotations

import base64
from datetime import date
from typing import Any

import orjson

from loanwatch.ledger.borrowers import ExposureChange
from loanwatch.ledger.engine import DeadLetter
from loanwatch.ledger.records import BorrowerSignal


def exposure_message(change: ExposureChange | BorrowerSignal) -> tuple[str, bytes]:
    """(borrower key, value) of an exposure change or a borrower signal to fan out."""
    if isinstance(change, BorrowerSignal):
        body: dict[str, Any] = {
            "kind": "signal",
            "borrower_id": change.borrower_id,
            "event_id": change.event_id,
            "signal": change.signal,
            "severity": change.severity,
            "detail": change.detail,
            "business_date": change.business_date.isoformat(),
        }
        return change.borrower_id, orjson.dumps(body)
    exposure = change.exposure
    body = {
        "kind": "exposure",
        "borrower_id": change.borrower_id,
        "loan_id": change.loan_id,
        "active": exposure is not None,
        "npl": exposure.npl if exposure else False,
        "outstanding": exposure.outstanding if exposure else 0,
        "business_date": change.business_date.isoformat(),
        "cause": change.cause,
    }
    return change.borrower_id, orjson.dumps(body)


def floor_command(loan_id: str, floor: bool, share: str, day: str, cause: str) -> bytes:
    return orjson.dumps(
        {
            "kind": "floor",
            "loan_id": loan_id,
            "floor": floor,
            "share": share,
            "business_date": day,
            "cause": cause,
        }
    )


def signal_command(loan_id: str, signal: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            **signal,
            "kind": "signal",
            "loan_id": loan_id,
            "event_id": f"{signal['event_id']}/{loan_id}",
        }
    )


def tick_command(day: date) -> bytes:
    return orjson.dumps(
        {
            "kind": "clock_tick",
            "business_date": day.isoformat(),
            "event_id": f"wall-{day.isoformat()}",
        }
    )


def dead_letter_record(
    letter: DeadLetter,
    *,
    topic: str | None,
    partition: int | None,
    offset: int | None,
    raw: bytes | None,
) -> bytes:
    """The SPEC dead letter plus where it came from and its original bytes."""
    body: dict[str, Any] = {
        **letter.to_json(),
        "topic": topic,
        "partition": partition,
        "offset": offset,
    }
    if raw is not None:
        try:
            body["raw"] = raw.decode("utf-8")
            body["raw_encoding"] = "utf-8"
        except UnicodeDecodeError:
            body["raw"] = base64.b64encode(raw).decode("ascii")
            body["raw_encoding"] = "base64"
    return orjson.dumps(body)
