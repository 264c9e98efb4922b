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
    if res.paired:
        t.add_row(f"NPV vs {res.reference}, paired", *[
            _cell(res.paired[p]["npv"], "{:+,.0f}") for p in res.policies])
    return t


PAIRED_FORMATS: dict[str, str] = {
    "npv": "{:+,.0f}", "pay_rate": "{:+.3f}", "reminders_per_invoice": "{:+.2f}",
    "complaints_per_1000": "{:+.1f}", "agency_per_1000": "{:+.1f}", "write_off_rate": "{:+.3f}",
}


def _interval(stats: dict, fmt: str) -> str:
    mean, lo, hi = stats["mean"], stats["ci_low"], stats["ci_high"]
    if mean is None or mean != mean:
        return "n/a"
    if lo is None or lo != lo or hi - lo <= 0:
        return fmt.format(mean)
    return f"{fmt.format(mean)} [{fmt.format(lo)}, {fmt.format(hi)}]"


def paired_table(res: EvaluationResult) -> Table | None:
    """Per-invoice paired differences to the reference (same invoices, same draws): the mean
    over invoices x seeds and its interval (None without a reference or outcomes)."""
    if not res.paired:
        return None
    cfg = res.config.get("interval", {})
    method = ("paired t" if cfg.get("method", "t") == "t"
              else f"bootstrap, {cfg.get('n_boot')} resamples, seed {cfg.get('seed')}")
    n = len(res.seeds) * res.n_invoices
    t = Table(title=f"difference to {res.reference} per invoice, paired on the same invoices "
                    f"and draws ({n:,} = {len(res.seeds)} seeds x {res.n_invoices} invoices; "
                    f"mean [{cfg.get('level', 0.95):.0%} CI, {method}])")
    t.add_column("KPI", style="bold")
    others = [p for p in res.policies if p != res.reference]
    for p in others:
        t.add_column(p, justify="right")
    titles = {k: title for k, title, _ in HEADLINE}
    titles.update({"pay_rate": "pay rate", "write_off_rate": "write-off rate"})
    for kpi, fmt in PAIRED_FORMATS.items():
        t.add_row(titles.get(kpi, kpi), *[_interval(res.paired[p][kpi], fmt) for p in others])
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
