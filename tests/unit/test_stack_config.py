"""The local stack's configs: rendering, required Kafka settings, ports, offline validators."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from loanwatch.stack import kafka, manager, packaged
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
    assert props["auto.create.topics.enable"] == "true"


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
    am = rendered["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["127.0.0.1:9093"]


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
    assert "-Xmx512m" in specs["kafka"].argv
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
