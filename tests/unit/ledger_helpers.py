"""Builders of wire events for the ledger tests (plain dicts, as they arrive from Kafka)."""

from __future__ import annotations

from typing import Any

from loanwatch.ledger.engine import Engine, Output
from loanwatch.ledger.policy import Policy

_counter = 0


def eid() -> str:
    global _counter
    _counter += 1
    return f"t{_counter}"


def at(day: str, time: str = "10:00:00+08:00") -> str:
    return f"{day}T{time}"


def opened(
    loan: str,
    day: str,
    installments: list[tuple[str, str, str, str]],
    borrower: str = "B1",
    **extra: Any,
) -> dict[str, Any]:
    rows = [
        {"seq": i + 1, "due_date": due, "principal": p, "interest": it, "fee": fee}
        for i, (due, p, it, fee) in enumerate(installments)
    ]
    total = sum(int(r["principal"].replace(".", "")) for r in rows)
    return {
        "event_id": eid(),
        "type": "loan_opened",
        "occurred_at": at(day),
        "loan_id": loan,
        "borrower_id": borrower,
        "product": "consumer",
        "region": "east",
        "currency": "CNY",
        "principal": f"{total // 100}.{total % 100:02d}",
        "installments": rows,
        **extra,
    }


def paid(
    loan: str, day: str, amount: str, pid: str | None = None, time: str = "10:00:00+08:00"
) -> dict[str, Any]:
    return {
        "event_id": eid(),
        "type": "payment_received",
        "occurred_at": at(day, time),
        "loan_id": loan,
        "payment_id": pid or eid(),
        "amount": amount,
    }


def tick(day: str) -> dict[str, Any]:
    return {"event_id": eid(), "type": "clock_tick", "business_date": day}


def event(kind: str, loan: str | None, day: str, **fields: Any) -> dict[str, Any]:
    body = {"event_id": eid(), "type": kind, "occurred_at": at(day), **fields}
    if loan is not None:
        body["loan_id"] = loan
    return body


class Harness:
    """Feeds events to one engine and keeps everything it produced."""

    def __init__(self, policy: Policy | None = None, naive: bool = False) -> None:
        self.engine = Engine(policy or Policy(), naive_aging=naive)
        self.alerts: list[dict[str, Any]] = []
        self.rejects: list[dict[str, Any]] = []
        self.results: list[str] = []

    def feed(self, *events: dict[str, Any] | str) -> Output:
        out = Output()
        for ev in events:
            out = self.engine.process_raw(ev) if isinstance(ev, str) else self.engine.process(ev)
            self.alerts += [a.to_json() for a in out.alerts]
            self.rejects += [r.to_json() for r in out.rejects]
            self.results.append(out.result)
        return out

    def state(self, loan: str) -> dict[str, Any]:
        from loanwatch.ledger.loan import view

        assert self.engine.clock is not None
        return view(self.engine.loans[loan], self.engine.clock, self.engine.policy).to_json()

    def kinds(self, loan: str | None = None) -> list[tuple[str, str]]:
        return [
            (a["kind"], a["business_date"]) for a in self.alerts if loan in (None, a["loan_id"])
        ]

    def reasons(self) -> list[str]:
        return [r["reason"] for r in self.rejects]
