"""The report as CSV files (one per table), amounts with two decimals, ratios with 10 digits."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

from loanwatch.ledger.money import format_money
from loanwatch.report.figures import Figures


def ratio(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.10f}"


def rows(f: Figures) -> dict[str, list[list[str]]]:
    """File name -> header and rows."""
    summary = [
        ["figure", "value"],
        ["as_of", f.as_of.isoformat()],
        ["active_loans", str(f.loans)],
        ["outstanding_principal", format_money(f.outstanding)],
        ["par30", ratio(f.par30)],
        ["par90", ratio(f.par90)],
        ["npl_ratio", ratio(f.npl)],
        ["cure_rate", ratio(f.day.cure_rate if f.day else None)],
    ]
    classes = [["dimension", "value", "classification", "loans", "outstanding_principal"]]
    for k, c in f.by_class.items():
        classes.append(["all", "", k, str(c.loans), format_money(c.outstanding)])
    for dim, cells in (("product", f.by_product), ("region", f.by_region)):
        for (name, k), c in cells.items():
            classes.append([dim, name, k, str(c.loans), format_money(c.outstanding)])
    stages = [["stage", "loans", "outstanding_principal"]] + [
        [k, str(c.loans), format_money(c.outstanding)] for k, c in f.by_stage.items()
    ]
    migration = [["from_class", "to_class", "loans", "outstanding_principal"]] + [
        [a, b, str(c.loans), format_money(c.outstanding)]
        for (a, b), c in sorted(f.migration.items())
    ]
    flows = [["business_date", "from_bucket", "to_bucket", "loans_at_start", "moved", "roll_rate"]]
    cures = [["business_date", "delinquent_at_start", "cures", "cure_rate"]]
    for d in f.days:
        for (a, b), n in sorted(d.transitions.items()):
            flows.append(
                [
                    d.day.isoformat(),
                    a,
                    b,
                    str(d.at_start.get(a, 0)),
                    str(n),
                    ratio(d.rolls.get((a, b))),
                ]
            )
        delinquent = sum(n for b, n in d.at_start.items() if b != "M0")
        cured = sum(n for (_, b), n in d.transitions.items() if b == "M0")
        cures.append([d.day.isoformat(), str(delinquent), str(cured), ratio(d.cure_rate)])
    return {
        "summary.csv": summary,
        "classification.csv": classes,
        "ifrs9_stages.csv": stages,
        "migration.csv": migration,
        "roll_rates.csv": flows,
        "cure_rates.csv": cures,
    }


def write(f: Figures, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in rows(f).items():
        path = out_dir / name
        with path.open("w", newline="") as fh:
            csv.writer(fh).writerows(table)
        written.append(path)
    return written
