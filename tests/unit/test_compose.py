"""docker-compose.yml stays consistent with the local stack (same ports, same config files).

Docker cannot run here; this parses the file with PyYAML and checks it against
``loanwatch.stack``'s own ports and the configs in ``config/``, and against what each image
accepts: every loanwatch service's command is parsed (not run) by the project's own click tree,
every bind-mounted host path is in the repository, and every variable a Grafana provisioning
file reads is set.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from loanwatch.cli import main
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
    check = " ".join(svc["healthcheck"]["test"])
    assert "-p 6379" in check and "grep -qx PONG" in check  # NOAUTH must not pass as healthy
    # the password comes from the stack's secret, never from the image or the file in git
    assert svc["command"][-2:] == ["--include", "/run/secrets/redis_auth_conf"]
    assert set(svc["secrets"]) == {"redis_auth_conf", "redis_password"}
    files = {k: v["file"] for k, v in compose["secrets"].items()}
    assert files["redis_auth_conf"] == "./run/redis/auth/auth.conf"
    assert files["redis_password"] == "./run/redis/auth/password"


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
    workers = [parse_loanwatch(services[w]["command"]) for w in ("worker-1", "worker-2")]
    ports = {ctx.params["web_port"] for _, ctx in workers}
    assert len(ports) == 2
    stack_ports = {s.port for s in manager.all_specs(PATHS)} | {kafka.CONTROLLER_PORT, 3000}
    assert not ports & stack_ports
    for name, ctx in workers:
        assert name == "worker"
        assert ctx.params["broker"] == f"kafka://{kafka.BOOTSTRAP}"
    for name in ("worker-1", "worker-2", "simulator"):
        assert services[name]["build"] == "."


# --- what each image accepts ---------------------------------------------------------------

LOANWATCH_IMAGE = "loanwatch:dev"
# Faust reads these unprefixed and lets them override the worker's own settings.
FAUST_OVERRIDES = {"BROKER_URL", "WEB_PORT", "WEB_BIND", "WEB_HOST", "DATADIR", "STORE"}


def _dockerfile(instruction: str) -> list[str]:
    """The JSON-array argument of the Dockerfile's last ``instruction`` (ENTRYPOINT, CMD)."""
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    found = [line for line in lines if line.startswith(f"{instruction} ")]
    parsed: list[str] = json.loads(found[-1].removeprefix(f"{instruction} "))
    return parsed


def parse_loanwatch(args: list[str]) -> tuple[str, click.Context]:
    """Parse ``loanwatch ARGS`` with the project's own click tree, without running anything."""
    ctx = click.Context(main, info_name="loanwatch")
    name, *rest = args
    command = main.get_command(ctx, name)
    assert command is not None, f"loanwatch has no subcommand {name!r}"
    while isinstance(command, click.Group):  # e.g. `stack up`, `routes serve`
        sub, *rest = rest
        command = command.get_command(ctx, sub)
        assert command is not None, f"loanwatch {name} has no subcommand {sub!r}"
        name = f"{name} {sub}"
    try:
        return name, command.make_context(name, list(rest), parent=ctx)
    except click.UsageError as exc:
        pytest.fail(f"`loanwatch {' '.join(args)}` is refused: {exc.format_message()}")


def _loanwatch_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if s.get("image") == LOANWATCH_IMAGE}


