"""Parse and write short durations (``90s``, ``15m``, ``2h30m``, ``1d``) used in the configs.

Pure: no clock, no I/O.
"""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: object, key: str) -> timedelta:
    """``"2h30m"`` -> timedelta; raises ValueError naming ``key`` when malformed."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return timedelta(seconds=text)
    if not isinstance(text, str) or not text or _PART.sub("", text.strip()) != "":
        raise ValueError(f"{key}: expected a duration like '15m', '2h30m' or '1d', got {text!r}")
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(text.strip()))
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """timedelta -> the shortest ``1d2h3m4s`` form (``0s`` for zero)."""
    seconds = int(delta.total_seconds())
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out) or "0s"
