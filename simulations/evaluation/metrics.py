"""KPIs of one policy on one seed's invoices, and their aggregation over seeds.

:class:`EpisodeLog` records what happened to every invoice while the harness steps the
simulator; :func:`kpis` turns it into figures; :func:`aggregate` gives mean and a 95 %
confidence interval over seeds (Student t over the per-seed values).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


# ----------------------------------------------------------------------------- per invoice
# Per-invoice outcomes of one run, kept so that two policies can be compared invoice by
# invoice on the same draws (common random numbers): the paired differences have far less
# variance than the per-seed means, so their intervals are narrower for the same runs.

OUTCOME_FIELDS: dict[str, str] = {
    "npv": "money collected, discounted to the due date, net of costs (currency)",
    "paid": "paid in full before the horizon (0/1)",
    "paid_day": "day after due it was paid, -1 if not paid",
    "end_day": "day after due the episode ended (paid, agency, write-off), -1 if never",
    "reminders": "reminders sent (email, letter, phone, final notice)",
    "first_reminder_day": "day after due of the first reminder, -1 if none",
    "complaints": "complaints",
    "agency": "handed over to an agency (0/1)",
    "written_off": "unpaid at the horizon (0/1)",
    "refused": "actions asked for that the mask refused",
    "violations": "actions taken that the mask did not allow",
}

# KPI of KPI_DOC -> (outcome field, scale): the KPIs that are a mean over invoices of one
# per-invoice value, so that per-seed KPI = mean of scale * outcome over that seed's invoices.
PAIRED_KPIS: dict[str, tuple[str, float]] = {
    "npv": ("npv", 1.0),
    "pay_rate": ("paid", 1.0),
    "reminders_per_invoice": ("reminders", 1.0),
    "complaints_per_1000": ("complaints", 1000.0),
    "agency_per_1000": ("agency", 1000.0),
    "write_off_rate": ("written_off", 1.0),
}


def invoice_outcomes(log: EpisodeLog) -> dict[str, np.ndarray]:
    """``{field: (n,) array}`` of :data:`OUTCOME_FIELDS` from one run's log."""
    paid = log.paid_day >= 0
    return {
        "npv": log.npv.astype(np.float64),
        "paid": paid.astype(np.int8),
        "paid_day": log.paid_day.astype(np.int32),
        "end_day": log.end_day.astype(np.int32),
        "reminders": log.n_reminders.astype(np.int32),
        "first_reminder_day": log.reminder_day[:, 0].astype(np.int32),
        "complaints": log.complaints.astype(np.int32),
        "agency": log.agency.astype(np.int8),
        "written_off": log.written_off.astype(np.int8),
        "refused": log.refused.astype(np.int32),
        "violations": log.violations.astype(np.int32),
    }


def per_invoice_kpi(outcomes: dict[str, np.ndarray], kpi: str) -> np.ndarray:
    """(seeds, invoices) values whose mean over a seed's invoices is that seed's ``kpi``."""
    if kpi not in PAIRED_KPIS:
        raise ValueError(f"KPI {kpi!r} is not a mean over invoices; paired KPIs are "
                         f"{', '.join(PAIRED_KPIS)}")
    name, scale = PAIRED_KPIS[kpi]
    return scale * np.asarray(outcomes[name], dtype=np.float64)


def paired_interval(diff: np.ndarray, method: str = "t", level: float = 0.95,
                    n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Mean of per-invoice paired differences and its confidence interval.

    Args:
        diff: (seeds, invoices) differences policy - reference on the same invoices and
            draws. Invoices are drawn independently within a seed and seeds independently,
            so all seeds x invoices differences are independent draws of one difference.
        method: ``"t"`` (Student t on all differences, seeds x invoices - 1 degrees of
            freedom) or ``"bootstrap"`` (percentile interval of the mean over ``n_boot``
            resamples of invoices, drawn within each seed; ``seed`` seeds the resampling).
        level: coverage of the interval.

    Returns:
        ``{"mean", "ci_low", "ci_high", "n", "method", "level"}`` (NaN interval for fewer
        than two differences).
    """
    d = np.asarray(diff, dtype=np.float64)
    if d.ndim == 1:
        d = d[None, :]
    n = int(d.size)
    out: dict[str, Any] = {"mean": float(d.mean()) if n else float("nan"),
                           "ci_low": float("nan"), "ci_high": float("nan"), "n": n,
                           "method": method, "level": level}
    if method not in ("t", "bootstrap"):
        raise ValueError(f"interval method {method!r}: expected 't' or 'bootstrap'")
    if n < 2:
        return out
    if method == "t":
        _, out["ci_low"], out["ci_high"] = t_interval(d.ravel(), level)
        return out
    if n_boot < 2:
        raise ValueError(f"n_boot {n_boot}: expected at least 2 bootstrap resamples")
    rng = np.random.default_rng(seed)
    means = np.zeros(n_boot)
    block = max(1, 2_000_000 // max(d.shape[1], 1))  # resamples per chunk: bounded memory
    for start in range(0, n_boot, block):
        b = min(block, n_boot - start)
        total = np.zeros(b)
        for row in d:  # resample invoices within each seed (the seeds are strata)
            idx = rng.integers(0, len(row), size=(b, len(row)))
            total += row[idx].sum(axis=1)
        means[start:start + b] = total / n
    alpha = (1.0 - level) / 2.0
    out["ci_low"], out["ci_high"] = (float(x) for x in np.quantile(means, [alpha, 1 - alpha]))
    return out
