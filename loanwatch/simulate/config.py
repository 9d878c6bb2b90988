"""The simulator's settings: one frozen record, validated when it is built.

Everything that shapes a generated portfolio is here, so that the same ``SimulationConfig``
always gives the same event log byte for byte. This module must never read the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


class SimulationConfigError(ValueError):
    """A simulation setting is out of range: fix the named option and run again."""


def _check_share(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise SimulationConfigError(f"{name} must be between 0 and 1, got {value!r}")


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """What to generate: portfolio size, horizon, seed and the rates of the rare events."""

    loans: int = 1_000
    """Number of loans in the portfolio (all of them are opened during the run)."""
    days: int = 90
    """Number of simulated business days, starting at ``start``; one ``clock_tick`` each."""
    seed: int = 1
    """Random seed: the same seed and settings give a byte-identical log."""
    start: date = field(default_factory=lambda: date(2026, 1, 1))
    """The first business date (Asia/Shanghai)."""
    fault_rate: float = 0.005
    """Share of emitted lines that are deliberately bad, duplicated or orphaned."""
    late_rate: float = 0.002
    """Share of activity events that arrive a day or two after they occurred."""
    utc_share: float = 0.15
    """Share of timestamps written in UTC (``Z`` or ``+00:00``) instead of ``+08:00``."""
    migrated_share: float = 0.45
    """Share of loans already on the book at the start (opened on day one, some in arrears)."""
    multi_loan_share: float = 0.25
    """Share of borrowers who hold two to four loans."""
    overpay_rate: float = 0.03
    """Chance that a loan's final payment deliberately overshoots what is owed."""
    reversal_rate: float = 0.01
    """Chance that a regular payment is reversed a few days later."""

    def __post_init__(self) -> None:
        if self.loans < 1:
            raise SimulationConfigError(f"loans must be at least 1, got {self.loans!r}")
        if self.days < 1:
            raise SimulationConfigError(f"days must be at least 1, got {self.days!r}")
        if self.seed < 0:
            raise SimulationConfigError(f"seed must be >= 0, got {self.seed!r}")
        for name in (
            "late_rate",
            "utc_share",
            "migrated_share",
            "multi_loan_share",
            "overpay_rate",
            "reversal_rate",
        ):
            _check_share(name, getattr(self, name))
        if not 0.0 <= self.fault_rate < 0.5:
            raise SimulationConfigError(f"fault_rate must be in [0, 0.5), got {self.fault_rate!r}")
