"""The closed-loop comparison: each strategy runs the responding simulator over several seeds.

``loanwatch backtest --closed-loop --seeds N --policy A --policy B``: for every folder and every
seed 1..N, one :class:`~loanwatch.simulate.closed_loop.ClosedLoop` run (the folder's policy and
strategies, the same book for the same seed) gives the KPIs of :mod:`.outcomes` per group
(``all`` and each experiment arm). Per folder each KPI is reported as its mean over the seeds
with a bootstrap interval; between the first and the last folder, as the mean of the per-seed
paired differences (last minus first) with its interval; inside a folder with an experiment,
each challenger arm minus the first arm, paired by seed likewise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from loanwatch.backtest.bootstrap import Interval, bootstrap_ci
from loanwatch.backtest.outcomes import ALL, KPIS, Outcomes
from loanwatch.backtest.runner import Folder
from loanwatch.simulate.closed_loop import ClosedLoop
from loanwatch.simulate.config import SimulationConfig

Kpis = dict[str, dict[str, float]]  # group -> KPI -> value


@dataclass(frozen=True, slots=True)
class Row:
    group: str
    kpi: str
    values: tuple[Interval | None, ...]  # per folder (None: the folder has no such group)
    difference: Interval | None  # last minus first, paired by seed


@dataclass(frozen=True, slots=True)
class Comparison:
    names: tuple[str, ...]
    seeds: tuple[int, ...]
    runs: tuple[tuple[Kpis, ...], ...]  # per folder, per seed
    rows: tuple[Row, ...]


def run_one(folder: Folder, config: SimulationConfig) -> Kpis:
    if folder.strategies is None:
        raise ValueError(f"{folder.path}: the closed loop needs a strategies.yaml")
    outcomes = Outcomes()
    loop = ClosedLoop(config, folder.strategies, folder.policy, outcomes.observe)
    for _ in loop:
        pass
    return outcomes.finish(loop.engine.states())


def _series(runs: Sequence[Kpis], group: str, kpi: str) -> list[float] | None:
    if not all(group in run for run in runs):
        return None
    return [run[group][kpi] for run in runs]


def _ci(values: list[float] | None) -> Interval | None:
    return bootstrap_ci(values) if values else None


def _paired(a: list[float] | None, b: list[float] | None) -> Interval | None:
    if a is None or b is None:
        return None
    return bootstrap_ci([y - x for x, y in zip(a, b, strict=True)])


def _rows(folders: Sequence[Folder], runs: Sequence[Sequence[Kpis]]) -> list[Row]:
    groups = sorted({g for folder in runs for run in folder for g in run}, key=lambda g: g != ALL)
    rows: list[Row] = []
    for group in groups:
        for kpi in KPIS:
            series = [_series(folder, group, kpi) for folder in runs]
            values = tuple(_ci(s) for s in series)
            rows.append(Row(group, kpi, values, _paired(series[0], series[-1])))
    for folder, folder_runs in zip(folders, runs, strict=True):
        # each challenger arm against the experiment's first arm (the champion), by seed
        experiments = folder.strategies.experiments if folder.strategies else ()
        for exp in experiments:
            first = f"{exp.experiment_id}/{exp.arms[0].name}"
            for arm in exp.arms[1:]:
                other = f"{exp.experiment_id}/{arm.name}"
                label = f"{folder.name}: {other} - {exp.arms[0].name}"
                for kpi in KPIS:
                    diff = _paired(
                        _series(folder_runs, first, kpi), _series(folder_runs, other, kpi)
                    )
                    rows.append(Row(label, kpi, tuple(None for _ in runs), diff))
    return rows


def compare(
    folders: Sequence[Folder], names: Sequence[str], *, seeds: int, loans: int, days: int,
    start: date,
) -> Comparison:  # fmt: skip
    seed_list = tuple(range(1, seeds + 1))
    runs = tuple(
        tuple(
            run_one(f, SimulationConfig(loans=loans, days=days, seed=s, start=start))
            for s in seed_list
        )
        for f in folders
    )
    return Comparison(tuple(names), seed_list, runs, tuple(_rows(folders, runs)))
