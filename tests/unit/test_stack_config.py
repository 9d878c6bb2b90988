"""The local stack's configs: rendering, required Kafka settings, ports, offline validators."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from loanwatch.stack import kafka, manager, packaged, pids, targets
from loanwatch.stack.paths import StackPaths

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
PATHS = StackPaths(root=ROOT, cache=ROOT / ".cache-unused")


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


def test_kafka_version_is_newest_39_line() -> None:
    assert re.fullmatch(r"3\.9\.\d+", kafka.kafka_version(PATHS))
    assert kafka.libs_dir(PATHS).parent.name == f"kafka-{kafka.kafka_version(PATHS)}"


def test_server_properties_render_absolute_log_dirs(tmp_path: Path) -> None:
    template = (CONFIG / "kafka" / "server.properties").read_text()
    props = _properties(kafka.render_server_properties(template, tmp_path / "data"))
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9094"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9094"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "default.replication.factor",
        "min.insync.replicas",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["num.partitions"] == "8"
    # As in production: a client naming a missing topic does not create it (with the broker's
    # defaults: delete policy, not the compacted changelog Faust declares).
    assert props["auto.create.topics.enable"] == "false"


def test_cluster_id_is_kafka_uuid_text() -> None:
    ids = {kafka.new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", i) for i in ids)


def test_prometheus_config_renders_rules_absolute_and_targets_relative() -> None:
    template = yaml.safe_load((CONFIG / "prometheus" / "prometheus.yml").read_text())
    rendered = packaged.render_prometheus_config(template, CONFIG / "prometheus")
    assert rendered["rule_files"] == [str(CONFIG / "prometheus" / "rules" / "*.yml")]
    assert template["rule_files"] == ["rules/*.yml"]  # the template itself is not modified
    assert rendered["global"]["scrape_interval"] == "5s"
    jobs = {job["job_name"]: job for job in rendered["scrape_configs"]}
    file_sd = jobs["loanwatch"]["file_sd_configs"][0]
    assert file_sd["files"] == ["targets/*.json"]  # resolves to run/prometheus/targets/
    assert file_sd["refresh_interval"] == "5s"
    assert jobs["prometheus"]["static_configs"][0]["targets"] == ["127.0.0.1:9090"]
    router_sd = jobs["loanwatch-router"]["file_sd_configs"][0]
    assert router_sd["files"] == ["targets/router/*.json"]  # run/prometheus/targets/router/
    assert router_sd["refresh_interval"] == "5s"
    am = rendered["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["127.0.0.1:9093"]


def test_router_targets_are_their_own_job_not_workers() -> None:
    """A router's file is scraped by `loanwatch-router` only: never `up{job="loanwatch"}`."""
    template = yaml.safe_load((CONFIG / "prometheus" / "prometheus.yml").read_text())
    globs = {
        job["job_name"]: [f for sd in job.get("file_sd_configs", []) for f in sd["files"]]
        for job in template["scrape_configs"]
    }
    prom_dir = PATHS.service_dir("prometheus")  # file_sd paths resolve next to the config
    router_file = (PATHS.prometheus_router_targets / "router-8780.json").relative_to(prom_dir)
    worker_file = (PATHS.prometheus_targets / "console-worker-6066.json").relative_to(prom_dir)

    def jobs_of(path: Path) -> set[str]:
        # Prometheus' file_sd uses filepath.Glob, where `*` never crosses a `/` (as fnmatch's
        # translation does once each path component is matched separately).
        def match(pattern: str) -> bool:
            parts, pats = path.parts, Path(pattern).parts
            return len(parts) == len(pats) and all(map(fnmatch.fnmatchcase, parts, pats))

        return {job for job, patterns in globs.items() if any(map(match, patterns))}

    assert jobs_of(router_file) == {"loanwatch-router"}
    assert jobs_of(worker_file) == {"loanwatch"}
    # Inside the workers' folder, so docker-compose's one targets/ mount carries both.
    assert PATHS.prometheus_router_targets.parent == PATHS.prometheus_targets


