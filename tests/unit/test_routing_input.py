"""The router's input edge: the bounded decoder, the ``loan.status`` verdict shape and the
fuzzed-record strategies the live fuzz test publishes (each must be refused, with a reason)."""

from __future__ import annotations

import sys
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loanwatch.routing.alert import parse_alert
from loanwatch.routing.status import parse_status
from loanwatch.routing.wire import REASONS, Limits, RecordError, decode_object, depth
from tests.routing_fuzz import ALERT, VERDICT, bad_alert_records, bad_status_records

LIMITS = Limits(max_bytes=65_536, max_depth=16)


def refused(value: bytes | None, kind: str = "alert") -> str:
    """The reason the router's decoding + validation refuses ``value`` with."""
    with pytest.raises(RecordError) as caught:
        doc = decode_object(value, LIMITS)
        if kind == "status":
            parse_status(doc)
        else:
            try:
                parse_alert(doc)
            except ValueError as exc:
                raise RecordError("bad_alert", str(exc)) from exc
    assert caught.value.reason in REASONS
    return caught.value.reason


@pytest.mark.parametrize("levels", [17, 1_000, 1_025, 100_000, sys.getrecursionlimit() * 10])
def test_deep_nesting_is_refused_without_recursion_error(levels: int) -> None:
    for opener, closer in ((b"[", b"]"), (b'{"a":', b"}")):
        value = b'{"x":' + opener * levels + b"1" + closer * levels + b"}"
        assert refused(value) in ("too_deep", "too_large")
    deep = b'{"x":' + b"[" * 100 + b"]" * 100 + b"}"
    assert refused(deep) == "too_deep"


def test_depth_is_counted_iteratively() -> None:
    nested: Any = 1
    for _ in range(50_000):  # far past the recursion limit
        nested = [nested]
    assert depth(nested, 16) == 17  # stops counting past the limit
    assert depth({"a": [1, {"b": 2}]}, 16) == 3
    assert depth("scalar", 16) == 0


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"x" * 70_000, "too_large"),
        (b"\xff\xfe not json", "malformed_json"),
        (b'{"alert_id": ', "malformed_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"a string"', "not_an_object"),
        (b"null", "not_an_object"),
        (b'{"kind": "overdue"}', "bad_alert"),
        (orjson.dumps(ALERT | {"kind": "bogus"}), "bad_alert"),
        (orjson.dumps(ALERT | {"business_date": "2026-13-40"}), "bad_alert"),
        (orjson.dumps(ALERT | {"severity": "loud"}), "bad_alert"),
    ],
)
def test_bad_alert_records_get_their_reason(value: bytes | None, reason: str) -> None:
    assert refused(value) == reason


def test_a_valid_alert_and_a_valid_verdict_pass() -> None:
    assert parse_alert(decode_object(orjson.dumps(ALERT), LIMITS)).alert_id == ALERT["alert_id"]
    closed = parse_status(decode_object(orjson.dumps(VERDICT), LIMITS))
    assert (closed.loan_id, closed.status, closed.resolution) == (
        "L1",
        "written_off",
        "loan_closed:written_off",
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kind": "loan_opened"}, "unknown_status_kind"),
        ({"kind": None}, "unknown_status_kind"),
        ({"type": "loan_closed", "kind": None}, "unknown_status_kind"),  # the raw event
        ({"status": "repaid"}, "bad_status"),
        ({"status": "active"}, "bad_status"),
        ({"loan_id": ""}, "bad_status"),
        ({"loan_id": 7}, "bad_status"),
        ({"event_id": None}, "bad_status"),
        ({"borrower_id": None}, "bad_status"),
        ({"reason": ["repaid"]}, "bad_status"),
        ({"business_date": "2026-3-5"}, "bad_status"),
        ({"business_date": "2026-02-30"}, "bad_status"),
        ({"loan_id": "L" * 300}, "bad_status"),
    ],
)
def test_invalid_verdicts_are_refused(change: dict[str, Any], reason: str) -> None:
    doc = {k: v for k, v in (VERDICT | change).items() if v is not None}
    assert refused(orjson.dumps(doc), "status") == reason


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(st.binary(max_size=2_000))
def test_any_bytes_decode_or_refuse_with_a_reason(value: bytes) -> None:
    try:
        doc = decode_object(value, LIMITS)
    except RecordError as exc:
        assert exc.reason in REASONS
    else:
        assert isinstance(doc, dict)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(bad_alert_records())
def test_every_fuzzed_alert_record_is_refused(value: bytes) -> None:
    refused(value)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(bad_status_records())
def test_every_fuzzed_status_record_is_refused(value: bytes) -> None:
    refused(value, "status")
