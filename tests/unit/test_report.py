"""`loanwatch report portfolio`: the figures of a past day, from a trail, equal a replay's."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from loanwatch.audit.archive import write_archive
from loanwatch.audit.replay import decode_records
from loanwatch.ledger.parse import business_date_of
from loanwatch.ledger.policy import Policy
from loanwatch.replay.runner import replay
from loanwatch.report.book import build
from loanwatch.report.cli import report
from loanwatch.report.figures import compute
from loanwatch.streams.topics import TopicNames

from ..audit_log import audited

pytestmark = pytest.mark.unit

LOG = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / "portfolio-101"
DAY = date(2026, 6, 15)


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    return (LOG / "events.jsonl").read_bytes().splitlines()


@pytest.fixture(scope="module")
def trail(lines: list[bytes]) -> tuple[dict, dict]:  # type: ignore[type-arg]
    return audited(lines)


def _figures(trail: tuple[dict, dict], day: date):  # type: ignore[no-untyped-def,type-arg]
    chains, inputs = trail
    parts = ((p, decode_records(chains[p]), inputs[p]) for p in sorted(chains))
    book = build(parts, Policy(), TopicNames(), len(chains), day)
    assert book.replay.ok and book.replay.inputs > 0
    return compute(book)


def _prefix(lines: list[bytes], day: date) -> list[bytes]:
    """The log up to (not including) its first event dated after ``day``."""
    tz = Policy().tz
    for i, line in enumerate(lines):
        try:
            d = business_date_of(orjson.loads(line), tz)
        except orjson.JSONDecodeError:
            continue
        if d is not None and d > day:
            return lines[:i]
    return lines


@pytest.mark.parametrize("day", [date(2026, 3, 31), DAY, date(2026, 9, 2)])
def test_classification_par_npl_and_stages_equal_a_replay_of_the_log(
    trail: tuple[dict, dict],
    lines: list[bytes],
    day: date,  # type: ignore[type-arg]
) -> None:
    got = _figures(trail, day)
    states = [v for v in replay(lines, Policy(), as_of=day).states if v.status == "active"]
    total = sum((v.outstanding_principal for v in states), Decimal(0))
    assert got.loans == len(states) > 0 and got.outstanding == total
    assert (
        got.par30
        == sum((v.outstanding_principal for v in states if v.dpd > 30), Decimal(0)) / total
    )
    assert (
        got.par90
        == sum((v.outstanding_principal for v in states if v.dpd > 90), Decimal(0)) / total
    )
    npl = {"substandard", "doubtful", "loss"}
    assert (
        got.npl
        == sum((v.outstanding_principal for v in states if v.classification in npl), Decimal(0))
        / total
    )
    for cls, cell in got.by_class.items():
        mine = [v for v in states if v.classification == cls]
        assert (cell.loans, cell.outstanding) == (
            len(mine),
            sum((v.outstanding_principal for v in mine), Decimal(0)),
        )
    for stage, cell in got.by_stage.items():
        assert cell.loans == sum(1 for v in states if str(v.ifrs9_stage) == stage)
    by_product = Counter((v.product, v.classification) for v in states)
    assert {k: c.loans for k, c in got.by_product.items()} == dict(by_product)
    by_region = Counter((v.region, v.classification) for v in states)
    assert {k: c.loans for k, c in got.by_region.items()} == dict(by_region)


def test_migration_matrix_is_start_of_month_class_to_class_at_d(
    trail: tuple[dict, dict],
    lines: list[bytes],  # type: ignore[type-arg]
) -> None:
    got = _figures(trail, DAY)
    start = DAY.replace(day=1) - timedelta(days=1)
    before = {v.loan_id: v for v in replay(_prefix(lines, start), Policy(), as_of=start).states}
    after = replay(lines, Policy(), as_of=DAY).states
    want: Counter[tuple[str, str]] = Counter()
    for v in after:
        b = before.get(v.loan_id)
        if b is not None and b.status != "active":
            continue
        if b is None and v.status != "active":
            continue
        want[
            (
                b.classification if b else "new",
                v.classification if v.status == "active" else "closed",
            )
        ] += 1
    assert {k: c.loans for k, c in got.migration.items()} == dict(want)
    assert any(a != b for a, b in want)  # loans did migrate this month


def test_roll_and_cure_rates_are_the_business_days_of_the_replay(
    trail: tuple[dict, dict],
    lines: list[bytes],  # type: ignore[type-arg]
) -> None:
    """Day D's flows: active loans per bucket when D began (the log before D's first record,
    on its own last clock: this log skips days, and a day after a jump begins where the
    clock stood) and D's overdue / bucket_changed / cured alerts (test_metrics_live's rule)."""
    days = [d.day for d in _figures(trail, DAY).days]
    checked = 0
    for day in days[-6:]:
        got = _figures(trail, day).day
        assert got is not None
        prior = day - timedelta(days=1)
        at_start = Counter(
            v.bucket for v in replay(_prefix(lines, prior), Policy()).states if v.status == "active"
        )
        moved: Counter[tuple[str, str]] = Counter()
        for alert in replay(_prefix(lines, day), Policy(), as_of=day).alerts:
            doc = alert.to_json()
            if doc["business_date"] != day.isoformat():
                continue
            if doc["kind"] == "overdue":
                moved[("M0", doc["bucket"])] += 1
            elif doc["kind"] == "bucket_changed":
                moved[(doc["from_bucket"], doc["to_bucket"])] += 1
            elif doc["kind"] == "cured":
                moved[(doc["from_bucket"], "M0")] += 1
        assert got.at_start == dict(at_start) and got.transitions == dict(moved)
        assert got.rolls == {k: Decimal(n) / at_start[k[0]] for k, n in moved.items()}
        delinquent = sum(n for b, n in at_start.items() if b != "M0")
        cures = sum(n for (_, b), n in moved.items() if b == "M0")
        assert got.cure_rate == Decimal(cures) / delinquent
        checked += bool(moved)
    assert checked > 0  # some of those days had moves


def test_the_command_writes_csv_and_a_self_contained_html_page_from_an_archive(
    trail: tuple[dict, dict],
    tmp_path: Path,  # type: ignore[type-arg]
) -> None:
    chains, inputs = trail
    write_archive(tmp_path / "archive", chains, inputs)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        report,
        [
            "portfolio",
            "--as-of",
            DAY.isoformat(),
            "--archive",
            str(tmp_path / "archive"),
            "--out-dir",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    want = _figures(trail, DAY)
    summary = dict(csv.reader((out / "summary.csv").open()))
    assert summary["active_loans"] == str(want.loans)
    assert Decimal(summary["npl_ratio"]) == round(want.npl, 10)  # type: ignore[arg-type]
    page = (out / "report.html").read_text()
    assert page.count("<svg") == 4 and "<script" not in page and "http" not in page
    assert "@media print" in page and f"as of {DAY.isoformat()}" in page


def test_a_trail_that_does_not_replay_gives_no_figures(
    trail: tuple[dict, dict],
    tmp_path: Path,  # type: ignore[type-arg]
) -> None:
    chains, inputs = trail
    p = min(inputs)
    key = next(k for k, s in inputs[p].items() if s.value and b"payment_received" in s.value)
    s = inputs[p][key]
    altered = s.value.replace(b'"amount": "', b'"amount": "1')  # type: ignore[union-attr]
    inputs = {
        **inputs,
        p: {**inputs[p], key: type(s)(s.partition, s.offset, s.timestamp, s.key, altered)},
    }
    write_archive(tmp_path / "archive", chains, inputs)
    result = CliRunner().invoke(
        report,
        [
            "portfolio",
            "--as-of",
            DAY.isoformat(),
            "--archive",
            str(tmp_path / "archive"),
            "--out-dir",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 1 and "DIVERGES" in result.output and "input_sha256" in result.output
    assert not (tmp_path / "out").exists()
