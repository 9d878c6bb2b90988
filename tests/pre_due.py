"""A ``pre_due_risk`` alert as the early-warning layer writes it (docs/early-warning.md), for the
routing tests: template, route, compliance, notifier."""

from __future__ import annotations

from typing import Any

PRE_DUE: dict[str, Any] = {
    "alert_id": "p1",
    "kind": "pre_due_risk",
    "severity": "warning",
    "loan_id": "LN-9",
    "borrower_id": "B-9",
    "business_date": "2026-03-05",
    "dpd": 0,
    "bucket": "M0",
    "overdue_amount": "0.00",
    "outstanding_principal": "8000.00",
    "product": "consumer",
    "region": "north",
    "currency": "CNY",
    "due_date": "2026-03-10",
    "lead_days": 5,
    "probability": 0.4127,
    "score_points": 541,
    "model_version": "ew-1",
    "reason_codes": ["late_1>3", "2<dpd_now<=5", "reversals>0"],
}
