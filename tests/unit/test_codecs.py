"""The loan state codec: FORMAT 1 records stay byte for byte what they were, and round-trip.

``encode_loan`` hands dates, tuples and ledger rows to orjson directly and splices in a cached,
already-encoded opening schedule; the bytes must equal those of the original encoder (rebuilt
below as the reference, and as literal records it wrote before the change).
"""

from __future__ import annotations

import importlib
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from loanwatch.ledger.allocation import Pay
from loanwatch.ledger.engine import Engine
from loanwatch.ledger.loan import LoanState
from loanwatch.ledger.policy import Policy
from loanwatch.streams import codecs
from loanwatch.streams.codecs import decode_loan, encode_loan

from .ledger_helpers import Harness, opened
from .test_ledger_properties import event_logs

# Written by the encoder before this change (commit 55cc892) for two loans: one with a
# reversed payment, a restructure, a watchlist signal and an open promise; one closed.
FORMAT1_RECORDS = [
    b'{"v":1,"id":["A","B1","consumer","east","CNY"],"opening":[[1,"2026-02-01",10000,1000,500],'
    b'[2,"2026-03-01",10000,1000,0],[3,"2026-04-01",10000,950,0]],"history":[["pay","P2",7000],'
    b'["revise",[[1,"2026-05-01",15000,300,0],[2,"2026-06-01",15000,200,100]]]],"slots":'
    b'[["2026-05-01",15000,300,0,6700,300,0],["2026-06-01",15000,200,100,0,0,0]],"credit":0,'
    b'"payments":[["P1",5000,1,"2026-02-03",true],["P2",7000,2,"2026-02-04",false]],"promises":'
    b'[["PR2",2000,"2026-04-20",5]],"status":"active","closed_on":null,"step":6,"watch_until":'
    b'"2026-05-08","obs_end":"2027-05-01","restructure_floor":"special_mention","npl":false,'
    b'"current_since":"2026-02-08","cross_default":false,"last":[0,"M0","special_mention",false],'
    b'"evaluated_on":"2026-03-16","applied":["t1","t11","t2","t3","t4","t5","t6","t7"]}',
    b'{"v":1,"id":["B","B2","consumer","east","CNY"],"opening":[[1,"2026-03-09",1000,10,0]],'
    b'"history":[],"slots":[["2026-03-09",1000,10,0,0,0,0]],"credit":0,"payments":[],'
    b'"promises":[],"status":"closed","closed_on":"2026-02-10","step":1,"watch_until":null,'
    b'"obs_end":null,"restructure_floor":null,"npl":false,"current_since":"2026-02-09",'
    b'"cross_default":false,"last":[0,"M0","normal",false],"evaluated_on":"2026-02-10",'
    b'"applied":["t8","t9"]}',
]


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def reference_encode(loan: LoanState) -> bytes:
    """The original encoder: every date through isoformat, every row a fresh list."""

    def terms(rows: Any) -> list[list[Any]]:
        return [[t.seq, t.due_date.isoformat(), t.principal, t.interest, t.fee] for t in rows]

    body = {
        "v": 1,
        "id": [loan.loan_id, loan.borrower_id, loan.product, loan.region, loan.currency],
        "opening": [
            [seq, r[0].isoformat(), r[1], r[2], r[3]] for seq, r in enumerate(loan.opening, 1)
        ],
        "history": [
            ["pay", op.payment_id, op.amount]
            if isinstance(op, Pay)
            else ["revise", terms(op.installments)]
            for op in loan.history
        ],
        "slots": [
            [
                s.due_date.isoformat(),
                s.principal,
                s.interest,
                s.fee,
                s.paid_principal,
                s.paid_interest,
                s.paid_fee,
            ]
            for s in loan.ledger.slots
        ],
        "credit": loan.ledger.credit,
        "payments": [
            [p.payment_id, p.amount, p.step, p.applied_on.isoformat(), p.reversed]
            for p in loan.payments
        ],
        "promises": [
            [p.promise_id, p.amount, p.promised_date.isoformat(), p.step] for p in loan.promises
        ],
        "status": loan.status,
        "closed_on": _iso(loan.closed_on),
        "step": loan.step,
        "watch_until": _iso(loan.watch_until),
        "obs_end": _iso(loan.obs_end),
        "restructure_floor": loan.restructure_floor,
        "npl": loan.npl,
        "current_since": _iso(loan.current_since),
        "cross_default": loan.cross_default,
        "last": [loan.last.dpd, loan.last.bucket, loan.last.own_class, loan.last.cross_default],
        "evaluated_on": _iso(loan.evaluated_on),
        "applied": sorted(loan.applied),
    }
    return orjson.dumps(body)


