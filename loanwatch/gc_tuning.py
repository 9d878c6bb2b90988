"""Garbage-collector settings for the long-running, allocation-heavy commands.

The engine allocates many short-lived objects per event while a worker or a replay holds many
long-lived loan states: a higher first threshold makes young collections rarer, and freezing
what start-up built keeps it out of every later scan (docs/benchmarks.md has the figures).
It must never disable the collector: reference cycles are still collected.
"""

from __future__ import annotations

import gc
from typing import Final

THRESHOLDS: Final = (100_000, 50, 100)


def tune_gc(*, freeze: bool = True) -> None:
    """Apply :data:`THRESHOLDS`; with ``freeze``, move what exists now to the permanent set."""
    gc.set_threshold(*THRESHOLDS)
    if freeze:
        gc.freeze()
