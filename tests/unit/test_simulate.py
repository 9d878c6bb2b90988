"""The portfolio simulator: determinism, SPEC section 1 validity, time order, ticks, laziness.

``audit`` is an independent reader of a generated log: it validates every event against the
wire contract, classifies the deliberate faults, and keeps its own tiny ledger (installment
totals and net payments per loan) to check that payments never exceed what is owed.
"""

from __future__ import annotations

import io
import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from typing import Any

import orjson
import pytest

from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.generator import Simulation, generate
from loanwatch.simulate.writer import write_jsonl

SHANGHAI = timezone(timedelta(hours=8))
MONEY = re.compile(r"^\d+\.\d{2}$")
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")
REQUIRED: dict[str, set[str]] = {
    "loan_opened": {"loan_id", "borrower_id", "product", "region", "currency", "principal",
                    "installments"},
    "schedule_revised": {"loan_id", "reason", "installments"},
    "loan_closed": {"loan_id", "reason"},
    "payment_received": {"loan_id", "payment_id", "amount"},
    "payment_reversed": {"loan_id", "payment_id", "reason"},
    "promise_to_pay": {"loan_id", "promise_id", "amount", "promised_date"},
    "contact_logged": {"loan_id", "channel", "outcome"},
    "risk_signal": {"signal", "severity"},
}  # fmt: skip
OPTIONAL: dict[str, set[str]] = {
    "payment_received": {"channel"},
    "contact_logged": {"collector_id"},
    "risk_signal": {"borrower_id", "loan_id", "detail"},
}
ENUMS: dict[tuple[str, str], set[str]] = {
    ("loan_opened", "product"): {"consumer", "sme", "mortgage", "auto"},
    ("loan_opened", "region"): {"east", "north", "south", "west", "central"},
    ("loan_opened", "currency"): {"CNY"},
    ("schedule_revised", "reason"): {"restructure", "extension"},
    ("loan_closed", "reason"): {"repaid", "written_off", "sold"},
    ("contact_logged", "channel"): {"sms", "call", "email", "visit", "letter"},
    ("risk_signal", "severity"): {"low", "medium", "high"},
}


def cents(value: object) -> int:
    assert isinstance(value, str) and MONEY.match(value), value
    return int(Decimal(value) * 100)


def check_schedule(rows: object) -> list[tuple[date, int]]:
    """SPEC section 1 schedule rules; returns (due date, total cents) per installment."""
    assert isinstance(rows, list) and rows
    out: list[tuple[date, int]] = []
    for n, row in enumerate(rows, start=1):
        assert row["seq"] == n and set(row) <= {"seq", "due_date", "principal", "interest", "fee"}
        due = date.fromisoformat(row["due_date"])
        assert not out or due > out[-1][0], "due dates must strictly increase"
        total = cents(row["principal"]) + cents(row["interest"]) + cents(row.get("fee", "0.00"))
        out.append((due, total))
    return out


def fault_of(ev: dict[str, Any]) -> str | None:
    """The deliberate fault kind of a decoded event, or None; asserts a good event is valid."""
    etype = ev.get("type")
    if etype == "clock_tick":
        assert set(ev) == {"event_id", "type", "business_date"}
        date.fromisoformat(ev["business_date"])
        return None
    if etype not in REQUIRED:
        return "unknown_type"
    if not REQUIRED[etype] | {"event_id", "type", "occurred_at"} <= set(ev):
        return "missing_field"
    amount = ev.get("amount")
    if amount is not None:
        if not isinstance(amount, str):
            return "number_amount"
        if amount.startswith("-"):
            return "negative_amount"
        if re.match(r"^\d+\.\d{3}$", amount):
            return "three_decimals"
        assert cents(amount) > 0
    assert isinstance(ev["event_id"], str) and STAMP.match(ev["occurred_at"]), ev
    extra = set(ev) - REQUIRED[etype] - OPTIONAL.get(etype, set())
    assert extra == {"event_id", "type", "occurred_at"}, ev
    for (t, name), allowed in ENUMS.items():
        assert t != etype or ev[name] in allowed, ev
    if etype == "loan_opened":
        rows = check_schedule(ev["installments"])
        principal = sum(cents(r["principal"]) for r in ev["installments"])
        assert principal == cents(ev["principal"]) and len(rows) == len(ev["installments"])
    elif etype == "schedule_revised":
        check_schedule(ev["installments"])
    elif etype == "promise_to_pay":
        date.fromisoformat(ev["promised_date"])
    elif etype == "risk_signal":
        assert ("borrower_id" in ev) != ("loan_id" in ev), ev
    return None


