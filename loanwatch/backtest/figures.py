"""The KPIs of one replayed history under one configuration folder: a pure accumulator.

Fed the alerts in firing order and the final states (from an in-process replay, or from the
files ``loanwatch replay`` writes: both give the same figures), it computes PAR30/PAR90, the
NPL ratio, class migrations, alerts by kind, work items by team and kind (the router's own
pure rules: routes, one item per loan per episode), and borrower contacts by channel with the
compliance rules' suppressions. Contacts are judged at ``send_at`` local time on each alert's
business date. It never reads files, Kafka or Redis.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from loanwatch.routing.alert import parse_alert
from loanwatch.routing.compliance import (
    ComplianceConfig,
    ContactRecord,
    ContactRequest,
    Deferred,
    check,
)
from loanwatch.routing.config import RoutingSetup
from loanwatch.routing.episodes import plan

NPL_CLASSES = frozenset({"substandard", "doubtful", "loss"})
BORROWER_CHANNELS = {"sms:borrower": "sms", "email:borrower": "email"}


@dataclass(slots=True)
class Figures:
    """What a backtest compares; every counter is keyed by small closed sets."""

    loans: int = 0
    outstanding: Decimal = Decimal("0.00")
    par30: Decimal = Decimal("0.00")  # outstanding principal of loans with DPD > 30
    par90: Decimal = Decimal("0.00")
    npl: Decimal = Decimal("0.00")  # substandard, doubtful, loss
    alerts: Counter[str] = field(default_factory=Counter)
    migrations: Counter[str] = field(default_factory=Counter)  # "from->to"
    segments: Counter[str] = field(default_factory=Counter)  # loans per final segment
    work_items: Counter[str] = field(default_factory=Counter)  # "team/kind of opening alert"
    contacts: Counter[str] = field(default_factory=Counter)  # channel
    suppressions: Counter[str] = field(default_factory=Counter)  # "channel/rule"

    def ratio(self, part: Decimal) -> Decimal:
        if not self.outstanding:
            return Decimal("0.0000")
        return (part / self.outstanding).quantize(Decimal("0.0001"))

    def headline(self) -> dict[str, Any]:
        return {
            "loans": self.loans,
            "outstanding": str(self.outstanding),
            "PAR30": str(self.ratio(self.par30)),
            "PAR90": str(self.ratio(self.par90)),
            "NPL ratio": str(self.ratio(self.npl)),
            "alerts": sum(self.alerts.values()),
            "work items": sum(self.work_items.values()),
            "contacts": sum(self.contacts.values()),
            "suppressions": sum(self.suppressions.values()),
        }

    def sections(self) -> dict[str, Counter[str]]:
        return {
            "alerts by kind": self.alerts,
            "class migration": self.migrations,
            "loans by segment": self.segments,
            "work items by team/kind": self.work_items,
            "contacts by channel": self.contacts,
            "suppressions by channel/rule": self.suppressions,
        }


class FiguresBuilder:
    def __init__(
        self, routing: RoutingSetup, compliance: ComplianceConfig, tz: ZoneInfo, send_at: time
    ) -> None:
        self.routing, self.compliance, self.tz, self.send_at = routing, compliance, tz, send_at
        self.figures = Figures()
        self._open: dict[str, Mapping[str, str]] = {}  # loan id -> its open item (team, priority)
        self._history: dict[str, list[ContactRecord]] = {}  # debtor -> our contacts

    def alert(self, doc: Mapping[str, Any]) -> None:
        f = self.figures
        kind = str(doc["kind"])
        f.alerts[kind] += 1
        if kind == "classification_changed":
            f.migrations[f"{doc['from_class']}->{doc['to_class']}"] += 1
        record = parse_alert(doc)
        routes = self.routing.routes_for(record)
        loan = record.loan_id
        decision = plan(record, routes, self._open.get(loan))
        if decision.action in ("create", "reroute") and decision.route is not None:
            route = decision.route
            f.work_items[f"{route.team}/{kind}"] += 1
            self._open[loan] = {"team": route.team, "priority": route.priority}
        elif decision.action == "resolve":
            self._open.pop(loan, None)
        at = datetime.combine(record.business_date, self.send_at, self.tz)
        for route in routes:
            for channel in route.channels:
                contact = BORROWER_CHANNELS.get(str(channel))
                if contact is not None:
                    self._contact(record.loan_id, record.borrower_id, contact, at)

    def _contact(self, loan: str, debtor: str, channel: str, at: datetime) -> None:
        past = self._history.setdefault(debtor, [])
        request = ContactRequest(loan, debtor, channel)
        decision = check(self.compliance, request, past, at)
        if isinstance(decision, Deferred):
            self.figures.suppressions[f"{channel}/{decision.rule}"] += 1
            return
        self.figures.contacts[channel] += 1
        past.append(ContactRecord(at, loan, debtor, channel, "sent"))

    def states(self, states: Iterable[Mapping[str, Any]]) -> Figures:
        f = self.figures
        for s in states:
            f.loans += 1
            if s.get("segment"):
                f.segments[str(s["segment"])] += 1
            if s["status"] != "active":
                continue
            principal = Decimal(str(s["outstanding_principal"]))
            f.outstanding += principal
            dpd = int(s["dpd"])
            if dpd > 30:
                f.par30 += principal
            if dpd > 90:
                f.par90 += principal
            if s["classification"] in NPL_CLASSES:
                f.npl += principal
        return f
