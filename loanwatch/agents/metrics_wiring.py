"""Worker-side wiring of the pipeline metrics that no single event sets.

:func:`wire_metrics` is called once by the composition root (``app.py``) after the registry,
the ledger and the topics exist. It adds what the per-event code in ``ledger.py`` cannot do:

- ``loanwatch_consumer_lag_messages{topic,partition}``: end offset minus committed offset of
  every owned input partition (agent inputs and commands; not changelogs), refreshed
  by a timer; the series of a partition this worker no longer owns is removed, so a rebalance
  leaves no stale series.
- Views after a rebalance: Faust revokes every partition and assigns the new set; the ledger
  builds a partition's runtime only when its next batch arrives, so until then the
  ``PortfolioCollector`` would not see the loans of a partition that receives no new event. A
  timer restores the runtimes of owned partitions from the tables once recovery is done.
- ``loanwatch_last_event_timestamp_seconds``: the wall-clock time at which the worker last
  processed an event (the ledger stage writes the event's ``occurred_at`` into its own copy,
  which is not exposed; event-time lag stays in ``loanwatch_event_time_lag_seconds``).
- ``loanwatch_dead_letters_total{reason}``: every SPEC §1 reason starts at 0, so the dead
  letter panel reads 0/min instead of "no data" and a first dead letter is an increase.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from faust.types import TP
from prometheus_client import Gauge

from loanwatch.agents.faust_internals import metric_name_and_help

if TYPE_CHECKING:
    from loanwatch.agents.app import Worker

# SPEC §1 reasons, plus the worker's own (future_date, wrong_partition, bad_command).
DEAD_LETTER_REASONS: Final = (
    "malformed_json",
    "unknown_type",
    "missing_field",
    "bad_field",
    "bad_amount",
    "bad_date",
    "bad_schedule",
    "unknown_payment",
    "unknown_loan",
    "duplicate_loan",
    "loan_closed",
    "future_date",
    "wrong_partition",
    "bad_command",
)
REFRESH_SECONDS: Final = 1.0


def wire_metrics(worker: Worker) -> None:
    app, ledger, metrics = worker.app, worker.ledger, worker.metrics
    names = worker.names
    consumed = {*names.inputs(), names.commands}
    for reason in DEAD_LETTER_REASONS:
        metrics.dead_letters.labels(reason=reason)

    # The ledger keeps setting a gauge to each event's occurred_at; give it a private one.
    ledger.metrics = dataclasses.replace(
        metrics,
        last_event=Gauge(*metric_name_and_help(metrics.last_event), registry=None),
    )
    lag_series: set[tuple[str, str]] = set()
    last_progress: dict[str, int] = {}

    @app.timer(interval=REFRESH_SECONDS)  # type: ignore[untyped-decorator]
    async def refresh_metrics() -> None:
        if dict(ledger.progress) != last_progress:
            last_progress.clear()
            last_progress.update(ledger.progress)
            metrics.last_event.set(time.time())
        recovery: Any = getattr(app.tables, "recovery", None)
        if app.rebalancing or recovery is None or not recovery.completed.is_set():
            return
        owned = {tp for tp in app.consumer.assignment() if tp.topic in consumed}
        ledger.ensure({tp.partition for tp in owned})
        current = _set_lags(metrics.consumer_lag, app.consumer, owned)
        for topic, partition in lag_series - current:
            metrics.consumer_lag.remove(topic, partition)
        lag_series.clear()
        lag_series.update(current)


def _set_lags(gauge: Gauge, consumer: Any, owned: set[TP]) -> set[tuple[str, str]]:
    committed: Mapping[TP, int | None] = getattr(consumer, "_committed_offset", {})
    done: set[tuple[str, str]] = set()
    for tp in owned:
        end = consumer.highwater(tp)
        if end is None:  # no fetch response for this partition yet
            continue
        labels = (tp.topic, str(tp.partition))
        gauge.labels(*labels).set(max(0, int(end) - int(committed.get(tp) or 0)))
        done.add(labels)
    return done
