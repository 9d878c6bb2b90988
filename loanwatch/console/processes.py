"""The local processes and files ``loanwatch run`` owns: start, watch and stop them by pid.

Each child runs in its own session (so a terminal's Ctrl-C reaches only the console, which then
stops them in order) and logs to its own file. This module must never signal a process it did
not start, nor look processes up by name.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from loanwatch.stack import targets

log = logging.getLogger("loanwatch.console")


@dataclass(slots=True)
class Child:
    """A subprocess started by the console, with the log it writes."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exit_code(self) -> int | None:
        return self.proc.poll()

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def loanwatch_argv(*args: str) -> list[str]:
    """The ``loanwatch`` command in this interpreter (no reliance on PATH)."""
    return [sys.executable, "-m", "loanwatch.cli", *args]


def start_child(name: str, argv: list[str], log_path: Path, cwd: Path | None = None) -> Child:
    """Start ``argv`` with stdout and stderr written to ``log_path`` (replaced: one run's log)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
    log.info("started", extra={"child": name, "pid": proc.pid, "log": str(log_path)})
    return Child(name, proc, log_path)


def stop_child(child: Child, timeout: float = 20.0) -> int | None:
    """SIGTERM the child by pid, SIGKILL it after ``timeout``; return its exit code."""
    if child.proc.poll() is None:
        child.proc.send_signal(signal.SIGTERM)
        try:
            child.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("did not stop, killing", extra={"child": child.name, "pid": child.pid})
            child.proc.kill()
            child.proc.wait(timeout=10)
    code = child.proc.returncode
    log.info("stopped", extra={"child": child.name, "pid": child.pid, "code": code})
    return code


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(preferred: int, host: str = "127.0.0.1") -> int:
    """``preferred`` when nobody listens on it, else any free port."""
    if port_free(preferred, host):
        return preferred
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def write_target(
    folder: Path, name: str, host_port: str, labels: dict[str, str], owner_pid: int | None = None
) -> Path:
    """Register a Prometheus file_sd target (atomic rename: never read half-written)."""
    for stale in targets.prune_dead(folder):
        log.info(
            "stale prometheus target removed (its process is gone)", extra={"file": str(stale)}
        )
    path = targets.write_target(folder, name, host_port, labels, owner_pid=owner_pid)
    log.info("prometheus target registered", extra={"file": str(path), "target": host_port})
    return path
