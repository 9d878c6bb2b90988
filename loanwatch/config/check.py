"""Validate every file of a configuration folder and collect all problems, not just the first.

Each domain file is checked by the loader its owner uses at start-up, so this check and the
process agree: ``policy.yaml`` key by key (every bad key is listed); ``routing.yaml``,
``compliance.yaml`` and ``metrics.yaml`` by their loaders (the first problem of each);
``strategies.yaml``, which is optional, by its loader against the folder's policy; every other
YAML file under the folder (Prometheus, Alertmanager, rules) must at least parse. It must never
write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loanwatch.early_warning.config import EARLY_WARNING_FILE, EarlyWarningError, load_early_warning
from loanwatch.ledger.policy_file import PolicyError, load_policy, policy_from_mapping
from loanwatch.metrics.labels import LabelsError, load_labels
from loanwatch.routing.config import load_compliance, load_routing
from loanwatch.routing.errors import ConfigError
from loanwatch.treatment.config import STRATEGIES_FILE, StrategiesError, load_strategies


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing to fix: the file (relative to the folder) and what is wrong in it."""

    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


def _read_yaml(path: Path) -> tuple[Any, str | None]:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")), None
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
    except yaml.YAMLError as exc:
        return None, f"not valid YAML: {exc}"


def check_policy(path: Path) -> list[str]:
    """Every bad key of ``policy.yaml`` (each key is checked alone, the others at defaults)."""
    doc, error = _read_yaml(path)
    if error:
        return [error]
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        return [f"expected a mapping at the top level, got {type(doc).__name__}"]
    problems = []
    for key, value in doc.items():
        try:
            policy_from_mapping({key: value})
        except PolicyError as exc:
            problems.append(str(exc))
    if not problems:
        try:
            policy_from_mapping(doc)
        except PolicyError as exc:
            problems.append(str(exc))
    return problems


def _first_error(load: Callable[[Path], object]) -> Callable[[Path], list[str]]:
    def check(path: Path) -> list[str]:
        try:
            load(path)
        except (ConfigError, LabelsError) as exc:
            # The loaders prefix the path; the report already names the file.
            return [str(exc).removeprefix(f"{path}: ")]
        return []

    return check


#: The files a loanwatch process reads, by name inside the folder, and how each is checked.
DOMAIN_FILES: dict[str, Callable[[Path], list[str]]] = {
    "policy.yaml": check_policy,
    "routing.yaml": _first_error(load_routing),
    "compliance.yaml": _first_error(load_compliance),
    "metrics.yaml": _first_error(load_labels),
}


def check_strategies(path: Path) -> list[str]:
    """The first problem of ``strategies.yaml``, bucket names checked against the policy."""
    try:
        policy = load_policy(path.parent)
    except PolicyError:
        policy = None  # reported under policy.yaml; check the rest against the SPEC defaults
    try:
        load_strategies(path, policy)
    except StrategiesError as exc:
        return [str(exc)]
    return []


def check_early_warning(path: Path) -> list[str]:
    """The first problem of ``early_warning.yaml`` (its model.json read and checked too)."""
    try:
        load_early_warning(path)
    except EarlyWarningError as exc:
        return [str(exc)]
    return []


#: Files a process reads only when they are there (no segments without ``strategies.yaml``).
OPTIONAL_FILES: dict[str, Callable[[Path], list[str]]] = {
    STRATEGIES_FILE: check_strategies,
    EARLY_WARNING_FILE: check_early_warning,
}


def check_dir(config_dir: Path) -> tuple[list[str], list[Problem]]:
    """(files checked, problems) for ``config_dir``; no problems means every file is valid."""
    if not config_dir.is_dir():
        return [], [Problem(str(config_dir), "not a folder")]
    checked, problems = [], []
    for name, check in DOMAIN_FILES.items():
        path = config_dir / name
        checked.append(name)
        if not path.is_file():
            problems.append(Problem(name, "missing"))
            continue
        problems.extend(Problem(name, message) for message in check(path))
    for name, check in OPTIONAL_FILES.items():
        path = config_dir / name
        if path.is_file():
            checked.append(name)
            problems.extend(Problem(name, message) for message in check(path))
    for path in sorted([*config_dir.rglob("*.yml"), *config_dir.rglob("*.yaml")]):
        name = path.relative_to(config_dir).as_posix()
        if name in DOMAIN_FILES or name in OPTIONAL_FILES:
            continue
        checked.append(name)
        _, error = _read_yaml(path)
        if error:
            problems.append(Problem(name, error))
    return checked, problems