@pytest.mark.parametrize("raw", FORMAT1_RECORDS, ids=["restructured", "closed"])
def test_records_written_before_decode_and_encode_to_the_same_bytes(raw: bytes) -> None:
    loan = decode_loan(raw)
    assert encode_loan(loan) == raw
    assert reference_encode(loan) == raw
    codecs._OPENINGS.clear()  # without the remembered opening JSON: the same bytes
    assert encode_loan(loan) == raw


def test_decoded_record_has_the_values_written() -> None:
    loan = decode_loan(FORMAT1_RECORDS[0])
    assert loan.opening[2] == (date(2026, 4, 1), 10000, 950, 0, 0, 0, 0)
    assert loan.ledger.slots[0].paid_principal == 6700
    assert loan.ledger.principal_left == 15000 - 6700 + 15000
    assert [p.reversed for p in loan.payments] == [True, False]
    assert loan.promises[0].promised_date == date(2026, 4, 20)
    assert (loan.obs_end, loan.evaluated_on) == (date(2027, 5, 1), date(2026, 3, 16))
    assert loan.applied == frozenset({"t1", "t11", "t2", "t3", "t4", "t5", "t6", "t7"})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_logs())
def test_engine_states_round_trip_and_match_the_original_encoder(lines: list[bytes]) -> None:
    engine = Engine(Policy())
    for line in lines:
        engine.process_raw(line)
    for loan in engine.loans.values():
        raw = encode_loan(loan)
        assert raw == reference_encode(loan)
        back = decode_loan(raw)
        assert back == loan
        assert back.ledger.principal_left == loan.ledger.principal_left
        assert encode_loan(back) == raw


def test_a_restored_engine_goes_on_exactly_like_the_original() -> None:
    schedule = [
        ((date(2026, 2, 1) + timedelta(days=30 * i)).isoformat(), "100.00", "9.99", "1.00")
        for i in range(360)
    ]
    opening = opened("M", "2026-01-01", schedule)
    live, copy = Harness(), Harness()
    for h in (live, copy):
        h.feed(opening)
    copy.engine.loans = {k: decode_loan(encode_loan(v)) for k, v in live.engine.loans.items()}
    copy.engine.reindex(copy.engine.loans.values())
    for h in (live, copy):
        h.alerts.clear()
        h.feed({"event_id": "p1", "type": "payment_received", "loan_id": "M", "payment_id": "P1",
                "amount": "250.00", "occurred_at": "2026-03-20T10:00:00+08:00"})  # fmt: skip
        h.feed({"event_id": "r1", "type": "payment_reversed", "loan_id": "M", "payment_id": "P1",
                "reason": "nsf", "occurred_at": "2026-03-21T10:00:00+08:00"})  # fmt: skip
    assert copy.alerts == live.alerts and copy.alerts
    assert copy.engine.loans["M"] == live.engine.loans["M"]
    assert encode_loan(copy.engine.loans["M"]) == encode_loan(live.engine.loans["M"])


def test_remembered_openings_are_bounded_and_never_mixed_up() -> None:
    h = Harness()
    h.feed(opened("A", "2026-01-01", [("2026-02-01", "1.00", "0.00", "0.00")]))
    h.feed(opened("B", "2026-01-01", [("2026-02-01", "2.00", "0.00", "0.00")], borrower="B2"))
    a, b = h.engine.loans["A"], h.engine.loans["B"]
    expected = {"A": reference_encode(a), "B": reference_encode(b)}
    for _ in range(codecs.OPENINGS_KEPT + 10):  # fill with other openings, then re-encode
        decode_loan(FORMAT1_RECORDS[1])
    assert len(codecs._OPENINGS) <= codecs.OPENINGS_KEPT
    assert encode_loan(a) == expected["A"] and encode_loan(b) == expected["B"]
    assert encode_loan(a) == expected["A"]  # now remembered


def test_an_unknown_format_is_refused() -> None:
    raw = FORMAT1_RECORDS[1].replace(b'"v":1', b'"v":99')
    with pytest.raises(ValueError, match="unknown loan state format 99"):
        decode_loan(raw)


def test_replay_bench_codec_helper_runs(tmp_path: Path) -> None:
    """bench/replay_throughput.py's codec table on a tiny log (figures only, no timing check)."""
    bench_dir = Path(__file__).resolve().parents[2] / "bench"
    if str(bench_dir) not in sys.path:
        sys.path.insert(0, str(bench_dir))
    kit, bench = importlib.import_module("benchkit"), importlib.import_module("replay_throughput")
    log = kit.cached_log(30, 5, 1, cache=tmp_path)
    rows = bench.codec_costs(log, 200, long_from=1)
    assert [row[0] for row in rows] == ["all", ">= 1 inst."]
    assert all(row[1] > 0 and row[2] > 0 for row in rows)
