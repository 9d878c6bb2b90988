"""Replay an event log through the engine, without Kafka (SPEC §7).

Reads the log line by line (never the whole file at once), stops before the first event whose
business date is after ``as_of``, ages to ``as_of`` and writes states, alerts and rejects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

import orjson

from loanwatch.early_warning.config import EarlyWarningPolicy
from loanwatch.early_warning.tracker import EarlyWarning
from loanwatch.ledger.alerts import Alert
from loanwatch.ledger.engine import DeadLetter, Engine
from loanwatch.ledger.parse import business_date_of, decode
from loanwatch.ledger.policy import Policy
from loanwatch.ledger.records import Rejection
from loanwatch.ledger.view import LoanView
from loanwatch.treatment.model import Strategies
from loanwatch.treatment.tracker import Treatment


@dataclass(slots=True)
class ReplayResult:
    states: list[LoanView]
    alerts: list[Alert] = field(default_factory=list)
    rejects: list[DeadLetter] = field(default_factory=list)
    events: int = 0
    treatment: Treatment | None = None  # segments and arms, when strategies were given
    early_warning: EarlyWarning | None = None  # scores, when early warning was configured


def iter_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield line.rstrip(b"\r\n")


def replay(
    lines: Iterable[bytes],
    policy: Policy,
    *,
    as_of: date | None = None,
    naive_aging: bool = False,
    on_alert: Callable[[Alert], None] | None = None,
    on_reject: Callable[[DeadLetter], None] | None = None,
    on_line: Callable[[int], None] | None = None,
    strategies: Strategies | None = None,
    early_warning: EarlyWarningPolicy | None = None,
) -> ReplayResult:
    """Run the log through a fresh engine; alerts and rejects are kept or streamed to callbacks.

    With ``strategies`` the treatment layer runs beside the engine (segments, arms, actions);
    with ``early_warning`` the early-warning layer after it (scores, pre-due alerts).
    """
    engine = Engine(policy, naive_aging=naive_aging)
    treatment = Treatment(strategies, policy) if strategies is not None else None
    warning = EarlyWarning(early_warning, policy) if early_warning is not None else None
    if warning is not None:
        warning.attach(engine)  # scores at each day's opening, before the event opening it
    result = ReplayResult(states=[], treatment=treatment, early_warning=warning)
    keep_alert = on_alert or result.alerts.append
    keep_reject = on_reject or result.rejects.append
    for line in lines:
        obj = decode(line)
        if isinstance(obj, Rejection):
            out = engine.process_raw(line)
        else:
            day = business_date_of(obj, policy.tz)
            if as_of is not None and day is not None and day > as_of:
                break
            out = engine.process(obj)
            if treatment is not None:
                treatment.observe(engine, obj, out)
            if warning is not None:
                warning.observe(engine, obj, out)
        result.events += 1
        for alert in out.alerts:
            keep_alert(alert)
        for reject in out.rejects:
            keep_reject(reject)
        if on_line is not None:
            on_line(len(line) + 1)
    if as_of is not None:
        out = engine.advance(as_of)
        if treatment is not None:
            treatment.observe(engine, None, out)
        if warning is not None:
            warning.observe(engine, None, out)
        for alert in out.alerts:
            keep_alert(alert)
        for reject in out.rejects:
            keep_reject(reject)
    result.states = engine.states(as_of)
    return result


def write_jsonl(handle: IO[bytes], objects: Iterable[dict[str, Any]]) -> None:
    for obj in objects:
        handle.write(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS))
        handle.write(b"\n")
