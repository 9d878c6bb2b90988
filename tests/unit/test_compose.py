"""docker-compose.yml stays consistent with the local stack (same ports, same config files).

Docker cannot run here; this parses the file with PyYAML and checks it against
``loanwatch.stack``'s own ports and the configs in ``config/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from loanwatch.stack import kafka, manager, packaged
from loanwatch.stack.paths import StackPaths

ROOT = Path(__file__).resolve().parents[2]
PATHS = StackPaths(root=ROOT, cache=ROOT / ".cache-unused")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _sources(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of every bind mount (``./x:/y[:ro]``)."""
    out = {}
    for vol in service.get("volumes", []):
        host, container, *_ = vol.split(":")
        out[container] = host
    return out


def test_services_present(compose: dict[str, Any]) -> None:
    expected = {
        "kafka",
        "redis",
        "prometheus",
        "alertmanager",
        "grafana",
        "worker-1",
        "worker-2",
        "simulator",
    }
    assert expected <= set(compose["services"])


def test_every_service_shares_the_host_network(compose: dict[str, Any]) -> None:
    # The configs address 127.0.0.1, so the same files work only on the host's network.
    for name, svc in compose["services"].items():
        assert svc.get("network_mode") == "host", name
        assert "ports" not in svc, name


def test_config_mounts_exist(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for container, host in _sources(svc).items():
            if host.startswith("./config"):
                assert (ROOT / host).exists(), (name, container, host)


def test_kafka_matches_local_broker(compose: dict[str, Any]) -> None:
    svc = compose["services"]["kafka"]
    assert svc["image"] == f"apache/kafka:{kafka.kafka_version(PATHS)}"
    mounts = _sources(svc)
    assert mounts["/mnt/shared/config/server.properties"] == "./config/kafka/server.properties"
    assert mounts["/mnt/shared/config/log4j.properties"] == "./config/kafka/log4j.properties"
    assert "127.0.0.1:9092" in " ".join(svc["healthcheck"]["test"])
    assert kafka.BOOTSTRAP == "127.0.0.1:9092"
    assert len(svc["environment"]["CLUSTER_ID"]) == 22


def test_redis_uses_local_config(compose: dict[str, Any]) -> None:
    svc = compose["services"]["redis"]
    conf = "/usr/local/etc/redis/redis.conf"
    assert _sources(svc)[conf] == "./config/redis/redis.conf"
    assert conf in svc["command"]
    assert "6379" in svc["healthcheck"]["test"]


def test_prometheus_flags_and_mounts(compose: dict[str, Any]) -> None:
    svc = compose["services"]["prometheus"]
    local = {s.name: s for s in manager.all_specs(PATHS)}["prometheus"].argv
    assert f"--web.listen-address=127.0.0.1:{packaged.PROMETHEUS_PORT}" in svc["command"]
    assert f"--web.listen-address=127.0.0.1:{packaged.PROMETHEUS_PORT}" in local
    assert f"--storage.tsdb.retention.time={packaged.DEFAULT_RETENTION}" in svc["command"]
    mounts = _sources(svc)
    assert mounts["/etc/prometheus/prometheus.yml"] == "./config/prometheus/prometheus.yml"
    assert mounts["/etc/prometheus/rules"] == "./config/prometheus/rules"
    assert mounts["/etc/prometheus/targets"] == "./run/prometheus/targets"


def test_alertmanager_flags_and_mounts(compose: dict[str, Any]) -> None:
    svc = compose["services"]["alertmanager"]
    assert f"--web.listen-address=127.0.0.1:{packaged.ALERTMANAGER_PORT}" in svc["command"]
    assert "--cluster.listen-address=" in svc["command"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in svc["command"]
    assert _sources(svc)["/etc/alertmanager"] == "./config/alertmanager"


def test_grafana_provisioning_mounted(compose: dict[str, Any]) -> None:
    svc = compose["services"]["grafana"]
    assert _sources(svc)["/etc/grafana/provisioning"] == "./dashboards/provisioning"


def test_workers_distinct_web_ports_and_local_broker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    ports = {services[w]["environment"]["WEB_PORT"] for w in ("worker-1", "worker-2")}
    assert len(ports) == 2
    stack_ports = {s.port for s in manager.all_specs(PATHS)} | {kafka.CONTROLLER_PORT, 3000}
    assert not {int(p) for p in ports} & stack_ports
    for name in ("worker-1", "worker-2", "simulator"):
        assert services[name]["environment"]["BROKER_URL"] == f"kafka://{kafka.BOOTSTRAP}"
        assert services[name]["build"] == "."
