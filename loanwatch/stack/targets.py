"""Prometheus file_sd target files: how a local process asks the stack's Prometheus to scrape it.

A target file is ``[{"targets": ["host:port"], "labels": {...}}]`` in one of the folders the
Prometheus config watches (``StackPaths.prometheus_targets`` for workers, job ``loanwatch``;
``StackPaths.prometheus_router_targets`` for routers, job ``loanwatch-router``). Whoever writes a
file removes it when the process it names stops. A process killed with SIGKILL cannot: the
writer records the scraped process beside the file (``<name>.pid``, which Prometheus ignores:
``<pid> <start time> <pid namespace>``) and :func:`prune_dead` removes the files of processes
that are gone (called before registering a new target and by ``loanwatch stack up``). The start
time tells a reused pid from the process that had it; a file written in another pid namespace
(a container sharing the folder) is left alone, its pid means nothing here.

This module only writes and removes the one file it is given (callers log it); it never
starts anything.
"""

from __future__ import annotations

import json
from pathlib import Path

from loanwatch.stack.pids import pid_namespace, running, start_time

# A bind address that is not one Prometheus can connect to: scrape loopback instead.
_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::", "[::]"})


def scrape_address(host: str, port: int) -> str:
    """``host:port`` as Prometheus should dial it (a wildcard bind becomes 127.0.0.1)."""
    if host in _ANY_ADDRESS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"{host}:{port}"


def write_target(
    folder: Path,
    name: str,
    host_port: str,
    labels: dict[str, str],
    *,
    owner_pid: int | None = None,
) -> Path:
    """Register a Prometheus file_sd target (atomic rename: never read half-written).

    ``owner_pid``: the process the target scrapes; once it is gone :func:`prune_dead` removes
    the file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    if owner_pid is not None:
        owner = f"{owner_pid} {start_time(owner_pid) or '-'} {pid_namespace() or '-'}"
        pid_tmp = path.with_suffix(".pid.tmp")  # a pruner never reads a half-written pid
        pid_tmp.write_text(owner + "\n", encoding="utf-8")
        pid_tmp.rename(path.with_suffix(".pid"))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([{"targets": [host_port], "labels": labels}]), encoding="utf-8")
    tmp.rename(path)
    return path


def remove_target(path: Path) -> None:
    """Unregister a target written by :func:`write_target` (missing is fine)."""
    path.unlink(missing_ok=True)
    path.with_suffix(".pid").unlink(missing_ok=True)


def prune_dead(folder: Path) -> list[Path]:
    """Remove the target files of owner processes that no longer exist; return them."""
    removed: list[Path] = []
    for pid_file in sorted(folder.glob("*.pid")) if folder.is_dir() else []:
        try:
            owner = pid_file.read_text(encoding="utf-8").split()
        except OSError:
            continue  # unreadable: leave it to whoever wrote it
        if _owner_gone(owner):
            target = pid_file.with_suffix(".json")
            remove_target(target)
            removed.append(target)
    return removed


def _owner_gone(owner: list[str]) -> bool:
    """``<pid> [<start time> [<pid namespace>]]`` ('-' = not known) names no running process."""
    try:
        pid = int(owner[0])
        started = int(owner[1]) if len(owner) > 1 and owner[1] != "-" else None
    except (IndexError, ValueError):
        return False  # not ours to judge
    namespace = owner[2] if len(owner) > 2 and owner[2] != "-" else None
    if namespace is not None and namespace != pid_namespace():
        return False  # another pid namespace's pid: cannot tell from here
    if not running(pid):
        return True
    return started is not None and start_time(pid) != started  # the pid was reused
