"""The worker's own records: internal wall-clock ticks and dead-letter records.

Plain JSON with explicit fields. Pure functions, no Kafka here.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import date
from typing import Any

import orjson

from loanwatch.ledger.engine import DeadLetter

#: Bytes of an input kept in its dead letter: beyond, a prefix with the length and SHA-256
#: (an oversized input must never make an unsendable dead letter).
RAW_LIMIT = 16 * 1024


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
    limit: int = RAW_LIMIT,
) -> bytes:
    """The SPEC dead letter plus where it came from and its original bytes (bounded)."""
    body: dict[str, Any] = {
        **letter.to_json(),
        "topic": topic,
        "partition": partition,
        "offset": offset,
    }
    if raw is not None:
        body["raw_length"] = len(raw)
        body["raw_sha256"] = hashlib.sha256(raw).hexdigest()
        kept = raw[:limit]
        if len(raw) > limit:
            body["raw_truncated"] = True
            # the decoded event of an oversized input is as large: only its prefix is kept
            body["event"] = kept.decode("utf-8", "replace")
        try:
            body["raw"] = kept.decode("utf-8")
            body["raw_encoding"] = "utf-8"
        except UnicodeDecodeError:
            body["raw"] = base64.b64encode(kept).decode("ascii")
            body["raw_encoding"] = "base64"
    try:
        return orjson.dumps(body)
    except TypeError:  # an event object orjson cannot write (e.g. an integer beyond 64 bits)
        body["event"] = body.get("raw")
        return orjson.dumps(body)
