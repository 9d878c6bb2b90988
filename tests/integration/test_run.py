"""Smoke test of ``loanwatch run --no-tui``: a real worker and the live simulator on the stack.

The console runs as a subprocess with its own run folder and fresh topics. The test checks that
Prometheus scrapes the worker it registered, that the plain lines show a moving portfolio, and
that at the end nothing it started is left: no child process, no target file.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from loanwatch.stack.paths import StackPaths

DURATION = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scraped_up(prometheus_url: str, port: int) -> bool:
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/targets", timeout=5) as resp:
        body: dict[str, Any] = json.load(resp)
    return any(
        t["labels"].get("portfolio") == "demo"
        and t["labels"].get("job_hint") == "worker"
        and t["scrapeUrl"].startswith(f"http://127.0.0.1:{port}/")
        and t["health"] == "up"
        for t in body["data"]["activeTargets"]
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def test_run_no_tui(
    kafka_bootstrap: str, prometheus_url: str, stack_paths: StackPaths, tmp_path: Path
) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "loanwatch.cli", "run", "--no-tui", "--duration", str(DURATION)]
    argv += ["--loans", "300", "--web-port", str(port), "--partitions", "4"]
    argv += ["--bootstrap", kafka_bootstrap, "--run-dir", str(tmp_path)]
    out_path = tmp_path / "console.out"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + DURATION
        seen_up = False
        while time.monotonic() < deadline and not seen_up:
            time.sleep(1)
            with contextlib.suppress(OSError):
                seen_up = scraped_up(prometheus_url, port)
        code = proc.wait(timeout=DURATION + 60)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
    text = out_path.read_text()
    worker_log = tmp_path / "worker.log"
    context = f"{text[-4000:]}\n--- worker log ---\n{worker_log.read_text()[-3000:]}"
    context += f"\n--- simulator log ---\n{(tmp_path / 'simulator.log').read_text()[-2000:]}"
    assert code == 0, context
    assert seen_up, "Prometheus never scraped the worker the console registered\n" + context
    assert f"url metrics http://127.0.0.1:{port}/metrics" in text
    assert "url prometheus http://127.0.0.1:9090" in text
    statuses = [line for line in text.splitlines() if line.startswith("status ")]
    assert any("worker_up=True" in line for line in statuses), context
    assert any(" loans=0 " not in line for line in statuses), context
    assert "simulator exited with code 1" not in text, context
    # nothing left behind: children stopped by pid, the target file removed
    started = [json.loads(line) for line in text.splitlines() if '"msg": "started"' in line]
    assert {s["child"] for s in started} == {"worker", "simulator"}
    assert not [s["pid"] for s in started if alive(s["pid"])]
    assert not (stack_paths.prometheus_targets / f"console-worker-{port}.json").exists()
