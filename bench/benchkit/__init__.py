"""Shared helpers of the benchmark scripts: cached simulated logs, tables, machine facts.

Benchmarks print figures; they never assert on timings. Everything they write goes under
``run/bench/`` (gitignored). This package must never import Faust or start a worker itself.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.generator import Simulation
from loanwatch.simulate.writer import write_jsonl

REPO = Path(__file__).resolve().parents[2]
BENCH_RUN = REPO / "run" / "bench"
CACHE = BENCH_RUN / "cache"


def cached_log(loans: int, days: int, seed: int, cache: Path = CACHE) -> Path:
    """A simulated ``.jsonl`` log, generated once per (loans, days, seed) and then reused."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"sim-{loans}x{days}-s{seed}.jsonl"
    if path.exists():
        return path
    tmp = path.with_suffix(".jsonl.tmp")
    began = time.perf_counter()
    with tmp.open("wb", buffering=1 << 20) as fh:
        lines = write_jsonl(Simulation(SimulationConfig(loans=loans, days=days, seed=seed)), fh)
    tmp.rename(path)  # only a complete log is ever reused
    print(f"simulated {lines:,} events into {path} in {time.perf_counter() - began:.1f}s")
    return path


def count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        git = ["git", "rev-parse", "--short", "HEAD"]
        head = subprocess.run(git, cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        head = ""
    return {
        "commit": head,
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def rss_mb() -> float:
    """Current resident set size of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def loadavg() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain fixed-width table (readable in CI logs and easy to paste into the README)."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) if n and i else c.ljust(w) for i, (c, w) in
                               enumerate(zip(row, widths, strict=True))))  # fmt: skip
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_summary(name: str, figures: dict[str, Any]) -> None:
    """The one-line JSON summary every bench ends with (grep ``^SUMMARY``)."""
    body = {"bench": name, **machine(), "load": loadavg(), **figures}
    print("SUMMARY " + orjson.dumps(body).decode())


def bench_prefix(kind: str = "") -> str:
    """Fresh topic prefix of one run: ``bench-<YYYYmmddHHMMSS>-`` (``kind`` after the stamp)."""
    return f"bench-{time.strftime('%Y%m%d%H%M%S')}-{kind}"


def drop_topics(prefix: str, keep: bool) -> None:
    """Delete the run's topics (``--keep-topics`` keeps them to look at); say what was done."""
    if keep:
        print(f"topics kept: {prefix}*")
        return
    from loanwatch.stack.topics import prune, with_prefixes

    try:
        gone = prune("127.0.0.1:9092", with_prefixes([prefix.rstrip("-")]))
    except Exception as exc:
        print(f"could not delete the topics {prefix}*: {exc!r}")
        return
    print(f"deleted the run's {len(gone)} topics ({prefix}*; --keep-topics keeps them)")
