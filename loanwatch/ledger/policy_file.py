"""Load ``config/policy.yaml`` into a :class:`Policy`, validating every key at start-up.

An unknown key or a bad value raises :class:`PolicyError` naming the key and the value, so an
operator can fix the file; nothing is silently defaulted except keys left out on purpose.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from loanwatch.ledger.money import MoneyError, parse_money
from loanwatch.ledger.policy import ALLOCATION_PARTS, CLASSES, Policy

DEFAULT_POLICY_PATH = Path(__file__).resolve().parents[2] / "config" / "policy.yaml"


class PolicyError(ValueError):
    """The policy file is invalid: fix the key named in the message and restart."""


_MISSING: Any = object()


def _int(
    data: dict[str, Any], key: str, default: int, minimum: int = 0, *, parent: str = ""
) -> int:
    value = data.pop(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise PolicyError(
            f"policy key {parent + key!r}: expected an integer >= {minimum}, got {value!r}"
        )
    return value


def _optional_int(data: dict[str, Any], key: str, minimum: int) -> int | None:
    """An integer >= ``minimum``, or None when the key is absent or null (no limit)."""
    if data.get(key) is None:
        data.pop(key, None)
        return None
    return _int(data, key, minimum, minimum)


def _ladder(
    data: dict[str, Any], key: str, default: tuple[tuple[str, int], ...]
) -> tuple[tuple[str, int], ...]:
    raw = data.pop(key, _MISSING)
    if raw is _MISSING:
        return default
    if not isinstance(raw, dict) or not raw:
        raise PolicyError(f"policy key {key!r}: expected a mapping name -> lowest DPD, got {raw!r}")
    ladder = tuple((str(name), lowest) for name, lowest in raw.items())
    lows = [lowest for _, lowest in ladder]
    if any(not isinstance(x, int) or isinstance(x, bool) for x in lows):
        raise PolicyError(f"policy key {key!r}: every lowest DPD must be an integer, got {raw!r}")
    if lows[0] != 0 or lows != sorted(set(lows)):
        raise PolicyError(
            f"policy key {key!r}: DPD bounds must start at 0 and increase, got {raw!r}"
        )
    return ladder


def policy_from_mapping(data: dict[str, Any]) -> Policy:
    """Build a policy from a parsed YAML mapping (missing keys take the SPEC defaults)."""
    data = dict(data)
    base = Policy()
    tz = str(data.pop("business_timezone", base.business_timezone))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PolicyError(f"policy key 'business_timezone': unknown timezone {tz!r}") from exc
    clock = data.pop("clock", base.clock)
    if clock not in ("event", "wall"):
        raise PolicyError(f"policy key 'clock': expected 'event' or 'wall', got {clock!r}")
    raw_tolerance = data.pop("tolerance", "0.00")
    try:
        tolerance = parse_money(str(raw_tolerance))
    except MoneyError as exc:
        raise PolicyError(f"policy key 'tolerance': {exc}") from exc
    if tolerance < 0:
        raise PolicyError(f"policy key 'tolerance': expected an amount >= 0, got {raw_tolerance!r}")
    raw_order = data.pop("allocation_order", list(base.allocation_order))
    if not isinstance(raw_order, list) or sorted(map(str, raw_order)) != sorted(ALLOCATION_PARTS):
        raise PolicyError(
            "policy key 'allocation_order': expected fee, interest, principal in some order, "
            f"got {raw_order!r}"
        )
    order = tuple(raw_order)
    buckets = _ladder(data, "buckets", base.buckets)
    classes = _ladder(data, "class_dpd_floors", base.class_dpd_floors)
    if tuple(name for name, _ in classes) != CLASSES:
        raise PolicyError(
            f"policy key 'class_dpd_floors': expected the classes {list(CLASSES)} in order, "
            f"got {[name for name, _ in classes]}"
        )
    raw_share = data.pop("cross_default_share", base.cross_default_share)
    try:
        share = Decimal(str(raw_share))
    except InvalidOperation as exc:
        raise PolicyError(
            f"policy key 'cross_default_share': expected a decimal, got {raw_share!r}"
        ) from exc
    if not share.is_finite():
        raise PolicyError(
            f"policy key 'cross_default_share': expected a decimal, got {raw_share!r}"
        )
    if not Decimal(0) <= share < Decimal(1):
        raise PolicyError(f"policy key 'cross_default_share': expected 0 <= share < 1, got {share}")
    ifrs9 = data.pop("ifrs9", {})
    if not isinstance(ifrs9, dict):
        raise PolicyError(f"policy key 'ifrs9': expected a mapping, got {ifrs9!r}")
    ifrs9 = dict(ifrs9)  # popped below: never the caller's mapping
    policy = Policy(
        business_timezone=tz,
        clock=clock,
        tolerance_cents=int(tolerance * 100),
        allocation_order=order,
        buckets=buckets,
        class_dpd_floors=classes,
        restructure_observation_days=_int(data, "restructure_observation_days", 365, 1),
        npl_cure_days=_int(data, "npl_cure_days", 180, 1),
        watchlist_days=_int(data, "watchlist_days", 90, 0),
        cross_default_share=share,
        orphan_ttl_days=_int(data, "orphan_ttl_days", 7, 0),
        max_clock_jump_days=_optional_int(data, "max_clock_jump_days", 1),
        stage2_dpd_over=_int(ifrs9, "stage2_dpd_over", 30, parent="ifrs9."),
        stage3_dpd_over=_int(ifrs9, "stage3_dpd_over", 90, parent="ifrs9."),
    )
    if ifrs9:
        raise PolicyError(f"policy key 'ifrs9': unknown keys {sorted(ifrs9)}")
    if data:
        raise PolicyError(f"policy: unknown keys {sorted(data)}")
    return policy


def load_policy(path: Path | None = None) -> Policy:
    """Read and validate a policy file (``config/policy.yaml`` by default)."""
    target = path or DEFAULT_POLICY_PATH
    if target.is_dir():
        target = target / "policy.yaml"
    try:
        data = yaml.safe_load(target.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {target}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {target} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"policy file {target}: expected a mapping at the top level")
    return policy_from_mapping(data)
