"""Is a process running? Which one is it? (by pid; Linux ``/proc``.)"""

from __future__ import annotations

import os
from pathlib import Path


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (killed, not yet reaped by its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None when it is gone.

    A pid and its start time name one process: once it exits the pid may be reused, by a
    process that started later.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[-1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def pid_namespace() -> str:
    """This process's pid namespace (``pid:[inode]``): pids only mean something inside one."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
