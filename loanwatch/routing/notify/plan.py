"""Outbox entries: which notifications a routed alert or an escalation causes.

Pure: builds flat ``str -> str`` records (one per channel) that the work-item transaction
appends to the Redis outbox stream. Entries carry ids, amounts and dates, never a borrower's
name, phone number or address: the worker looks contact points up when it sends.
"""

from __future__ import annotations

from collections.abc import Mapping

from loanwatch.routing.alert import AlertRecord
from loanwatch.routing.routes import Route

#: Fields a ``pre_due_risk`` alert adds to its entries (docs/early-warning.md).
PRE_DUE_FIELDS = ("lead_days", "probability", "score_points", "model_version", "reason_codes")


def entry_for(
    route: Route, channel_kind: str, target: str, base: Mapping[str, str]
) -> dict[str, str]:
    key = f"{base.get('alert_id') or base.get('event', '')}:{route.name}:{channel_kind}:{target}"
    return dict(base) | {
        "channel": channel_kind,
        "target": target,
        "route": route.name,
        "priority": route.priority,
        "team": route.team,
        "key": key,
    }


def alert_entries(
    alert: AlertRecord, routes: tuple[Route, ...], item_id: str, assignee: str | None
) -> list[dict[str, str]]:
    """One entry per channel of every matched route."""
    base = {
        "alert_id": alert.alert_id,
        "item_id": item_id,
        "loan_id": alert.loan_id,
        "borrower_id": alert.borrower_id,
        "kind": alert.kind,
        "severity": alert.severity,
        "bucket": alert.label("bucket") or "",
        "dpd": alert.label("dpd") or "0",
        "amount": alert.label("overdue_amount") or "0.00",
        "currency": alert.label("currency") or "CNY",
        "due_date": alert.due_date or "",
        "product": alert.label("product") or "",
        "region": alert.label("region") or "",
        "oncall": assignee or "",
        "attempt": "0",
    }
    # pre_due_risk: the score travels to the collectors' tools (webhook), never to a template
    base |= {k: v for k in PRE_DUE_FIELDS if (v := alert.label(k))}
    return [entry_for(r, ch.kind, ch.target, base) for r in routes for ch in r.channels]


def escalation_entries(route: Route, item: Mapping[str, str], level: int) -> list[dict[str, str]]:
    """An escalation pages the new level's collector by its oncall channels and the webhooks."""
    base = {
        "event": f"{item.get('item_id', '')}:L{level}",
        "alert_id": "",
        "item_id": item.get("item_id", ""),
        "loan_id": item.get("loan_id", ""),
        "borrower_id": item.get("borrower_id", ""),
        "kind": "escalation",
        "severity": item.get("severity", "warning"),
        "bucket": item.get("bucket", ""),
        "dpd": item.get("dpd", "0"),
        "amount": item.get("overdue_amount", "0.00"),
        "currency": item.get("currency", "CNY"),
        "due_date": item.get("due_date", ""),
        "product": item.get("product", ""),
        "region": item.get("region", ""),
        "oncall": item.get("assignee", ""),
        "level": str(level),
        "attempt": "0",
    }
    return [
        entry_for(route, ch.kind, ch.target, base)
        for ch in route.channels
        if ch.target != "borrower" and ch.kind != "alertmanager"
    ]
