"""The closed-loop comparison: deterministic figures, bootstrap intervals, the CLI and page."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from random import Random

import orjson
import pytest
from click.testing import CliRunner

from loanwatch.backtest.bootstrap import bootstrap_ci
from loanwatch.backtest.closed import Comparison, compare
from loanwatch.backtest.closed_report import html_section, text_table
from loanwatch.backtest.outcomes import ALL, KPIS
from loanwatch.backtest.runner import load_folder
from loanwatch.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [REPO / "config" / "examples" / "standard", REPO / "config" / "examples" / "early-call"]


def _compare() -> Comparison:
    folders = [load_folder(p) for p in EXAMPLES]
    return compare(folders, [p.name for p in EXAMPLES], seeds=3, loans=150, days=90,
                   start=date(2026, 1, 1))  # fmt: skip


def test_closed_loop_figures_are_deterministic_for_fixed_seeds() -> None:
    one, two = _compare(), _compare()
    assert one == two
    assert one.seeds == (1, 2, 3)
    runs = one.runs
    assert runs[0] != runs[1]  # the strategy changes the outcomes
    assert runs[0][0] != runs[0][1]  # and so does the seed
    for folder in runs:
        for run in folder:
            assert set(run[ALL]) == set(KPIS) and 0 < run[ALL]["cure rate"] <= 1


def test_the_rows_are_the_bootstrap_of_the_per_seed_figures() -> None:
    cmp = _compare()
    runs = cmp.runs
    rows = {(r.group, r.kpi): r for r in cmp.rows}
    for kpi in KPIS:
        row = rows[(ALL, kpi)]
        a = [run[ALL][kpi] for run in runs[0]]
        b = [run[ALL][kpi] for run in runs[1]]
        assert row.values == (bootstrap_ci(a), bootstrap_ci(b))
        assert row.difference == bootstrap_ci([y - x for x, y in zip(a, b, strict=True)])
    challenger = rows[("standard: early-2026q2/challenger - champion", "cure rate")]
    assert challenger.values == (None, None) and challenger.difference is not None
    table = text_table(cmp)
    assert "cure rate" in table and "[95 % bootstrap interval]" not in table.splitlines()[1]
    assert html_section(cmp).count("<svg") == 2 * len(KPIS)


def test_bootstrap_equals_a_direct_computation() -> None:
    values = [0.12, 0.31, 0.05, 0.27, 0.18]
    got = bootstrap_ci(values, resamples=1_000, level=0.9, seed=7)
    rng = Random(7)
    means = []
    for _ in range(1_000):
        sample = [values[math.floor(rng.random() * len(values))] for _ in values]
        means.append(sum(sample) / len(sample))
    means.sort()
    assert got.mean == pytest.approx(sum(values) / 5)
    assert got.low == means[50] and got.high == means[949]  # ranks floor(50), ceil(950) - 1


def test_bootstrap_of_three_seeds_spans_their_range() -> None:
    # 27 equally likely resamples; min and max each have probability 1/27 > 2.5 %
    got = bootstrap_ci([3.0, -1.0, 2.0], resamples=20_000)
    assert (got.low, got.high) == (-1.0, 3.0) and got.mean == pytest.approx(4 / 3)
    assert bootstrap_ci([5.0, 5.0, 5.0]) == bootstrap_ci([5.0])
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError):
        bootstrap_ci([1.0], level=1.0)


def test_backtest_closed_loop_cli(tmp_path: Path) -> None:
    page, report = tmp_path / "closed.html", tmp_path / "closed.json"
    args = ["backtest", "--closed-loop", "--seeds", "3", "--loans", "150", "--days", "90"]
    for folder in EXAMPLES:
        args += ["--policy", str(folder)]
    done = CliRunner().invoke(main, [*args, "--html", str(page), "--json", str(report)])
    assert done.exit_code == 0, done.output
    cmp = _compare()
    assert text_table(cmp) in done.output
    html = page.read_text(encoding="utf-8")
    assert "Closed loop: responding borrowers, seeds 1..3" in html and "<script" not in html
    doc = orjson.loads(report.read_bytes())["closed_loop"]
    assert doc["seeds"] == [1, 2, 3]
    assert doc["runs"]["standard"] == [dict(r) for r in cmp.runs[0]]
    missing = CliRunner().invoke(main, ["backtest", "--policy", str(EXAMPLES[0]), "--policy",
                                        str(EXAMPLES[1])])  # fmt: skip
    assert missing.exit_code != 0 and "--closed-loop" in missing.output
