"""Bring the whole local stack up, report its status, take it down.

``up`` is idempotent: a service whose pid file names a live, ready process is left alone; a
port served by something the stack did not start is reported (and used only if it answers
like the real service). ``down`` stops only processes named by the stack's pid files.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from loanwatch.audit import keys
from loanwatch.stack import debian, kafka, kafka_tls, packaged, services, targets
from loanwatch.stack.errors import PortBusyError, ServiceFailedError
from loanwatch.stack.paths import StackPaths
from loanwatch.stack.services import ServiceSpec

log = logging.getLogger("loanwatch.stack")

State = Literal["up", "down", "external", "starting", "unhealthy"]


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    state: State
    pid: int | None
    port: int
    log_file: Path


@dataclass(frozen=True, slots=True)
class StackInfo:
    """Where the running stack answers (what tests and workers connect to)."""

    kafka_bootstrap: str = kafka.BOOTSTRAP
    kafka_sasl_bootstrap: str = kafka_tls.SASL_BOOTSTRAP  # SASL_SSL, SCRAM-SHA-512
    redis_url: str = f"redis://127.0.0.1:{packaged.REDIS_PORT}/0"
    prometheus_url: str = f"http://127.0.0.1:{packaged.PROMETHEUS_PORT}"
    alertmanager_url: str = f"http://127.0.0.1:{packaged.ALERTMANAGER_PORT}"


def all_specs(paths: StackPaths, retention: str = packaged.DEFAULT_RETENTION) -> list[ServiceSpec]:
    """The four services in start order (no side effects)."""
    return [
        kafka.spec(paths),
        packaged.redis_spec(paths),
        packaged.prometheus_spec(paths, retention),
        packaged.alertmanager_spec(paths),
    ]


@contextmanager
def _locked(paths: StackPaths) -> Iterator[None]:
    """Serialise up/down between concurrent callers sharing this checkout."""
    paths.run.mkdir(parents=True, exist_ok=True)
    with paths.lock_file.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _prepare(paths: StackPaths, name: str) -> None:
    paths.service_dir(name).mkdir(parents=True, exist_ok=True)
    if name == "kafka":
        kafka.prepare(paths)
    elif name == "prometheus":
        packaged.write_prometheus_config(paths)
        (paths.service_dir(name) / "data").mkdir(exist_ok=True)
    else:
        (paths.service_dir(name) / "data").mkdir(exist_ok=True)


def _fail(spec: ServiceSpec, reason: str) -> ServiceFailedError:
    return ServiceFailedError(spec.name, str(spec.log_file), services.tail(spec.log_file), reason)


def up(paths: StackPaths, retention: str = packaged.DEFAULT_RETENTION) -> list[ServiceStatus]:
    """Install what is missing, start what is not running, wait until all four answer."""
    with _locked(paths):
        debian.ensure_packages()
        kafka.ensure_jars(paths)
        specs = all_specs(paths, retention)
        started: dict[str, int] = {}
        result: dict[str, ServiceStatus] = {}
        reloads: list[str] = []
        for spec in specs:
            pid = services.running_pid(spec)
            if pid is not None:
                started[spec.name] = pid  # ours already; still wait until it answers
                reloads.append(spec.name)
                continue
            if services.port_open(spec.port):
                if not services.safe_probe(spec):
                    raise PortBusyError(
                        f"port {spec.port} ({spec.name}) is served by a process this stack "
                        f"did not start and it does not answer like {spec.name}"
                    )
                log.warning(
                    "port served by a process the stack did not start; using it",
                    extra={"service": spec.name, "port": spec.port},
                )
                result[spec.name] = ServiceStatus(
                    spec.name, "external", None, spec.port, spec.log_file
                )
                continue
            _prepare(paths, spec.name)
            started[spec.name] = services.start(spec)
        for spec in specs:
            if spec.name not in started:
                continue
            reason = services.wait_ready(spec, started[spec.name])
            if reason is not None:
                raise _fail(spec, reason)
            log.info("ready", extra={"service": spec.name, "port": spec.port})
            result[spec.name] = ServiceStatus(
                spec.name, "up", started[spec.name], spec.port, spec.log_file
            )
        for name in reloads:
            _reload(paths, name)
        if "kafka" in started:
            kafka.ensure_scram_user(paths)
        prune_targets(paths)
        if keys.generate(paths.audit_key):  # idempotent: the demo key the workers sign with
            log.info("made the demo audit signing key", extra={"path": str(paths.audit_key)})
        return [result[s.name] for s in specs]


def prune_targets(paths: StackPaths) -> list[Path]:
    """Remove the file_sd targets of workers and routers that are gone (killed, never removed)."""
    removed = [
        stale
        for folder in (paths.prometheus_targets, paths.prometheus_router_targets)
        for stale in targets.prune_dead(folder)
    ]
    for stale in removed:
        log.info(
            "stale prometheus target removed (its process is gone)", extra={"file": str(stale)}
        )
    return removed


def _reload(paths: StackPaths, name: str) -> None:
    """Make an already-running server pick up edited configs and rules (best effort)."""
    url = packaged.RELOAD_URLS.get(name)
    if url is None:
        return
    if name == "prometheus":
        packaged.write_prometheus_config(paths)
    try:
        packaged.reload_config(url)
        log.info("reloaded config", extra={"service": name})
    except OSError as exc:
        log.warning(
            "config reload failed; see the log",
            extra={"service": name, "error": str(exc), "log": str(paths.log_file(name))},
        )


def status(paths: StackPaths) -> list[ServiceStatus]:
    """What runs now, probing each service once (never starts anything)."""
    out = []
    for spec in all_specs(paths):
        pid = services.running_pid(spec)
        ready = services.safe_probe(spec) if services.port_open(spec.port) else False
        state: State
        if pid is not None:
            state = "up" if ready else "starting"
        elif ready:
            state = "external"
        else:
            state = "unhealthy" if services.port_open(spec.port) else "down"
        out.append(ServiceStatus(spec.name, state, pid, spec.port, spec.log_file))
    return out


def down(paths: StackPaths) -> list[tuple[str, int | None]]:
    """Stop the services this stack started (reverse order), by their pid files only."""
    with _locked(paths):
        return [(spec.name, services.stop(spec)) for spec in reversed(all_specs(paths))]
