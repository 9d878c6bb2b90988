"""The model report as one self-contained HTML page: figures, tables and inline SVG charts.

Written by ``loanwatch model report --out report.html`` from a :class:`~.report.Report`:
headline figures against the targets of docs/early-warning.md, the per-book table, ROC and KS
curves, calibration, lift and capture by decile, stability (PSI against training and between
vintages, with the distributions it compares) and the threshold table (pre-due alerts against
the installments that went overdue and those that were paid). Charts, tables and style are
:mod:`loanwatch.report.svg`'s, the portfolio report's: no script, prints to PDF.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from loanwatch.early_warning.report import Coverage, LogFigures, Report
from loanwatch.report import svg
from loanwatch.report.svg import PALETTE, Axes, Series

#: The targets of issue 17 on held-out books (docs/early-warning.md).
AUC_TARGET, LIFT_TARGET, CALIBRATION_TARGET = 0.80, 3.0, 0.03
SHARE_TICKS = [(k / 4, f"{k * 25} %") for k in range(5)]


def _f(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _pct(value: float) -> str:
    return f"{value * 100:.0f} %"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "n/a"


def _finite(value: float) -> float:
    return 0.0 if math.isnan(value) else value


def _kpi(name: str, value: str, target: str = "", met: bool | None = None) -> str:
    mark = "" if met is None else (" ✓" if met else " ✗")
    hint = f" (target {target}{mark})" if target else ""
    return f'<span class="kpi">{svg.esc(name)}{svg.esc(hint)}<b>{svg.esc(value)}</b></span>'


def _logs_table(logs: Sequence[LogFigures]) -> str:
    head = ["book", "rows", "bad %", "AUC", "KS", "Brier", "PSI vs training", "PSI vintages"]
    body = [
        [f.name, f"{f.rows:,}", f"{100 * f.bad_rate:.1f}", _f(f.auc), _f(f.ks), _f(f.brier),
         _f(f.psi_training), _f(f.psi_vintages)]
        for f in logs
    ]  # fmt: skip
    return svg.table(head, body)


def _discrimination(r: Report) -> str:
    roc = Series("ROC", [(c.goods, c.bads) for c in r.curve], PALETTE[0], dots=False)
    roc_chart = svg.plot(
        f"ROC curve (AUC {_f(r.pooled.auc)})",
        [roc],
        Axes(1.0, 1.0, SHARE_TICKS, _pct, "share of goods alerted (false positive rate)",
             "share of bads alerted"),
        diagonal=True,
    )  # fmt: skip
    gap = max(r.curve, key=lambda c: c.bads - c.goods, default=None)
    bads = Series("bads", [(c.population, c.bads) for c in r.curve], PALETTE[3], dots=False)
    goods = Series("goods", [(c.population, c.goods) for c in r.curve], PALETTE[2], dots=False)
    where = f" at {_pct(gap.population)} of rows, p ≥ {gap.threshold:.3f}" if gap else ""
    ks_chart = svg.plot(
        f"KS: cumulative shares, riskiest first (KS {_f(r.pooled.ks)}{where})",
        [bads, goods],
        Axes(1.0, 1.0, SHARE_TICKS, _pct, "share of rows, riskiest first", "cumulative share"),
    )
    return f'<div class="pair">{roc_chart}{ks_chart}</div>'


def _deciles(r: Report) -> str:
    labels = [str(i) for i in range(1, len(r.deciles) + 1)]
    predicted = [d.mean_probability for d in r.deciles]
    observed = [d.bad_rate for d in r.deciles]
    top = max([*predicted, *observed, 0.01])
    calibration = svg.columns(
        f"Calibration by decile (error {_f(r.calibration_error)})",
        labels,
        [("predicted", predicted, PALETTE[0]), ("observed", observed, PALETTE[1])],
        Axes(0, svg.nice_max(top), [], _pct, "decile (1 = riskiest tenth)", "bad rate"),
    )
    lifts = [d.lift for d in r.deciles]
    lift = svg.columns(
        "Lift by decile",
        labels,
        [("lift", lifts, PALETTE[4])],
        Axes(
            0, svg.nice_max(max([*lifts, LIFT_TARGET])), [], lambda v: f"{v:.1f}", "decile", "lift"
        ),
        marks=[(1.0, "no model"), (LIFT_TARGET, f"target {LIFT_TARGET:g} (decile 1)")],
    )
    n = len(r.deciles)
    capture = svg.plot(
        "Capture: cumulative share of bads in deciles 1..k",
        [Series("capture", [(0.0, 0.0)] + [((i + 1) / n, d.capture) for i, d in
                                           enumerate(r.deciles)], PALETTE[2])],
        Axes(1.0, 1.0, SHARE_TICKS, _pct, "share of rows, riskiest deciles first",
             "share of bads"),
        diagonal=True,
    )  # fmt: skip
    table = svg.table(
        ["decile", "rows", "predicted", "observed", "lift", "capture"],
        [[str(i), f"{d.n:,}", f"{d.mean_probability:.3f}", f"{d.bad_rate:.3f}",
          f"{d.lift:.2f}", f"{d.capture:.3f}"] for i, d in enumerate(r.deciles, 1)],
    )  # fmt: skip
    return (
        f'<section><h2>Calibration by decile</h2><div class="pair">{calibration}</div>{table}'
        f'</section><section><h2>Lift and capture by decile</h2><div class="pair">{lift}'
        f"{capture}</div></section>"
    )


def _stability(r: Report) -> str:
    logs = [*r.logs, r.pooled]
    psi_train = [_finite(f.psi_training) for f in logs]
    psi_vint = [_finite(f.psi_vintages) for f in logs]
    by_log = svg.columns(
        "PSI by book",
        [f.name for f in logs],
        [("against training", psi_train, PALETTE[0]), ("between vintages", psi_vint, PALETTE[1])],
        Axes(
            0, svg.nice_max(max([*psi_train, *psi_vint, 0.3])), [], lambda v: f"{v:.2f}", "", "PSI"
        ),
        marks=[(0.10, "0.10 watch"), (0.25, "0.25 shifted")],
    )
    if len(r.vintage_shares) == 3:
        split = r.vintage_split.isoformat() if r.vintage_split else "?"
        names = ("training", f"due before {split}", f"due from {split}")
        dist = svg.columns(
            "Pooled rows by training's probability decile (what the PSI compares)",
            [str(i) for i in range(1, len(r.edges) + 2)],
            [(n, list(s), c) for n, s, c in zip(names, r.vintage_shares, PALETTE, strict=False)],
            Axes(0, svg.nice_max(max(max(s) for s in r.vintage_shares)), [], _pct,
                 "training decile (1 = lowest probability)", "share of rows"),
        )  # fmt: skip
    else:
        dist = "<p>no training deciles in the model, or a vintage without rows</p>"
    return f'<section><h2>Stability</h2><div class="pair">{by_log}{dist}</div></section>'


def _thresholds(coverage: Sequence[Coverage]) -> str:
    if not coverage:
        return ""
    table = svg.table(
        ["threshold", "pre-due alerts", "alerts to installments paid",
         "30-day misses alerted", "went overdue (DPD ≥ 1) alerted"],
        [[f"{c.threshold:.2f}", f"{c.alerts:,}",
          f"{c.alerts_paid:,} ({_share(c.alerts_paid, c.alerts)})",
          f"{c.bads_alerted:,} of {c.bads:,} ({_share(c.bads_alerted, c.bads)})",
          f"{c.overdue_alerted:,} of {c.overdue:,} ({_share(c.overdue_alerted, c.overdue)})"]
         for c in coverage],
    )  # fmt: skip

    def ratio(part: int, whole: int) -> float:
        return part / whole if whole else 0.0

    chart = svg.columns(
        "Pre-due alerts by threshold",
        [f"{c.threshold:.2f}" for c in coverage],
        [
            ("went overdue: alerted", [ratio(c.overdue_alerted, c.overdue) for c in coverage],
             PALETTE[3]),
            ("30-day misses: alerted", [ratio(c.bads_alerted, c.bads) for c in coverage],
             PALETTE[4]),
            ("alerts to installments paid", [ratio(c.alerts_paid, c.alerts) for c in coverage],
             PALETTE[2]),
        ],
        Axes(0, 1.0, [], _pct, "alert threshold (probability)", "share"),
    )  # fmt: skip
    return (
        "<section><h2>Choosing the threshold</h2><p>Of the held-out installments: how many of "
        "those that went overdue, or were still unpaid 30 days after their due date, had a "
        "pre-due alert, and how many alerts went to installments that were paid.</p>"
        f"{chart}{table}</section>"
    )


def render_html(r: Report) -> str:
    p = r.pooled
    top = r.deciles[0].lift if r.deciles else 0.0
    books = ", ".join(f.name for f in r.logs)
    body = f"""<h1>Model report: {svg.esc(r.model_version)}</h1>
<p class="prov">Scored with the pure scorecard on {p.rows:,} labelled installments of {len(r.logs)}
held-out book(s): {svg.esc(books)}. Target: the installment still unpaid 30 days after its due
date (docs/early-warning.md).</p>
<section><h2>Key figures (pooled)</h2>
{_kpi("AUC", _f(p.auc), f"≥ {AUC_TARGET:.2f}", p.auc >= AUC_TARGET)}
{_kpi("KS", _f(p.ks))}
{_kpi("Brier", _f(p.brier))}
{_kpi("top-decile lift", f"{top:.2f}", f"≥ {LIFT_TARGET:g}", top >= LIFT_TARGET)}
{
        _kpi(
            "calibration error",
            _f(r.calibration_error),
            f"≤ {CALIBRATION_TARGET}",
            r.calibration_error <= CALIBRATION_TARGET,
        )
    }
{_kpi("bad rate", f"{100 * p.bad_rate:.1f} %")}
{_logs_table([*r.logs, p])}
</section>
<section><h2>Discrimination</h2>
{_discrimination(r)}
</section>
{_deciles(r)}
{_stability(r)}
{_thresholds(r.coverage)}"""
    return svg.page(f"loanwatch model report {r.model_version}", body)
