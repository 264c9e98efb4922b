"""A small, fast, contract-shaped toy company for tests and speed benchmarks (numpy only).

Not the ground truth of the project (that is ``simulations.world``): this generator exists
so the model area can be tested and benchmarked without it. Customers have a hidden
reliability and a segment; days late depend on them, on the amount and on reminders, so
a model can learn something and history features carry signal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.contract import SEGMENTS

_SEGMENT_DELAY = {"corporate": 12.0, "family_business": 2.0, "startup": 18.0,
                  "construction": 25.0, "saas": 10.0}


def make_contract_tables(n_customers: int = 200, n_invoices: int = 4000, seed: int = 0,
                         start: str = "2023-01-01", days: int = 730,
                         ) -> dict[str, pd.DataFrame]:
    """Return ``{"customers", "invoices", "payments", "actions"}`` DataFrames.

    Invoice dates are uniform over ``days`` from ``start``; the export date is the last
    day, so invoices paid later appear open (no payment row). Deterministic in ``seed``.
    """
    rng = np.random.default_rng(seed)
    t0 = np.datetime64(start, "D")
    end = t0 + days
    seg = rng.choice(np.array(SEGMENTS), size=n_customers)
    reliability = rng.lognormal(0.0, 0.6, n_customers)
    jur = rng.choice(np.array(["DE", "SE", "GB", "FR", "NL"]), size=n_customers)
    customers = pd.DataFrame({
        "customer_id": [f"C{i:06d}" for i in range(n_customers)],
        "name": [f"Customer {i}" for i in range(n_customers)],
        "segment": seg,
        "industry": rng.choice(np.array(["manufacturing", "software", "construction"]),
                               n_customers),
        "jurisdiction": jur,
        "customer_type": rng.choice(np.array(["b2b", "b2c"]), n_customers, p=[0.8, 0.2]),
        "customer_since": (t0 - rng.integers(30, 2000, n_customers)).astype(str),
    })
    cust = rng.integers(0, n_customers, n_invoices)
    inv_day = t0 + np.sort(rng.integers(0, days, n_invoices)).astype("timedelta64[D]")
    terms = rng.choice(np.array([14, 30, 45]), n_invoices)
    due = inv_day + terms.astype("timedelta64[D]")
    amount = np.round(rng.lognormal(7.0, 1.0, n_invoices), 2)
    base = np.array([_SEGMENT_DELAY[s] for s in seg])[cust]
    # drift: a customer gets slower over time for some customers
    drift = rng.normal(0, 8, n_customers)[cust] * (inv_day - t0).astype(float) / days
    mean_late = base * reliability[cust] + drift + 3 * np.log1p(amount / 1000) - 16
    days_late = np.round(mean_late + rng.gumbel(0, 6, n_invoices)).astype(int)
    settle = due + days_late.astype("timedelta64[D]")
    settle = np.maximum(settle, inv_day)
    never = rng.random(n_invoices) < 0.02
    paid = (settle <= end) & ~never
    disputed = rng.random(n_invoices) < 0.03
    dispute_opened = np.where(disputed, (due + 3).astype(str), None)
    invoices = pd.DataFrame({
        "invoice_id": [f"I{i:08d}" for i in range(n_invoices)],
        "customer_id": customers["customer_id"].to_numpy()[cust],
        "invoice_date": inv_day.astype(str), "due_date": due.astype(str),
        "amount": amount, "currency": "EUR", "disputed": disputed,
        "dispute_opened": dispute_opened,
    })
    idx = np.flatnonzero(paid)
    split = rng.random(len(idx)) < 0.1  # some invoices paid in two parts
    first_part = np.round(amount[idx[split]] * 0.4, 2)
    part_day = np.maximum(settle[idx[split]] - 5, inv_day[idx[split]])
    payments = pd.DataFrame({
        "invoice_id": np.concatenate([invoices["invoice_id"].to_numpy()[idx],
                                      invoices["invoice_id"].to_numpy()[idx[split]]]),
        "payment_date": np.concatenate([settle[idx], part_day]).astype(str),
        "amount": np.concatenate([np.where(split, amount[idx] - np.r_[0.0][:0].sum()
                                           - np.zeros(len(idx)), amount[idx]), first_part]),
    })
    # the full-payment rows of split invoices carry only the remainder
    rem = payments["amount"].to_numpy().copy()
    rem[np.flatnonzero(split)] = amount[idx[split]] - first_part
    payments["amount"] = rem
    payments.insert(0, "payment_id", [f"P{i:08d}" for i in range(len(payments))])
    # reminder log of a fixed 14/30/45 schedule, only while unpaid and before the export
    rows, dates, chans = [], [], []
    for k, ch in ((14, "email"), (30, "letter"), (45, "final_notice")):
        d = due + k
        ok = (d < np.where(paid, settle, end)) & (d < end)
        rows.append(np.flatnonzero(ok))
        dates.append(d[ok])
        chans.append(np.full(int(ok.sum()), ch))
    r = np.concatenate(rows)
    actions = pd.DataFrame({
        "action_id": [f"A{i:08d}" for i in range(len(r))],
        "invoice_id": invoices["invoice_id"].to_numpy()[r],
        "action_date": np.concatenate(dates).astype(str),
        "channel": np.concatenate(chans), "decided_by": "policy:fixed", "propensity": 1.0,
        "complaint": False,
    })
    return {"customers": customers, "invoices": invoices, "payments": payments,
            "actions": actions}
