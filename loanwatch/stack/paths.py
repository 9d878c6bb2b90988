"""Where the local stack keeps things: configs in git, state under ``run/``, jars in a cache.

This module only computes paths (and reads the two environment variables that move them);
it never creates, starts or deletes anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# loanwatch/stack/paths.py -> the repository root (the package is installed editable).
_DEFAULT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class StackPaths:
    """Every file and folder the stack reads or writes, derived from three roots."""

    root: Path
    cache: Path

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def lock_file(self) -> Path:
        return self.run / "stack.lock"

    def service_dir(self, name: str) -> Path:
        """``run/<name>/``: data, pid file, generated config and log of one service."""
        return self.run / name

    def pid_file(self, name: str) -> Path:
        return self.service_dir(name) / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.service_dir(name) / f"{name}.log"

    @property
    def prometheus_targets(self) -> Path:
        """file_sd folder scraped by the ``loanwatch`` job: drop ``*.json`` files here."""
        return self.service_dir("prometheus") / "targets"

    @property
    def prometheus_router_targets(self) -> Path:
        """file_sd folder scraped by the ``loanwatch-router`` job (``routes serve`` writes here).

        Inside ``prometheus_targets`` (so one mount carries both) but not matched by its
        ``targets/*.json``: a router is not a worker (``LoanwatchWorkerDown``, "Workers up").
        """
        return self.prometheus_targets / "router"

    @property
    def audit_key(self) -> Path:
        """The demo Ed25519 key that signs the audit checkpoints (``<file>.pub`` beside it)."""
        return self.run / "audit" / "signing-key.pem"

    @property
    def kafka_pom(self) -> Path:
        return self.config / "kafka" / "pom.xml"


def default_paths() -> StackPaths:
    """Paths for this checkout.

    ``LOANWATCH_ROOT`` overrides the repository root (default: the checkout this package is
    installed from); ``XDG_CACHE_HOME`` moves the jar cache (default ``~/.cache``).
    """
    root = Path(os.environ.get("LOANWATCH_ROOT") or _DEFAULT_ROOT).resolve()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return StackPaths(root=root, cache=Path(xdg) / "loanwatch")
