"""The ledger's verdicts on a loan's lifecycle, as routing reads them from ``loan.status``.

The worker publishes a ``loan_closed`` there only after the ledger accepted the closure, so the
router never resolves work (or stops contacting a borrower) on a raw ``loan.accounts`` event
the ledger rejected. Pure: converts a decoded object once into a typed record or raises
:class:`RecordError` (reason ``bad_status`` / ``unknown_status_kind``).

Wire shape (key = ``loan_id``)::

    {"kind": "loan_closed", "event_id": "...", "loan_id": "...", "borrower_id": "...",
     "status": "closed|written_off|sold", "reason": "...", "business_date": "YYYY-MM-DD"}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from loanwatch.routing.wire import RecordError

CLOSED_STATUSES = frozenset({"closed", "written_off", "sold"})
_STRINGS = ("event_id", "loan_id", "borrower_id", "reason")
MAX_ID_CHARS = 256


@dataclass(frozen=True, slots=True)
class LoanClosed:
    event_id: str
    loan_id: str
    borrower_id: str
    status: str
    reason: str
    business_date: date

    @property
    def resolution(self) -> str:
        """What a resolved work item records (``loan_closed:<reason>``)."""
        return f"loan_closed:{self.reason}"


def parse_status(doc: Mapping[str, Any]) -> LoanClosed:
    """A decoded ``loan.status`` record -> :class:`LoanClosed`; anything else is refused."""
    kind = doc.get("kind")
    if not isinstance(kind, str) or kind != "loan_closed":
        raise RecordError("unknown_status_kind", f"status kind {kind!r} is not 'loan_closed'")
    for key in _STRINGS:
        value = doc.get(key)
        if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS:
            raise RecordError("bad_status", f"status field {key!r} missing or not a short string")
    status = doc.get("status")
    if not isinstance(status, str) or status not in CLOSED_STATUSES:
        raise RecordError(
            "bad_status", f"status {status!r} is not one of {sorted(CLOSED_STATUSES)}"
        )
    raw_day = doc.get("business_date")
    try:
        day = (
            date.fromisoformat(raw_day) if isinstance(raw_day, str) and len(raw_day) == 10 else None
        )
    except ValueError:
        day = None
    if day is None:
        raise RecordError("bad_status", f"status business_date {raw_day!r} is not YYYY-MM-DD")
    return LoanClosed(
        event_id=doc["event_id"],
        loan_id=doc["loan_id"],
        borrower_id=doc["borrower_id"],
        status=str(status),
        reason=doc["reason"],
        business_date=day,
    )
