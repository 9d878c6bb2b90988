"""Early warning's cost (issue 17): replay's time per event with and without scoring.

Method: one cached simulated log (``benchkit.cached_log``), read into memory once, replayed
in-process by ``loanwatch.replay.runner.replay`` (GC tuned as the command tunes it) with the
SPEC policy, alternately without and with ``config/early_warning.yaml`` (the shipped model),
``--rounds`` times each; the best round of each counts (the least disturbed by other load), in
CPU time. Prints µs per event of both, the overhead (target ≤ 10 %), the scores and
pre_due_risk alerts made. ``--profile N``: the N functions with the most own time in one
replay with early warning (cProfile). Asserts nothing.

Run: ``.venv/bin/python bench/early_warning_cost.py [--quick]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from pathlib import Path

from benchkit import cached_log, loadavg

from loanwatch.early_warning.config import EarlyWarningPolicy, load_early_warning
from loanwatch.gc_tuning import tune_gc
from loanwatch.ledger.policy import Policy
from loanwatch.replay.runner import ReplayResult, replay

REPO = Path(__file__).resolve().parents[1]
EW_FILE = REPO / "config" / "early_warning.yaml"


def read_lines(log: Path) -> list[bytes]:
    with log.open("rb") as fh:
        return [line.rstrip(b"\n") for line in fh if line.strip()]


def timed(lines: list[bytes], warning: EarlyWarningPolicy | None) -> tuple[float, ReplayResult]:
    """CPU seconds of one replay (less disturbed than wall time on a shared machine)."""
    began = time.process_time()
    result = replay(lines, Policy(), early_warning=warning, on_alert=lambda a: None)
    return time.process_time() - began, result


def profile(lines: list[bytes], warning: EarlyWarningPolicy, top: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    replay(lines, Policy(), early_warning=warning, on_alert=lambda a: None)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1k loans x 120 days, 2 rounds")
    ap.add_argument("--loans", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", type=int, default=0, help="print the top N functions")
    args = ap.parse_args()
    if args.quick:
        args.loans, args.days, args.rounds = 1_000, 120, 2
    log = cached_log(args.loans, args.days, args.seed)
    lines = read_lines(log)
    warning = load_early_warning(EW_FILE)
    tune_gc()  # as `loanwatch replay` runs
    print(f"log {log.name}: {len(lines):,} lines; load {loadavg()}")
    best = {"off": float("inf"), "on": float("inf")}
    scores = 0
    for _ in range(args.rounds):
        for mode in ("off", "on"):
            seconds, result = timed(lines, warning if mode == "on" else None)
            best[mode] = min(best[mode], seconds)
            if result.early_warning is not None:
                states = result.early_warning.states.values()
                scores = sum(1 for s in states if s.last is not None)
    kinds: list[str] = []
    replay(lines, Policy(), early_warning=warning, on_alert=lambda a: kinds.append(a.kind))
    alerts = kinds.count("pre_due_risk")
    off, on = (best[m] / len(lines) * 1e6 for m in ("off", "on"))
    print(f"replay without early warning: {off:.2f} µs/event")
    print(f"replay with early warning:    {on:.2f} µs/event")
    print(f"loans with a score: {scores:,}; pre_due_risk alerts: {alerts:,}")
    print(f"early-warning overhead: {(on / off - 1) * 100:+.1f} % per event (target <= 10 %)")
    if args.profile:
        print(profile(lines, warning, args.profile))


if __name__ == "__main__":
    main()
