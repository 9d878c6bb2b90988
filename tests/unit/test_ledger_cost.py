"""A payment costs what it touches, not the schedule's length (issue 16).

Deterministic measures, no clock: every read of a loan's terms arrays (the schedule) and every
Python function call made while the engine processes one payment. A 360-installment mortgage
and a 12-installment loan in the same position pay the same; a payment that reaches more
installments costs more (the measure sees the work it counts).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from types import FrameType
from typing import Any

import pytest

from loanwatch.ledger import terms as terms_module

from .ledger_helpers import Harness, opened, paid

pytestmark = pytest.mark.unit


class Reads:
    count = 0


class CountingArray(array):  # type: ignore[type-arg]
    """An array that counts its item reads (bisect and every indexing go through here)."""

    def __getitem__(self, index: Any) -> Any:
        Reads.count += 1
        return super().__getitem__(index)


@contextmanager
def counted_calls() -> Iterator[list[int]]:
    calls = [0]

    def profiler(frame: FrameType, event: str, arg: Any) -> None:
        if event in ("call", "c_call"):
            calls[0] += 1

    sys.setprofile(profiler)
    try:
        yield calls
    finally:
        sys.setprofile(None)


def schedule(n: int) -> list[tuple[str, str, str, str]]:
    first = date(2026, 2, 1)
    return [
        ((first + timedelta(days=30 * i)).isoformat(), "90.00", "9.00", "1.00") for i in range(n)
    ]


def payment_cost(
    installments: int, amount: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, int]:
    """(terms reads, function calls) of one payment, the loan two installments past due."""
    monkeypatch.setattr(terms_module, "array", CountingArray)
    h = Harness()
    h.feed(opened("A", "2026-01-01", schedule(installments)))
    h.feed(paid("A", "2026-02-20", "40.00"))  # the first installment part paid
    h.feed(paid("A", "2026-03-10", "10.00"))  # March 10: two installments past due
    event = paid("A", "2026-03-10", amount)
    before = Reads.count
    with counted_calls() as calls:
        out = h.engine.process(event)
    assert out.result == "applied"
    return Reads.count - before, calls[0]


def test_a_payments_cost_does_not_grow_with_the_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    short = payment_cost(12, "150.00", monkeypatch)
    long = payment_cost(360, "150.00", monkeypatch)
    assert short == long
    assert short[0] > 0  # the measure sees the schedule reads


def test_a_payment_reaching_more_installments_costs_more(monkeypatch: pytest.MonkeyPatch) -> None:
    one = payment_cost(360, "20.00", monkeypatch)
    five = payment_cost(360, "480.00", monkeypatch)
    assert five[0] > one[0]