@dataclass
class Book:
    """The audit's own view of one loan."""

    rows: list[tuple[date, int]]
    paid: int = 0
    payments: dict[str, int] = field(default_factory=dict)
    reversed: set[str] = field(default_factory=set)
    closed: bool = False

    def owed(self) -> int:
        return sum(t for _, t in self.rows)

    def revise(self, new_rows: list[tuple[date, int]]) -> None:
        kept, cum = 0, 0
        while kept < len(self.rows) and cum + self.rows[kept][1] <= self.paid:
            cum += self.rows[kept][1]
            kept += 1
        self.rows = self.rows[:kept] + new_rows

    def dpd(self, on: date) -> int:
        cum = 0
        for due, total in self.rows:
            cum += total
            if cum > self.paid:
                return max(0, (on - due).days)
        return 0


@dataclass
class Audit:
    faults: Counter[str] = field(default_factory=Counter)
    types: Counter[str] = field(default_factory=Counter)
    books: dict[str, Book] = field(default_factory=dict)
    ticks: list[date] = field(default_factory=list)
    excess: list[int] = field(default_factory=list)
    late: int = 0
    lines: int = 0
    utc: int = 0
    utc_next_day: int = 0
    opened_by_borrower: Counter[str] = field(default_factory=Counter)
    fee_omitted: int = 0
    opened: list[dict[str, Any]] = field(default_factory=list)


def audit(data: bytes) -> Audit:
    lines = data.split(b"\n")
    assert lines[-1] == b""
    lines.pop()
    decoded: list[dict[str, Any] | None] = []
    will_open: set[str] = set()
    for line in lines:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            obj = None
        decoded.append(obj)
        if obj is not None and obj.get("type") == "loan_opened":
            will_open.add(obj["loan_id"])
    a = Audit(lines=len(lines))
    seen: dict[str, bytes] = {}
    parked: dict[str, list[int]] = {}
    last = datetime.min.replace(tzinfo=SHANGHAI)
    for line, ev in zip(lines, decoded, strict=True):
        if ev is None:
            a.faults["malformed_json"] += 1
            continue
        eid = str(ev.get("event_id"))
        if eid in seen:
            assert seen[eid] == line, "a re-delivery must be an exact copy"
            a.faults["duplicate"] += 1
            continue
        seen[eid] = line
        if ev.get("type") == "clock_tick":
            fault_of(ev)
            a.ticks.append(date.fromisoformat(ev["business_date"]))
            last = datetime.combine(a.ticks[-1], datetime.min.time(), SHANGHAI)
            continue
        stamp = datetime.fromisoformat(ev["occurred_at"])
        local = stamp.astimezone(SHANGHAI)
        if not ev["occurred_at"].endswith("+08:00"):
            a.utc += 1
            a.utc_next_day += stamp.date() != local.date()
        assert local.date() <= a.ticks[-1], ev
        if local.date() < a.ticks[-1]:
            assert local.date() >= a.ticks[-1] - timedelta(days=2), ev
            a.late += 1
        else:
            assert local >= last, (ev, last)
            last = local
        kind = fault_of(ev) or _loan_fault(a, ev, will_open, parked)
        if kind is not None:
            a.faults[kind] += 1
        else:
            a.types[ev["type"]] += 1
    return a


def _loan_fault(
    a: Audit, ev: dict[str, Any], will_open: set[str], parked: dict[str, list[int]]
) -> str | None:
    """Apply a valid event to the audit's books; the fault kind if the engine must reject it."""
    etype, lid = ev["type"], ev.get("loan_id")
    if lid is None:  # a borrower-keyed signal
        return None
    book = a.books.get(lid)
    if etype == "loan_opened":
        assert book is None, "a loan is opened once"
        book = a.books[lid] = Book(check_schedule(ev["installments"]))
        book.paid = sum(parked.pop(lid, []))
        a.opened_by_borrower[ev["borrower_id"]] += 1
        a.fee_omitted += any("fee" not in r for r in ev["installments"])
        a.opened.append(ev)
        return None
    if book is None:
        if lid in will_open:
            assert etype == "payment_received"
            parked.setdefault(lid, []).append(cents(ev["amount"]))
            return "orphan"
        return "never_opened"
    if book.closed:
        return "after_closed"
    if etype == "payment_received":
        assert ev["payment_id"] not in book.payments
        amount = cents(ev["amount"])
        book.payments[ev["payment_id"]] = amount
        book.paid += amount
        if book.paid > book.owed():
            a.excess.append(book.paid - book.owed())
    elif etype == "payment_reversed":
        pid = ev["payment_id"]
        if pid not in book.payments:
            return "unknown_payment"
        assert pid not in book.reversed, "a payment is reversed at most once"
        book.reversed.add(pid)
        book.paid -= book.payments[pid]
    elif etype == "schedule_revised":
        book.revise(check_schedule(ev["installments"]))
    elif etype == "loan_closed":
        book.closed = True
        if ev["reason"] == "repaid":
            assert book.paid >= book.owed(), "repaid only once fully paid"
    return None


