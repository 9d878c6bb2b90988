"""The shared contract scenarios replayed through the engine: states, alerts and rejects match.

Each scenario runs through the replay command (files in, files out) and through the engine's
naive day-by-day reference aging, which must give byte-identical outputs.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from loanwatch.cli import main
from loanwatch.ledger.policy import Policy
from loanwatch.replay.runner import iter_lines, replay

from .scenario_compare import (
    alert_mismatches,
    read_jsonl,
    reject_mismatches,
    scenario_dirs,
    spec_config,
    state_mismatches,
)

SCENARIOS = scenario_dirs()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_replay_command_matches_scenario(scenario: Path, tmp_path: Path) -> None:
    out = {name: tmp_path / f"{name}.jsonl" for name in ("state", "alerts", "rejects")}
    as_of = (scenario / "as_of").read_text().strip()
    result = CliRunner().invoke(
        main,
        [
            "replay",
            str(scenario / "events.jsonl"),
            "--as-of",
            as_of,
            "--no-progress",
            "--config",
            str(spec_config(tmp_path / "config")),
            "--state-out",
            str(out["state"]),
            "--alerts-out",
            str(out["alerts"]),
            "--rejects-out",
            str(out["rejects"]),
        ],
    )
    assert result.exit_code == 0, result.output
    expected_state = read_jsonl(scenario / "expected_state.jsonl")
    expected_alerts = read_jsonl(scenario / "expected_alerts.jsonl")
    expected_rejects = read_jsonl(scenario / "expected_rejects.jsonl")
    assert state_mismatches(expected_state, read_jsonl(out["state"])) == []
    assert alert_mismatches(expected_alerts, read_jsonl(out["alerts"])) == []
    assert reject_mismatches(expected_rejects, read_jsonl(out["rejects"])) == []
    assert len(read_jsonl(out["alerts"])) == len(expected_alerts)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_index_aging_equals_naive_daily_aging(scenario: Path) -> None:
    as_of = date.fromisoformat((scenario / "as_of").read_text().strip())

    def run(naive: bool) -> tuple[bytes, bytes, bytes]:
        result = replay(
            iter_lines(scenario / "events.jsonl"), Policy(), as_of=as_of, naive_aging=naive
        )
        return (
            orjson.dumps([v.to_json() for v in result.states]),
            orjson.dumps([a.to_json() for a in result.alerts]),
            orjson.dumps([r.to_json() for r in result.rejects]),
        )

    indexed, naive = run(False), run(True)
    assert indexed[0] == naive[0]
    assert indexed[1] == naive[1]
    assert indexed[2] == naive[2]


def test_the_shipped_guard_refuses_the_sparse_scenarios_month_long_jumps(tmp_path: Path) -> None:
    """Where the shipped policy deviates from the SPEC default (max_clock_jump_days 31): a
    log with 31+ day gaps between events gets future_date dead letters, as documented."""
    scenario = next(s for s in SCENARIOS if s.name == "rules-restructure-cure-crossdefault")
    rejects = tmp_path / "rejects.jsonl"
    result = CliRunner().invoke(
        main,
        ["replay", str(scenario / "events.jsonl"), "--no-progress", "--rejects-out", str(rejects)],
    )
    assert result.exit_code == 0, result.output
    assert {r["reason"] for r in read_jsonl(rejects)} == {"future_date"}