def _host_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of bind mounts only (named volumes left out)."""
    return {c: h for c, h in _sources(service).items() if h.startswith((".", "/"))}


def test_dockerfile_entrypoint_is_the_loanwatch_cli() -> None:
    assert _dockerfile("ENTRYPOINT") == ["loanwatch"]
    name, _ = parse_loanwatch(_dockerfile("CMD"))
    assert name == "worker"


def test_every_loanwatch_service_command_is_accepted_by_the_cli(compose: dict[str, Any]) -> None:
    services = _loanwatch_services(compose)
    assert {"worker-1", "worker-2", "simulator"} <= set(services)
    for svc in services.values():
        parse_loanwatch(svc.get("command") or _dockerfile("CMD"))


def test_simulator_publishes_live_to_the_broker(compose: dict[str, Any]) -> None:
    name, ctx = parse_loanwatch(compose["services"]["simulator"]["command"])
    assert name == "simulate"
    assert ctx.params["live"] is True, "without --live it writes the log to stdout and exits"
    assert ctx.params["bootstrap"] == kafka.BOOTSTRAP
    # A finished live run must not start over and publish the same business days again.
    assert compose["services"]["simulator"]["restart"] in ("no", "on-failure")


def test_workers_read_the_mounted_config_and_no_faust_overrides(compose: dict[str, Any]) -> None:
    for service in ("worker-1", "worker-2"):
        svc = compose["services"][service]
        _, ctx = parse_loanwatch(svc["command"])
        config = str(ctx.params["config_dir"])
        assert _host_mounts(svc).get(config) == "./config", (service, config)
        assert (ROOT / "config" / "policy.yaml").is_file()
        assert str(ctx.params["data_dir"]).startswith("/srv/loanwatch/run/"), service
        assert not FAUST_OVERRIDES & set(svc.get("environment") or {}), service


def test_every_mounted_host_path_exists(compose: dict[str, Any]) -> None:
    generated = "./run/"  # made by `loanwatch stack up` / the workers, gitignored
    for name, svc in compose["services"].items():
        for container, host in _host_mounts(svc).items():
            if host.startswith(generated):
                continue
            assert (ROOT / host).exists(), f"{name}: {host} (-> {container}) is not in the repo"


def _referenced_env(text: str) -> set[str]:
    """``$VAR`` and ``${VAR}`` (Grafana expands both in provisioning files)."""
    pairs = re.findall(r"\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)", text)
    return {braced or bare for braced, bare in pairs}


def test_grafana_provisioning_env_is_set_and_dashboards_are_mounted(
    compose: dict[str, Any],
) -> None:
    svc = compose["services"]["grafana"]
    env = svc["environment"]
    mounts = _host_mounts(svc)
    provisioning = ROOT / mounts[env["GF_PATHS_PROVISIONING"]]
    files = sorted(provisioning.rglob("*.yml"))
    assert files
    for path in files:
        text = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
        for var in _referenced_env(text):
            assert var in env, f"{path.relative_to(ROOT)} reads ${{{var}}}: unset in compose"
    providers = yaml.safe_load((provisioning / "dashboards" / "loanwatch.yml").read_text())
    for provider in providers["providers"]:
        path = re.sub(r"\$\{(\w+)\}", lambda m: str(env[m.group(1)]), provider["options"]["path"])
        host = mounts.get(path)
        assert host is not None, f"dashboards path {path} is not mounted into grafana"
        assert sorted((ROOT / host).glob("*.json")), f"{host} holds no dashboard JSON"


def test_the_parser_refuses_what_the_cli_would() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"(?i)no such option"):
        parse_loanwatch(["simulate", "--lve"])
    with pytest.raises(pytest.fail.Exception, match="web-port"):
        parse_loanwatch(["worker", "--web-port", "http"])


def test_prometheus_scrapes_every_compose_worker(compose: dict[str, Any]) -> None:
    """Grafana's pipeline and portfolio panels need the workers as targets: the file mounted
    into Prometheus's file_sd folder lists each worker's web port, and nothing else."""
    import json

    services = compose["services"]
    mounts = [str(v).split(":") for v in services["prometheus"]["volumes"]]
    [host] = [m[0] for m in mounts if m[1].startswith("/etc/prometheus/targets/")]
    groups = json.loads((ROOT / host).read_text(encoding="utf-8"))
    targets = {t for group in groups for t in group["targets"]}
    workers = [w for w in services if w.startswith("worker-")]
    ports = {parse_loanwatch(services[w]["command"])[1].params["web_port"] for w in workers}
    assert targets == {f"127.0.0.1:{port}" for port in ports}
