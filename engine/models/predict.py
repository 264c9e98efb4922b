"""Scoring open invoices and summarising per customer (behind `dunning predict` / `customers`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from engine.calendar import from_days, to_day
from engine.features import (
    PreparedTables,
    build_invoice_features,
    open_balance_at,
    open_invoices,
    prepare_tables,
)
from engine.models.payment import PaymentModel

PROBA_COLUMNS: tuple[str, ...] = ("p_on_time", "p_late", "p_very_late")


def open_invoice_meta(p: PreparedTables, pos: np.ndarray, invoice_ids: np.ndarray,
                      as_of: object) -> dict[str, np.ndarray]:
    """The descriptive columns of scored open invoices: ``invoice_id``, ``customer_id``,
    ``due_date`` (datetime.date each), ``days_overdue`` and ``balance`` (rounded to cents)
    at the start of ``as_of``, for the prepared rows ``pos`` (n,) whose ids are
    ``invoice_ids`` (n,)."""
    return {
        "invoice_id": invoice_ids,
        "customer_id": p.customers["customer_id"].astype(str).to_numpy()[p.cust[pos]],
        "due_date": from_days(p.due_day[pos]).astype(object),
        "days_overdue": (to_day(as_of) - p.due_day[pos]).astype(int),
        "balance": np.round(open_balance_at(p, pos, as_of), 2),
    }


def score_open_invoices(tables: Mapping[str, pd.DataFrame] | PreparedTables,
                        model: PaymentModel, as_of: object, explain_top: int = 20,
                        top_k: int = 3, at_risk_threshold: float = 0.5,
                        outlook: bool = False) -> pd.DataFrame:
    """One row per invoice open at ``as_of`` (start of day), riskiest first.

    Columns: ``invoice_id``, ``customer_id``, ``due_date``, ``days_overdue``, ``balance``,
    ``p_on_time``, ``p_late``, ``p_very_late`` (sum to 1; ``p_very_late`` = 0 for a binary
    model), ``predicted_class``, ``at_risk`` (P(on time) < ``at_risk_threshold``, for
    invoices not yet due as well: Dynamics 365's red circle), ``factors`` (top ``top_k``
    risk factors in plain words with direction, only for the ``explain_top`` riskiest rows,
    else empty), ``model_hash``. Risk order: descending P(not on time) x balance.

    ``outlook`` adds :func:`payment_outlook`'s columns (predicted payment date and days
    late with an 80 % interval, expected loss, needs-attention rank).
    """
    p = tables if isinstance(tables, PreparedTables) else prepare_tables(tables)
    X = build_invoice_features(p, as_of)
    day = to_day(as_of)
    pos = open_invoices(p, day)  # the rows of X, in its order
    M = model.encode(X)  # one matrix for the classifier and the payment-date regressors
    proba = model.predict_proba(M) if len(X) else np.zeros((0, len(model.classes_)))
    full = np.zeros((len(X), 3))
    full[:, : proba.shape[1]] = proba
    out = pd.DataFrame({
        **open_invoice_meta(p, pos, X.index.to_numpy(), as_of),
        **{c: full[:, j] for j, c in enumerate(PROBA_COLUMNS)},
        "predicted_class": model.classes_[proba.argmax(axis=1)] if len(X) else [],
        "at_risk": full[:, 0] < at_risk_threshold,
    })
    risk = (1.0 - out["p_on_time"].to_numpy()) * out["balance"].to_numpy()
    order = np.argsort(-risk, kind="stable")
    out, X = out.iloc[order].reset_index(drop=True), X.iloc[order]
    out["factors"] = ""
    n_exp = min(explain_top, len(out))
    if n_exp:
        out.loc[: n_exp - 1, "factors"] = model.explain(X.iloc[:n_exp], top_k)["factors"].to_numpy()
    if outlook:
        out = payment_outlook(out, M[order], model)
    out["model_hash"] = getattr(model, "hash_", None)
    return out


def payment_outlook(scored: pd.DataFrame, X: pd.DataFrame | np.ndarray, model: PaymentModel
                    ) -> pd.DataFrame:
    """Add to ``scored`` (rows aligned with the features ``X``, or with the matrix
    ``model.encode`` made of them):

    - ``predicted_days_late`` and its 80 % interval ``days_late_low`` / ``days_late_high``
      (signed days after due: the median and the 10 / 90 % quantiles, LightGBM quantile
      regression) and ``predicted_payment_date`` (due date + median; not before the
      as-of date); NaN / empty if the model has no payment-date regressors;
    - ``expected_loss`` = balance x P(very late) (P(late) for a binary model, which has no
      very-late class): what is at stake if nobody acts;
    - ``attention_rank``: 1 = largest expected loss (the worklist order, distinct from the
      risk order of the rows).
    """
    out = scored.copy()
    n = len(out)
    if n and getattr(model, "quantile_models_", None):
        q = model.predict_payment(X)
        due = pd.to_datetime(out["due_date"]).to_numpy()
        as_of = due - pd.to_timedelta(out["days_overdue"], unit="D").to_numpy()
        mid = np.round(q[:, 1], 1)
        pay = due + pd.to_timedelta(np.round(mid), unit="D").to_numpy()
        pay = np.maximum(pay, as_of)  # an open invoice is paid today at the earliest
        out["predicted_days_late"] = mid
        out["days_late_low"] = np.round(q[:, 0], 1)
        out["days_late_high"] = np.round(q[:, 2], 1)
        out["predicted_payment_date"] = pd.to_datetime(pay).date
    else:
        for c in ("predicted_days_late", "days_late_low", "days_late_high"):
            out[c] = np.full(n, np.nan)
        out["predicted_payment_date"] = None
    stake = out["p_very_late"] if len(model.classes_) == 3 else out["p_late"]
    out["expected_loss"] = np.round(out["balance"].to_numpy() * stake.to_numpy(), 2)
    out["attention_rank"] = attention_ranks(out["expected_loss"].to_numpy())
    return out


def attention_ranks(expected_loss: np.ndarray) -> np.ndarray:
    """(n,) int64 rank of each row by descending expected loss (1 = largest; ties in row
    order): the needs-attention order of the worklist."""
    n = len(expected_loss)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-np.asarray(expected_loss), kind="stable")] = np.arange(1, n + 1)
    return rank


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
