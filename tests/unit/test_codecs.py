"""The loan state codec (FORMAT 2) and the migration of FORMAT 1 (JSON) records.

FORMAT 2 splits a loan into a small hot record, its terms (once per opening or revision) and
its history; a FORMAT 1 record, as the earlier code wrote it, is read and migrated in place.
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

from loanwatch.agents.state import LoanStore, is_loan_key, load_loan
from loanwatch.ledger.engine import Engine
from loanwatch.ledger.history import replay_entries
from loanwatch.ledger.loan import view
from loanwatch.ledger.orphans import Parked
from loanwatch.ledger.parse import parse_event
from loanwatch.ledger.policy import Policy
from loanwatch.ledger.records import LoanEvent
from loanwatch.streams.codecs import (
    StateFormatError,
    decode_loan,
    decode_terms,
    encode_loan,
    encode_terms,
    migrate_legacy,
)

from .ledger_helpers import Harness, opened, paid
from .test_ledger_properties import event_logs

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# Written by the FORMAT 1 encoder (commit 55cc892) for two loans: one with a reversed
# payment, a restructure, a watchlist signal and an open promise; one closed.
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


def stored_engine(table: dict[str, bytes], policy: Policy | None = None) -> Engine:
    """An engine whose loans and history live in ``table`` (as a worker's loans table)."""
    store = LoanStore(table, policy=policy)
    return Engine(policy or Policy(), loans=store, history=store)


def test_format1_records_migrate_to_the_values_they_held() -> None:
    m = migrate_legacy(FORMAT1_RECORDS[0])
    loan = m.loan
    assert m.terms[0].installments()[2][1:] == (date(2026, 4, 1), 10000, 950, 0)
    assert loan.rev == 1 and loan.terms == m.terms[1]
    assert loan.ledger.slots[0].paid_principal == 6700
    assert loan.outstanding_principal == 15000 - 6700 + 15000
    payments, _ = replay_entries(m.entries)
    assert sorted((p.payment_id, p.reversed) for p in payments) == [("P1", True), ("P2", False)]
    assert loan.promises[0].promised_date == date(2026, 4, 20)
    assert loan.promises[0].paid == 0  # P2 came before the promise (step 2 < 5)
    assert (loan.obs_end, loan.evaluated_on) == (date(2027, 5, 1), date(2026, 3, 16))
    assert m.applied == ["t1", "t11", "t2", "t3", "t4", "t5", "t6", "t7"]
    closed = migrate_legacy(FORMAT1_RECORDS[1]).loan
    assert (closed.status, closed.closed_on) == ("closed", date(2026, 2, 10))


def test_a_store_upgrades_format1_records_in_place() -> None:
    table = {"A": FORMAT1_RECORDS[0], "B": FORMAT1_RECORDS[1]}
    engine = stored_engine(table)
    assert engine.loans["A"].outstanding_principal == 15000 - 6700 + 15000
    assert engine._already_applied({"loan_id": "A"}, "t3")  # its applied ids came along
    assert engine.loans["B"].status == "closed"
    store = engine.loans
    assert isinstance(store, LoanStore)
    store.flush()
    assert table["A"][:1] == b"\x02" and table["B"][:1] == b"\x02"
    again = load_loan(table, "A")
    assert again == store.cache["A"]


def test_a_deployment_restored_from_format1_records_goes_on_like_the_old_engine() -> None:
    """Records written by the old code mid-log; today's engine gives the old one's outputs."""
    body = orjson.loads((FIXTURES / "legacy" / "format1.json").read_bytes())
    state, expected = body["state"], body["expected"]
    policy = Policy()
    table = {k: v.encode() for k, v in state["records"].items()}
    engine = stored_engine(table, policy)
    engine.clock = date.fromisoformat(state["clock"])
    for item in state["seen"]:
        engine.seen.add(item)
    for obj, day in state["parked"]:
        event = parse_event(obj, policy.tz)
        assert isinstance(event, LoanEvent)
        engine.orphans.waiting.setdefault(event.loan_id, []).append(
            Parked(obj, event, date.fromisoformat(day))
        )
    loans = [load_loan(table, k, policy) for k in sorted(table)]
    engine.reindex(loan for loan in loans if loan is not None)
    for loan in loans:
        assert loan is not None
        engine.borrowers.book.set(loan.borrower_id, loan.loan_id, exposure(loan))
    log = FIXTURES / "scenarios" / body["log"] / "events.jsonl"
    lines = [line for line in log.read_bytes().splitlines() if line.strip()]
    alerts: list[Any] = []
    rejects: list[Any] = []
    for line in lines[body["cut"] :]:
        out = engine.process_raw(line)
        alerts += [a.to_json() for a in out.alerts]
        rejects += [r.to_json() for r in out.rejects]
    assert orjson.loads(orjson.dumps(alerts)) == expected["alerts"]
    assert orjson.loads(orjson.dumps(rejects)) == expected["rejects"]
    store = engine.loans
    assert isinstance(store, LoanStore) and engine.clock is not None
    store.flush()
    states = []
    for key in sorted(k for k in table if is_loan_key(k)):
        loan = load_loan(table, key, policy)
        assert loan is not None
        states.append(view(loan, engine.clock, policy).to_json())
    assert orjson.loads(orjson.dumps(states)) == expected["states"]


def exposure(loan: Any) -> Any:
    from loanwatch.ledger.borrowers import exposure_of

    return exposure_of(loan)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_logs())
