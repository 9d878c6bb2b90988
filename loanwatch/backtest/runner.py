"""Run one history under several configuration folders and collect each one's figures.

A folder is laid out like ``config/``: ``policy.yaml``, optionally ``strategies.yaml``, and
``routing.yaml`` / ``compliance.yaml`` (the shipped ones when the folder has none). Each run
is an ordinary replay (:func:`loanwatch.replay.runner.replay`) with the folder's policy and
strategies; the figures come from :class:`FiguresBuilder`, fed as the replay fires.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any

import orjson

from loanwatch.backtest.figures import Figures, FiguresBuilder
from loanwatch.ledger.alerts import Alert
from loanwatch.ledger.policy import Policy
from loanwatch.ledger.policy_file import load_policy
from loanwatch.replay.runner import replay
from loanwatch.routing.compliance import ComplianceConfig
from loanwatch.routing.config import (
    DEFAULT_COMPLIANCE,
    DEFAULT_ROUTING,
    RoutingSetup,
    load_compliance,
    load_routing,
)
from loanwatch.treatment.config import load_optional
from loanwatch.treatment.model import Strategies


@dataclass(frozen=True, slots=True)
class Folder:
    """One configuration to backtest, loaded and validated."""

    path: Path
    policy: Policy
    strategies: Strategies | None
    routing: RoutingSetup
    compliance: ComplianceConfig

    @property
    def name(self) -> str:
        return self.path.name


def load_folder(path: Path) -> Folder:
    policy = load_policy(path)
    routing = path / "routing.yaml"
    compliance = path / "compliance.yaml"
    return Folder(
        path,
        policy,
        load_optional(path, policy),
        load_routing(routing if routing.is_file() else DEFAULT_ROUTING),
        load_compliance(compliance if compliance.is_file() else DEFAULT_COMPLIANCE),
    )


def builder_for(folder: Folder, send_at: time) -> FiguresBuilder:
    return FiguresBuilder(folder.routing, folder.compliance, folder.policy.tz, send_at)


def run_folder(
    lines: Callable[[], Iterable[bytes]], folder: Folder, *, as_of: date | None, send_at: time
) -> Figures:
    """Replay the history under one folder; the figures as the replay fires."""
    builder = builder_for(folder, send_at)

    def on_alert(alert: Alert) -> None:
        builder.alert(alert.to_json())

    result = replay(
        lines(), folder.policy, as_of=as_of, on_alert=on_alert, strategies=folder.strategies
    )
    treatment = result.treatment
    states: list[Mapping[str, Any]] = [
        v.to_json() | (treatment.describe(v.loan_id) if treatment else {}) for v in result.states
    ]
    return builder.states(states)


def figures_from_files(folder: Folder, alerts: Path, states: Path, send_at: time) -> Figures:
    """The same figures from what ``loanwatch replay`` wrote (alerts and state files)."""
    builder = builder_for(folder, send_at)
    with alerts.open("rb") as handle:
        for line in handle:
            if line.strip():
                builder.alert(orjson.loads(line))
    with states.open("rb") as handle:
        return builder.states(orjson.loads(line) for line in handle if line.strip())
