"""A ``loanwatch worker`` subprocess for benchmarks, its CPU time, and py-spy samples of it.

Starts and stops only the processes it created (by their Popen handle, SIGTERM first).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from benchkit import BENCH_RUN, REPO
from loanwatch.streams.producer import read_progress

BOOTSTRAP = "127.0.0.1:9092"
PARTITIONS = 8
TP = tuple[str, int]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid() -> int | None:
    try:
        return int((REPO / "run" / "kafka" / "kafka.pid").read_text().strip())
    except (OSError, ValueError):
        return None


@dataclass(slots=True)
class WorkerRun:
    prefix: str
    data_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    app_id: str | None = None  # default: ``<prefix>app``

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "worker.log"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        app_id = self.app_id or f"{self.prefix}app"
        cmd = [sys.executable, "-m", "loanwatch.cli", "worker", "--app-id", app_id,
               "--topic-prefix", self.prefix, "--web-port", str(self.port),
               "--data-dir", str(self.data_dir), "--partitions", str(PARTITIONS),
               "--loglevel", "warning"]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # our own child only
            return self.proc.wait(timeout=30)

    def first_error(self) -> str:
        """The first ERROR line of the worker's log (why it stopped), shortened."""
        if self.log_path.exists():
            for line in self.log_path.read_text(errors="replace").splitlines():
                if "[ERROR]" in line:
                    return line[:400]
        return "no ERROR line in the log"

    def tail(self, n: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


async def progress(session: aiohttp.ClientSession, worker: WorkerRun) -> dict[TP, int] | None:
    try:
        return dict(await read_progress(session, f"{worker.url}/progress"))
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None


def start_py_spy(pid: int, seconds: float, out_dir: Path) -> subprocess.Popen[bytes] | None:
    """Sample the worker with py-spy (installed under run/bench/pyspy) for ``seconds``."""
    exe = BENCH_RUN / "pyspy" / "bin" / "py-spy"
    if seconds <= 0 or not exe.exists():
        return None
    out = out_dir / "py-spy.txt"
    cmd = [str(exe), "record", "--pid", str(pid), "--duration", str(int(seconds)),
           "--rate", "50", "--format", "raw", "--output", str(out), "--nonblocking"]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize_py_spy(path: Path, top: int = 15) -> list[tuple[str, float, float]]:
    """From py-spy's collapsed stacks: (function, self %, inclusive %) of the top functions."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            incl[frame] = incl.get(frame, 0) + n
    ranked = sorted(own.items(), key=lambda kv: -kv[1])[:top]
    return [(f, 100 * n / total, 100 * incl[f] / total) for f, n in ranked] if total else []


def inclusive_of(path: Path, needles: list[str]) -> dict[str, float]:
    """Share of samples whose stack contains each needle (a function or file name)."""
    hits = dict.fromkeys(needles, 0)
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        for needle in needles:
            if needle in stack:
                hits[needle] += int(count)
    return {k: 100 * v / total for k, v in hits.items()} if total else {}
