"""The local Redis' password: made by the stack, kept in ``run/redis/auth``, read by clients.

``ensure`` makes, once per checkout, ``run/redis/auth/`` (0700) with ``password`` (random,
0600) and ``auth.conf`` (``requirepass <password>``, 0600). The stack starts its redis-server
with ``--include run/redis/auth/auth.conf`` (the password never appears on a command line and
``config/redis/redis.conf`` stays the file in git). A redis-server of the stack that was started
before the password existed is given it live (``CONFIG SET requirepass``) by the next
``stack up``: no restart, and its next start reads ``auth.conf``. ``CONFIG REWRITE`` is never
used: it would write the password into the tracked ``config/redis/redis.conf``.

Clients (the tests' ``redis_url``, ``routes serve`` against the local address) read the
password with :func:`load`; a checkout without the material (the stack not yet made one) talks
to Redis without AUTH, as before.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from loanwatch.stack.errors import StackError

log = logging.getLogger("loanwatch.stack.redis")

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class RedisAuth:
    directory: Path
    password: str

    @property
    def conf_file(self) -> Path:
        return self.directory / "auth.conf"


def auth_dir(redis_dir: Path) -> Path:
    return redis_dir / "auth"


def load(redis_dir: Path) -> RedisAuth | None:
    """The password made before, or None (no material: the Redis has no password yet)."""
    directory = auth_dir(redis_dir)
    try:
        password = (directory / "password").read_text().strip()
    except OSError:
        return None
    if not password or not (directory / "auth.conf").is_file():
        return None
    return RedisAuth(directory, password)


def ensure(redis_dir: Path) -> RedisAuth:
    """The password and ``auth.conf``, made once (idempotent)."""
    found = load(redis_dir)
    if found is not None:
        return found
    directory = auth_dir(redis_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    made = RedisAuth(directory, secrets.token_urlsafe(24))
    files = (("auth.conf", f"requirepass {made.password}\n"), ("password", f"{made.password}\n"))
    for name, text in files:  # auth.conf first: ``load`` needs both
        path = directory / f"{name}.tmp"
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(text)
        path.rename(directory / name)
    log.info("made the local Redis password", extra={"dir": str(directory)})
    return made


def url(port: int, auth: RedisAuth | None, db: int = 0) -> str:
    """The stack's Redis URL, with the password when there is one."""
    secret = f":{quote(auth.password, safe='')}@" if auth is not None else ""
    return f"redis://{secret}{HOST}:{port}/{db}"


def client(port: int, password: str | None = None, timeout: float = 5.0) -> Any:
    """A plain sync client that answers at once: no retries (redis-py retries a refused AUTH,
    an ``AuthenticationError`` is a ``ConnectionError``, for seconds by default)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(
        host=HOST,
        port=port,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def apply_to_running(port: int, auth: RedisAuth) -> bool:
    """Give a running redis-server of the stack its password; True when it had none.

    Idempotent: a server that already asks for this password is left alone; one that asks for
    another is an error (say how to recover) rather than a guess.
    """
    import redis

    plain = client(port)
    try:
        try:
            plain.ping()
        except redis.AuthenticationError:
            pass  # it asks for a password: check it is ours below
        else:
            plain.config_set("requirepass", auth.password)
            log.info("set the password of the running Redis (CONFIG SET requirepass)")
            return True
    finally:
        plain.close()
    authed = client(port, auth.password)
    try:
        authed.ping()
    except redis.AuthenticationError:
        raise StackError(
            f"the running Redis on {port} asks for a password other than "
            f"{auth.directory / 'password'}: stop it (`loanwatch stack down`) and start again"
        ) from None
    finally:
        authed.close()
    return False
