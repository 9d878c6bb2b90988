"""The report's figures from a :class:`~loanwatch.report.book.Book` (pure, exact Decimals).

The definitions are those of the live gauges and recording rules
(``config/prometheus/rules/loanwatch-portfolio.yml``), so each figure equals what Prometheus
recorded for the day when the worker ran live over the same log:

- classification: active loans and their outstanding principal by effective class (all, by
  product, by region; products and regions bounded as the gauges bound them);
- PAR30 / PAR90: outstanding principal with DPD > 30 / > 90 over all outstanding principal;
- NPL ratio: outstanding classified substandard, doubtful or loss over all outstanding;
- IFRS 9 stages: active loans and outstanding by stage;
- roll rate (from, to) of a business day: loans that moved from -> to during the day over the
  loans in ``from`` when it began; cure rate: cures over the delinquent (non-M0) loans then;
- migration matrix: each loan's class at the start of D's month -> its class at the end of D
  (``new``: opened during the month; ``closed``: closed since).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from loanwatch.ledger.view import LoanView
from loanwatch.metrics.labels import DEFAULT_LABELS, LabelAllowList
from loanwatch.metrics.portfolio import CLASSES, STAGES
from loanwatch.report.book import Book

NPL_CLASSES = frozenset({"substandard", "doubtful", "loss"})
NEW, CLOSED = "new", "closed"
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Cell:
    loans: int
    outstanding: Decimal


@dataclass(frozen=True, slots=True)
class DayRates:
    day: date
    at_start: dict[str, int]
    transitions: dict[tuple[str, str], int]
    rolls: dict[tuple[str, str], Decimal]
    cure_rate: Decimal | None


@dataclass(slots=True)
class Figures:
    as_of: date
    month_start: date
    loans: int
    outstanding: Decimal
    par30: Decimal | None
    par90: Decimal | None
    npl: Decimal | None
    by_class: dict[str, Cell]
    by_product: dict[tuple[str, str], Cell]  # (product, class)
    by_region: dict[tuple[str, str], Cell]  # (region, class)
    by_stage: dict[str, Cell]
    migration: dict[tuple[str, str], Cell]  # (class at month start | new, class at D | closed)
    days: list[DayRates] = field(default_factory=list)  # each business day of the month to D

    @property
    def day(self) -> DayRates | None:
        """The flows of D itself (None when a partition did not begin D itself)."""
        return self.days[-1] if self.days and self.days[-1].day == self.as_of else None


def _tally(views: Sequence[LoanView], key: str) -> dict[str, Cell]:
    out: dict[str, Cell] = {}
    for v in views:
        k = str(getattr(v, key))
        c = out.get(k, Cell(0, _ZERO))
        out[k] = Cell(c.loans + 1, c.outstanding + v.outstanding_principal)
    return out


def _share(views: Sequence[LoanView], keep: object, total: Decimal) -> Decimal | None:
    if total <= 0:
        return None
    assert callable(keep)
    return sum((v.outstanding_principal for v in views if keep(v)), _ZERO) / total


def day_rates(book: Book, day: date) -> DayRates | None:
    flows = book.day_flows(day)
    if flows is None:
        return None
    rolls = {
        (a, b): Decimal(n) / Decimal(flows.at_start[a])
        for (a, b), n in sorted(flows.transitions.items())
        if flows.at_start.get(a, 0) > 0
    }
    delinquent = sum(n for b, n in flows.at_start.items() if b != "M0")
    cures = sum(flows.cures.values())
    cure = Decimal(cures) / Decimal(delinquent) if delinquent > 0 else None
    return DayRates(day, dict(flows.at_start), dict(flows.transitions), rolls, cure)


def compute(book: Book, labels: LabelAllowList = DEFAULT_LABELS) -> Figures:
    active = [v for v in book.at_end if v.status == "active"]
    total = sum((v.outstanding_principal for v in active), _ZERO)
    by_product: dict[tuple[str, str], Cell] = {}
    by_region: dict[tuple[str, str], Cell] = {}
    for v in active:
        for cells, name in (
            (by_product, labels.product(v.product)),
            (by_region, labels.region(v.region)),
        ):
            c = cells.get((name, v.classification), Cell(0, _ZERO))
            cells[(name, v.classification)] = Cell(
                c.loans + 1, c.outstanding + v.outstanding_principal
            )
    by_class = {k: Cell(0, _ZERO) for k in CLASSES} | _tally(active, "classification")
    by_stage = {k: Cell(0, _ZERO) for k in STAGES} | _tally(active, "ifrs9_stage")
    figures = Figures(
        as_of=book.as_of,
        month_start=book.month_start,
        loans=len(active),
        outstanding=total,
        par30=_share(active, lambda v: v.dpd > 30, total),
        par90=_share(active, lambda v: v.dpd > 90, total),
        npl=_share(active, lambda v: v.classification in NPL_CLASSES, total),
        by_class=by_class,
        by_product=dict(sorted(by_product.items())),
        by_region=dict(sorted(by_region.items())),
        by_stage=by_stage,
        migration=migration(book),
    )
    day = book.month_start
    while day <= book.as_of:
        rates = day_rates(book, day)
        if rates is not None:
            figures.days.append(rates)
        day += timedelta(days=1)
    return figures


def migration(book: Book) -> dict[tuple[str, str], Cell]:
    """(class at month start or ``new``, class at D or ``closed``) -> loans, outstanding at D."""
    start = {v.loan_id: v for v in book.at_month_start}
    out: dict[tuple[str, str], Cell] = {}
    for v in book.at_end:
        before = start.get(v.loan_id)
        if before is not None and before.status != "active":
            continue  # closed before the month began
        row = before.classification if before is not None else NEW
        if v.status != "active":
            if before is None:
                continue  # opened and closed within the month: no class to migrate
            col = CLOSED
        else:
            col = v.classification
        c = out.get((row, col), Cell(0, _ZERO))
        out[(row, col)] = Cell(c.loans + 1, c.outstanding + v.outstanding_principal)
    return out
