"""What an alert does to a loan's work item: create, update, re-route, resolve or nothing.

One work item per loan per delinquency episode: the first alert that needs a collector opens it,
later alerts update it, a ``cured`` alert (or a closed loan) resolves it. Pure: the caller passes
the open item's current fields and applies the returned plan atomically in Redis.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from loanwatch.routing.alert import AlertRecord
from loanwatch.routing.routes import PRIORITIES, Route, owner

Action = Literal["create", "update", "reroute", "resolve", "none"]
STATES = ("triggered", "acknowledged", "resolved")


@dataclass(frozen=True, slots=True)
class Plan:
    action: Action
    route: Route | None  # the owning route for create/reroute
    reason: str


def item_id_for(alert: AlertRecord) -> str:
    """Deterministic: the alert that opens the episode names the item (replays agree)."""
    return f"wi-{alert.loan_id}-{alert.alert_id}"


def more_urgent(a: str, b: str) -> bool:
    return PRIORITIES.index(a) < PRIORITIES.index(b)


def plan(
    alert: AlertRecord, routes: tuple[Route, ...], open_item: Mapping[str, str] | None
) -> Plan:
    """Decide what ``alert`` does, given the loan's open item (None when there is none)."""
    if alert.kind == "cured":
        if open_item:
            return Plan("resolve", None, "cured")
        return Plan("none", None, "cured with no open item")
    route = owner(routes)
    if open_item is None:
        if route is None:
            return Plan("none", None, "notify-only route")
        return Plan("create", route, "new episode")
    if route is not None and more_urgent(route.priority, open_item.get("priority", "P4")):
        return Plan("reroute", route, f"priority {open_item.get('priority')} -> {route.priority}")
    return Plan("update", None, "same episode")
