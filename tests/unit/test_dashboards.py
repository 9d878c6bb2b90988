"""Dashboards as code: committed JSON equals the builders, structure is valid, queries parse."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from loanwatch.dashboards.build import BUILDERS, DEFAULT_DIR, load_all, rendered
from loanwatch.dashboards.check import queries, substitute, substitutions, validate
from loanwatch.dashboards.cli import dashboards
from loanwatch.metrics import PortfolioCollector, register_pipeline_metrics
from loanwatch.metrics.early_warning import register_early_warning_metrics
from loanwatch.metrics.treatment import register_treatment_metrics
from loanwatch.routing.config import load_routing
from loanwatch.routing.metrics import RouterMetrics
from loanwatch.routing.workitems import WorkItems, connect

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((ROOT / "config" / "prometheus" / "rules").glob("*.yml"))
PROMTOOL = Path("/usr/bin/promtool")
METRICS_DOC = (ROOT / "docs" / "metrics.md").read_text()
METRIC_NAME = re.compile(r"\b(loanwatch[a-z0-9_:]*|up)\s*[{\[]")


def test_committed_json_is_the_builders_output() -> None:
    committed = {p.name: p.read_text() for p in sorted(DEFAULT_DIR.glob("*.json"))}
    assert committed == rendered(), "run `loanwatch dashboards build` and commit the JSON"


def test_committed_dashboards_are_valid() -> None:
    boards = load_all()
    assert set(boards) == set(BUILDERS)
    assert validate(boards) == []


def test_uids_and_titles_are_unique() -> None:
    boards = load_all().values()
    assert len({b["uid"] for b in boards}) == len(BUILDERS)
    assert len({b["title"] for b in boards}) == len(BUILDERS)


def test_portfolio_dashboard_has_product_and_region_variables() -> None:
    board = load_all()["portfolio-quality.json"]
    names = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "portfolio", "product", "region"} <= names


def broken(mutate: str) -> list[str]:
    boards = copy.deepcopy(load_all())
    board = boards["portfolio-quality.json"]
    first, second = board["panels"][1], board["panels"][2]
    if mutate == "overlap":
        second["gridPos"] = dict(first["gridPos"])
    elif mutate == "uid":
        boards["collections.json"]["uid"] = board["uid"]
    elif mutate == "expr":
        first["targets"][0]["expr"] = " "
    elif mutate == "datasource":
        first["datasource"] = {"type": "prometheus", "uid": "some-fixed-uid"}
    elif mutate == "grid":
        first["gridPos"]["x"] = 22
    elif mutate == "variable":
        board["templating"]["list"] = board["templating"]["list"][1:]
    return [str(p) for p in validate(boards)]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        ("overlap", "overlaps"),
        ("uid", "also used by"),
        ("expr", "has no expr"),
        ("datasource", "not ${datasource}"),
        ("grid", "24-column grid"),
        ("variable", "no `datasource` variable"),
    ],
)
def test_validate_reports_each_kind_of_problem(mutate: str, message: str) -> None:
    problems = broken(mutate)
    assert any(message in p for p in problems), problems


def test_substitute_variables() -> None:
    values = {"product": ".*", "region": "east", "__rate_interval": "5m", "__range": "1h"}
    expr = 'sum(rate(x{product=~"$product",region=~"${region}"}[$__rate_interval])) + y[$__range]'
    assert substitute(expr, values) == ('sum(rate(x{product=~".*",region=~"east"}[5m])) + y[1h]')
    with pytest.raises(KeyError):
        substitute('x{a=~"$unknown"}', values)


def known_metric_names() -> set[str]:
    registry = CollectorRegistry()
    register_pipeline_metrics(registry)
    register_treatment_metrics(registry)  # on workers with strategies configured
    register_early_warning_metrics(registry)  # on workers with early warning configured
    registry.register(PortfolioCollector(list))
    # The router's own registry (served by `routes serve`); the client never connects here.
    RouterMetrics(registry, WorkItems(connect("redis://127.0.0.1:9/0"), load_routing(), "x:"))
    names = set()
    for family in registry.collect():
        names |= {family.name, f"{family.name}_total", f"{family.name}_bucket"}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {r["record"] for r in group["rules"] if "record" in r}
    return names | {"up"}


def test_every_metric_a_panel_queries_is_exported_or_recorded() -> None:
    known = known_metric_names()
    # The portfolio collector's families exist only after a scrape with loans; add them.
    known |= {
        f"loanwatch_portfolio_{infix}{what}"
        for infix in ("", "class_", "stage_")
        for what in ("loans", "outstanding_principal")
    } | {"loanwatch_portfolio_overdue_amount"}
    for name, board in load_all().items():
        for q in queries(name, board):
            used = set(METRIC_NAME.findall(q.expr))
            assert used, q
            assert used <= known, (q.panel, used - known)


def test_every_metric_a_panel_queries_is_documented() -> None:
    for name, board in load_all().items():
        for q in queries(name, board):
            for metric in set(METRIC_NAME.findall(q.expr)) - {"up"}:
                if f"`{metric}`" not in METRICS_DOC:
                    # documented as `loanwatch:par90:ratio` (+ `_by_product`, `_by_region`)
                    metric = re.sub(r"_by_(?:product|region)(?=:)", "", metric)
                if f"`{metric}`" not in METRICS_DOC and metric.endswith("_bucket"):
                    metric = metric.removesuffix("_bucket")  # a histogram's buckets
                assert f"`{metric}`" in METRICS_DOC, (name, q.panel, metric)


def test_collections_dashboard_shows_work_queues_without_double_counting_routers() -> None:
    board = load_all()["collections.json"]
    exprs = {q.panel: q.expr for q in queries("collections.json", board)}
    by_team = exprs["Open work items by team"]
    # Every router of a portfolio reads the same Redis: max over them, then add up teams.
    assert by_team.startswith("sum by (team) (max by (portfolio, team) (loanwatch_workitems_open{")
    assert 'portfolio=~"$portfolio"' in by_team
    assert "loanwatch_workitems_open" in exprs["Open work items"]
    assert 'job="loanwatch-router"' in exprs["Routers up"]


def test_every_query_parses(tmp_path: Path) -> None:
    # promtool parses PromQL offline when it checks rule files: wrap each query in a rule.
    assert PROMTOOL.exists(), f"{PROMTOOL} is missing: install Debian's `prometheus` package"
    rules = []
    for name, board in load_all().items():
        values = substitutions(board)
        for i, q in enumerate(queries(name, board)):
            rules.append(
                {"record": f"check:q{len(rules)}_{i}:x", "expr": substitute(q.expr, values)}
            )
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    proc = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_build_writes_and_check_offline_passes(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(dashboards, ["build", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(BUILDERS)
    again = runner.invoke(dashboards, ["build", "--dir", str(tmp_path)])
    assert "up to date" in again.output
    check = runner.invoke(dashboards, ["check", "--offline", "--dir", str(tmp_path)])
    assert check.exit_code == 0, check.output
    assert "3 dashboards valid" in check.output


def test_cli_check_fails_on_an_invalid_dashboard(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(dashboards, ["build", "--dir", str(tmp_path)])
    path = tmp_path / "collections.json"
    path.write_text(path.read_text().replace('"expr": "', '"expr": "  ", "old": "', 1))
    result = runner.invoke(dashboards, ["check", "--offline", "--dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "has no expr" in result.output


def test_cli_check_reports_an_unreachable_prometheus(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(dashboards, ["build", "--dir", str(tmp_path)])
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    result = runner.invoke(
        dashboards, ["check", "--dir", str(tmp_path), "--prometheus-url", "http://127.0.0.1:9"]
    )
    assert result.exit_code != 0
    assert "cannot reach" in result.output


def test_provisioning_files() -> None:
    prov = DEFAULT_DIR / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())
    assert ds["datasources"][0]["type"] == "prometheus"
    assert ds["datasources"][0]["url"].startswith("http://127.0.0.1:")
    dash = yaml.safe_load((prov / "dashboards" / "loanwatch.yml").read_text())
    assert dash["providers"][0]["folder"] == "loanwatch"
    assert dash["providers"][0]["options"]["path"] == "${LOANWATCH_DASHBOARDS_DIR}"
