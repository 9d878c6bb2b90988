"""The managed-process helpers: pid files, identity by marker, stop by pid, failure reasons.

Uses short-lived real processes of its own (python sleeping) in a temporary folder; never
touches the running stack.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from loanwatch.stack import services
from loanwatch.stack.services import ServiceSpec


def _spec(tmp_path: Path, code: str, probe_result: bool = False) -> ServiceSpec:
    marker = f"lw-test-{uuid.uuid4().hex}"
    return ServiceSpec(
        name="dummy",
        port=1,
        argv=(sys.executable, "-c", code, marker),
        cwd=tmp_path,
        log_file=tmp_path / "dummy.log",
        pid_file=tmp_path / "dummy.pid",
        probe=lambda: probe_result,
        marker=marker,
        ready_timeout=3.0,
    )


def test_start_identify_and_stop_by_pid_file(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "import time; print('hello', flush=True); time.sleep(60)")
    pid = services.start(spec)
    try:
        assert spec.pid_file.read_text().strip() == str(pid)
        assert services.running_pid(spec) == pid
        deadline = time.monotonic() + 10
        while "hello" not in services.tail(spec.log_file) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        assert services.stop(spec, timeout=10) == pid
    assert services.running_pid(spec) is None
    assert not spec.pid_file.exists()
    assert "hello" in services.tail(spec.log_file)


def test_pid_file_of_another_process_is_not_ours(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "pass")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        spec.pid_file.write_text(f"{other.pid}\n")  # alive, but without our marker
        assert services.running_pid(spec) is None
        assert services.stop(spec) is None  # never signals a process that is not ours
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
    spec.pid_file.write_text("not a pid\n")
    assert services.running_pid(spec) is None


def test_wait_ready_reports_exit_and_log_tail(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "import sys; print('boom: bad config', flush=True); sys.exit(3)")
    pid = services.start(spec)
    reason = services.wait_ready(spec, pid)
    assert reason is not None and "exited" in reason
    assert "boom: bad config" in services.tail(spec.log_file)


def test_wait_ready_times_out_then_succeeds_when_probe_answers(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "pass")
    assert services.wait_ready(spec, None, timeout=0.3) == "not ready after 0.3s"  # no log
    ready = _spec(tmp_path, "pass", probe_result=True)
    assert services.wait_ready(ready, None) is None


def test_wait_ready_gives_a_service_whose_log_grows_more_time(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "pass")
    spec.log_file.parent.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def loading() -> None:  # a broker loading its partitions: log lines, no answer yet
        with spec.log_file.open("a") as fh:
            while not stop.wait(0.1):
                fh.write("loading a partition\n")
                fh.flush()

    writer = threading.Thread(target=loading)
    writer.start()
    began = time.monotonic()
    try:
        reason = services.wait_ready(spec, None, timeout=0.5, quiet=0.4)
    finally:
        stop.set()
        writer.join()
    waited = time.monotonic() - began
    assert reason is not None and "still growing" in reason  # given up at 5 x the timeout
    assert 2.4 <= waited < 5.0
    quiet = services.wait_ready(spec, None, timeout=0.5, quiet=0.4)  # log no longer moves
    assert quiet is not None and "growing" not in quiet


def test_port_open() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert services.port_open(port)
    assert not services.port_open(port)
