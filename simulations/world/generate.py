"""Generate a synthetic company's ERP export (the four contract tables) from a scenario.

Customers get invoices month by month; each invoice may be paid before its due date (a
segment's pre-due hazard times the calendar), then it follows the MDP of
:mod:`simulations.world.dynamics` under the logging policy, one vectorised day at a time,
until it is paid, handed to the agency, written off at the horizon, or the as-of date
(the last day of the period) is reached. Nothing after the as-of date is written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.calendar import from_days, to_day
from engine.contract import (
    ACTIONS,
    CHANNELS,
    CUSTOMER_TYPES,
    CUSTOMERS,
    INVOICES,
    PAYMENTS,
    SEGMENTS,
)
from engine.files import atomic_write_text
from simulations.world.dynamics import (
    AGENCY,
    initial_state,
    logging_policy_probs,
    step,
    tables,
)
from simulations.world.params import (
    NO_MILESTONE,
    InvoiceParams,
    calendar_for,
    draw_customer_attributes,
    draw_invoice_attributes,
    draw_reliability,
    draw_response,
    draw_timing_shift,
)
from simulations.world.scenario import Scenario

FIRST_REMINDER_WINDOW_DAYS = 14
_NAME_SUFFIX = {"DE": "GmbH", "AT": "GmbH", "SE": "AB", "FR": "SARL", "GB": "Ltd", "NL": "B.V."}

ProgressFn = Callable[[int, int], None]


@dataclass
class Company:
    """A generated company: the four contract tables, a summary and the true parameters.

    ``params`` row ``i`` belongs to ``invoices`` row ``i`` (same order); the oracle solves
    any of them with ``params.take(rows)``. ``as_of`` is the last day with data.
    """

    customers: pd.DataFrame
    invoices: pd.DataFrame
    payments: pd.DataFrame
    actions: pd.DataFrame
    summary: dict[str, Any]
    params: InvoiceParams
    as_of: dt.date
    outcomes: dict[str, np.ndarray] = field(repr=False, default_factory=dict)

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write the four CSVs and ``summary.json`` atomically (temp file, then rename)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in ("customers", "invoices", "payments", "actions"):
            path = out / f"{name}.csv"
            _atomic_write_csv(path, getattr(self, name))
            written.append(path)
        path = out / "summary.json"
        atomic_write_text(path, json.dumps(self.summary, indent=2, sort_keys=True) + "\n")
        written.append(path)
        return written


def _atomic_write_csv(path: Path, df: pd.DataFrame) -> None:
    """Unquoted CSV (no generated value contains a comma, quote or newline) via pyarrow,
    which is ~10x faster than pandas; falls back to pandas (quoting) if a value needs it."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            fh.write((",".join(df.columns) + "\n").encode("utf-8"))
            pa_csv.write_csv(pa.Table.from_pandas(df, preserve_index=False), fh,
                             pa_csv.WriteOptions(include_header=False, quoting_style="none"))
    except pa.ArrowInvalid:
        tmp.write_text(df.to_csv(index=False, lineterminator="\n"), encoding="utf-8")
    tmp.replace(path)


