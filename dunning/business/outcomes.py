"""Per-invoice outcomes from the contract tables: what a pilot and a power analysis measure.

One row per invoice, computed only from payments and actions dated on or before ``as_of``
(so an outcome that is not known yet is missing, never guessed):

- ``days_to_pay``: days from invoice date to the day the invoice was fully paid; an invoice
  still open on ``as_of`` counts with its age on ``as_of`` (a lower bound, the same for both
  arms of a pilot) and ``paid`` is ``False``;
- ``first_reminder_pay_rate``: 1.0 if the invoice was fully paid within
  ``pay_window_days`` (14) of its first reminder, 0.0 if not, missing when it was never
  reminded or the window has not ended yet;
- ``npv``: payments discounted to the due date at ``discount_rate`` per year (EUR);
- ``complaints`` and ``n_actions``: counts over the invoice's actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

METRICS: tuple[str, ...] = ("first_reminder_pay_rate", "days_to_pay", "npv")
BINARY_METRICS: frozenset[str] = frozenset({"first_reminder_pay_rate"})


@dataclass(frozen=True)
class OutcomeConfig:
    """How outcomes are measured: pay window after the first reminder (days), discount rate."""

    pay_window_days: int = 14
    discount_rate: float = 0.03
    paid_tolerance: float = 0.005  # EUR; rounding in ERP exports


def load_tables(db: Path | str, as_of: date | None = None) -> dict[str, pd.DataFrame]:
    """The four contract tables from the store file ``db`` as known on ``as_of``.

    Raises :class:`InputError` when the file does not exist (the store would create an
    empty one, and an empty history must not pass for a real one).
    """
    from engine.store import Store

    db = Path(db)
    if not db.exists():
        raise InputError(f"{db}: store file not found, expected a DuckDB file from `dunning "
                         "ingest` or `dunning world generate`")
    tables = Store(db).tables(as_of=as_of)
    if tables["invoices"].empty:
        raise InputError(f"{db}: table invoices is empty, expected invoice history")
    return tables


def simulated_history(
    scenario: str = "default", n_customers: int = 500, months: int = 12, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """The contract tables of a synthetic company (``simulations.world``), read back through
    a temporary store exactly as a real export would be (ingest validation included)."""
    import tempfile

    from engine.ingest import ingest
    from engine.store import Store
    from simulations.world import generate_company, load_scenario

    company = generate_company(load_scenario(scenario), n_customers, months, seed)
    with tempfile.TemporaryDirectory(prefix="dunning-sim-") as tmp:
        paths = [p for p in company.write(tmp) if p.suffix == ".csv"]
        db = Path(tmp) / "sim.duckdb"
        ingest(paths, db=db)
        return Store(db).tables()


def invoice_outcomes(
    tables: dict[str, pd.DataFrame],
    as_of: date | None = None,
    config: OutcomeConfig | None = None,
) -> pd.DataFrame:
    """Per-invoice outcomes (see module docstring). Shape ``(n_invoices, 13)``.

    Columns: invoice_id, customer_id, invoice_date, due_date, amount, paid, paid_date,
    days_to_pay, first_action_date, first_reminder_pay_rate, npv, n_actions, complaints.
    ``as_of`` defaults to the latest event date in the tables.
    """
    import numpy as np
    import pandas as pd

    config = config or OutcomeConfig()
    inv = tables["invoices"][["invoice_id", "customer_id", "invoice_date", "due_date", "amount"]]
    pay = tables["payments"][["invoice_id", "payment_date", "amount"]]
    act = tables["actions"]
    if as_of is None:
        as_of = max(
            d for d in (inv["invoice_date"].max(), pay["payment_date"].max(),
                        act["action_date"].max()) if pd.notna(d)
        )
    cutoff = pd.Timestamp(as_of)
    inv = inv[inv["invoice_date"] <= cutoff]
    pay = pay[pay["payment_date"] <= cutoff].sort_values(["invoice_id", "payment_date"])
    act = act[act["action_date"] <= cutoff]

    # Day the cumulative payments first reach the invoice amount.
    pay = pay.merge(inv[["invoice_id", "amount", "due_date"]], on="invoice_id",
                    suffixes=("", "_invoice"))
    pay["cum"] = pay.groupby("invoice_id")["amount"].cumsum()
    full = pay[pay["cum"] >= pay["amount_invoice"] - config.paid_tolerance]
    paid_date = full.groupby("invoice_id")["payment_date"].min()
    years = (pay["payment_date"] - pay["due_date"]).dt.days / 365.0
    pay["pv"] = pay["amount"] / np.power(1.0 + config.discount_rate, years)
    npv = pay.groupby("invoice_id")["pv"].sum()

    first_action = act.groupby("invoice_id")["action_date"].min()
    n_actions = act.groupby("invoice_id").size()
    complaints = act.assign(c=act["complaint"].astype(float)).groupby("invoice_id")["c"].sum()

    out = inv.set_index("invoice_id")
    out["paid_date"] = paid_date.reindex(out.index)
    out["paid"] = out["paid_date"].notna()
    end = out["paid_date"].fillna(cutoff)
    out["days_to_pay"] = (end - out["invoice_date"]).dt.days.astype(float)
    out["first_action_date"] = first_action.reindex(out.index)
    window_end = out["first_action_date"] + pd.Timedelta(days=config.pay_window_days)
    paid_in_window = out["paid_date"].notna() & (out["paid_date"] <= window_end)
    known = out["first_action_date"].notna() & (paid_in_window | (window_end <= cutoff))
    # A payment that completed before the first reminder: the reminder did not cause it.
    known &= ~(out["paid_date"] < out["first_action_date"])
    out["first_reminder_pay_rate"] = np.where(known, paid_in_window.astype(float), np.nan)
    out["npv"] = npv.reindex(out.index).fillna(0.0)
    out["n_actions"] = n_actions.reindex(out.index).fillna(0).astype(int)
    out["complaints"] = complaints.reindex(out.index).fillna(0.0).astype(int)
    return out.reset_index()[
        ["invoice_id", "customer_id", "invoice_date", "due_date", "amount", "paid", "paid_date",
         "days_to_pay", "first_action_date", "first_reminder_pay_rate", "npv", "n_actions",
         "complaints"]
    ]


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise InputError(f"metric: found {metric!r}, expected one of {', '.join(METRICS)}")
    return metric
