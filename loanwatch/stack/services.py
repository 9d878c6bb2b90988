"""Start, stop and probe one managed server process, identified by its pid file.

A service is started detached (own session, reparented away from the caller) with its output
appended to its log file, and is "ours" only while its pid file names a live process whose
command line contains the service's marker. Stopping signals that pid (and its process group)
only: never a process found by name.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from loanwatch.stack.pids import running

log = logging.getLogger("loanwatch.stack.services")

# Runs the server in a new session and prints its pid, then exits: the caller waits for this
# launcher only, so no zombie or "still running" Popen is left behind in the caller.
_LAUNCHER = """
import subprocess, sys
log = open(sys.argv[1], "ab", buffering=0)
proc = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log,
                        stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
print(proc.pid, flush=True)
proc.returncode = 0  # detached on purpose: do not warn that it is still running
"""


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """How to run one server: its command, files, port and readiness probe."""

    name: str
    port: int
    argv: tuple[str, ...]
    cwd: Path
    log_file: Path
    pid_file: Path
    probe: Callable[[], bool]
    marker: str
    """A string that must appear in the process' command line (guards against pid reuse)."""
    ready_timeout: float = 60.0
    env: Mapping[str, str] = field(default_factory=dict)


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def running_pid(spec: ServiceSpec) -> int | None:
    """The pid of our running instance, or None (a stale pid file is ignored)."""
    try:
        pid = int(spec.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if running(pid) and spec.marker in _cmdline(pid):
        return pid
    return None


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file ('' when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def safe_probe(spec: ServiceSpec) -> bool:
    """Run the readiness probe; any exception means not ready."""
    try:
        return spec.probe()
    except Exception as exc:
        log.debug("probe failed", extra={"service": spec.name, "error": repr(exc)})
        return False


def start(spec: ServiceSpec) -> int:
    """Launch the service detached, write its pid file and return the pid (no waiting)."""
    spec.log_file.parent.mkdir(parents=True, exist_ok=True)
    spec.pid_file.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **spec.env}
    out = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(spec.log_file), *spec.argv],
        cwd=spec.cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    pid = int(out.stdout.strip())
    spec.pid_file.write_text(f"{pid}\n")
    log.info("started", extra={"service": spec.name, "pid": pid, "log": str(spec.log_file)})
    return pid


def wait_ready(
    spec: ServiceSpec, pid: int | None, timeout: float | None = None, *, quiet: float = 30.0
) -> str | None:
    """Poll the probe until ready; return None when ready, else the reason it is not.

    Past ``timeout`` a service whose log is still growing (a broker loading thousands of
    partitions) is given more time, while its log moved in the last ``quiet`` seconds, up
    to five times ``timeout``.
    """
    budget = spec.ready_timeout if timeout is None else timeout
    began = time.monotonic()
    size, moved = _size(spec.log_file), began - quiet  # no growth seen yet
    while True:
        if safe_probe(spec):
            return None
        if pid is not None and not running(pid):
            return f"process {pid} exited"
        now = time.monotonic()
        grown = _size(spec.log_file)
        if grown != size:
            size, moved = grown, now
        if now - began >= budget and (now - moved >= quiet or now - began >= 5 * budget):
            if now - moved >= quiet:
                return f"not ready after {budget:g}s"
            return f"not ready after {now - began:.0f}s (its log was still growing)"
        time.sleep(0.25)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def stop(spec: ServiceSpec, timeout: float = 30.0) -> int | None:
    """SIGTERM our instance (by pid file), SIGKILL after timeout; return the pid stopped."""
    pid = running_pid(spec)
    if pid is None:
        spec.pid_file.unlink(missing_ok=True)
        return None
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if running(pid):
        log.warning("did not stop in time, killing", extra={"service": spec.name, "pid": pid})
        _signal(pid, signal.SIGKILL)
        while running(pid) and time.monotonic() < deadline + 10:
            time.sleep(0.1)
    spec.pid_file.unlink(missing_ok=True)
    log.info("stopped", extra={"service": spec.name, "pid": pid})
    return pid


def _signal(pid: int, sig: signal.Signals) -> None:
    """Signal the process group the service leads (it was started in its own session)."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass
