"""Scoring open invoices and summarising per customer (behind `dunning predict` / `customers`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from engine.calendar import from_day, to_day
from engine.features import (
    PreparedTables,
    build_invoice_features,
    lookup,
    open_balance,
    prepare_tables,
)
from engine.models.payment import PaymentModel

PROBA_COLUMNS: tuple[str, ...] = ("p_on_time", "p_late", "p_very_late")


def score_open_invoices(tables: Mapping[str, pd.DataFrame] | PreparedTables,
                        model: PaymentModel, as_of: object, explain_top: int = 20,
                        top_k: int = 3) -> pd.DataFrame:
    """One row per invoice open at ``as_of`` (start of day), riskiest first.

    Columns: ``invoice_id``, ``customer_id``, ``due_date``, ``days_overdue``, ``balance``,
    ``p_on_time``, ``p_late``, ``p_very_late`` (sum to 1; ``p_very_late`` = 0 for a binary
    model), ``predicted_class``, ``at_risk`` (P(on time) < 0.5), ``factors`` (top ``top_k``
    risk factors with direction, only for the ``explain_top`` riskiest rows, else empty),
    ``model_hash``. Risk order: descending P(not on time) x balance.
    """
    p = tables if isinstance(tables, PreparedTables) else prepare_tables(tables)
    X = build_invoice_features(p, as_of)
    proba = model.predict_proba(X) if len(X) else np.zeros((0, len(model.classes_)))
    full = np.zeros((len(X), 3))
    full[:, : proba.shape[1]] = proba
    day = to_day(as_of)
    pos = lookup(p.invoice_id, X.index.to_numpy())
    out = pd.DataFrame({
        "invoice_id": X.index.to_numpy(),
        "customer_id": p.customers["customer_id"].astype(str).to_numpy()[p.cust[pos]],
        "due_date": [from_day(int(d)) for d in p.due_day[pos]],
        "days_overdue": (day - p.due_day[pos]).astype(int),
        "balance": np.round(open_balance(p, X.index.to_numpy(), as_of), 2),
        **{c: full[:, j] for j, c in enumerate(PROBA_COLUMNS)},
        "predicted_class": model.classes_[proba.argmax(axis=1)] if len(X) else [],
        "at_risk": full[:, 0] < 0.5,
    })
    risk = (1.0 - out["p_on_time"].to_numpy()) * out["balance"].to_numpy()
    order = np.argsort(-risk, kind="stable")
    out, X = out.iloc[order].reset_index(drop=True), X.iloc[order]
    out["factors"] = ""
    n_exp = min(explain_top, len(out))
    if n_exp:
        out.loc[: n_exp - 1, "factors"] = model.explain(X.iloc[:n_exp], top_k)["factors"].to_numpy()
    out["model_hash"] = getattr(model, "hash_", None)
    return out


def customer_summary(scored: pd.DataFrame, tables: Mapping[str, pd.DataFrame] | PreparedTables,
                     as_of: object) -> pd.DataFrame:
    """Per customer: open balance, expected amounts per bucket (sum balance x probability),
    share of the balance predicted late, and payment history known at ``as_of``
    (invoices paid, paid late, average days late, trend = last 3 minus overall average)."""
    p = tables if isinstance(tables, PreparedTables) else prepare_tables(tables)
    day = to_day(as_of)
    s = scored.assign(
        expected_on_time=scored["balance"] * scored["p_on_time"],
        expected_late=scored["balance"] * scored["p_late"],
        expected_very_late=scored["balance"] * scored["p_very_late"])
    g = s.groupby("customer_id").agg(
        open_invoices=("invoice_id", "size"), open_balance=("balance", "sum"),
        expected_on_time=("expected_on_time", "sum"), expected_late=("expected_late", "sum"),
        expected_very_late=("expected_very_late", "sum"), at_risk=("at_risk", "sum"))
    g["share_predicted_late"] = np.where(
        g["open_balance"] > 0, (g["expected_late"] + g["expected_very_late"])
        / g["open_balance"].where(g["open_balance"] > 0, 1.0), 0.0)
    paid = p.settle_day < day
    hist = pd.DataFrame({
        "customer_id": p.customers["customer_id"].astype(str).to_numpy()[p.cust[paid]],
        "days_late": p.days_late[paid], "settle": p.settle_day[paid]}).sort_values("settle")
    h = hist.groupby("customer_id").agg(
        invoices_paid=("days_late", "size"),
        paid_late=("days_late", lambda v: int((v > 0).sum())),
        avg_days_late=("days_late", "mean"),
        last3_days_late=("days_late", lambda v: v.tail(3).mean()))
    h["trend_days_late"] = h["last3_days_late"] - h["avg_days_late"]
    out = g.join(h.drop(columns="last3_days_late"), how="left")
    out[["invoices_paid", "paid_late"]] = out[["invoices_paid", "paid_late"]].fillna(0)
    return out.sort_values("expected_very_late", ascending=False).reset_index()