def test_write_prometheus_config_creates_both_target_folders(tmp_path: Path) -> None:
    (tmp_path / "config").symlink_to(CONFIG)
    paths = StackPaths(root=tmp_path, cache=tmp_path / "cache")
    written = packaged.write_prometheus_config(paths)
    assert written == paths.service_dir("prometheus") / "prometheus.yml"
    assert paths.prometheus_targets.is_dir() and paths.prometheus_router_targets.is_dir()
    jobs = {j["job_name"] for j in yaml.safe_load(written.read_text())["scrape_configs"]}
    assert {"loanwatch", "loanwatch-router"} <= jobs


def test_target_file_is_file_sd_json_and_removed(tmp_path: Path) -> None:
    folder = tmp_path / "targets" / "router"
    path = targets.write_target(folder, "router-8780", "127.0.0.1:8780", {"portfolio": "p"})
    assert path == folder / "router-8780.json"
    assert json.loads(path.read_text()) == [
        {"targets": ["127.0.0.1:8780"], "labels": {"portfolio": "p"}}
    ]
    assert not list(folder.glob("*.tmp"))
    targets.remove_target(path)
    targets.remove_target(path)  # already gone: fine
    assert not path.exists()


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1:8780"),
        ("0.0.0.0", "127.0.0.1:8780"),  # a wildcard bind is scraped on loopback
        ("", "127.0.0.1:8780"),
        ("::", "127.0.0.1:8780"),
        ("::1", "[::1]:8780"),
        ("router.internal", "router.internal:8780"),
    ],
)
def test_scrape_address(host: str, address: str) -> None:
    assert targets.scrape_address(host, 8780) == address


def test_service_commands_use_loopback_ports_and_retention() -> None:
    specs = {s.name: s for s in manager.all_specs(PATHS, retention="30d")}
    assert {n: s.port for n, s in specs.items()} == {
        "kafka": 9092,
        "redis": 6379,
        "prometheus": 9090,
        "alertmanager": 9093,
    }
    prom = specs["prometheus"].argv
    assert "--storage.tsdb.retention.time=30d" in prom
    assert "--web.listen-address=127.0.0.1:9090" in prom
    am = specs["alertmanager"].argv
    assert am[0] == "/usr/bin/prometheus-alertmanager"
    assert "--cluster.listen-address=" in am  # 9094 belongs to Kafka's controller
    assert "--web.listen-address=127.0.0.1:9093" in am
    assert "-Xmx1536m" in specs["kafka"].argv
    assert packaged.DEFAULT_RETENTION == "400d"


