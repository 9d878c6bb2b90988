"""The portfolio at the end of a past business day, rebuilt from the audit trail (pure).

Each partition's recorded inputs whose business date is at most D are run, in chain order,
through the worker's own ledger processor (:func:`loanwatch.audit.replay.replay_partition`:
every input's SHA-256, state hash and alert ids are checked on the way, so a figure is only
ever computed from inputs that reproduce what the worker did). The views are taken twice: just
before the first input of D's month (the migration matrix's starting point) and after the last
input of D. A partition whose clock stops before D is aged to D, as ``replay --as-of`` does.

Business-day flows are the processor's own :class:`~loanwatch.metrics.flows.FlowBook` (the
book behind the live ``loanwatch_flow_*`` gauges), kept for every day, not only the last 8.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from loanwatch.agents.ledger import Inbound, LedgerProcessor
from loanwatch.audit.kafka_io import Stored
from loanwatch.audit.replay import ReplayReport, new_processor, replay_partition
from loanwatch.early_warning.config import EarlyWarningPolicy
from loanwatch.ledger.policy import Policy
from loanwatch.ledger.view import LoanView
from loanwatch.metrics.flows import DayFlows
from loanwatch.streams.topics import TopicNames

Chain = tuple[int, list[dict[str, Any]], Mapping[tuple[str, int], Stored]]


@dataclass(slots=True)
class Book:
    """What the figures are computed from."""

    as_of: date
    month_start: date
    at_month_start: list[LoanView] = field(default_factory=list)
    at_end: list[LoanView] = field(default_factory=list)
    flows: dict[int, dict[date, DayFlows]] = field(default_factory=dict)  # partition -> day
    clocks: dict[int, date | None] = field(default_factory=dict)
    replay: ReplayReport = field(default_factory=ReplayReport)

    def day_flows(self, day: date) -> DayFlows | None:
        """Every partition's flows of ``day`` added up; None unless each partition began it
        itself (what the live ``FlowCollector`` exposes, and only then)."""
        found = [by_day.get(day) for by_day in self.flows.values()]
        if not found or any(f is None for f in found):
            return None
        total = DayFlows(day, {})
        for f in found:
            assert f is not None
            for bucket, n in f.at_start.items():
                total.at_start[bucket] = total.at_start.get(bucket, 0) + n
            total.transitions.update(f.transitions)
            total.cures.update(f.cures)
        return total


def _day_of(rec: Mapping[str, Any]) -> date | None:
    day = rec.get("business_date")
    return date.fromisoformat(day) if isinstance(day, str) else None


def _split(
    records: Sequence[dict[str, Any]], month_start: date, as_of: date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The input records before D's month, and those of the month up to D (chain order)."""
    before: list[dict[str, Any]] = []
    during: list[dict[str, Any]] = []
    for rec in records:
        if rec.get("kind") != "input":
            continue
        day = _day_of(rec)
        if day is not None and day > as_of:
            break  # business dates never go back within a chain
        (during if day is not None and day >= month_start else before).append(rec)
    return before, during


def build(
    chains: Iterable[Chain],
    policy: Policy,
    names: TopicNames,
    partitions: int,
    as_of: date,
    early_warning: EarlyWarningPolicy | None = None,
) -> Book:
    """Replay each chain up to the end of ``as_of``; divergences are in ``book.replay``.

    ``early_warning``: the workers' file, when they ran with one (its alert ids are in the
    chains; the figures do not depend on it)."""
    book = Book(as_of, as_of.replace(day=1))
    for p, records, inputs in chains:
        kept: dict[date, DayFlows] = {}
        book.flows[p] = kept

        def keep(processor: LedgerProcessor, msg: Inbound) -> None:
            days = processor.runtimes[msg.partition].flows.days
            if days:
                kept.setdefault(days[-1].day, days[-1])  # noqa: B023 (called within the loop)

        before, during = _split(records, book.month_start, as_of)
        processor = new_processor(p, policy, names, partitions, early_warning)
        replay_partition(
            p,
            before,
            inputs,
            policy,
            names,
            partitions,
            book.replay,
            on_step=keep,
            processor=processor,
        )
        engine = processor.runtimes[p].engine
        book.at_month_start.extend(engine.views.values())
        replay_partition(
            p,
            during,
            inputs,
            policy,
            names,
            partitions,
            book.replay,
            on_step=keep,
            processor=processor,
        )
        if engine.clock is not None and engine.clock < as_of:
            engine.advance(as_of)
        book.clocks[p] = engine.clock
        book.at_end.extend(engine.views.values())
    book.at_month_start.sort(key=lambda v: v.loan_id)
    book.at_end.sort(key=lambda v: v.loan_id)
    return book
