"""The business clock's one rule shared by the engine and our producers (SPEC §2).

Which events move the clock C, and which the clock-jump guard refuses: a producer that plans
per-partition sync ticks must agree with the engine exactly, or a mistyped year would age every
partition through a tick the engine itself would never have accepted.
"""

from __future__ import annotations

from datetime import date


def jumps_too_far(clock: date | None, day: date, max_jump_days: int | None) -> bool:
    """True when an event (not a ``clock_tick``) dated ``day`` is refused as ``future_date``.

    Never for the first event (``clock`` None) nor without a limit (``max_jump_days`` None).
    """
    if clock is None or max_jump_days is None:
        return False
    return (day - clock).days > max_jump_days
