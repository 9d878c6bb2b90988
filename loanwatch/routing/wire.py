"""Decoding one Kafka record the router reads, bounded in size and nesting depth.

The router reads topics other services write; a record it cannot decode must never stop it.
:func:`decode_object` accepts at most ``max_bytes`` bytes (checked before parsing) and at most
``max_depth`` levels of nesting (orjson itself refuses more than 1,024 levels with an error, never
a ``RecursionError``; the walk here is iterative), and returns a JSON object or raises
:class:`RecordError` with a machine-readable ``reason`` for the dead-letter record. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

#: Every reason a record can be refused with, one per dead-letter reason label.
REASONS = (
    "empty",
    "too_large",
    "malformed_json",
    "too_deep",
    "not_an_object",
    "bad_alert",
    "bad_status",
    "unknown_status_kind",
    "handler_error",
)


class RecordError(ValueError):
    """A record the router cannot act on; ``reason`` is one of :data:`REASONS`.

    The router dead-letters the record (with this reason and message) and moves on; fix the
    producer named by the dead letter's ``topic``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of one record: its size in bytes and how deeply its JSON may nest."""

    max_bytes: int = 65_536
    max_depth: int = 16


def depth(doc: Any, limit: int) -> int:
    """Nesting depth of a JSON value (a scalar is 0); stops counting past ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict | list):
            level += 1
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, level) for child in children)
    return deepest


def decode_object(value: bytes | None, limits: Limits) -> dict[str, Any]:
    """The JSON object in ``value``; raises :class:`RecordError` when it is not one."""
    if not value:
        raise RecordError("empty", "record has no value")
    if len(value) > limits.max_bytes:
        raise RecordError(
            "too_large", f"record is {len(value)} bytes, more than the limit {limits.max_bytes}"
        )
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        reason = "too_deep" if "depth" in str(exc) else "malformed_json"
        raise RecordError(reason, f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RecordError("not_an_object", f"expected a JSON object, got {type(doc).__name__}")
    if (found := depth(doc, limits.max_depth)) > limits.max_depth:
        raise RecordError(
            "too_deep", f"JSON nests deeper than {limits.max_depth} levels ({found}+)"
        )
    return doc
