"""``loanwatch backtest``: its figures for the two shipped example folders equal separate
replays, side by side in the table, the JSON and the HTML charts."""

from __future__ import annotations

import io
from datetime import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from loanwatch.backtest.figures import Figures
from loanwatch.backtest.runner import figures_from_files, load_folder, run_folder
from loanwatch.cli import main
from loanwatch.replay.runner import iter_lines
from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.generator import generate
from loanwatch.simulate.writer import write_jsonl

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [REPO / "config" / "examples" / "standard", REPO / "config" / "examples" / "early-call"]
SEND_AT = time(10, 0)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bt") / "events.jsonl"
    buf = io.BytesIO()
    write_jsonl(generate(SimulationConfig(loans=500, days=150, seed=11)), buf)
    path.write_bytes(buf.getvalue())
    return path


def _separate_replay(log: Path, folder: Path, out: Path) -> Figures:
    """`loanwatch replay --config DIR --strategies DIR/strategies.yaml`, then its files."""
    alerts, states = out / f"{folder.name}-alerts.jsonl", out / f"{folder.name}-state.jsonl"
    args = ["replay", str(log), "--config", str(folder), "--no-progress"]
    args += ["--strategies", str(folder / "strategies.yaml")]
    args += ["--alerts-out", str(alerts), "--state-out", str(states)]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    return figures_from_files(load_folder(folder), alerts, states, SEND_AT)


def test_the_backtest_figures_equal_separate_replays(log: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    page = tmp_path / "report.html"
    args = ["backtest", str(log), "--html", str(page), "--json", str(report)]
    for folder in EXAMPLES:
        args += ["--policy", str(folder)]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    table = orjson.loads(report.read_bytes())
    assert table["folders"] == ["standard", "early-call"]
    printed = {row["figure"]: row["values"] for row in table["figures"]}
    for i, folder in enumerate(EXAMPLES):
        separate = _separate_replay(log, folder, tmp_path)
        inline = run_folder(
            lambda: iter_lines(log), load_folder(folder), as_of=None, send_at=SEND_AT
        )
        assert inline == separate, folder.name
        for key, value in separate.headline().items():
            assert printed[key][i] == str(value), (folder.name, key)
        for title, counter in separate.sections().items():
            for key, value in counter.items():
                assert printed[f"{title}: {key}"][i] == str(value), (folder.name, title, key)
    # the two policies really differ, and the figures that should not move do not
    assert printed["PAR30"][0] == printed["PAR30"][1]
    assert printed["work items"][0] != printed["work items"][1]
    assert printed["contacts"][0] != printed["contacts"][1]
    assert sum(int(v) for v in printed["contacts by channel: sms"]) > 0
    html = page.read_text(encoding="utf-8")
    charts = 3 + len(separate.sections())  # PAR30, PAR90, NPL, then one per section
    assert html.count("<h2>") == charts + 1  # and the table
    assert html.count("<svg") == charts - (0 if separate.suppressions else 1)
    assert "standard" in html and "early-call" in html and "<script" not in html


def test_quiet_hours_show_as_suppressions(log: Path) -> None:
    folder = load_folder(EXAMPLES[0])
    late = run_folder(lambda: iter_lines(log), folder, as_of=None, send_at=time(23, 0))
    assert late.contacts["sms"] == 0
    assert late.suppressions["sms/cn_quiet_hours"] > 0
    assert (
        late.alerts
        == run_folder(lambda: iter_lines(log), folder, as_of=None, send_at=SEND_AT).alerts
    )


def test_one_folder_is_refused(log: Path) -> None:
    done = CliRunner().invoke(main, ["backtest", str(log), "--policy", str(EXAMPLES[0])])
    assert done.exit_code != 0
    assert "at least twice" in done.output


def test_a_bad_strategies_file_names_its_key(log: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in EXAMPLES[0].glob("*.yaml"):
        (bad / f.name).write_bytes(f.read_bytes())
    text = (
        (bad / "strategies.yaml")
        .read_text()
        .replace("unreachable_after: 3", "unreachable_after: 0")
    )
    (bad / "strategies.yaml").write_text(text)
    done = CliRunner().invoke(
        main, ["backtest", str(log), "--policy", str(EXAMPLES[0]), "--policy", str(bad)]
    )
    assert done.exit_code != 0
    assert "'unreachable_after'" in done.output