def test_redis_conf_binds_loopback() -> None:
    text = (CONFIG / "redis" / "redis.conf").read_text()
    assert re.search(r"^bind 127\.0\.0\.1\b", text, re.M)
    assert re.search(r"^port 6379$", text, re.M)
    assert re.search(r"^daemonize no$", text, re.M)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_rendered_config(tmp_path: Path) -> None:
    template = yaml.safe_load((CONFIG / "prometheus" / "prometheus.yml").read_text())
    rendered = packaged.render_prometheus_config(template, CONFIG / "prometheus")
    conf = tmp_path / "prometheus.yml"
    conf.write_text(yaml.safe_dump(rendered))
    proc = subprocess.run(
        ["promtool", "check", "config", str(conf)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool not installed")
def test_amtool_accepts_alertmanager_config() -> None:
    conf = CONFIG / "alertmanager" / "alertmanager.yml"
    proc = subprocess.run(
        ["amtool", "check-config", str(conf)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    receivers = {r["name"] for r in yaml.safe_load(conf.read_text())["receivers"]}
    assert {"risk-desk", "on-call"} <= receivers


def test_target_files_of_dead_processes_are_pruned(tmp_path: Path) -> None:
    gone = subprocess.Popen(["sleep", "0"])
    gone.wait()  # a pid that no longer exists
    dead = targets.write_target(tmp_path, "router-1", "127.0.0.1:1", {}, owner_pid=gone.pid)
    live = targets.write_target(tmp_path, "router-2", "127.0.0.1:2", {}, owner_pid=os.getpid())
    unowned = targets.write_target(tmp_path, "router-3", "127.0.0.1:3", {})
    assert dead.with_suffix(".pid").exists()
    assert targets.prune_dead(tmp_path) == [dead]
    assert not dead.exists() and not dead.with_suffix(".pid").exists()
    assert live.exists() and unowned.exists()  # alive, or nobody said whose it is
    targets.remove_target(live)
    assert not live.exists() and not live.with_suffix(".pid").exists()


def test_a_router_registering_removes_a_killed_routers_target(tmp_path: Path) -> None:
    from loanwatch.routing.service import RouterSettings, register_target

    gone = subprocess.Popen(["sleep", "0"])
    gone.wait()
    stale = targets.write_target(tmp_path, "router-8781", "127.0.0.1:8781", {}, owner_pid=gone.pid)
    mine = register_target(RouterSettings(prometheus_targets_dir=tmp_path, api_port=8782))
    assert not stale.exists()
    assert mine.exists()
    pid, started, namespace = mine.with_suffix(".pid").read_text().split()
    assert pid == str(os.getpid())
    assert started == str(pids.start_time(os.getpid())) and namespace == pids.pid_namespace()


def _dead_pid() -> int:
    gone = subprocess.Popen(["sleep", "0"])
    gone.wait()  # exited and reaped: the pid names no process
    return gone.pid


def test_a_reused_pid_does_not_keep_a_dead_processs_target(tmp_path: Path) -> None:
    # The file names this (live) pid, but a process that started at another time: the one
    # that had the pid is gone and the pid was reused.
    reused = targets.write_target(tmp_path, "router-1", "127.0.0.1:1", {}, owner_pid=os.getpid())
    pid, started, namespace = reused.with_suffix(".pid").read_text().split()
    reused.with_suffix(".pid").write_text(f"{pid} {int(started) - 1} {namespace}\n")
    live = targets.write_target(tmp_path, "router-2", "127.0.0.1:2", {}, owner_pid=os.getpid())
    assert targets.prune_dead(tmp_path) == [reused]
    assert live.exists() and not reused.exists()


def test_pids_of_another_namespace_or_unparsable_are_left_alone(tmp_path: Path) -> None:
    dead = _dead_pid()
    container = targets.write_target(tmp_path, "router-1", "127.0.0.1:1", {}, owner_pid=dead)
    container.with_suffix(".pid").write_text(f"{dead} 123 pid:[1]\n")  # a container's pid
    garbage = targets.write_target(tmp_path, "router-2", "127.0.0.1:2", {}, owner_pid=dead)
    garbage.with_suffix(".pid").write_text("not-a-pid\n")
    legacy = targets.write_target(tmp_path, "router-3", "127.0.0.1:3", {}, owner_pid=dead)
    legacy.with_suffix(".pid").write_text(f"{dead}\n")  # only the pid: still judged by it
    assert targets.prune_dead(tmp_path) == [legacy]
    assert container.exists() and garbage.exists()


def test_stack_up_prunes_dead_workers_and_routers_targets(tmp_path: Path) -> None:
    paths = StackPaths(root=tmp_path, cache=tmp_path / "cache")
    dead = _dead_pid()
    worker = targets.write_target(paths.prometheus_targets, "w", "127.0.0.1:1", {}, owner_pid=dead)
    router = targets.write_target(
        paths.prometheus_router_targets, "router-1", "127.0.0.1:2", {}, owner_pid=dead
    )
    live = targets.write_target(
        paths.prometheus_router_targets, "router-2", "127.0.0.1:3", {}, owner_pid=os.getpid()
    )
    assert manager.prune_targets(paths) == [worker, router]
    assert live.exists() and not worker.exists() and not router.exists()
    assert manager.prune_targets(StackPaths(root=tmp_path / "none", cache=tmp_path)) == []