def _month_starts(start: dt.date, months: int) -> list[dt.date]:
    first = dt.date(start.year, start.month, 1)
    return [dt.date(first.year + (first.month - 1 + m) // 12, (first.month - 1 + m) % 12 + 1, 1)
            for m in range(months + 1)]


def generate_company(scenario: Scenario, n_customers: int, months: int, seed: int,
                     progress: ProgressFn | None = None) -> Company:
    """Simulate ``n_customers`` customers over ``months`` months from ``scenario.start_date``.

    Same arguments => identical tables. ``progress(done, total)`` is called once per
    simulated day.
    """
    if n_customers < 1 or months < 1:
        raise ValueError("n_customers and months must be >= 1")
    rng = np.random.default_rng(seed)
    sc = scenario
    bounds = _month_starts(sc.start_date, months)
    period_start = max(sc.start_date, bounds[0])
    as_of = bounds[-1] - dt.timedelta(days=1)
    start_day, as_of_day = to_day(period_start), to_day(as_of)

    # Customers.
    seg_w = np.array([s.weight for s in sc.segments])
    c_seg = rng.choice(len(SEGMENTS), size=n_customers, p=seg_w / seg_w.sum())
    jur_w = np.array([j.weight for j in sc.jurisdictions])
    c_jur = rng.choice(len(jur_w), size=n_customers, p=jur_w / jur_w.sum())
    cust = draw_customer_attributes(sc, c_seg, c_jur, rng)
    c_rel = draw_reliability(sc, c_seg, rng)
    drift_sd = np.array([s.drift_sigma_per_year for s in sc.segments])[c_seg]
    c_drift = drift_sd * rng.standard_normal(n_customers)
    c_since = start_day - rng.integers(0, 10 * 365, size=n_customers)

    # Invoices: Poisson count per customer and month, uniform day within the month.
    rate = np.array([s.invoices_per_month for s in sc.segments])[c_seg]
    counts = rng.poisson(rate[:, None], size=(n_customers, months))
    month_first = np.array([to_day(b) for b in bounds])
    lo = np.maximum(month_first[:-1], start_day)
    span = month_first[1:] - lo
    inv_cust = np.repeat(np.repeat(np.arange(n_customers), months), counts.ravel())
    inv_month = np.repeat(np.tile(np.arange(months), n_customers), counts.ravel())
    inv_day = lo[inv_month] + (rng.random(len(inv_cust)) * span[inv_month]).astype(np.int64)
    order = np.lexsort((inv_cust, inv_day))
    inv_cust, inv_day = inv_cust[order], inv_day[order]
    seg = c_seg[inv_cust]
    attrs = draw_invoice_attributes(sc, seg, rng)
    due_day = inv_day + attrs["terms"]
    years = (inv_day - start_day) / 365.25
    reliability = c_rel[inv_cust] * np.exp(c_drift[inv_cust] * years)
    c_resp = draw_response(sc, c_seg, rng)  # the customer's own; nothing drawn without spread
    c_shift = draw_timing_shift(sc, c_seg, rng)  # likewise
    calendar = calendar_for(sc, start_day, int(due_day.max(initial=start_day)))
    params = InvoiceParams(
        segment=seg, jurisdiction=c_jur[inv_cust], customer_type=cust["customer_type"][inv_cust],
        industry=cust["industry"][inv_cust], reliability=reliability, amount=attrs["amount"],
        invoice_day=inv_day, due_day=due_day, milestone_offset=attrs["milestone_offset"],
        agency_consent=cust["agency_consent"][inv_cust],
        reminder_fee_agreed=cust["reminder_fee_agreed"][inv_cust],
        opted_out_email=cust["opted_out_email"][inv_cust],
        opted_out_letter=cust["opted_out_letter"][inv_cust],
        opted_out_phone=cust["opted_out_phone"][inv_cust], response=c_resp[inv_cust],
        timing_shift=c_shift[inv_cust],
        scenario=sc, calendar=calendar, industries=cust["industries"],
    )

    sim = _simulate(params, as_of_day, rng, progress)
    customers = _customers_table(sc, cust, c_seg, c_jur, c_since)
    invoices = _invoices_table(params, inv_cust, sim)
    payments = _payments_table(params, sim)
    actions = _actions_table(sim)
    summary = summarize(params, sim, as_of_day)
    summary.update({"scenario": sc.name, "seed": seed, "months": months,
                    "n_customers": n_customers, "as_of": as_of.isoformat(),
                    "n_payments": len(payments), "n_actions": len(actions)})
    return Company(customers, invoices, payments, actions, summary, params, as_of, sim)


# ----------------------------------------------------------------------------- simulation


def _pre_due_payments(params: InvoiceParams, as_of_day: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Day number of a payment before the due date, or -1. Exact inverse-CDF draw.

    Daily P(pay) = 1 - exp(-lam_d) with lam_d = pre_due_hazard * reliability * calendar_d,
    so the first payment day is the first d where the cumulative lam exceeds an Exp(1) draw.
    """
    tb = tables(params.scenario)
    cal = params.calendar
    cum = np.concatenate([np.zeros(cal.pay_multiplier.shape[:2] + (1,)),
                          np.cumsum(cal.pay_multiplier, axis=2)], axis=2)  # cum[..., d] = sum < d
    first = cal.index(params.invoice_day)
    last = np.minimum(params.due_index, cal.index(np.full(len(params), as_of_day)) + 1)  # excl.
    rate = tb.pre_due_hazard[params.segment] * params.reliability
    threshold = rng.exponential(size=len(params)) / np.maximum(rate, 1e-300)
    paid_day = np.full(len(params), -1, dtype=np.int64)
    for s in range(cum.shape[0]):
        for j in range(cum.shape[1]):
            rows = np.flatnonzero((params.segment == s) & (params.jurisdiction == j))
            if not len(rows):
                continue
            c = cum[s, j]
            target = c[first[rows]] + threshold[rows]
            # First d with cum[d + 1] >= target, i.e. payment on calendar index d.
            d = np.searchsorted(c, target, side="left") - 1
            ok = (d < last[rows]) & (rate[rows] > 0)
            paid_day[rows[ok]] = cal.first_day + d[ok]
    return paid_day


def _simulate(params: InvoiceParams, as_of_day: int, rng: np.random.Generator,
              progress: ProgressFn | None) -> dict[str, np.ndarray]:
    sc = params.scenario
    n = len(params)
    paid_day = _pre_due_payments(params, as_of_day, rng)
    pay_amount = np.where(paid_day >= 0, params.amount, 0.0)
    dispute_opened = np.full(n, -1, dtype=np.int64)
    dispute_resolved = np.full(n, -1, dtype=np.int64)
    agency_day = np.full(n, -1, dtype=np.int64)
    act_rows: list[np.ndarray] = []
    act_days: list[np.ndarray] = []
    act_codes: list[np.ndarray] = []
    act_prop: list[np.ndarray] = []
    act_comp: list[np.ndarray] = []

    rows = np.flatnonzero((paid_day < 0) & (params.due_day <= as_of_day))
    sub = params.take(rows)
    state = initial_state(sub)
    H = sc.horizon_days
    for t in range(H):
        keep = ~state.done & (sub.due_day + t <= as_of_day)
        if not keep.all():
            rows, sub, state = rows[keep], sub.take(keep), state.take(keep)
        if progress is not None:
            progress(t + 1, H)
        if not len(rows):
            continue
        probs = logging_policy_probs(sub, state)
        u = rng.random(len(rows))
        acting = np.flatnonzero(probs[:, 0] < 1.0)  # sample only where not surely WAIT
        cum = np.cumsum(probs[acting], axis=1)
        actions = np.zeros(len(rows), dtype=np.int64)
        actions[acting] = (cum <= (u[acting] * cum[:, -1])[:, None]).sum(axis=1)
        state, out = step(sub, state, actions, rng)
        today = sub.due_day + t
        taken = actions > 0
        if taken.any():
            act_rows.append(rows[taken])
            act_days.append(today[taken])
            act_codes.append(actions[taken])
            act_prop.append(probs[np.flatnonzero(taken), actions[taken]])
            act_comp.append(out.complaint[taken])
        opened = out.dispute_started & (dispute_opened[rows] < 0)
        dispute_opened[rows[opened]] = today[opened]
        # The invoices table holds one dispute: from the first opening to the last
        # resolution (a dispute reopened later and still open shows as unresolved).
        dispute_resolved[rows[out.dispute_ended]] = today[out.dispute_ended]
        dispute_resolved[rows[out.dispute_started]] = -1
        paid_day[rows[out.paid]] = today[out.paid]
        pay_amount[rows[out.paid]] = out.paid_amount[out.paid]
        handed = out.agency
        agency_day[rows[handed]] = today[handed]
        recovered = handed & out.agency_recovered
        rec_day = today + sc.costs.agency_delay_days
        land = recovered & (rec_day <= as_of_day)
        # The agency's transfer lands on a business day of the debtor's jurisdiction.
        paid_day[rows[land]] = _next_business_day(sub, rec_day[land], land)
        pay_amount[rows[land]] = sub.amount[land]
    paid_day = np.where(paid_day > as_of_day, -1, paid_day)
    pay_amount = np.where(paid_day >= 0, pay_amount, 0.0)

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    return {
        "paid_day": paid_day, "pay_amount": pay_amount, "dispute_opened": dispute_opened,
        "dispute_resolved": dispute_resolved, "agency_day": agency_day,
        "act_row": cat(act_rows, np.int64), "act_day": cat(act_days, np.int64),
        "act_code": cat(act_codes, np.int64), "act_propensity": cat(act_prop, float),
        "act_complaint": cat(act_comp, bool),
    }


def _next_business_day(params: InvoiceParams, day: np.ndarray, rows: np.ndarray) -> np.ndarray:
    cal = params.calendar
    jur = params.jurisdiction[rows]
    d = cal.index(day)
    for _ in range(14):  # holiday runs are short
        shift = ~cal.is_business[jur, d]
        if not shift.any():
            break
        d = d + shift
    return cal.first_day + d


# ----------------------------------------------------------------------------- tables


def _iso(days: np.ndarray) -> np.ndarray:
    """ISO dates of day numbers (formatting each distinct day once)."""
    unique, inverse = np.unique(np.asarray(days, dtype=np.int64), return_inverse=True)
    text = np.datetime_as_string(from_days(unique), unit="D").astype(object)
    return text[inverse]


def _iso_or_empty(days: np.ndarray) -> np.ndarray:
    out = np.full(len(days), "", dtype=object)
    ok = days >= 0
    out[ok] = _iso(days[ok])
    return out


def _bool_str(values: np.ndarray) -> np.ndarray:
    return np.where(values, "true", "false")


def _customers_table(sc: Scenario, cust: dict, c_seg: np.ndarray, c_jur: np.ndarray,
                     c_since: np.ndarray) -> pd.DataFrame:
    n = len(c_seg)
    ids = np.char.add("C", np.char.zfill(np.arange(1, n + 1).astype(str), 6))
    codes = np.array([j.code for j in sc.jurisdictions])[c_jur]
    b2c = cust["customer_type"] == 1
    suffix = np.array([_NAME_SUFFIX.get(c, "Ltd") for c in codes])
    names = np.where(b2c, np.char.add("Person ", ids),
                     np.char.add(np.char.add("Company ", ids), np.char.add(" ", suffix)))
    opted = np.full(n, "", dtype=object)
    for col, ch in (("opted_out_email", "email"), ("opted_out_letter", "letter"),
                    ("opted_out_phone", "phone")):
        opted[cust[col]] = ch
    df = pd.DataFrame({
        "customer_id": ids,
        "name": names,
        "segment": np.array(SEGMENTS)[c_seg],
        "industry": np.array(cust["industries"])[cust["industry"]],
        "jurisdiction": codes,
        "region": "",
        "customer_type": np.array(CUSTOMER_TYPES)[cust["customer_type"]],
        "language": np.array([j.language for j in sc.jurisdictions])[c_jur],
        "customer_since": _iso(c_since),
        "reminder_fee_agreed": _bool_str(cust["reminder_fee_agreed"]),
        "agency_consent": _bool_str(cust["agency_consent"]),
        "opted_out_channels": opted,
        "email": "",  # contact data is not simulated (and would be personal data)
        "address": "",
    })
    return df[list(CUSTOMERS.column_names)]


def _invoice_ids(n: int) -> np.ndarray:
    return np.char.add("INV", np.char.zfill(np.arange(1, n + 1).astype(str), 8))


def _invoices_table(params: InvoiceParams, inv_cust: np.ndarray,
                    sim: dict[str, np.ndarray]) -> pd.DataFrame:
    n = len(params)
    sc = params.scenario
    milestone = np.where(params.milestone_offset != NO_MILESTONE,
                         params.due_day + params.milestone_offset, -1)
    df = pd.DataFrame({
        "invoice_id": _invoice_ids(n),
        "customer_id": np.char.add("C", np.char.zfill((inv_cust + 1).astype(str), 6)),
        "invoice_date": _iso(params.invoice_day),
        "due_date": _iso(params.due_day),
        "amount": params.amount,
        "currency": np.array([j.currency for j in sc.jurisdictions])[params.jurisdiction],
        "disputed": _bool_str(sim["dispute_opened"] >= 0),
        "dispute_opened": _iso_or_empty(sim["dispute_opened"]),
        "dispute_resolved": _iso_or_empty(sim["dispute_resolved"]),
        "milestone_date": _iso_or_empty(milestone),
        # the synthetic company prints the BGB § 286 (3) notice on every invoice, and its
        # business customers' contracts fix the payment date (BGB § 286 (2) no. 1)
        "consumer_notice_on_invoice": "yes",
        "due_date_agreed_by_calendar": np.where(
            np.array(CUSTOMER_TYPES)[params.customer_type] == "b2b", "yes", "no"),
    })
    return df[list(INVOICES.column_names)]


def _payments_table(params: InvoiceParams, sim: dict[str, np.ndarray]) -> pd.DataFrame:
    rows = np.flatnonzero(sim["paid_day"] >= 0)
    rows = rows[np.lexsort((rows, sim["paid_day"][rows]))]
    df = pd.DataFrame({
        "payment_id": np.char.add("PAY", np.char.zfill(np.arange(1, len(rows) + 1).astype(str),
                                                       8)),
        "invoice_id": _invoice_ids(len(params))[rows],
        "payment_date": _iso(sim["paid_day"][rows]),
        "amount": sim["pay_amount"][rows],
    })
    return df[list(PAYMENTS.column_names)]


def _actions_table(sim: dict[str, np.ndarray]) -> pd.DataFrame:
    order = np.lexsort((sim["act_row"], sim["act_day"]))
    rows = sim["act_row"][order]
    n = len(rows)
    inv_ids = np.char.add("INV", np.char.zfill((rows + 1).astype(str), 8))
    df = pd.DataFrame({
        "action_id": np.char.add("ACT", np.char.zfill(np.arange(1, n + 1).astype(str), 8)),
        "invoice_id": inv_ids,
        "action_date": _iso(sim["act_day"][order]),
        "channel": np.array(("",) + CHANNELS)[sim["act_code"][order]],
        "decided_by": "policy:logging",
        "propensity": sim["act_propensity"][order],
        "complaint": _bool_str(sim["act_complaint"][order]),
    })
    return df[list(ACTIONS.column_names)]


# ----------------------------------------------------------------------------- summary


def _kpis(params: InvoiceParams, sim: dict[str, np.ndarray], as_of_day: int,
          rows: np.ndarray) -> dict[str, Any]:
    sc = params.scenario
    paid_day = sim["paid_day"][rows]
    paid = paid_day >= 0
    # First reminder (any reminder channel) per invoice.
    is_rem = sim["act_code"] != AGENCY
    first = np.full(len(params), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, sim["act_row"][is_rem], sim["act_day"][is_rem])
    first = first[rows]
    got = (first <= as_of_day - FIRST_REMINDER_WINDOW_DAYS)
    paid_after = got & paid & (paid_day >= first) & (paid_day <= first + FIRST_REMINDER_WINDOW_DAYS)
    # Mature cohort: every outcome (incl. an agency recovery) is known by the as-of date.
    settle_by = sc.horizon_days + sc.costs.agency_delay_days + 14
    mature = params.due_day[rows] + settle_by <= as_of_day
    cohort_is_mature = bool(mature.any())
    cohort = mature if cohort_is_mature else np.ones(len(rows), bool)
    days_to_pay = (paid_day - params.invoice_day[rows])[cohort & paid]
    return {
        "n_invoices": int(len(rows)),
        "n_with_first_reminder": int(got.sum()),
        "first_reminder_pay_rate": float(paid_after.sum() / got.sum()) if got.any() else None,
        "mean_days_invoice_to_payment": float(days_to_pay.mean()) if len(days_to_pay) else None,
        "on_time_rate": float((paid & (paid_day <= params.due_day[rows]))[cohort].mean())
        if cohort.any() else None,
        "paid_rate": float(paid[cohort].mean()) if cohort.any() else None,
        "agency_rate": float((sim["agency_day"][rows] >= 0)[cohort].mean())
        if cohort.any() else None,
        "n_mature_invoices": int(mature.sum()),
        "mature_cohort": cohort_is_mature,
    }


def summarize(params: InvoiceParams, sim: dict[str, np.ndarray], as_of_day: int) -> dict:
    """Headline KPIs overall and per segment (see docs/world.md for the definitions)."""
    out = _kpis(params, sim, as_of_day, np.arange(len(params)))
    out["n_complaints"] = int(sim["act_complaint"].sum())
    out["per_segment"] = {
        name: _kpis(params, sim, as_of_day, np.flatnonzero(params.segment == s))
        for s, name in enumerate(SEGMENTS)
    }
    return out
