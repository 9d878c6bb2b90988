"""The work items a loan's alerts open, as the router decides them (pure: alerts in, items out).

The router (``loanwatch route``) keeps one work item per loan per delinquency episode: the
alert that opens it names it (:func:`~loanwatch.routing.episodes.item_id_for`), a more urgent
route re-routes it, ``cured`` resolves it, and so does the loan's closure. Those decisions
depend only on the alerts, in order, and the routing table, so the history derives them here
with the router's own :func:`~loanwatch.routing.episodes.plan`. What people did with an item
(claims, acknowledgements, escalations) lives in the router's store and is not in the trail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from loanwatch.routing.alert import parse_alert
from loanwatch.routing.config import RoutingSetup
from loanwatch.routing.episodes import item_id_for, plan
from loanwatch.routing.errors import AlertFormatError


def derive_work_items(
    alerts: Sequence[Mapping[str, Any]], setup: RoutingSetup, closed_on: str | None = None
) -> list[dict[str, Any]]:
    """The loan's work items from its alerts in order; ``closed_on``: the day it closed."""
    items: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for doc in alerts:
        try:
            alert = parse_alert(doc)
        except AlertFormatError:
            continue  # the router dead-letters it: it opens nothing
        decision = plan(alert, setup.routes_for(alert), _open(current))
        day, aid = doc.get("business_date"), alert.alert_id
        if decision.action == "create" and decision.route is not None:
            route = decision.route
            current = {
                "item_id": item_id_for(alert),
                "team": route.team,
                "route": route.name,
                "priority": route.priority,
                "opened_by": aid,
                "opened_on": day,
                "alerts": [aid],
                "state": "open",
                "changes": [],
            }
            items.append(current)
        elif current is not None and decision.action == "reroute" and decision.route:
            route = decision.route
            current["changes"].append(
                {"alert_id": aid, "business_date": day, "action": "reroute", "team": route.team}
            )
            current |= {"team": route.team, "route": route.name, "priority": route.priority}
            current["alerts"].append(aid)
        elif current is not None and decision.action == "update":
            current["alerts"].append(aid)
        elif current is not None and decision.action == "resolve":
            current |= {"state": "resolved", "resolved_by": aid, "resolved_on": day}
            current["alerts"].append(aid)
            current = None
    if current is not None and closed_on is not None:
        current |= {"state": "resolved", "resolved_by": "loan_closed", "resolved_on": closed_on}
    return items


def _open(item: Mapping[str, Any] | None) -> dict[str, str] | None:
    return {"item_id": str(item["item_id"]), "priority": str(item["priority"])} if item else None
