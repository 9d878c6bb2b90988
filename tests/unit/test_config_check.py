"""``loanwatch config check DIR``: every problem of a configuration folder, listed at once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from loanwatch.cli import main
from loanwatch.config.check import check_dir

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)
    return target


def _edit(path: Path, **changes: object) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc.update(changes)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def test_shipped_config_is_valid() -> None:
    checked, problems = check_dir(CONFIG)
    assert problems == []
    assert {"policy.yaml", "routing.yaml", "compliance.yaml", "prometheus/prometheus.yml"} <= set(
        checked
    )


def test_every_bad_policy_key_is_listed_not_only_the_first(folder: Path) -> None:
    _edit(folder / "policy.yaml", clock="sundial", npl_cure_days=0, colour="blue")
    _, problems = check_dir(folder)
    messages = [str(p) for p in problems]
    assert len(messages) == 3, messages
    assert any("'clock'" in m and "'sundial'" in m for m in messages)
    assert any("'npl_cure_days'" in m and "got 0" in m for m in messages)
    assert any("colour" in m for m in messages)
    assert all(m.startswith("policy.yaml: ") for m in messages)


def test_problems_of_every_file_are_listed_together(folder: Path) -> None:
    _edit(folder / "policy.yaml", tolerance="-1")
    _edit(folder / "routing.yaml", default={"name": "default", "team": "nobody"})
    _edit(folder / "compliance.yaml", default_jurisdiction="FR")
    (folder / "alertmanager" / "alertmanager.yml").write_text("route: [\n", encoding="utf-8")
    _, problems = check_dir(folder)
    files = [p.file for p in problems]
    assert files == [
        "policy.yaml",
        "routing.yaml",
        "compliance.yaml",
        "alertmanager/alertmanager.yml",
    ]
    assert "'nobody'" in problems[1].message
    assert "'FR'" in problems[2].message
    assert "not valid YAML" in problems[3].message


def test_missing_files_and_folder(folder: Path, tmp_path: Path) -> None:
    (folder / "routing.yaml").unlink()
    _, problems = check_dir(folder)
    assert [str(p) for p in problems] == ["routing.yaml: missing"]
    _, problems = check_dir(tmp_path / "nowhere")
    assert [p.message for p in problems] == ["not a folder"]


def test_cli_exits_non_zero_listing_all_problems(folder: Path) -> None:
    _edit(folder / "policy.yaml", clock="sundial")
    _edit(folder / "compliance.yaml", default_jurisdiction="FR")
    result = CliRunner().invoke(main, ["config", "check", str(folder)])
    assert result.exit_code == 1
    assert "policy.yaml: policy key 'clock'" in result.output
    assert "compliance.yaml: " in result.output
    assert "2 problem(s)" in result.output


def test_cli_ok_on_the_shipped_config() -> None:
    result = CliRunner().invoke(main, ["config", "check", str(CONFIG)])
    assert result.exit_code == 0, result.output
    assert "ok (policy.yaml, routing.yaml, compliance.yaml" in result.output
