"""Alerts (SPEC §6): what changed for one loan in one step, as records with stable ids.

Pure: :func:`diff_alerts` compares two snapshots; :func:`make_alert` fills the fields a
collector needs from the loan's view. The ``alert_id`` hashes loan, kind, business date and
the step's key (the event id, or ``age`` for a day of aging), so re-processing the same log
gives the same ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from loanwatch.ledger.loan import Snapshot
from loanwatch.ledger.money import format_money
from loanwatch.ledger.policy import CLASS_RANK, SUBSTANDARD
from loanwatch.ledger.view import LoanView

SEVERE_BUCKETS = frozenset({"M4", "M5", "M6", "M7+"})
SIGNAL_SEVERITY = {"high": "critical", "medium": "warning", "low": "info"}


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    kind: str
    severity: str
    business_date: date
    view: LoanView
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def loan_id(self) -> str:
        return self.view.loan_id

    def to_json(self) -> dict[str, Any]:
        v = self.view
        body: dict[str, Any] = {
            "alert_id": self.alert_id,
            "kind": self.kind,
            "severity": self.severity,
            "loan_id": v.loan_id,
            "borrower_id": v.borrower_id,
            "business_date": self.business_date.isoformat(),
            "dpd": v.dpd,
            "bucket": v.bucket,
            "overdue_amount": format_money(v.overdue_amount),
            "outstanding_principal": format_money(v.outstanding_principal),
            "classification": v.classification,
            "own_class": v.own_class,
            "ifrs9_stage": v.ifrs9_stage,
            "product": v.product,
            "region": v.region,
            "currency": v.currency,
        }
        body.update(self.extra)
        return body


def alert_id(loan_id: str, kind: str, day: date, step_key: str) -> str:
    digest = hashlib.blake2b(
        f"{loan_id}|{kind}|{day.isoformat()}|{step_key}".encode(), digest_size=12
    )
    return digest.hexdigest()


def severity(kind: str, view: LoanView, extra: dict[str, Any]) -> str:
    """How urgent an alert is: info, warning or critical (by kind and bucket)."""
    if kind in ("cured", "cross_default_cleared"):
        return "info"
    if kind == "cross_default":
        return "critical"
    if kind == "risk_signal":
        return SIGNAL_SEVERITY.get(str(extra.get("signal_severity")), "warning")
    if kind == "classification_changed":
        to_rank, from_rank = CLASS_RANK[extra["to_class"]], CLASS_RANK[extra["from_class"]]
        if to_rank < from_rank:
            return "info"
        return "critical" if to_rank >= SUBSTANDARD else "warning"
    if kind in ("overdue", "bucket_changed"):
        return "critical" if view.bucket in SEVERE_BUCKETS else "warning"
    return "warning"


def make_alert(kind: str, day: date, step_key: str, view: LoanView, **extra: Any) -> Alert:
    if kind == "promise_broken":
        # Two promises of one loan can fall due on the same day: each gets its own alert.
        step_key = f"{step_key}|{extra['promise_id']}"
    return Alert(
        alert_id=alert_id(view.loan_id, kind, day, step_key),
        kind=kind,
        severity=severity(kind, view, extra),
        business_date=day,
        view=view,
        extra=extra,
    )


def diff_alerts(
    before: Snapshot,
    after: Snapshot,
    view: LoanView,
    day: date,
    step_key: str,
    oldest_due: date | None,
    npl_share: str | None,
) -> list[Alert]:
    """The state-change alerts of one loan between two snapshots of one step."""
    out: list[Alert] = []
    if before.dpd == 0 and after.dpd > 0:
        due = oldest_due.isoformat() if oldest_due else None
        out.append(make_alert("overdue", day, step_key, view, due_date=due))
    if before.bucket != after.bucket and "M0" not in (before.bucket, after.bucket):
        out.append(
            make_alert(
                "bucket_changed",
                day,
                step_key,
                view,
                from_bucket=before.bucket,
                to_bucket=after.bucket,
            )
        )
    if before.dpd > 0 and after.dpd == 0:
        out.append(make_alert("cured", day, step_key, view, from_bucket=before.bucket))
    if before.own_class != after.own_class:
        out.append(
            make_alert(
                "classification_changed",
                day,
                step_key,
                view,
                from_class=before.own_class,
                to_class=after.own_class,
            )
        )
    if before.cross_default != after.cross_default:
        kind = "cross_default" if after.cross_default else "cross_default_cleared"
        out.append(make_alert(kind, day, step_key, view, borrower_npl_share=npl_share))
    return out
