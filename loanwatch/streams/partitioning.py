"""Where a record goes: Kafka's partitioner (murmur2) applied to the event's **borrower**.

Records stay keyed by ``loan_id`` (SPEC §1), but our producers choose the partition
explicitly: ``partition_for(borrower_id, n)``, so every loan of a borrower is processed by one
engine and borrower-level rules (cross-default, borrower-keyed signals) are decided there, in
the log's order, as replay decides them. A producer of ours learns each loan's borrower from
its ``loan_opened`` (a file is scanned first; a live stream looks ahead). docs/design.md says
what an external producer must do for the same guarantee.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from aiokafka.partitioner import murmur2


def partition_for(key: str, partitions: int) -> int:
    """The partition a key lands on among ``partitions`` (positive murmur2 modulo n)."""
    digest: int = murmur2(key.encode("utf-8"))
    return (digest & 0x7FFFFFFF) % partitions


#: The header that makes a record a lane watermark (no event): see :mod:`loanwatch.streams.marks`.
MARK_HEADER = "loanwatch.mark"


def owner_key(obj: Mapping[str, Any], directory: Mapping[str, str]) -> str | None:
    """The borrower whose partition an event belongs to (None: not known, key decides).

    A borrower's loans share one partition, so cross-default and borrower-level signals are
    decided inside one engine, exactly as in replay: ``loan_opened`` and borrower-keyed
    ``risk_signal``\\ s carry the borrower; every other loan event is looked up in
    ``directory`` (loan id -> borrower id, from the openings).
    """
    borrower = obj.get("borrower_id")
    loan_id = obj.get("loan_id")
    if isinstance(loan_id, str) and loan_id:
        if obj.get("type") == "loan_opened" and isinstance(borrower, str) and borrower:
            return directory.get(loan_id, borrower)
        return directory.get(loan_id)
    if obj.get("type") == "risk_signal" and isinstance(borrower, str) and borrower:
        return borrower
    return None


def learn(obj: Mapping[str, Any], directory: MutableMapping[str, str]) -> None:
    """Record a ``loan_opened``'s borrower (the first opening of a loan id wins)."""
    if obj.get("type") != "loan_opened":
        return
    loan_id, borrower = obj.get("loan_id"), obj.get("borrower_id")
    if isinstance(loan_id, str) and loan_id and isinstance(borrower, str) and borrower:
        directory.setdefault(loan_id, borrower)
