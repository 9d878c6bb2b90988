"""Load ``strategies.yaml`` into :class:`Strategies`, validating every key at start-up.

Like the policy file: an unknown key or a bad value raises :class:`StrategiesError` naming the
key path and the value (``segments[2].when.dpd_min: expected an integer >= 0, got -1``), so an
operator can fix the file. Names of buckets and classes are checked against the policy. It
never reads the environment and never guesses: a path or segment named but not defined fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from loanwatch.ledger.money import MoneyError, parse_cents
from loanwatch.ledger.policy import CLASSES, Policy
from loanwatch.treatment.model import (
    ACTIONS,
    CONTACT_STATES,
    Arm,
    Condition,
    Experiment,
    Segment,
    Step,
    Strategies,
)

STRATEGIES_FILE = "strategies.yaml"
PRIORITIES = ("P1", "P2", "P3", "P4")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


class StrategiesError(ValueError):
    """The strategies file is invalid: fix the key named in the message and restart."""


def _fail(key: str, message: str, value: Any) -> StrategiesError:
    return StrategiesError(f"strategies key {key!r}: {message}, got {value!r}")


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(key, "expected a mapping", value)
    return dict(value)


def _list(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(key, "expected a list", value)
    return value


def _int(value: Any, key: str, minimum: int = 0, maximum: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _fail(key, f"expected an integer >= {minimum}", value)
    if maximum is not None and value > maximum:
        raise _fail(key, f"expected an integer <= {maximum}", value)
    return value


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, "expected true or false", value)
    return value


def _name(value: Any, key: str) -> str:
    """A config name that may become a metric label: short, lower-case, no spaces."""
    if not isinstance(value, str) or not value or len(value) > 40 or set(value) - _NAME_CHARS:
        raise _fail(key, "expected a name of up to 40 characters a-z 0-9 - _", value)
    return value


def _names(value: Any, key: str, allowed: tuple[str, ...] | None) -> frozenset[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(x, str) for x in items):
        raise _fail(key, "expected a name or a non-empty list of names", value)
    if allowed is not None:
        unknown = [x for x in items if x not in allowed]
        if unknown:
            raise _fail(key, f"expected some of {list(allowed)}", unknown)
    return frozenset(items)


def _cents(value: Any, key: str) -> int:
    if not isinstance(value, str):
        raise _fail(key, 'expected an amount as a string ("50000.00")', value)
    try:
        return parse_cents(value)
    except MoneyError as exc:
        raise _fail(key, str(exc), value) from exc


def condition_from(raw: Any, key: str, policy: Policy) -> Condition:
    data = _mapping(raw if raw is not None else {}, key)
    buckets = tuple(name for name, _ in policy.buckets)
    found: dict[str, Any] = {}
    for name in ("dpd_min", "dpd_max", "broken_promises_min"):
        if name in data:
            found[name] = _int(data.pop(name), f"{key}.{name}", 0)
    for name in ("early_warning_min", "early_warning_max"):
        if name in data:
            found[name] = _int(data.pop(name), f"{key}.{name}", 0, 1000)
    if "bucket" in data:
        found["buckets"] = _names(data.pop("bucket"), f"{key}.bucket", buckets)
    if "class" in data:
        found["classes"] = _names(data.pop("class"), f"{key}.class", CLASSES)
    if "product" in data:
        found["products"] = _names(data.pop("product"), f"{key}.product", None)
    if "contact" in data:
        found["contact"] = _names(data.pop("contact"), f"{key}.contact", CONTACT_STATES)
    for name in ("exposure_min", "exposure_max"):
        if name in data:
            found[f"{name}_cents"] = _cents(data.pop(name), f"{key}.{name}")
    for name in ("cross_default", "restructured"):
        if name in data:
            found[name] = _bool(data.pop(name), f"{key}.{name}")
    if data:
        raise _fail(key, "unknown keys", sorted(data))
    cond = Condition(**found)
    for low, high, what in (
        (cond.dpd_min, cond.dpd_max, "dpd_min > dpd_max"),
        (cond.exposure_min_cents, cond.exposure_max_cents, "exposure_min > exposure_max"),
        (cond.early_warning_min, cond.early_warning_max, "early_warning_min > early_warning_max"),
    ):
        if low is not None and high is not None and low > high:
            raise _fail(key, f"can never hold ({what})", raw)
    return cond


def _path(raw: Any, key: str) -> tuple[Step, ...]:
    steps: list[Step] = []
    for i, item in enumerate(_list(raw, key)):
        where = f"{key}[{i}]"
        data = _mapping(item, where)
        day = _int(data.pop("day", None), f"{where}.day", 0)
        action = data.pop("action", None)
        if action not in ACTIONS:
            raise _fail(f"{where}.action", f"expected one of {list(ACTIONS)}", action)
        priority = data.pop("priority", None)
        if priority is not None and (action != "call_priority" or priority not in PRIORITIES):
            allowed = f"only for call_priority, one of {list(PRIORITIES)}"
            raise _fail(f"{where}.priority", allowed, priority)
        if data:
            raise _fail(where, "unknown keys", sorted(data))
        if steps and day < steps[-1].day:
            raise _fail(f"{where}.day", f"days must not decrease (previous {steps[-1].day})", day)
        steps.append(Step(day, action, priority))
    return tuple(steps)


def _experiment(raw: Any, key: str, segments: tuple[str, ...], paths: set[str]) -> Experiment:
    data = _mapping(raw, key)
    experiment_id = _name(data.pop("id", None), f"{key}.id")
    segment = data.pop("segment", None)
    if segment not in segments:
        raise _fail(f"{key}.segment", f"expected one of the segments {list(segments)}", segment)
    arms_raw = _mapping(data.pop("arms", None), f"{key}.arms")
    if len(arms_raw) < 2:
        raise _fail(f"{key}.arms", "expected at least two arms", arms_raw)
    arms: list[Arm] = []
    for arm_name, arm_raw in arms_raw.items():
        where = f"{key}.arms.{arm_name}"
        name = _name(arm_name, where)
        arm = _mapping(arm_raw, where)
        share = _int(arm.pop("share", None), f"{where}.share", 0, 100)
        path = arm.pop("path", None)
        if path is not None and path not in paths:
            raise _fail(f"{where}.path", f"expected one of the paths {sorted(paths)}", path)
        if arm:
            raise _fail(where, "unknown keys", sorted(arm))
        arms.append(Arm(name, share, path))
    total = sum(a.share for a in arms)
    if total != 100:
        raise _fail(f"{key}.arms", "expected shares summing to 100", total)
    if data:
        raise _fail(key, "unknown keys", sorted(data))
    return Experiment(experiment_id, str(segment), tuple(arms))


def strategies_from_mapping(data: dict[str, Any], policy: Policy | None = None) -> Strategies:
    """Build strategies from a parsed YAML mapping; ``policy`` names the buckets."""
    policy = policy or Policy()
    data = dict(data)
    unreachable_after = _int(data.pop("unreachable_after", 3), "unreachable_after", 1)
    paths_raw = _mapping(data.pop("paths", {}) or {}, "paths")
    paths = {_name(k, f"paths.{k}"): _path(v, f"paths.{k}") for k, v in paths_raw.items()}
    segments_raw = _list(data.pop("segments", None), "segments")
    if not segments_raw:
        raise _fail("segments", "expected at least one segment", segments_raw)
    segments: list[Segment] = []
    for i, item in enumerate(segments_raw):
        key = f"segments[{i}]"
        seg = _mapping(item, key)
        name = _name(seg.pop("name", None), f"{key}.name")
        if name in {s.name for s in segments}:
            raise _fail(f"{key}.name", "segment names must be unique", name)
        when = condition_from(seg.pop("when", None), f"{key}.when", policy)
        path = seg.pop("path", None)
        if path is not None and path not in paths:
            raise _fail(f"{key}.path", f"expected one of the paths {sorted(paths)}", path)
        if seg:
            raise _fail(key, "unknown keys", sorted(seg))
        segments.append(Segment(name, when, path))
    if segments[-1].when != Condition():
        last = f"segments[{len(segments) - 1}].when"
        raise _fail(
            last, "the last segment must have no condition (every delinquent loan in one)",
            segments_raw[-1].get("when"),
        )  # fmt: skip
    names = tuple(s.name for s in segments)
    experiments: list[Experiment] = []
    for i, item in enumerate(_list(data.pop("experiments", []) or [], "experiments")):
        experiment = _experiment(item, f"experiments[{i}]", names, set(paths))
        if experiment.experiment_id in {e.experiment_id for e in experiments}:
            raise _fail(f"experiments[{i}].id", "experiment ids must be unique", experiment)
        if experiment.segment in {e.segment for e in experiments}:
            raise _fail(
                f"experiments[{i}].segment", "one experiment per segment", experiment.segment
            )
        experiments.append(experiment)
    if data:
        raise StrategiesError(f"strategies: unknown keys {sorted(data)}")
    return Strategies(tuple(segments), paths, tuple(experiments), unreachable_after)


def load_strategies(path: Path, policy: Policy | None = None) -> Strategies:
    """Read and validate a strategies file (or ``DIR/strategies.yaml`` for a folder)."""
    target = path / STRATEGIES_FILE if path.is_dir() else path
    try:
        data = yaml.safe_load(target.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StrategiesError(f"cannot read strategies file {target}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise StrategiesError(f"strategies file {target} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise StrategiesError(f"strategies file {target}: expected a mapping at the top level")
    return strategies_from_mapping(data, policy)


def load_optional(config_dir: Path, policy: Policy | None = None) -> Strategies | None:
    """``DIR/strategies.yaml`` when the folder has one, else None (no segments, no alerts)."""
    target = config_dir / STRATEGIES_FILE
    return load_strategies(target, policy) if target.is_file() else None
