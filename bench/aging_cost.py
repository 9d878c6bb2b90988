"""Cost of a business-day rollover (issue 3): it should follow transitions, not portfolio size.

Method: two engines are built directly in memory (no log): 10k and 1M active loans whose only
installment falls due a year later (so the transition index schedules them far away), plus the
same fixed set of ``--transitions`` loans (1,000) due on each of the next ``--rounds`` days.
Each round times one ``engine.advance(day + 1)``: the due loans turn overdue (one ``overdue``
alert each) and nothing else is touched. The ratio 1M/10k should be close to 1. As the
contrast, the naive daily aging (``Engine(policy, naive_aging=True)``: every active loan
evaluated every day) is timed for the 10k case. Loan states share their immutable schedule
and ledger objects, so 1M loans fit in well under 2 GB; RSS is printed.

Run: ``.venv/bin/python bench/aging_cost.py [--quick]``. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from dataclasses import replace
from datetime import date, timedelta

from benchkit import loadavg, print_summary, print_table, rss_mb

from loanwatch.ledger.engine import Engine
from loanwatch.ledger.loan import LoanState, evaluate, next_transition, open_loan
from loanwatch.ledger.policy import Policy
from loanwatch.ledger.records import InstallmentTerms, LoanOpened

DAY0 = date(2026, 1, 1)


def template(due: date, policy: Policy) -> LoanState:
    """One consumer loan with a single installment due on ``due``, evaluated on DAY0."""
    terms = (InstallmentTerms(1, due, 100_000, 1_000, 0),)
    opened = LoanOpened("open-T", DAY0, "T", "B-T", "consumer", "north", "CNY", 100_000, terms)
    loan = open_loan(opened)
    evaluate(loan, DAY0, policy)
    return loan


def build_engine(loans: int, transitions: int, rounds: int, *, naive: bool = False) -> Engine:
    """``loans`` idle active loans plus ``transitions`` loans due on each of DAY0..DAY0+rounds-1.

    The idle ones are copies of one evaluated template (a new id each, the rest shared), as
    a replayed book would hold them after its last event, with their index entries.
    """
    policy = Policy()
    engine = Engine(policy, naive_aging=naive)
    engine.clock = DAY0
    idle = template(DAY0 + timedelta(days=365), policy)
    waking = [template(DAY0 + timedelta(days=r), policy) for r in range(rounds)]
    store, index = engine.loans, engine.index
    for i in range(loans):
        loan_id = f"L{i:08d}"
        loan = replace(idle, loan_id=loan_id, borrower_id=f"B{i:08d}")
        store[loan_id] = loan
        index.set(loan_id, next_transition(loan, policy))
    for r, tmpl in enumerate(waking):
        for i in range(transitions):
            loan_id = f"W{r:02d}-{i:06d}"
            loan = replace(tmpl, loan_id=loan_id, borrower_id=f"BW{r:02d}-{i:06d}")
            store[loan_id] = loan
            index.set(loan_id, next_transition(loan, policy))
    return engine


def time_rollovers(engine: Engine, rounds: int) -> list[tuple[float, int]]:
    """Seconds and alerts of each ``advance`` to the next day (GC off while timing)."""
    out: list[tuple[float, int]] = []
    for r in range(rounds):
        gc.collect()
        gc.disable()
        began = time.perf_counter()
        result = engine.advance(DAY0 + timedelta(days=r + 1))
        elapsed = time.perf_counter() - began
        gc.enable()
        out.append((elapsed, len(result.alerts)))
    return out


def measure(
    label: str, loans: int, transitions: int, rounds: int, naive: bool = False
) -> dict[str, float]:
    began = time.perf_counter()
    before = rss_mb()
    engine = build_engine(loans, transitions, rounds, naive=naive)
    built = time.perf_counter() - began
    rss = rss_mb()
    times = time_rollovers(engine, rounds)
    secs = [t for t, _ in times]
    alerts = times[0][1]
    del engine
    gc.collect()
    return {
        "label": label,  # type: ignore[dict-item]
        "loans": loans + transitions * rounds,
        "alerts": alerts,
        "median_ms": statistics.median(secs) * 1e3,
        "best_ms": min(secs) * 1e3,
        "all_ms": [round(s * 1e3, 2) for s in secs],  # type: ignore[dict-item]
        "build_s": built,
        "rss_mb": rss,
        "state_mb": rss - before,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1k vs 100k loans, 100 transitions")
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--large", type=int, default=1_000_000)
    ap.add_argument("--transitions", type=int, default=1_000)
    ap.add_argument("--rounds", type=int, default=5, help="rollovers timed per engine")
    args = ap.parse_args()
    if args.quick:
        args.small, args.large, args.transitions, args.rounds = 1_000, 100_000, 100, 3

    n, k = args.transitions, args.rounds
    small = measure("index", args.small, n, k)
    large = measure("index", args.large, n, k)
    naive = measure("naive daily", args.small, n, k, naive=True)
    base = small["median_ms"]
    rows = [
        [r["label"], r["loans"], r["alerts"], f"{r['median_ms']:.1f}", f"{r['best_ms']:.1f}",
         f"{r['median_ms'] * 1e3 / max(n, 1):.0f}", f"{r['median_ms'] / base:.2f}",
         f"{r['rss_mb']:,.0f}", f"{r['build_s']:.1f}"]
        for r in (small, large, naive)
    ]  # fmt: skip
    print_table(
        f"one day rollover, {n:,} loans transition (median of {k} days); load {loadavg()}",
        ["aging", "active loans", "alerts", "median ms", "best ms", "us/transition",
         "vs index 10k", "RSS MB", "build s"],
        rows,
    )  # fmt: skip
    for r in (small, large, naive):
        print(f"  {r['label']} {r['loans']:,}: every rollover ms {r['all_ms']}")
    print_summary(
        "aging_cost",
        {
            "transitions": n,
            "small_loans": small["loans"],
            "large_loans": large["loans"],
            "index_small_ms": round(small["median_ms"], 2),
            "index_large_ms": round(large["median_ms"], 2),
            "ratio_large_over_small": round(large["median_ms"] / base, 3),
            "naive_small_ms": round(naive["median_ms"], 2),
            "ratio_naive_over_index_small": round(naive["median_ms"] / base, 2),
            "large_rss_mb": round(large["rss_mb"]),
        },
    )


if __name__ == "__main__":
    main()
