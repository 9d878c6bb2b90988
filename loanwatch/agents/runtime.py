"""One partition's engine in a worker: table-backed loans and seen ids, clock, parked orphans.

Built (and its transition index and borrower book re-derived from the loans) when the worker
first processes a partition after an assignment; dropped when the partition is revoked. The
clock lives in the ``meta`` table under ``partition/<n>`` so it survives restarts too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import orjson

from loanwatch.agents import early_warning_store as ew_store
from loanwatch.agents.state import LoanStore, ParkedStore, SeenStore, TableSink, TableSinks
from loanwatch.agents.treatment_store import flush_states, states_by_loan
from loanwatch.early_warning.config import EarlyWarningPolicy
from loanwatch.early_warning.state import EWState
from loanwatch.early_warning.tracker import EarlyWarning
from loanwatch.ledger.borrowers import LocalBorrowers, exposure_of
from loanwatch.ledger.engine import Engine
from loanwatch.ledger.loan import LoanState
from loanwatch.ledger.policy import Policy
from loanwatch.metrics.flows import FlowBook
from loanwatch.treatment.model import Strategies
from loanwatch.treatment.state import TreatmentState
from loanwatch.treatment.tracker import Treatment


def meta_key(partition: int) -> str:
    return f"partition/{partition}"


def flows_key(partition: int) -> str:
    return f"flows/{partition}"


class PartitionRuntime:
    def __init__(
        self,
        partition: int,
        policy: Policy,
        tables: Any,
        *,
        clock_follows_events: bool,
        loan_cache: int = 2000,
        sinks: TableSinks | None = None,
        strategies: Strategies | None = None,
        treatment_sink: TableSink | None = None,
        early_warning: EarlyWarningPolicy | None = None,
        early_warning_sink: TableSink | None = None,
    ) -> None:
        self.partition = partition
        self.strategies = strategies
        self.treatment_sink = treatment_sink
        self.treatment: Treatment | None = None  # built by restore() when strategies are set
        self.early_warning_policy = early_warning
        self.early_warning_sink = early_warning_sink
        # built by restore() when early warning is configured (issue 17)
        self.early_warning: EarlyWarning | None = None
        self.tables = tables
        self.sinks = sinks = sinks if sinks is not None else TableSinks.direct(tables)
        self.loans = LoanStore(
            tables.loans, keep=loan_cache, sink=sinks.loans, partition=partition, policy=policy
        )
        self.seen = SeenStore(tables.seen, partition, sinks.seen)
        # The partition holds whole borrowers: the book is replay's (borrowers.LocalBorrowers).
        self.borrowers = LocalBorrowers(policy.cross_default_share)
        self.parked = ParkedStore(tables.orphans, policy, sinks.orphans, partition)
        self.engine = Engine(
            policy,
            loans=self.loans,
            seen=self.seen,
            borrowers=self.borrowers,
            parked=self.parked,
            history=self.loans,  # a loan's terms, history and applied ids: keyed parts beside it
            clock_follows_events=clock_follows_events,
            today=None if clock_follows_events else (lambda: datetime.now(policy.tz).date()),
        )
        self._meta_written: bytes | None = None
        self.flows = FlowBook()  # roll and cure flows of the last business days (metrics.flows)
        self.flows_dirty = False

    def restore(
        self,
        loans: Iterable[LoanState],
        orphans: Iterable[tuple[str, list[date]]] = (),
        treatment: Iterable[TreatmentState] = (),
        early_warning: Iterable[EWState] = (),
    ) -> int:
        """Load the clock, re-derive the orphans' expiry, the index and every loan's view."""
        policy = self.engine.policy
        if self.strategies is not None:
            self.treatment = Treatment(self.strategies, policy, states_by_loan(treatment))
        if self.early_warning_policy is not None:  # its wake-up heap is rebuilt from the states
            self.early_warning = EarlyWarning(
                self.early_warning_policy,
                policy,
                ew_store.states_by_loan(early_warning),
                keep_scores=True,
            )
            self.early_warning.attach(self.engine)  # as replay: scores at each day's opening
        raw = self.tables.meta.get(meta_key(self.partition))
        if raw is not None:
            self.engine.import_meta(orjson.loads(raw))
            self._meta_written = raw
        flows = self.tables.meta.get(flows_key(self.partition))
        if flows is not None:
            self.flows = FlowBook.from_json(orjson.loads(flows))
        self.engine.reindex_parked(orphans)
        items = list(loans)
        self.engine.reindex(items)
        for loan in items:
            self.borrowers.book.set(loan.borrower_id, loan.loan_id, exposure_of(loan))
        # A crash between two loans of one step: repair the floors. From the decoded loans, not
        # through the store: no current event of this partition is set while it is restored.
        repaired = self.borrowers.reconcile({loan.loan_id: loan for loan in items})
        for loan_id, loan in repaired.items():
            self.loans[loan_id] = loan  # stored with the partition's next flush
        if repaired:
            items = [repaired.get(x.loan_id, x) for x in items]
        clock = self.engine.clock
        if clock is not None:
            for loan in items:
                self.engine.views.note(loan, clock)
        return len(items)

    def active_buckets(self) -> list[str]:
        """The bucket of every active loan of the partition, as its views stand now."""
        return self.engine.views.active_buckets()

    def flush(self) -> int:
        """Queue what the batch changed (call with a current event of this partition).

        The writes reach the store only at :meth:`LedgerProcessor.commit_state`, after the
        batch's outputs and changelog records are acknowledged (outputs before state).
        """
        written = self.loans.flush()
        if self.treatment is not None and self.treatment_sink is not None:
            flush_states(self.treatment, self.treatment_sink, self.partition)
        if self.early_warning is not None and self.early_warning_sink is not None:
            ew_store.flush_states(self.early_warning, self.early_warning_sink, self.partition)
        self.seen.flush()
        self.parked.flush()
        if self.flows_dirty:
            body = orjson.dumps(self.flows.to_json())
            self.sinks.meta.set(self.partition, flows_key(self.partition), body)
            self.flows_dirty = False
        meta = orjson.dumps(self.engine.export_meta())
        if meta != self._meta_written:
            self.sinks.meta.set(self.partition, meta_key(self.partition), meta)
            self._meta_written = meta
        return written
