"""Hypothesis strategies of records the router must refuse: on ``loan.alerts`` and on
``loan.status``. Every strategy is invalid by construction (garbage bytes, non-objects, nesting
past the limit, oversized, truncated JSON, a valid record with one required field broken), so
a test can demand that *each* record is dead-lettered. Shared by the unit and live tests.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loanwatch.routing.alert import KINDS, SEVERITIES

ALERT: dict[str, Any] = {
    "alert_id": "al-1",
    "kind": "overdue",
    "severity": "warning",
    "loan_id": "L1",
    "borrower_id": "B1",
    "business_date": "2026-03-05",
    "bucket": "M1",
    "dpd": 1,
    "overdue_amount": "100.00",
    "product": "consumer",
    "region": "east",
    "due_date": "2026-03-04",
}
VERDICT: dict[str, Any] = {
    "kind": "loan_closed",
    "event_id": "ev-1",
    "loan_id": "L1",
    "borrower_id": "B1",
    "status": "written_off",
    "reason": "written_off",
    "business_date": "2026-03-05",
}
MAX_DEPTH = 16
MAX_BYTES = 65_536

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)  # what JSON encoders (orjson) can write
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
not_a_string = json_values.filter(lambda v: not isinstance(v, str))


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def garbage() -> st.SearchStrategy[bytes]:
    """Bytes that are never JSON (a NUL byte first)."""
    return st.binary(max_size=300).map(lambda b: b"\x00" + b)


def non_objects() -> st.SearchStrategy[bytes]:
    """JSON that is not an object (one strategy: ``one_of`` would flatten its branches)."""
    return json_values.filter(lambda v: not isinstance(v, dict)).map(orjson.dumps)


def too_deep(base: dict[str, Any]) -> st.SearchStrategy[bytes]:
    def build(levels: int, brackets: bool) -> bytes:
        opener, closer = (b"[", b"]") if brackets else (b'{"n":', b"}")
        inner = opener * levels + b"0" + closer * levels
        return orjson.dumps(base)[:-1] + b',"deep":' + inner + b"}"

    return st.builds(build, st.integers(MAX_DEPTH, 400), st.booleans())


def too_large(base: dict[str, Any], max_bytes: int) -> st.SearchStrategy[bytes]:
    return st.integers(max_bytes + 1, max_bytes + 2_000).map(
        lambda n: orjson.dumps(base | {"pad": "x" * n})
    )


def truncated(base: dict[str, Any]) -> st.SearchStrategy[bytes]:
    whole = orjson.dumps(base)
    return st.integers(1, len(whole) - 1).map(lambda n: whole[:n])


def broken_field(
    base: dict[str, Any], bad_values: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[bytes]:
    """``base`` with one field removed or given a value it may not have, plus noise fields."""
    noise = st.dictionaries(
        st.text(max_size=8).filter(lambda k: k not in base), json_scalars, max_size=3
    )

    def build(field: str, value: Any, drop: bool, extra: dict[str, Any]) -> bytes:
        doc = dict(base) | extra
        if drop:
            doc.pop(field, None)
        else:
            doc[field] = value
        return orjson.dumps(doc)

    return st.sampled_from(sorted(bad_values)).flatmap(
        lambda f: st.builds(build, st.just(f), bad_values[f], st.booleans(), noise)
    )


def bad_alert_records(max_bytes: int = MAX_BYTES) -> st.SearchStrategy[bytes]:
    bad = {
        "alert_id": not_a_string | st.just(""),
        "loan_id": not_a_string | st.just(""),
        "kind": not_a_string | st.text().filter(lambda t: t not in KINDS),
        "business_date": not_a_string | st.text().filter(lambda t: not _is_date(t)),
    }
    severity = st.builds(
        lambda s: orjson.dumps(ALERT | {"severity": s}),
        st.text().filter(lambda t: t not in SEVERITIES) | not_a_string.filter(lambda v: v),
    )
    return st.one_of(
        garbage(),
        non_objects(),
        too_deep(ALERT),
        too_large(ALERT, max_bytes),
        truncated(ALERT),
        broken_field(ALERT, bad),
        severity,
    )


def bad_status_records(max_bytes: int = MAX_BYTES) -> st.SearchStrategy[bytes]:
    text_or_junk = not_a_string | st.just("") | st.text(min_size=257)
    bad = {
        "kind": json_values.filter(lambda v: v != "loan_closed"),
        "event_id": text_or_junk,
        "loan_id": text_or_junk,
        "borrower_id": text_or_junk,
        "reason": text_or_junk,
        "status": json_values.filter(lambda v: v not in ("closed", "written_off", "sold")),
        "business_date": not_a_string | st.text().filter(lambda t: len(t) != 10 or not _is_date(t)),
    }
    raw_event = st.builds(  # what loan.accounts carries: no verdict, whatever it says
        lambda reason: orjson.dumps(
            {"event_id": "x", "type": "loan_closed", "loan_id": "L1", "reason": reason}
        ),
        st.text(),
    )
    return st.one_of(
        garbage(),
        non_objects(),
        too_deep(VERDICT),
        too_large(VERDICT, max_bytes),
        truncated(VERDICT),
        broken_field(VERDICT, bad),
        raw_event,
    )


def collect(strategy: st.SearchStrategy[bytes], n: int, seed: int) -> list[bytes]:
    """``n`` records drawn by Hypothesis (fixed seed, no example database)."""
    out: list[bytes] = []

    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=False,
    )
    @given(strategy)
    def draw(value: bytes) -> None:
        out.append(value)

    draw._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    draw()
    return out
