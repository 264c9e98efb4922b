"""Rich tables of an :class:`~simulations.evaluation.harness.EvaluationResult`."""

from __future__ import annotations

from rich.table import Table

from simulations.env.layout import SEGMENT_NAMES
from simulations.evaluation.harness import EvaluationResult

HEADLINE: tuple[tuple[str, str, str], ...] = (
    # (kpi, column title, format)
    ("npv", "NPV / invoice", "{:,.0f}"),
    ("npv_share", "NPV share", "{:.3f}"),
    ("mean_days_to_pay", "days to pay", "{:.1f}"),
    ("dso", "DSO", "{:.1f}"),
    ("first_reminder_pay_rate", "paid <=14d of 1st", "{:.3f}"),
    ("reminders_per_invoice", "reminders", "{:.2f}"),
    ("complaints_per_1000", "complaints/1000", "{:.1f}"),
    ("agency_per_1000", "agency/1000", "{:.1f}"),
    ("violations", "violations", "{:.0f}"),
    ("refused_attempts", "refused", "{:.0f}"),
)


def _cell(stats: dict, fmt: str) -> str:
    mean, lo, hi = stats["mean"], stats["ci_low"], stats["ci_high"]
    if mean is None or mean != mean:
        return "n/a"
    text = fmt.format(mean)
    if lo is not None and hi is not None and lo == lo and hi - lo > 0:
        text += " ± " + fmt.format((hi - lo) / 2).strip().lstrip("+")
    return text


def overall_table(res: EvaluationResult) -> Table:
    """KPIs as rows, policies as columns (fits a terminal for a handful of policies)."""
    t = Table(title=f"{res.scenario}: {res.n_invoices} invoices x {len(res.seeds)} seeds "
                    "(mean ± 95 % CI over seeds)")
    t.add_column("KPI", style="bold")
    for p in res.policies:
        t.add_column(p, justify="right")
    for k, title, f in HEADLINE:
        t.add_row(title, *[_cell(res.overall[p][k], f) for p in res.policies])
    if res.difference:
        t.add_row(f"NPV vs {res.reference}", *[
            _cell({"mean": d["npv_minus_reference"], "ci_low": d["ci_low"],
                   "ci_high": d["ci_high"]}, "{:+,.0f}")
            for d in (res.difference[p] for p in res.policies)])
    return t


def segment_table(res: EvaluationResult, kpi: str = "npv") -> Table:
    """One KPI per segment (rows) and policy (columns)."""
    segments = [s for s in SEGMENT_NAMES if any(s in res.by_segment[p] for p in res.policies)]
    t = Table(title=f"{kpi} per segment (mean ± 95 % CI)")
    t.add_column("segment", style="bold")
    for p in res.policies:
        t.add_column(p, justify="right")
    fmt = dict((k, f) for k, _, f in HEADLINE).get(kpi, "{:.3f}")
    for s in segments:
        t.add_row(s, *[_cell(res.by_segment[p][s][kpi], fmt) if s in res.by_segment[p]
                       else "-" for p in res.policies])
    return t


def timing_table(res: EvaluationResult) -> Table:
    t = Table(title="reminder timing: median day after due (share of invoices) channel")
    t.add_column("policy", style="bold")
    t.add_column("segment")
    for k in (1, 2, 3):
        t.add_column(f"reminder {k}")
    for p in res.policies:
        for seg, rows in res.timing[p].items():
            cells = []
            for r in rows:
                if not r["share_sent"]:
                    cells.append("-")
                else:
                    cells.append(f"day {r['median_day']:.0f} ({r['share_sent']:.0%}) "
                                 f"{r['main_channel']}")
            t.add_row(p, seg, *cells)
    return t
