"""What the console shows: the latest alerts, the portfolio by bucket and class, rates, URLs.

Pure rendering of a :class:`ConsoleState` into ``rich`` renderables (the TUI) or plain lines
(``--no-tui``, CI logs). It must never do I/O or read a clock: the runner fills the state.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from loanwatch.console.scrape import Portfolio

MAX_ALERTS = 200
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


@dataclass(slots=True)
class ConsoleState:
    """Everything on screen; the runner's tasks update it, the view only reads it."""

    urls: dict[str, str]
    alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_ALERTS))
    alerts_seen: int = 0
    portfolio: Portfolio = field(default_factory=Portfolio)
    events_per_s: float = 0.0
    worker_up: bool = False
    notes: list[str] = field(default_factory=list)

    def add_alert(self, alert: dict[str, Any]) -> None:
        self.alerts.appendleft(alert)  # newest first
        self.alerts_seen += 1


def _detail(alert: dict[str, Any]) -> str:
    """The fields specific to the alert's kind (SPEC §6), in a few words."""
    get = alert.get
    return {
        "bucket_changed": f"{get('from_bucket')}->{get('to_bucket')}",
        "classification_changed": f"{get('from_class')}->{get('to_class')}",
        "cured": f"from {get('from_bucket')}",
        "overdue": f"due {get('due_date')}",
        "promise_broken": f"paid {get('paid_amount')} of {get('promised_amount')}",
        "payment_reversed": f"payment {get('payment_id')}",
        "risk_signal": f"{get('signal')} ({get('signal_severity')})",
        "cross_default": f"borrower NPL share {get('borrower_npl_share')}",
        "cross_default_cleared": f"borrower NPL share {get('borrower_npl_share')}",
    }.get(str(get("kind")), "")


COLUMNS = ("date", "severity", "kind", "loan", "dpd", "bucket", "class", "detail")


def alert_cells(alert: dict[str, Any]) -> list[str]:
    """One alert as the console's columns."""
    keys = ("business_date", "severity", "kind", "loan_id", "dpd", "bucket", "classification")
    return [str(alert.get(k, "?")) for k in keys] + [_detail(alert)]


def alert_line(alert: dict[str, Any]) -> str:
    """One alert as a plain line (``--no-tui``)."""
    return "alert " + " ".join(f"{c}={v}" for c, v in zip(COLUMNS, alert_cells(alert), strict=True))


def _alerts_table(state: ConsoleState, rows: int) -> Table:
    table = Table(expand=True, show_edge=False, pad_edge=False)
    for name in COLUMNS:
        table.add_column(name, no_wrap=True)
    for alert in list(state.alerts)[:rows]:
        style = SEVERITY_STYLE.get(str(alert.get("severity")), "")
        table.add_row(*alert_cells(alert), style=style)
    return table


def _counts_table(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title, show_edge=False, pad_edge=False, min_width=len(title) + 4)
    table.add_column(title.split()[-1])
    table.add_column("loans", justify="right")
    for name, count in counts.items():
        table.add_row(name, f"{count:,}")
    return table


def render(state: ConsoleState, alert_rows: int = 15) -> RenderableType:
    """The whole screen."""
    p = state.portfolio
    status = Text.assemble(
        (
            "worker up" if state.worker_up else "worker starting...",
            "green" if state.worker_up else "yellow",
        ),
        f"   loans {p.loans:,}   events/s {state.events_per_s:,.0f}   ",
        f"alerts {state.alerts_seen:,}   dead letters {p.dead_letters_total:,.0f}",
    )
    counts = Table.grid(padding=(0, 4))
    counts.add_row(
        _counts_table("loans by bucket", p.by_bucket), _counts_table("loans by class", p.by_class)
    )
    urls = Text("\n".join(f"{name:<14} {url}" for name, url in state.urls.items()), style="dim")
    return Group(
        Panel(status, title="loanwatch run (Ctrl-C stops)"),
        Panel(_alerts_table(state, alert_rows), title="latest alerts (newest first)"),
        counts,
        Panel(urls, title="look at"),
        *(Text(note, style="red") for note in state.notes[-3:]),
    )


def status_line(state: ConsoleState) -> str:
    """One plain line for ``--no-tui``: counts by bucket and class, rates."""
    p = state.portfolio
    buckets = " ".join(f"{k}={v}" for k, v in p.by_bucket.items())
    classes = " ".join(f"{k}={v}" for k, v in p.by_class.items())
    return (
        f"status worker_up={state.worker_up} loans={p.loans} "
        f"events_per_s={state.events_per_s:.0f} alerts={state.alerts_seen} "
        f"dead_letters={p.dead_letters_total:.0f} | {buckets} | {classes}"
    )
