"""The engine before and after a change, on the same simulated log, in one run (issue 16).

Prints, for this tree's engine and (``--before CHECKOUT``) another checkout's: the replay rate
÷ the ``orjson.loads`` rate of the same lines (target ≥ 0.2), resident memory per loan after
the replay, and what a worker's loans table gets (bytes and records written per event, the
stored hot record size p50 / p99 / max, the keyed parts: terms, history, applied ids). Each
engine runs in its own process (``benchkit/engine_probe.py``), one after the other. Ratios
are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from benchkit import cached_log, count_lines, loadavg, print_summary, print_table

PROBE = Path(__file__).resolve().parent / "benchkit" / "engine_probe.py"
FIGURES = [
    ("replay ev/s", "replay_per_s"),
    ("orjson parse ev/s", "parse_per_s"),
    ("replay / parse", "ratio"),
    ("loans", "loans"),
    ("RSS per loan (B)", "rss_per_loan"),
    ("changelog bytes / event", "changelog_bytes_per_event"),
    ("changelog records / event", "changelog_records_per_event"),
    ("hot record p50 (B)", "hot_p50"),
    ("hot record p99 (B)", "hot_p99"),
    ("hot record max (B)", "hot_max"),
    ("keyed parts (terms, history, ids)", "keyed_parts"),
    ("keyed part max (B)", "keyed_max"),
    ("stored bytes per loan", "stored_bytes_per_loan"),
]


def probe(log: Path, src: str | None, rounds: int) -> dict[str, object]:
    cmd = [sys.executable, str(PROBE), str(log), "--rounds", str(rounds)]
    if src:
        cmd += ["--src", src]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2k loans x 60 days, one round")
    ap.add_argument("--loans", type=int, default=30_000)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--before", default=None, help="a checkout of the code before the change")
    args = ap.parse_args()
    if args.quick:
        args.loans, args.days, args.rounds = 2_000, 60, 1
    log = cached_log(args.loans, args.days, args.seed)
    print(f"log {log.name}: {count_lines(log):,} lines; load {loadavg()}")
    runs = {}
    if args.before:
        runs["before"] = probe(log, args.before, args.rounds)
    runs["after"] = probe(log, None, args.rounds)
    names = list(runs)
    rows = [[label, *(runs[n].get(key, "") for n in names)] for label, key in FIGURES]
    print_table(f"engine on {log.name}", ["figure", *names], rows)
    print_summary("engine_ratio", {"log": log.name, "runs": runs, "load": loadavg()})


if __name__ == "__main__":
    main()
