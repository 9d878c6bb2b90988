"""The model report's figures over held-out logs, and their text form.

Per log: rows, bad rate, AUC, KS, Brier, PSI against the training distribution and between
the log's two vintages (installments due in its first and second half). Pooled: the same plus
calibration, lift and capture by decile, the alert coverage at each threshold, the ROC / KS
curve, and the score's distribution over training's deciles for training and each vintage
(what the PSI compares; the HTML page draws them, :mod:`.html`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from loanwatch.early_warning import evaluate as ev
from loanwatch.early_warning.rows import Row
from loanwatch.early_warning.scorecard import Scorecard


@dataclass(frozen=True, slots=True)
class LogFigures:
    name: str
    rows: int
    bad_rate: float
    auc: float
    ks: float
    brier: float
    psi_training: float
    psi_vintages: float


@dataclass(frozen=True, slots=True)
class Coverage:
    threshold: float
    alerts: int
    alerts_paid: int  # alerts whose installment was paid within 30 days
    bads: int
    bads_alerted: int
    overdue: int  # installments that went overdue (unpaid the day after the due date)
    overdue_alerted: int


@dataclass(frozen=True, slots=True)
class Report:
    model_version: str
    logs: tuple[LogFigures, ...]
    pooled: LogFigures
    deciles: tuple[ev.Decile, ...]
    calibration_error: float
    coverage: tuple[Coverage, ...]
    curve: tuple[ev.CurvePoint, ...] = ()  # pooled ROC / KS curve
    edges: tuple[float, ...] = ()  # training's probability deciles (the PSI bins)
    vintage_split: date | None = None  # pooled: first due date of the second vintage
    vintage_shares: tuple[tuple[float, ...], ...] = ()  # training, first, second vintage by bin


def _edges(card: Scorecard) -> list[float]:
    return list(card.meta.get("training", {}).get("probability_deciles") or [])


def _vintages(
    rows: Sequence[Row], probs: Sequence[float]
) -> tuple[date | None, list[float], list[float]]:
    """The median due date and the probabilities of the installments due before / from it."""
    dues = sorted(r.due_date for r in rows)
    middle = dues[len(dues) // 2] if dues else None
    early = [p for p, r in zip(probs, rows, strict=True) if middle and r.due_date < middle]
    late = [p for p, r in zip(probs, rows, strict=True) if middle and r.due_date >= middle]
    return middle, early, late


def _figures(name: str, card: Scorecard, rows: Sequence[Row], ref: Sequence[float]) -> LogFigures:
    probs = [card.score(r.values).probability for r in rows]
    targets = [r.target for r in rows]
    edges = _edges(card)
    _, early, late = _vintages(rows, probs)
    return LogFigures(
        name=name,
        rows=len(rows),
        bad_rate=sum(targets) / len(rows),
        auc=ev.auc(probs, targets),
        ks=ev.ks(probs, targets),
        brier=ev.brier(probs, targets),
        psi_training=ev.psi(ref, probs, edges) if edges and ref else float("nan"),
        psi_vintages=ev.psi(early, late, edges) if edges and early and late else float("nan"),
    )


def _reference(card: Scorecard) -> list[float]:
    """Training's distribution over its own decile edges: a tenth in each bin."""
    edges = _edges(card)
    # one point inside each training decile stands for that tenth of the rows
    points = [edges[0] - 1e-9] + [e + 1e-9 for e in edges] if edges else []
    return points


def evaluate_logs(
    card: Scorecard, names: Sequence[str], parts: Sequence[list[Row]], thresholds: Sequence[float]
) -> Report:
    ref = _reference(card)
    logs = tuple(_figures(n, card, rows, ref) for n, rows in zip(names, parts, strict=True) if rows)
    rows = [r for part in parts for r in part]
    if not rows:
        raise ValueError("no labelled rows in the logs (are they longer than 30 days?)")
    pooled = _figures("pooled", card, rows, ref)
    probs = [card.score(r.values).probability for r in rows]
    targets = [r.target for r in rows]
    overdue = [r.overdue for r in rows]
    deciles = tuple(ev.deciles(probs, targets))
    coverage = []
    for t in sorted(thresholds):
        alerts, paid, bads, hit = ev.coverage(probs, targets, t)
        _, _, went_overdue, overdue_hit = ev.coverage(probs, overdue, t)
        coverage.append(Coverage(t, alerts, paid, bads, hit, went_overdue, overdue_hit))
    edges = _edges(card)
    middle, early, late = _vintages(rows, probs)
    shares = (
        tuple(tuple(ev.shares(v, edges)) for v in (ref, early, late)) if edges and early and late
        else ()
    )  # fmt: skip
    return Report(card.version, logs, pooled, deciles, ev.calibration_error(deciles),
                  tuple(coverage), tuple(ev.curve(probs, targets)), tuple(edges), middle,
                  shares)  # fmt: skip


def render_text(report: Report) -> str:
    lines = [f"model {report.model_version}"]
    lines.append("log                      rows  bad%    AUC     KS  Brier  PSI(train) PSI(vint)")
    for f in (*report.logs, report.pooled):
        lines.append(
            f"{f.name[:22]:<22} {f.rows:>6} {100 * f.bad_rate:5.1f}  {f.auc:.3f}  {f.ks:.3f}"
            f"  {f.brier:.3f}  {f.psi_training:9.3f}  {f.psi_vintages:8.3f}"
        )
    lines.append("decile  rows  predicted  observed   lift  capture")
    for i, d in enumerate(report.deciles, 1):
        lines.append(
            f"{i:>6} {d.n:>5}  {d.mean_probability:9.3f}  {d.bad_rate:8.3f}  {d.lift:5.2f}"
            f"  {d.capture:7.3f}"
        )
    lines.append(f"calibration error (mean |predicted - observed| by decile): "
                 f"{report.calibration_error:.3f}")  # fmt: skip
    lines.append("threshold  alerts  paid%  bads alerted%  overdue alerted%")
    for c in report.coverage:
        paid = 100 * c.alerts_paid / c.alerts if c.alerts else 0.0
        hit = 100 * c.bads_alerted / c.bads if c.bads else 0.0
        late = 100 * c.overdue_alerted / c.overdue if c.overdue else 0.0
        lines.append(f"{c.threshold:9.2f}  {c.alerts:6}  {paid:5.1f}  {hit:13.1f}  {late:16.1f}")
    top = report.deciles[0].lift if report.deciles else 0.0
    lines.append(f"top-decile lift {top:.2f}")
    lines.append(f"AUC {report.pooled.auc:.3f}")
    lines.append(f"KS {report.pooled.ks:.3f}")
    lines.append(f"Brier {report.pooled.brier:.3f}")
    return "\n".join(lines)
