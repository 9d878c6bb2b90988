"""The local Redis' password: made once under run/redis/auth, started with, read by clients."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from loanwatch.routing.errors import ConfigError
from loanwatch.routing.service import redis_password
from loanwatch.routing.settings import RouterSettings
from loanwatch.stack import manager, packaged, redis_auth
from loanwatch.stack.paths import StackPaths

pytestmark = pytest.mark.unit


def test_the_password_is_made_once_private_and_only_then_included(tmp_path: Path) -> None:
    paths = StackPaths(root=tmp_path, cache=tmp_path / "cache")
    redis_dir = paths.service_dir("redis")
    assert "--include" not in packaged.redis_spec(paths).argv  # no material: no password
    assert manager.info(paths).redis_url == "redis://127.0.0.1:6379/0"
    made = redis_auth.ensure(redis_dir)
    assert redis_auth.ensure(redis_dir) == made  # idempotent
    assert len(made.password) >= 32
    assert made.conf_file.read_text() == f"requirepass {made.password}\n"
    assert made.directory.stat().st_mode & 0o077 == 0
    for name in ("auth.conf", "password"):
        assert (made.directory / name).stat().st_mode & 0o077 == 0
    argv = packaged.redis_spec(paths).argv
    assert argv[-2:] == ("--include", str(made.conf_file))
    assert made.password not in " ".join(argv)  # never on a command line (ps shows those)
    assert manager.info(paths).redis_url == f"redis://:{made.password}@127.0.0.1:6379/0"


def test_the_url_quotes_the_password() -> None:
    auth = redis_auth.RedisAuth(Path("/x"), "a@b:c/d")
    assert redis_auth.url(6390, auth, 2) == "redis://:a%40b%3Ac%2Fd@127.0.0.1:6390/2"


@pytest.fixture
def stack_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOANWATCH_ROOT", str(tmp_path))
    return tmp_path


def test_routes_serve_takes_the_setting_then_its_file_then_the_local_stacks(
    stack_root: Path, tmp_path: Path
) -> None:
    local = RouterSettings(redis_url="redis://127.0.0.1:6379/0")
    assert redis_password(local) is None  # the stack made none yet
    made = redis_auth.ensure(stack_root / "run" / "redis")
    assert redis_password(local) == made.password
    elsewhere = RouterSettings(redis_url="redis://10.0.0.5:6379/0")
    assert redis_password(elsewhere) is None  # never sent to another host
    in_url = RouterSettings(redis_url="redis://:given@127.0.0.1:6379/0")
    assert redis_password(in_url) is None  # the URL's own password stands
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-file\n")
    assert redis_password(local.model_copy(update={"redis_password_file": secret_file})) == (
        "from-file"
    )
    given = local.model_copy(
        update={"redis_password": SecretStr("given"), "redis_password_file": secret_file}
    )
    assert redis_password(given) == "given"
    secret_file.write_text("")
    with pytest.raises(ConfigError, match="empty"):
        redis_password(local.model_copy(update={"redis_password_file": secret_file}))
    with pytest.raises(ConfigError, match="PASSWORD_FILE"):
        redis_password(local.model_copy(update={"redis_password_file": tmp_path / "missing"}))
