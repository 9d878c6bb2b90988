"""The alert as routing sees it: a SPEC §6 wire object converted once into a typed record.

Routes match on string labels (``kind``, ``bucket``, ...) and on exact Decimal amounts; this
module builds both from the JSON object. It never reads Kafka and never keeps personal data:
an alert carries ids, amounts and classes only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from loanwatch.routing.errors import AlertFormatError

KINDS = frozenset(
    {
        "overdue",
        "bucket_changed",
        "cured",
        "classification_changed",
        "cross_default",
        "cross_default_cleared",
        "promise_broken",
        "payment_reversed",
        "risk_signal",
        # classified treatment (issue 18, docs/strategies.md): only with strategies configured
        "segment_changed",
        "treatment_action",
        # early warning (issue 17, docs/early-warning.md): only with a scorecard configured
        "pre_due_risk",
    }
)
SEVERITIES = ("info", "warning", "critical")
# Fields a route may compare as numbers (Decimal, never float).
NUMERIC_FIELDS = frozenset(
    {
        "dpd",
        "overdue_amount",
        "outstanding_principal",
        "borrower_npl_share",
        "promised_amount",
        "paid_amount",
        "day_in_segment",
        "probability",  # pre_due_risk: the scorecard's probability of missing the due date
        "score_points",
    }
)
# Fields a route may compare as strings.
LABEL_FIELDS = frozenset(
    {
        "kind",
        "severity",
        "bucket",
        "classification",
        "own_class",
        "product",
        "region",
        "currency",
        "from_bucket",
        "to_bucket",
        "from_class",
        "to_class",
        "signal",
        "signal_severity",
        "ifrs9_stage",
        "segment",
        "from_segment",
        "to_segment",
        "experiment",
        "arm",
        "path",
        "action",
        "call_priority",
        "model_version",
    }
)
MATCHABLE_FIELDS = NUMERIC_FIELDS | LABEL_FIELDS
_REQUIRED = ("alert_id", "kind", "loan_id", "business_date")


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert: identity, the loan it is about, and its labels for matching."""

    alert_id: str
    kind: str
    loan_id: str
    borrower_id: str
    business_date: date
    severity: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def label(self, name: str) -> str | None:
        return self.labels.get(name)

    def number(self, name: str) -> Decimal | None:
        """A numeric field as an exact Decimal, or None when absent or not a number."""
        raw = self.labels.get(name)
        if raw is None:
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            return None
        return value if value.is_finite() else None

    @property
    def overdue_amount(self) -> Decimal:
        return self.number("overdue_amount") or Decimal("0.00")

    @property
    def due_date(self) -> str | None:
        return self.labels.get("due_date")


def parse_alert(doc: Mapping[str, Any]) -> AlertRecord:
    """Convert a decoded ``loan.alerts`` message; raises AlertFormatError when malformed."""
    for key in _REQUIRED:
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise AlertFormatError(f"alert field {key!r} missing or not a string")
    if doc["kind"] not in KINDS:
        raise AlertFormatError(f"alert kind {doc['kind']!r} is unknown")
    try:
        day = date.fromisoformat(doc["business_date"])
    except ValueError as exc:
        raise AlertFormatError(
            f"alert business_date {doc['business_date']!r} is not a date"
        ) from exc
    severity = doc.get("severity", "warning")
    if severity not in SEVERITIES:
        raise AlertFormatError(f"alert severity {severity!r} is not one of {SEVERITIES}")
    labels = {
        str(k): str(v)
        for k, v in doc.items()
        if v is not None
        and isinstance(v, str | int | float | Decimal)
        and not isinstance(v, bool)
        and (not isinstance(v, float) or math.isfinite(v))
    }
    for k, v in doc.items():  # a list of codes (pre_due_risk's reason_codes): comma-joined
        if isinstance(v, list) and v and all(isinstance(x, str) and "," not in x for x in v):
            labels[str(k)] = ",".join(v)
    labels["severity"] = severity
    return AlertRecord(
        alert_id=doc["alert_id"],
        kind=doc["kind"],
        loan_id=doc["loan_id"],
        borrower_id=str(doc.get("borrower_id") or ""),
        business_date=day,
        severity=severity,
        labels=labels,
    )


def alert_from_labels(labels: Mapping[str, str]) -> AlertRecord:
    """A synthetic alert from ``key=value`` labels, for ``loanwatch routes test``."""
    doc: dict[str, Any] = {
        "alert_id": "test",
        "loan_id": "TEST-LOAN",
        "borrower_id": "TEST-BORROWER",
        "business_date": date(2026, 1, 1).isoformat(),
        "kind": "overdue",
        "severity": "warning",
    }
    doc.update(labels)
    return parse_alert(doc)
