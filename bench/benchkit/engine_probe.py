"""One engine measured on one log, in its own process: run as a script, prints one JSON line.

``python bench/benchkit/engine_probe.py LOG [--src CHECKOUT]``: with ``--src`` the
``loanwatch`` of another checkout is imported instead of this one (an editable install's
finder is dropped from ``sys.meta_path`` first), so ``bench/engine_ratio.py`` measures the
code before a change and after it on the same log, one after the other. Figures: the
``orjson.loads`` parse rate of the log, the replay rate, resident memory per loan after the
replay (engine kept alive), and the records a worker's loans table would get (an engine over
the loans store with a flush every 1,000 events, as a batch): bytes written per event and the
size distribution of the stored records at the end.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _pct(values: list[int], q: float) -> int:
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--src", default=None)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if args.src:
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
        sys.path.insert(0, args.src)
    import orjson

    import loanwatch
    from loanwatch.agents.state import LoanStore
    from loanwatch.ledger.engine import Engine
    from loanwatch.ledger.policy import Policy
    from loanwatch.replay.runner import iter_lines, replay

    path = Path(args.log)
    lines = list(iter_lines(path))
    out: dict[str, Any] = {"src": str(Path(loanwatch.__file__).parents[1]), "events": len(lines)}
    gc.collect()
    base = _rss()
    engine = Engine(Policy())
    for line in lines:
        engine.process_raw(line)
    gc.collect()
    loans = len(engine.loans)
    out.update(loans=loans, rss_per_loan=round((_rss() - base) / max(1, loans)))
    del engine
    gc.collect()

    parse = replay_rate = 0.0
    gc.freeze()
    for _ in range(args.rounds):
        began = time.perf_counter()
        for line in lines:
            try:  # noqa: SIM105 (a context manager per line would be timed too)
                orjson.loads(line)
            except orjson.JSONDecodeError:
                pass
        parse = max(parse, len(lines) / (time.perf_counter() - began))
        began = time.perf_counter()
        replay(lines, Policy())
        replay_rate = max(replay_rate, len(lines) / (time.perf_counter() - began))
    out.update(parse_per_s=round(parse), replay_per_s=round(replay_rate))
    out["ratio"] = round(replay_rate / parse, 4)

    class Counting(dict[str, bytes]):
        written = 0
        records = 0

        def __setitem__(self, key: str, value: bytes) -> None:
            Counting.written += len(key) + len(value)
            Counting.records += 1
            super().__setitem__(key, value)

    table = Counting()
    store = LoanStore(table)
    kwargs: dict[str, Any] = {"loans": store}
    if "history" in inspect.signature(Engine).parameters:
        kwargs["history"] = store
    engine = Engine(Policy(), **kwargs)
    for i, line in enumerate(lines, start=1):
        engine.process_raw(line)
        if i % 1000 == 0:
            store.flush()
    store.flush()
    sep = "\x1f"
    hot = [len(v) for k, v in table.items() if sep not in k]
    parts = [len(v) for k, v in table.items() if sep in k]
    out.update(
        changelog_bytes_per_event=round(Counting.written / len(lines), 1),
        changelog_records_per_event=round(Counting.records / len(lines), 3),
        hot_p50=_pct(hot, 0.5),
        hot_p99=_pct(hot, 0.99),
        hot_max=max(hot) if hot else 0,
        keyed_parts=len(parts),
        keyed_p50=_pct(parts, 0.5),
        keyed_max=max(parts) if parts else 0,
        stored_bytes_per_loan=round((sum(hot) + sum(parts)) / max(1, len(hot))),
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