def run(**kwargs: Any) -> bytes:
    out = io.BytesIO()
    write_jsonl(generate(SimulationConfig(**kwargs)), out)
    return out.getvalue()


BIG = {"loans": 2500, "days": 150, "seed": 7, "start": date(2026, 1, 5), "fault_rate": 0.01}


@cache
def big_audit() -> Audit:
    return audit(run(**BIG))


def test_same_seed_same_bytes() -> None:
    one = run(loans=300, days=60, seed=11)
    assert one == run(loans=300, days=60, seed=11)
    assert one != run(loans=300, days=60, seed=12)


def test_every_event_is_valid_and_ticks_once_per_day() -> None:
    a = big_audit()
    start: date = BIG["start"]  # type: ignore[assignment]
    assert a.ticks == [start + timedelta(days=i) for i in range(150)]
    assert set(a.types) == set(REQUIRED)
    assert a.types["loan_opened"] == 2500


def test_portfolio_is_realistic() -> None:
    a = big_audit()
    assert {ev["product"] for ev in a.opened} == {"consumer", "sme", "mortgage", "auto"}
    assert len({ev["region"] for ev in a.opened}) == 5
    multi = sum(1 for n in a.opened_by_borrower.values() if n >= 2)
    assert 0.1 < multi / len(a.opened_by_borrower) < 0.4
    assert max(a.opened_by_borrower.values()) <= 4
    assert 0 < a.fee_omitted < len(a.opened)
    on_day_one = sum(ev["occurred_at"][:10] <= "2026-01-05" for ev in a.opened)
    assert 0.3 < on_day_one / len(a.opened) < 0.7
    end = date(2026, 1, 5) + timedelta(days=149)
    dpds = [b.dpd(end) for b in a.books.values() if not b.closed]
    assert sum(d == 0 for d in dpds) > len(dpds) / 2
    for depth in (90, 180, 360):
        assert any(d > depth for d in dpds), depth
    assert a.types["loan_closed"] > 0 and a.types["promise_to_pay"] > 0


def test_time_offsets_and_late_arrivals() -> None:
    a = big_audit()
    assert 0.05 < a.utc / a.lines < 0.3
    assert a.utc_next_day > 0
    assert 0 < a.late < 0.01 * a.lines


def test_faults_are_present_at_the_configured_rate() -> None:
    a = audit(run(loans=1500, days=120, seed=3, fault_rate=0.03))
    kinds = {"malformed_json", "number_amount", "three_decimals", "negative_amount",
             "missing_field", "unknown_type", "unknown_payment", "never_opened", "after_closed",
             "duplicate", "orphan"}  # fmt: skip
    assert set(a.faults) == kinds
    share = (a.faults.total() - a.faults["orphan"]) / a.lines
    assert 0.02 < share < 0.04


def test_payments_never_exceed_what_is_owed_without_overpayments() -> None:
    a = audit(run(loans=1500, days=150, seed=5, overpay_rate=0.0))
    assert a.excess == []


def test_deliberate_overpayments_are_small() -> None:
    a = big_audit()
    assert a.excess and max(a.excess) <= 50_00


def test_generation_is_lazy() -> None:
    sim = Simulation(SimulationConfig(loans=20_000, days=30, seed=2))
    first = list(itertools.islice(iter(sim), 500))
    assert len(first) == 500
    assert sim.stats["loan_opened"] < 600  # only what was pulled has been built


def test_event_key() -> None:
    from loanwatch.simulate.events import event_key

    assert event_key({"type": "payment_received", "loan_id": "L1"}) == "L1"
    assert event_key({"type": "risk_signal", "borrower_id": "B1"}) == "B1"
    assert event_key({"type": "clock_tick", "business_date": "2026-01-01"}) is None
    assert event_key(b'{"type": "pay') is None


@pytest.mark.parametrize("bad", [{"loans": 0}, {"days": 0}, {"fault_rate": 0.7},
                                 {"utc_share": 1.5}])  # fmt: skip
def test_config_is_validated(bad: dict[str, Any]) -> None:
    from loanwatch.simulate.config import SimulationConfigError

    with pytest.raises(SimulationConfigError):
        SimulationConfig(**bad)


def test_cli_writes_the_same_log_as_the_api(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from loanwatch.cli import main

    out = tmp_path / "events.jsonl"
    args = ["simulate", "--loans", "200", "--days", "40", "--seed", "9", "--start", "2026-03-01"]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    expected = run(loans=200, days=40, seed=9, start=date(2026, 3, 1))
    assert out.read_bytes() == expected
    stdout = CliRunner().invoke(main, [*args, "--out", "-"])
    assert stdout.stdout_bytes == expected
