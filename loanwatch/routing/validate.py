"""Small helpers that read parsed YAML mappings and fail with the key path and bad value.

Pure: they receive already-parsed data; reading files is done by :mod:`loanwatch.routing.config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from typing import Any

from loanwatch.routing.errors import ConfigError


def mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {value!r}")
    return value


def seq(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{path}: expected a list, got {value!r}")
    return value


def only_keys(data: Mapping[str, Any], allowed: set[str], path: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (allowed: {sorted(allowed)})")


def string(data: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}.{key}: expected a non-empty string, got {value!r}")
    return value


def boolean(data: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{path}.{key}: expected true or false, got {value!r}")
    return value


def integer(data: Mapping[str, Any], key: str, path: str, minimum: int = 0) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{path}.{key}: expected an integer >= {minimum}, got {value!r}")
    return value


def clock_time(value: object, path: str) -> time:
    """``"08:00"`` -> time(8, 0); YAML may also hand us minutes since midnight for 08:00."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)  # YAML 1.1 reads 08:00 as sexagesimal 480
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f"{path}: expected a local time 'HH:MM', got {value!r}")
