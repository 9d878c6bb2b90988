"""Install the Debian packages the local stack runs (Redis, Prometheus, Alertmanager, Java, Maven),
and Chromium for the tests that open the HTML reports headless.

Only installs what is missing, with ``apt-get update`` once before the first install. Every
apt call waits up to ten minutes for the dpkg lock, since other people may run apt at the
same moment. It never removes or upgrades anything.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from loanwatch.stack.errors import InstallError

log = logging.getLogger("loanwatch.stack.debian")

SERVICE_PACKAGES: tuple[str, ...] = ("redis-server", "prometheus", "prometheus-alertmanager")
# command on PATH -> package that provides it (toolchain for Kafka; the browser that the tests
# open the HTML reports in, tests/unit/test_report_browser.py)
TOOL_PACKAGES: dict[str, str] = {
    "java": "openjdk-17-jre-headless",
    "mvn": "maven",
    "chromium": "chromium",
}
_APT_OPTS: tuple[str, ...] = ("-o", "DPkg::Lock::Timeout=600", "-o", "Acquire::Retries=3")
_POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
_ENV = {"DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "a"}


def is_installed(package: str) -> bool:
    """True when dpkg reports the package as installed."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.returncode == 0 and out.stdout.strip().endswith("installed")


def missing_packages() -> list[str]:
    """The packages the stack needs that are not installed yet."""
    missing = [p for p in SERVICE_PACKAGES if not is_installed(p)]
    missing += [pkg for cmd, pkg in TOOL_PACKAGES.items() if shutil.which(cmd) is None]
    return missing


def _apt(args: Iterable[str]) -> None:
    cmd = ["apt-get", *_APT_OPTS, *args]
    log.info("running apt", extra={"cmd": " ".join(cmd)})
    proc = subprocess.run(
        cmd, env={**os.environ, **_ENV}, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        out = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise InstallError(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{out}")


@contextmanager
def _no_service_autostart() -> Iterator[None]:
    """Keep the packages' init scripts from starting system-wide daemons during install.

    Debian's redis-server, prometheus and prometheus-alertmanager start themselves on install
    (on our ports, and Alertmanager's cluster port is Kafka's controller port) unless
    policy-rc.d denies it. An existing policy-rc.d is left as it is.
    """
    if _POLICY_RC_D.exists():
        yield
        return
    _POLICY_RC_D.write_text("#!/bin/sh\n# temporary, written by loanwatch stack up\nexit 101\n")
    _POLICY_RC_D.chmod(0o755)
    try:
        yield
    finally:
        _POLICY_RC_D.unlink(missing_ok=True)


def ensure_packages() -> list[str]:
    """Install whatever is missing (apt-get update once, then install); return what was."""
    missing = missing_packages()
    if not missing:
        return []
    if os.geteuid() != 0:
        raise InstallError(
            f"missing Debian packages {missing}; run as root: "
            f"apt-get update && apt-get install -y {' '.join(missing)}"
        )
    _apt(["update", "-q"])
    with _no_service_autostart():
        _apt(["install", "-y", "-q", "--no-install-recommends", *missing])
    log.info("installed packages", extra={"packages": missing})
    return missing
