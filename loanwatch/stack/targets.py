"""Prometheus file_sd target files: how a local process asks the stack's Prometheus to scrape it.

A target file is ``[{"targets": ["host:port"], "labels": {...}}]`` in one of the folders the
Prometheus config watches (``StackPaths.prometheus_targets`` for workers, job ``loanwatch``;
``StackPaths.prometheus_router_targets`` for routers, job ``loanwatch-router``). Whoever writes a
file removes it when the process it names stops.

This module only writes and removes the one file it is given (callers log it); it never
starts anything.
"""

from __future__ import annotations

import json
from pathlib import Path

# A bind address that is not one Prometheus can connect to: scrape loopback instead.
_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::", "[::]"})


def scrape_address(host: str, port: int) -> str:
    """``host:port`` as Prometheus should dial it (a wildcard bind becomes 127.0.0.1)."""
    if host in _ANY_ADDRESS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"{host}:{port}"


def write_target(folder: Path, name: str, host_port: str, labels: dict[str, str]) -> Path:
    """Register a Prometheus file_sd target (atomic rename: never read half-written)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([{"targets": [host_port], "labels": labels}]), encoding="utf-8")
    tmp.rename(path)
    return path


def remove_target(path: Path) -> None:
    """Unregister a target written by :func:`write_target` (missing is fine)."""
    path.unlink(missing_ok=True)
