"""Topic names and where each event goes (SPEC §1): one place that maps a type to a topic/key.

Pure: no Kafka client here. The producer, the worker and the tests all ask this module.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Names of every topic loanwatch reads or writes (all configurable)."""

    accounts: str = "loan.accounts"
    payments: str = "loan.payments"
    collections: str = "loan.collections"
    signals: str = "loan.signals"
    clock: str = "loan.clock"
    alerts: str = "loan.alerts"
    dead_letters: str = "loan.dead-letters"
    # The ledger's verdicts on the loans' lifecycle (a closure it accepted), keyed by loan_id:
    # what downstream services act on instead of the raw, unvalidated ``loan.accounts``.
    status: str = "loan.status"
    # Compacted: loan_id -> borrower_id, written by our producers at each opening they send, so
    # a later log (another file, a restart) puts a loan's events on its borrower's partition.
    directory: str = "loan.directory"
    commands: str = "loanwatch.loan-commands"  # internal: the wall clock's ticks per partition
    # The audit chains, one per input partition (loanwatch.audit): kept forever.
    audit: str = "loan.audit"

    def inputs(self) -> tuple[str, ...]:
        """The input topics, co-partitioned by borrower (streams.partitioning)."""
        return (self.accounts, self.payments, self.collections, self.signals, self.clock)

    def with_prefix(self, prefix: str) -> TopicNames:
        """Every name prefixed (tests give each run its own topics)."""
        if not prefix:
            return self
        return TopicNames(**{f.name: f"{prefix}{getattr(self, f.name)}" for f in fields(self)})


TYPE_TOPIC_FIELD: dict[str, str] = {
    "loan_opened": "accounts",
    "schedule_revised": "accounts",
    "loan_closed": "accounts",
    "payment_received": "payments",
    "payment_reversed": "payments",
    "promise_to_pay": "collections",
    "contact_logged": "collections",
    "risk_signal": "signals",
    "clock_tick": "clock",
}


@dataclass(frozen=True, slots=True)
class Route:
    """Where one wire event is published: its topic and key (None: broadcast to all partitions)."""

    topic: str
    key: str | None


def route_event(obj: dict[str, Any] | None, names: TopicNames) -> Route:
    """The topic and key of a decoded event; unknown or broken ones go where a human can see them.

    An event whose type is unknown still needs a topic to travel on: it goes to the accounts
    topic keyed by whatever id it carries, so the worker dead-letters it with a reason.
    """
    if obj is None:
        return Route(names.accounts, None)
    kind = obj.get("type")
    field = TYPE_TOPIC_FIELD.get(kind if isinstance(kind, str) else "", "accounts")
    topic = getattr(names, field)
    if kind == "clock_tick":
        return Route(topic, None)
    key = obj.get("loan_id")
    if kind == "risk_signal" and not key:
        key = obj.get("borrower_id")
    return Route(topic, key if isinstance(key, str) and key else None)
