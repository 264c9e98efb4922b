"""KPIs of one policy on one seed's invoices, and their aggregation over seeds.

:class:`EpisodeLog` records what happened to every invoice while the harness steps the
simulator; :func:`kpis` turns it into figures; :func:`aggregate` gives mean and a 95 %
confidence interval over seeds (Student t over the per-seed values).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.contract import Action, is_reminder
from simulations.env.core import StepResult
from simulations.env.layout import SEGMENT_NAMES
from simulations.env.types import InvoiceBatch

N_TIMED_REMINDERS = 3  # the timing table shows the 1st, 2nd and 3rd reminder
FIRST_REMINDER_WINDOW = 14  # days after the first reminder counted as "paid after it"

# KPI name -> what it means (units); the order is the order of tables.
KPI_DOC: dict[str, str] = {
    "npv": "mean money collected per invoice, discounted to the due date, net of action, "
           "complaint and agency costs",
    "npv_share": "total NPV / total invoiced amount",
    "pay_rate": "share of invoices paid (in full) before the horizon",
    "mean_days_to_pay": "mean days from invoice date to payment, paid invoices",
    "mean_days_overdue_at_payment": "mean days from due date to payment, paid invoices",
    "dso": "amount-weighted mean days from invoice date until paid, handed over or written off",
    "first_reminder_pay_rate": "share of reminded invoices paid within 14 days of the first "
                               "reminder",
    "reminders_per_invoice": "reminders (email, letter, phone, final notice) per invoice",
    "complaints_per_1000": "complaints per 1,000 invoices",
    "agency_per_1000": "agency handovers per 1,000 invoices",
    "write_off_rate": "share of invoices unpaid at the horizon",
    "violations": "actions taken that the legal mask did not allow (must be 0)",
    "refused_attempts": "actions a policy asked for that the mask refused (replaced by wait)",
}


@dataclass
class EpisodeLog:
    """Per-invoice record of one policy run over ``n`` invoices."""

    n: int
    npv: np.ndarray = field(init=False)
    paid_day: np.ndarray = field(init=False)  # days after due, -1 if not paid
    end_day: np.ndarray = field(init=False)  # day the episode ended (paid/agency/write-off)
    agency: np.ndarray = field(init=False)
    written_off: np.ndarray = field(init=False)
    n_reminders: np.ndarray = field(init=False)
    complaints: np.ndarray = field(init=False)
    refused: np.ndarray = field(init=False)
    violations: np.ndarray = field(init=False)
    reminder_day: np.ndarray = field(init=False)  # (n, 3) day of the k-th reminder, -1 none
    reminder_channel: np.ndarray = field(init=False)  # (n, 3) Action of the k-th reminder
    vetoes: np.ndarray = field(init=False)  # (n_rules + 1,) how often each rule vetoed

    def __post_init__(self) -> None:
        n = self.n
        self.npv = np.zeros(n)
        self.paid_day = np.full(n, -1, np.int64)
        self.end_day = np.full(n, -1, np.int64)
        self.agency = np.zeros(n, bool)
        self.written_off = np.zeros(n, bool)
        self.n_reminders = np.zeros(n, np.int64)
        self.complaints = np.zeros(n, np.int64)
        self.refused = np.zeros(n, np.int64)
        self.violations = np.zeros(n, np.int64)
        self.reminder_day = np.full((n, N_TIMED_REMINDERS), -1, np.int64)
        self.reminder_channel = np.zeros((n, N_TIMED_REMINDERS), np.int64)

    def record(self, res: StepResult, masks: np.ndarray) -> None:
        """Add one day; ``masks`` are the masks the actions were chosen under."""
        act = res.active
        self.npv += res.reward
        self.refused += res.refused
        lawful = masks[np.arange(self.n), res.executed]
        self.violations += act & ~lawful
        self.complaints += res.outcome.complaint & act
        is_rem = act & is_reminder(res.executed)
        k = self.n_reminders
        timed = np.flatnonzero(is_rem & (k < N_TIMED_REMINDERS))
        self.reminder_day[timed, k[timed]] = res.day[timed]
        self.reminder_channel[timed, k[timed]] = res.executed[timed]
        self.n_reminders += is_rem
        agency = act & (res.executed == Action.AGENCY)
        paid = act & res.outcome.paid & ~agency
        self.agency |= agency
        self.paid_day[paid] = res.day[paid]
        self.written_off |= res.written_off
        ended = res.terminated
        self.end_day[ended] = res.day[ended]


def kpis(log: EpisodeLog, batch: InvoiceBatch, rows: np.ndarray | None = None
         ) -> dict[str, float]:
    """The KPIs of :data:`KPI_DOC` over ``rows`` (default: all invoices)."""
    idx = np.arange(log.n) if rows is None else np.asarray(rows)
    n = len(idx)
    if n == 0:
        return {k: float("nan") for k in KPI_DOC}
    amount = batch.amount[idx]
    terms = (batch.due_day - batch.invoice_day)[idx]
    paid_day = log.paid_day[idx]
    paid = paid_day >= 0
    end = np.where(log.end_day[idx] >= 0, log.end_day[idx], 0)
    first = log.reminder_day[idx, 0]
    reminded = first >= 0
    paid_after_first = reminded & paid & (paid_day >= first)
    paid_after_first &= paid_day - first <= FIRST_REMINDER_WINDOW
    return {
        "npv": float(log.npv[idx].mean()),
        "npv_share": float(log.npv[idx].sum() / amount.sum()),
        "pay_rate": float(paid.mean()),
        "mean_days_to_pay": float((terms + paid_day)[paid].mean()) if paid.any() else np.nan,
        "mean_days_overdue_at_payment": float(paid_day[paid].mean()) if paid.any() else np.nan,
        "dso": float(((terms + end) * amount).sum() / amount.sum()),
        "first_reminder_pay_rate": (float(paid_after_first.sum() / reminded.sum())
                                    if reminded.any() else np.nan),
        "reminders_per_invoice": float(log.n_reminders[idx].mean()),
        "complaints_per_1000": float(1000.0 * log.complaints[idx].sum() / n),
        "agency_per_1000": float(1000.0 * log.agency[idx].sum() / n),
        "write_off_rate": float(log.written_off[idx].mean()),
        "violations": float(log.violations[idx].sum()),
        "refused_attempts": float(log.refused[idx].sum()),
    }


def timing_counts(log: EpisodeLog, batch: InvoiceBatch) -> dict[str, list[dict[str, object]]]:
    """Per segment and reminder number: invoices, days sent and channels (raw, poolable)."""
    out: dict[str, list[dict[str, object]]] = {}
    for s, seg in enumerate(SEGMENT_NAMES):
        rows = np.flatnonzero(batch.segment == s)
        if len(rows) == 0:
            continue
        steps = []
        for k in range(N_TIMED_REMINDERS):
            sent = rows[log.reminder_day[rows, k] >= 0]
            channels = {Action(int(a)).channel: int((log.reminder_channel[sent, k] == a).sum())
                        for a in range(Action.EMAIL, Action.FINAL_NOTICE + 1)}
            steps.append({"invoices": int(len(rows)), "sent": int(len(sent)),
                          "days": log.reminder_day[sent, k].tolist(), "channels": channels})
        out[seg] = steps
    return out


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of per-seed values (NaN CI for one seed)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) < 2:
        return mean, float("nan"), float("nan")
    from scipy import stats

    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return mean, mean - half, mean + half


def aggregate(per_seed: list[dict[str, float]]) -> dict[str, dict[str, float | list[float]]]:
    """``{kpi: {mean, ci_low, ci_high, per_seed}}`` over seeds."""
    out: dict[str, dict[str, float | list[float]]] = {}
    for key in KPI_DOC:
        values = np.array([d[key] for d in per_seed], dtype=float)
        mean, lo, hi = t_interval(values)
        out[key] = {"mean": mean, "ci_low": lo, "ci_high": hi,
                    "per_seed": [float(x) for x in values]}
    return out


def summarize_timing(pooled: dict[str, list[dict[str, object]]]) -> dict[str, list[dict]]:
    """Pooled timing counts -> per segment rows: reminder k, share sent, day stats, channels."""
    out: dict[str, list[dict]] = {}
    for seg, steps in pooled.items():
        rows = []
        for k, st in enumerate(steps):
            days = np.asarray(st["days"], dtype=float)
            sent = int(st["sent"])
            channels: dict[str, int] = st["channels"]  # type: ignore[assignment]
            rows.append({
                "reminder": k + 1,
                "share_sent": sent / max(int(st["invoices"]), 1),
                "mean_day": float(days.mean()) if sent else None,
                "median_day": float(np.median(days)) if sent else None,
                "p10_day": float(np.percentile(days, 10)) if sent else None,
                "p90_day": float(np.percentile(days, 90)) if sent else None,
                "channels": {c: v / sent for c, v in channels.items() if v} if sent else {},
                "main_channel": max(channels, key=channels.__getitem__) if sent else None,
            })
        out[seg] = rows
    return out


def pool_timing(parts: list[dict[str, list[dict[str, object]]]]) -> dict[str, list[dict]]:
    """Add up :func:`timing_counts` of several seeds."""
    pooled: dict[str, list[dict[str, object]]] = {}
    for part in parts:
        for seg, steps in part.items():
            if seg not in pooled:
                pooled[seg] = [{"invoices": 0, "sent": 0, "days": [],
                                "channels": dict.fromkeys(s["channels"], 0)} for s in steps]
            for acc, st in zip(pooled[seg], steps, strict=True):
                acc["invoices"] = int(acc["invoices"]) + int(st["invoices"])  # type: ignore
                acc["sent"] = int(acc["sent"]) + int(st["sent"])  # type: ignore
                acc["days"] = list(acc["days"]) + list(st["days"])  # type: ignore
                for c, v in st["channels"].items():  # type: ignore[union-attr]
                    acc["channels"][c] += v  # type: ignore[index]
    return pooled
