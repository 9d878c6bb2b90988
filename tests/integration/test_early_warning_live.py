"""Early warning live: `loanwatch replay --early-warning` and a live worker give the same scores
and the same ``pre_due_risk`` alerts (ids and every field) on a scenario.

Everything real: ``loanwatch worker --early-warning`` subprocesses on unique prefixed topics,
the broker, the log published by our producer at full speed (no barrier between events). The
first worker is killed with SIGKILL while it drains; its replacement starts with an empty data
dir, so the early-warning states it scores from come from the meta table's changelog alone.
Replay is the command itself (its alerts and state files), with the workers' policy folder.
"""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import date
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from loanwatch.replay.cli import replay as replay_command
from loanwatch.replay.runner import iter_lines
from loanwatch.streams.topics import TopicNames

from ..contract.scenario_compare import SCENARIOS, spec_config
from .live import Processed, WorkerProcess, loan_states, publish_log, read_topic, wait_ready

REPO = Path(__file__).resolve().parents[2]
EW_FILE = REPO / "config" / "early_warning.yaml"
SCENARIO = SCENARIOS / "portfolio-102"  # 150 loans, 1,336 events


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _replayed(config: Path, as_of: date, out: Path) -> tuple[list[Any], list[Any], list[Any]]:
    """(alerts, states, rejects) of ``loanwatch replay --early-warning`` on the scenario."""
    out.mkdir(parents=True, exist_ok=True)
    args = [str(SCENARIO / "events.jsonl"), "--as-of", as_of.isoformat(), "--config", str(config),
            "--early-warning", str(EW_FILE), "--no-progress",
            "--alerts-out", str(out / "alerts.jsonl"), "--state-out", str(out / "state.jsonl"),
            "--rejects-out", str(out / "rejects.jsonl")]  # fmt: skip
    done = CliRunner().invoke(replay_command, args)
    assert done.exit_code == 0, done.output
    return (_jsonl(out / "alerts.jsonl"), _jsonl(out / "state.jsonl"),
            _jsonl(out / "rejects.jsonl"))  # fmt: skip


def _by_id(alerts: list[dict[str, Any]]) -> dict[str, str]:
    return {a["alert_id"]: json.dumps(a, sort_keys=True) for a in alerts}


async def test_live_worker_gives_replays_scores_and_pre_due_alerts_after_a_sigkill(
    kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    prefix = unique_name("ewl") + "."
    names = TopicNames().with_prefix(prefix)
    config = spec_config(tmp_path / "config")
    workers = [
        WorkerProcess(app_id=prefix.rstrip("."), prefix=prefix, data_dir=tmp_path / name,
                      config_dir=config, extra_args=("--early-warning", str(EW_FILE)))
        for name in ("first", "second")
    ]  # fmt: skip
    first, second = workers
    lines = list(iter_lines(SCENARIO / "events.jsonl"))
    as_of = date.fromisoformat((SCENARIO / "as_of").read_text().strip())
    alerts_want, states_want, rejects_want = _replayed(config, as_of, tmp_path / "replay")
    pre_due_want = [a for a in alerts_want if a["kind"] == "pre_due_risk"]
    assert len(pre_due_want) >= 100  # the scenario really scores and alerts
    scored = [s for s in states_want if s.get("early_warning")]
    assert len(scored) >= 100
    first.start()
    try:
        await wait_ready([first])
        produced = await publish_log(kafka_bootstrap, names, lines, as_of=as_of)
        await asyncio.sleep(0.3)  # the drain is under way
        first.kill(signal.SIGKILL)
        second.start()  # empty data dir: tables from the changelogs
        await wait_ready([second])
        async with Processed(kafka_bootstrap, [second]) as processed:
            await processed(produced, timeout=120)

        raw = await read_topic(kafka_bootstrap, names.alerts)
        got = _by_id(raw)
        for a in raw:  # a record processed again after the kill re-sends the same alert
            assert json.dumps(a, sort_keys=True) == got[a["alert_id"]], a["alert_id"]
        want = _by_id(alerts_want)
        pre_due = {i for i, a in want.items() if '"kind": "pre_due_risk"' in a}
        assert {i: got.get(i) for i in pre_due} == {i: want[i] for i in pre_due}
        assert got == want  # every alert, ids and fields
        letters = await read_topic(kafka_bootstrap, names.dead_letters)
        by_source = {(d["topic"], d["partition"], d["offset"], d["reason"]) for d in letters}
        assert sorted(k[3] for k in by_source) == sorted(r["reason"] for r in rejects_want)
        # GET /loans/{id}: the SPEC fields and the last score (probability, model, reasons)
        live = await loan_states([second], [s["loan_id"] for s in states_want])
        wrong = [
            (w["loan_id"], k, g.get(k), w.get(k))
            for g, w in zip(live, states_want, strict=True)
            for k in sorted(set(g) | set(w))
            if g.get(k) != w.get(k)
        ]
        assert not wrong, wrong[:5]
        sample = scored[0]["early_warning"]
        assert set(sample) >= {"probability", "model_version", "reason_codes"}
        assert len(sample["reason_codes"]) == 3
    except BaseException:
        print("\n".join(w.log_tail() for w in workers))
        raise
    finally:
        for w in workers:
            w.kill(signal.SIGTERM)
