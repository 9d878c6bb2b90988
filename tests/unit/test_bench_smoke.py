"""The benchmark scripts' pure helpers on tiny sizes: they import and run (no timings checked).

Benchmarks print figures and never assert on speed; this only keeps ``bench/`` from rotting.
"""

from __future__ import annotations

import importlib
import sys
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest

from loanwatch.ledger.engine import Engine
from loanwatch.ledger.policy import Policy
from loanwatch.stack.topics import scratch
from loanwatch.streams.topics import TopicNames

pytestmark = pytest.mark.unit

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def test_replay_throughput_helpers(tmp_path: Path) -> None:
    kit, bench = load("benchkit"), load("replay_throughput")
    log = kit.cached_log(30, 5, 1, cache=tmp_path)
    assert kit.cached_log(30, 5, 1, cache=tmp_path) == log  # reused, not regenerated
    lines = kit.count_lines(log)
    assert bench.parse_all(log) == lines
    events, _alerts = bench.replay_all(log)
    assert events == lines
    assert "function calls" in bench.profile_replay(log, 20)


def test_aging_cost_engine_wakes_only_the_due_loans() -> None:
    bench = load("aging_cost")
    engine = bench.build_engine(200, 7, 2)
    assert len(engine.loans) == 200 + 7 * 2
    rounds = bench.time_rollovers(engine, 2)
    assert [alerts > 0 for _, alerts in rounds] == [True, True]
    naive = bench.build_engine(20, 3, 1, naive=True)
    assert naive.naive_aging and bench.time_rollovers(naive, 1)[0][1] > 0


def test_pipeline_helpers() -> None:
    bench = load("pipeline_drain")
    names = TopicNames().with_prefix("p-")
    produced = {("p-loan.accounts", 0): 9, ("p-loan.clock", 1): 4, ("p-loan.alerts", 0): 3}
    targets = bench.input_targets(produced, names)
    assert targets == {("p-loan.accounts", 0): 9, ("p-loan.clock", 1): 4}
    assert bench.processed_count({("p-loan.accounts", 0): 4}, targets) == 5
    assert bench.percentile([float(x) for x in range(1, 101)], 99) == 99.0
    assert bench.percentile([5.0], 50) == 5.0


def test_pipeline_probe_signal_makes_exactly_one_alert() -> None:
    bench = load("pipeline_drain")
    day = date(2026, 6, 30)
    engine = Engine(Policy())
    engine.process(bench.probe_loan("P1", day))
    out = engine.process(bench.probe_signal("P1", day))
    assert [a.kind for a in out.alerts] == ["risk_signal"]


def test_py_spy_summary(tmp_path: Path) -> None:
    bench = load("pipeline_drain")
    raw = tmp_path / "spy.txt"
    raw.write_text("main (a.py:1);f (b.py:2) 3\nmain (a.py:1);g (c.py:3) 1\n")
    top = bench.summarize_py_spy(raw)
    assert top[0] == ("f (b.py:2)", 75.0, 75.0)
    assert bench.inclusive_of(raw, ["a.py"]) == {"a.py": 100.0}


def test_engine_floor_feeds_the_log_order_once_per_timestamp() -> None:
    floors = load("benchkit.floors")
    # (timestamp, value): a tick broadcast to three partitions shares one stamp
    fetched = [(3, b"pay"), (1, b"open"), (2, b"tick"), (2, b"tick"), (4, b"close"), (2, b"tick")]
    assert floors.log_order(fetched) == [b"open", b"tick", b"pay", b"close"]


def test_a_bench_runs_topics_are_scratch_topics() -> None:
    kit = load("benchkit")
    for kind in ("", "scrape-"):
        prefix = kit.bench_prefix(kind)
        assert scratch(f"{prefix}loan.accounts"), prefix
        assert scratch(f"{prefix}one-loans-changelog"), prefix


def test_audit_in_process_probe_checks_live_and_replay_bytes(tmp_path: Path) -> None:
    kit, bench = load("benchkit"), load("audit_overhead")
    log = kit.cached_log(40, 20, 3, cache=tmp_path)
    probe = bench.in_process(log, partitions=2, rounds=1)  # asserts the digests are equal
    assert probe["inputs"] >= kit.count_lines(log)  # ticks go to every partition
    assert probe["live"] > 0 and probe["fresh views"] > 0 and probe["handle"] > 0


def test_early_warning_cost_helpers(tmp_path: Path) -> None:
    kit, bench = load("benchkit"), load("early_warning_cost")
    lines = bench.read_lines(kit.cached_log(40, 60, 3, cache=tmp_path))
    warning = bench.load_early_warning(bench.EW_FILE)
    seconds, result = bench.timed(lines, warning)
    assert seconds > 0 and result.events == len(lines) and result.early_warning is not None
    assert "function calls" in bench.profile(lines, warning, 5)
