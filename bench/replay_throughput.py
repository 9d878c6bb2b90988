"""Replay throughput (issue 3): the engine over a simulated log vs merely parsing its lines.

Method: one simulated log (100k loans x 30 days by default, cached under ``run/bench/cache``)
is read twice per round from the page cache: (a) every line through ``orjson.loads`` (the
fastest JSON parser installed: the floor any consumer of the log pays), (b) the whole replay
in-process, ``replay(iter_lines(path), Policy())`` with alerts kept in memory and no output
files. Both are events/s over the same lines; the figure that matters is replay/parse.
A short cProfile of the replay (first ``--profile-lines`` lines) shows where the time goes,
and the loan state codec (``streams/codecs.py``, the worker's changelog format) is timed over
the loans of those lines against ``orjson.loads`` + ``dumps`` of the same records.

Run: ``.venv/bin/python bench/replay_throughput.py [--quick]``. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import pstats
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import orjson
from benchkit import cached_log, count_lines, loadavg, peak_rss_mb, print_summary, print_table

from loanwatch.ledger.engine import Engine
from loanwatch.ledger.loan import LoanState
from loanwatch.ledger.policy import Policy
from loanwatch.replay.runner import iter_lines, replay
from loanwatch.streams.codecs import decode_loan, decode_terms, encode_loan, encode_terms

T = TypeVar("T")


def parse_all(path: Path) -> int:
    """Parse every non-blank line with orjson; bad lines count too (they were read)."""
    loads = orjson.loads
    n = 0
    for line in iter_lines(path):
        try:  # noqa: SIM105 (contextlib.suppress costs more per line)
            loads(line)
        except orjson.JSONDecodeError:
            pass
        n += 1
    return n


def replay_all(path: Path, limit: int | None = None) -> tuple[int, int]:
    """Replay the log (or its first ``limit`` lines): events and alerts."""
    lines = iter_lines(path)
    if limit is not None:
        lines = itertools.islice(lines, limit)
    result = replay(lines, Policy())
    return result.events, len(result.alerts)


def timed(fn: Callable[..., T], *args: object) -> tuple[float, T]:
    began = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - began, value


def profile_replay(path: Path, limit: int, top: int = 15) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    replay_all(path, limit)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


HOT_FIELDS = ("loan_id", "borrower_id", "product", "region", "currency", "rev", "cursor",
              "paid_principal", "paid_interest", "paid_fee", "credit", "status", "closed_on",
              "step", "watch_until", "obs_end", "restructure_floor", "npl", "current_since",
              "cross_default", "last_dpd", "last_bucket", "last_class", "evaluated_on",
              "entries", "position")  # fmt: skip


def codec_row(label: str, loans: list[LoanState], repeat: int = 3) -> list[object]:
    """One row of :func:`codec_costs`: per loan, bytes and microseconds (best of ``repeat``)."""
    # A cache miss reads the hot record and its terms; a flush writes the hot record only
    # (terms are written once per opening or revision).
    records = [(encode_loan(loan), encode_terms(loan.terms)) for loan in loans]

    def decode_all() -> list[LoanState]:
        return [decode_loan(raw, lambda rev, t=terms: decode_terms(t)) for raw, terms in records]

    decoded = decode_all()
    hot = [raw for raw, _ in records]
    # The floor: orjson round-trips the same hot values as a JSON array (no terms).
    as_json = [orjson.dumps([getattr(loan, f) for f in HOT_FIELDS], default=str) for loan in loans]
    steps: list[Callable[[], object]] = [
        lambda: [encode_loan(loan) for loan in loans],
        decode_all,
        lambda: [encode_loan(loan) for loan in decoded],
        lambda: [orjson.dumps(orjson.loads(raw)) for raw in as_json],
    ]
    us = [min(timed(step)[0] for _ in range(repeat)) * 1e6 / len(loans) for step in steps]
    enc, dec, again, floor = us
    return [label, len(loans), sum(map(len, hot)) // len(loans), round(enc, 1),
            round(dec, 1), round(again, 1), round(floor, 1),
            f"{(dec + again) / floor:.1f}"]  # fmt: skip


def codec_costs(path: Path, limit: int, long_from: int = 240) -> list[list[object]]:
    """Loan state codec (the worker's changelog format) over the loans of the first lines.

    Per loan, microseconds: ``encode_loan`` of the engine's state, ``decode_loan`` of its
    record, ``encode_loan`` again after a decode (what a worker's flush does), and as the
    floor ``orjson.loads`` + ``orjson.dumps`` of the same record; all loans, then those with
    at least ``long_from`` installments (mortgages).
    """
    engine = Engine(Policy())
    for line in itertools.islice(iter_lines(path), limit):
        engine.process_raw(line)
    loans = list(engine.loans.values())
    long = [loan for loan in loans if len(loan.terms) >= long_from]
    groups = [("all", loans), (f">= {long_from} inst.", long)]
    return [codec_row(label, group) for label, group in groups if group]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5k loans x 30 days, one round")
    ap.add_argument("--loans", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=2, help="repeat (noisy shared machine)")
    ap.add_argument("--profile-lines", type=int, default=30_000)
    args = ap.parse_args()
    if args.quick:
        args.loans, args.rounds, args.profile_lines = 5_000, 1, 3_000

    path = cached_log(args.loans, args.days, args.seed)
    size_mb = path.stat().st_size / 1e6
    lines = count_lines(path)  # also warms the page cache
    print(f"log {path.name}: {lines:,} lines, {size_mb:,.0f} MB; load {loadavg()}")

    rows: list[list[object]] = []
    best_parse = best_replay = 0.0
    alerts = 0
    for r in range(1, args.rounds + 1):
        t_parse, n_parse = timed(parse_all, path)
        t_replay, (n_replay, alerts) = timed(replay_all, path)
        parse_rate, replay_rate = n_parse / t_parse, n_replay / t_replay
        best_parse, best_replay = max(best_parse, parse_rate), max(best_replay, replay_rate)
        rows.append([r, f"{t_parse:.2f}", parse_rate, f"{t_replay:.2f}", replay_rate,
                     f"{replay_rate / parse_rate:.3f}", loadavg()])  # fmt: skip
    print_table(
        f"replay vs parse, {lines:,} events ({args.loans:,} loans x {args.days} days)",
        ["round", "parse s", "parse ev/s", "replay s", "replay ev/s", "replay/parse", "load"],
        rows,
    )
    print(f"alerts: {alerts:,}; peak RSS {peak_rss_mb():,.0f} MB")

    codec = codec_costs(path, args.profile_lines)
    print_table(
        f"loan state codec over the loans of the first {args.profile_lines:,} lines (us/loan)",
        ["loans", "n", "bytes", "encode", "decode", "re-encode", "orjson floor", "dec+enc/floor"],
        codec,
    )

    print(f"\ncProfile of replay over the first {args.profile_lines:,} lines (top 15, tottime):")
    print(profile_replay(path, args.profile_lines))

    print_summary(
        "replay_throughput",
        {
            "loans": args.loans,
            "days": args.days,
            "events": lines,
            "parse_events_per_s": round(best_parse),
            "replay_events_per_s": round(best_replay),
            "ratio_replay_over_parse": round(best_replay / best_parse, 4),
            "alerts": alerts,
            "codec_us_per_loan": {
                str(row[0]): {
                    "encode": row[3],
                    "decode": row[4],
                    "re_encode": row[5],
                    "floor": row[6],
                }
                for row in codec
            },
            "peak_rss_mb": round(peak_rss_mb()),
        },
    )


if __name__ == "__main__":
    main()
