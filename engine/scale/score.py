"""Distributed scoring: P(on time / late / very late) of every open invoice, shard by shard.

A Dask DataFrame has one partition per customer shard (``dd.from_map`` over
:func:`~engine.scale.shards.read_shard`): each builds the as-of features of its open
invoices. ``map_partitions`` then applies the fitted booster (the :class:`PaymentModel`
travels to each worker once) and explains the partition's riskiest rows. The client gathers
only the scored rows (no features), orders them by risk and keeps the factors of the global
top ``explain_top`` rows: the result equals ``engine.models.predict.score_open_invoices``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from engine.features import build_invoice_features, prepare_tables
from engine.models.payment import PaymentModel
from engine.models.predict import (
    PROBA_COLUMNS,
    attention_ranks,
    open_invoice_meta,
    payment_outlook,
)
from engine.scale.shards import ParquetExport, build_shard_layout, read_shard

if TYPE_CHECKING:
    from distributed import Client

META_COLUMNS: tuple[str, ...] = ("invoice_id", "customer_id", "due_date", "days_overdue",
                                 "balance")
_META_PREFIX = "meta__"


def shard_open_features(shard: int, export: ParquetExport, n_shards: int, known_at: dt.date,
                        as_of: dt.date) -> pd.DataFrame:
    """Open invoices of one shard at the start of ``as_of``: meta columns + features.

    ``known_at`` is the last day whose facts are read (the store's ``--as-of`` day).
    """
    tables = read_shard(export, shard, n_shards, known_at)
    if len(tables["invoices"]) == 0:
        return pd.DataFrame()
    p = prepare_tables(tables)
    X = build_invoice_features(p, as_of)
    ids = X.index.to_numpy()
    meta = pd.DataFrame(open_invoice_meta(p, p.rows_of(ids), ids, as_of))
    meta.columns = [_META_PREFIX + c for c in meta.columns]  # features may share names
    return pd.concat([meta, X.reset_index(drop=True)], axis=1)


def apply_model(part: pd.DataFrame, model: PaymentModel, explain_top: int,
                at_risk_threshold: float = 0.5, outlook: bool = False) -> pd.DataFrame:
    """Scored rows of one partition (no feature columns), riskiest first; the ``explain_top``
    riskiest carry their top factors (the global top rows are among them); with ``outlook``
    every row its payment outlook (:func:`engine.models.predict.payment_outlook`; the
    attention rank is partition-local here and ranked again over all rows by
    :func:`score_distributed`)."""

    if len(part) == 0:
        return pd.DataFrame()
    meta_cols = [_META_PREFIX + c for c in META_COLUMNS]
    X = part.drop(columns=meta_cols)
    proba = model.predict_proba(X)
    full = np.zeros((len(X), 3))
    full[:, : proba.shape[1]] = proba
    out = part[meta_cols].rename(columns=lambda c: c.removeprefix(_META_PREFIX))
    for j, c in enumerate(PROBA_COLUMNS):
        out[c] = full[:, j]
    out["predicted_class"] = model.classes_[proba.argmax(axis=1)]
    out["at_risk"] = full[:, 0] < at_risk_threshold
    risk = (1.0 - full[:, 0]) * out["balance"].to_numpy()
    order = np.argsort(-risk, kind="stable")
    out, X = out.iloc[order].reset_index(drop=True), X.iloc[order].reset_index(drop=True)
    out["factors"] = ""
    n_exp = min(explain_top, len(out))
    if n_exp:
        out.loc[: n_exp - 1, "factors"] = model.explain(X.iloc[:n_exp])["factors"].to_numpy()
    return payment_outlook(out, X, model) if outlook else out


def score_distributed(client: Client, export: ParquetExport, model: PaymentModel,
                      known_at: dt.date, explain_top: int = 20, n_shards: int | None = None,
                      at_risk_threshold: float = 0.5, outlook: bool = False) -> pd.DataFrame:
    """Score every invoice open at the start of ``known_at + 1`` on the cluster.

    Same columns and order as :func:`engine.models.predict.score_open_invoices` with the
    same ``at_risk_threshold`` and ``outlook``.
    ``n_shards`` defaults to ~1 shard per 250k invoices (at least 2 per worker).
    """
    import dask

    from engine.scale.cluster import n_workers

    n = n_shards or default_shards(export, n_workers(client))
    client.submit(build_shard_layout, export, n, pure=False).result()  # once per export
    with dask.config.set({"dataframe.convert-string": False}):  # keep dates as dates
        frame = _compute_scores(client, export, model, n, known_at, explain_top,
                                at_risk_threshold, outlook)
    if len(frame) == 0:
        return frame
    risk = (1.0 - frame["p_on_time"].to_numpy()) * frame["balance"].to_numpy()
    # ties broken as the local scorer does: by invoice position in the store (invoice_id order)
    order = np.lexsort((frame["invoice_id"].to_numpy(), -risk))
    frame = frame.iloc[order].reset_index(drop=True)
    frame.loc[explain_top:, "factors"] = ""
    if outlook:
        frame["attention_rank"] = attention_ranks(frame["expected_loss"].to_numpy())
    frame["model_hash"] = getattr(model, "hash_", None)
    for col in ("invoice_id", "customer_id"):
        frame[col] = frame[col].astype(str)
    return frame


def _compute_scores(client: Client, export: ParquetExport, model: PaymentModel, n: int,
                    known_at: dt.date, explain_top: int, at_risk_threshold: float,
                    outlook: bool) -> pd.DataFrame:
    import dask.dataframe as dd

    as_of = known_at + dt.timedelta(days=1)
    feats = dd.from_map(shard_open_features, range(n), export=export, n_shards=n,
                        known_at=known_at, as_of=as_of, enforce_metadata=False)
    scored = feats.map_partitions(apply_model, model, explain_top, at_risk_threshold, outlook,
                                  meta=scored_meta(outlook),
                                  enforce_metadata=False)
    return client.compute(scored).result()


def scored_meta(outlook: bool = False) -> pd.DataFrame:
    """Empty frame with the columns and dtypes :func:`apply_model` returns."""
    cols: dict[str, pd.Series] = {
        "invoice_id": pd.Series([], dtype=object), "customer_id": pd.Series([], dtype=object),
        "due_date": pd.Series([], dtype=object), "days_overdue": pd.Series([], dtype=int),
        "balance": pd.Series([], dtype=float)}
    cols.update({c: pd.Series([], dtype=float) for c in PROBA_COLUMNS})
    cols.update({"predicted_class": pd.Series([], dtype=object),
                 "at_risk": pd.Series([], dtype=bool), "factors": pd.Series([], dtype=object)})
    if outlook:
        cols.update({c: pd.Series([], dtype=float)
                     for c in ("predicted_days_late", "days_late_low", "days_late_high")})
        cols.update({"predicted_payment_date": pd.Series([], dtype=object),
                     "expected_loss": pd.Series([], dtype=float),
                     "attention_rank": pd.Series([], dtype="int64")})
    return pd.DataFrame(cols)


def default_shards(export: ParquetExport, workers: int) -> int:
    """About one shard per 250k invoices, at least two per worker (load balance)."""
    return max(2 * workers, -(-export.count_invoices() // 250_000))