def test_engine_states_round_trip_through_the_store(lines: list[bytes]) -> None:
    engine = Engine(Policy())
    for line in lines:
        engine.process_raw(line)
    for loan in engine.loans.values():
        raw = encode_loan(loan)
        back = decode_loan(
            raw, lambda rev, loan_id=loan.loan_id: engine.history.terms(loan_id, rev)
        )
        assert back == loan
        assert encode_loan(back) == raw
        terms = engine.history.terms(loan.loan_id, loan.rev)
        assert decode_terms(encode_terms(terms)) == terms


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_logs())
def test_an_engine_over_the_store_gives_what_the_engine_in_memory_gives(lines: list[bytes]) -> None:
    table: dict[str, bytes] = {}
    live, memory = stored_engine(table), Engine(Policy())
    for line in lines:
        a, b = live.process_raw(line), memory.process_raw(line)
        assert [x.to_json() for x in a.alerts] == [x.to_json() for x in b.alerts]
        assert [x.to_json() for x in a.rejects] == [x.to_json() for x in b.rejects]
        assert a.result == b.result
        store = live.loans
        assert isinstance(store, LoanStore)
        store.flush()
        store.cache.clear()  # every event reads the loans back from the table


def test_a_restored_engine_goes_on_exactly_like_the_original() -> None:
    schedule = [
        ((date(2026, 2, 1) + timedelta(days=30 * i)).isoformat(), "100.00", "9.99", "1.00")
        for i in range(360)
    ]
    opening = opened("M", "2026-01-01", schedule)
    table: dict[str, bytes] = {}
    live = Harness()
    live.engine = stored_engine(table)
    live.feed(opening)
    store = live.engine.loans
    assert isinstance(store, LoanStore)
    store.flush()
    copy = Harness()
    copy.engine = stored_engine(dict(table))
    copy.engine.clock = live.engine.clock
    copy.engine.reindex([copy.engine.loans["M"]])
    for h in (live, copy):
        h.alerts.clear()
        h.feed({"event_id": "p1", "type": "payment_received", "loan_id": "M", "payment_id": "P1",
                "amount": "250.00", "occurred_at": "2026-03-20T10:00:00+08:00"})  # fmt: skip
        h.feed({"event_id": "r1", "type": "payment_reversed", "loan_id": "M", "payment_id": "P1",
                "reason": "nsf", "occurred_at": "2026-03-21T10:00:00+08:00"})  # fmt: skip
    assert copy.alerts == live.alerts and copy.alerts
    assert copy.engine.loans["M"] == live.engine.loans["M"]
    assert encode_loan(copy.engine.loans["M"]) == encode_loan(live.engine.loans["M"])


def test_the_hot_record_is_small_and_does_not_grow_with_age_or_schedule() -> None:
    """A typical loan's hot record is at most 256 bytes; 360 installments and 100 payments
    later it has the same size: the schedule is stored once, payments in the history."""
    schedule = [
        ((date(2026, 2, 1) + timedelta(days=30 * i)).isoformat(), "100.00", "9.99", "1.00")
        for i in range(360)
    ]
    table: dict[str, bytes] = {}
    h = Harness()
    h.engine = stored_engine(table)
    h.feed(opened("L100-000123", "2026-01-01", schedule, borrower="B100-004567"))
    store = h.engine.loans
    assert isinstance(store, LoanStore)
    store.flush()
    young = len(table["L100-000123"])
    for i in range(100):
        day = (date(2026, 2, 1) + timedelta(days=3 * i)).isoformat()
        h.feed(paid("L100-000123", day, "37.00"))
    store.flush()
    old = len(table["L100-000123"])
    assert young <= 256 and old == young
    terms = [k for k in table if k.startswith("L100-000123\x1fT")]
    assert len(terms) == 1  # written once, at the opening
    assert sum(1 for k in table if is_loan_key(k)) == 1


def test_an_unknown_format_is_refused() -> None:
    raw = FORMAT1_RECORDS[1].replace(b'"v":1', b'"v":99')
    with pytest.raises(StateFormatError, match="unknown loan state format 99"):
        migrate_legacy(raw)
    with pytest.raises(StateFormatError, match="unknown loan state format"):
        decode_loan(b"\x07rest", lambda rev: pytest.fail("no terms"))


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
