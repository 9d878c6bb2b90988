"""docker-compose.yml's Redis asks for the stack's password, and its healthcheck gives it.

Docker cannot run here: the compose service's own ``command`` and healthcheck are run on this
machine's redis-server and shell, with the container paths mapped to files the test makes
(``loanwatch stack secrets``' material, made by ``redis_auth.ensure``). Compose passes ``$$`` to
the shell as ``$``; the test does the same.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from loanwatch.stack import packaged, redis_auth

from .live import free_port

ROOT = Path(__file__).resolve().parents[2]
REDIS_BIN = shutil.which("redis-server") or packaged.REDIS_BIN


def _service() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    redis_svc: dict[str, Any] = compose["services"]["redis"]
    secrets = {name: compose["secrets"][name]["file"] for name in redis_svc["secrets"]}
    redis_svc["_secret_files"] = secrets
    return redis_svc


class ComposeRedis:
    """The compose service's command on a free port, container paths mapped to ``tmp``."""

    def __init__(self, tmp: Path, auth_dir: Path) -> None:
        self.svc = _service()
        self.port = free_port()
        data = tmp / "data"
        data.mkdir()
        conf = tmp / "redis.conf"  # a copy: the stack never mistakes this server for its own
        shutil.copyfile(ROOT / "config" / "redis" / "redis.conf", conf)
        self.paths = {"/usr/local/etc/redis/redis.conf": str(conf), "/data": str(data)}
        for name, host_file in self.svc["_secret_files"].items():
            assert host_file.startswith("./run/redis/auth/"), host_file  # the stack's material
            self.paths[f"/run/secrets/{name}"] = str(auth_dir / Path(host_file).name)
        self.log = tmp / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _map(self, text: str) -> str:
        for container, host in sorted(self.paths.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(container, host)
        return text

    def start(self) -> None:
        command = self.svc["command"]
        assert command[0] == "redis-server"
        argv = [REDIS_BIN, *(self._map(arg) for arg in command[1:]), "--port", str(self.port)]
        with self.log.open("ab") as sink:
            self.proc = subprocess.Popen(argv, stdout=sink, stderr=sink)
        deadline = time.monotonic() + 30
        while self.healthcheck() != 0 and self.proc.poll() is None:
            assert time.monotonic() < deadline, self.log.read_text()[-2000:]
            time.sleep(0.05)
        assert self.proc.poll() is None, self.log.read_text()[-2000:]

    def healthcheck(self) -> int:
        kind, script = self.svc["healthcheck"]["test"]
        assert kind == "CMD-SHELL"
        script = self._map(script.replace("$$", "$")).replace("-p 6379", f"-p {self.port}")
        return subprocess.run(["sh", "-c", script], capture_output=True, timeout=10).returncode

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def compose_redis(tmp_path: Path) -> Iterator[tuple[ComposeRedis, redis_auth.RedisAuth]]:
    auth = redis_auth.ensure(tmp_path / "redis")
    server = ComposeRedis(tmp_path, auth.directory)
    server.start()
    yield server, auth
    server.stop()


def test_compose_redis_refuses_a_client_without_the_stack_password(
    compose_redis: tuple[ComposeRedis, redis_auth.RedisAuth],
) -> None:
    server, auth = compose_redis
    with pytest.raises(redis.AuthenticationError):
        redis_auth.client(server.port).ping()
    assert redis_auth.client(server.port, auth.password).ping() is True


def test_compose_healthcheck_is_healthy_only_with_the_password(
    compose_redis: tuple[ComposeRedis, redis_auth.RedisAuth],
) -> None:
    server, auth = compose_redis
    assert server.healthcheck() == 0
    (auth.directory / "password").write_text("not-the-password\n")
    assert server.healthcheck() != 0  # a NOAUTH/WRONGPASS reply is not health
