"""Choosing the payment model by time-series cross-validation inside the training period.

Folds are ordered by invoice date (expanding window): fold ``k`` has a cut day ``t_k``; it
trains on the rows dated before ``t_k`` whose class was already known at ``t_k`` (due more
than ``very_late_days`` + 1 days before it), so no training row carries an outcome from
the future of the cut, and it tests on every row of the invoices issued in
``[t_k, t_{k+1})`` (their snapshot rows, weighted). The out-of-fold probabilities of all
folds are pooled and scored with :func:`weighted_metrics`.

:func:`cross_validate` compares candidate :class:`~engine.models.payment.PaymentModel`
recipes (LightGBM, logistic regression, the history rule); the champion is the one with
the lowest log loss, and its out-of-fold probabilities choose the decision threshold on
P(not on time) that maximises late F1 (:func:`best_threshold`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

from engine.errors import DunningError
from engine.features import label_classes
from engine.models.payment import PaymentModel

METRICS: dict[str, str] = {  # metric -> "min" or "max"
    "log_loss": "min", "accuracy": "max", "late_f1": "max", "brier": "min", "auc_late": "max",
}
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def time_series_folds(invoice_day: np.ndarray, due_day: np.ndarray, ref_day: np.ndarray,
                      very_late_days: int, n_folds: int = 4, first_share: float = 0.5,
                      min_train: int = 20) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds ordered by invoice date: ``[(train_idx, test_idx), ...]``.

    Cuts at the invoice-date quantiles ``first_share + (1 - first_share) * k / n_folds``
    (k = 0..n_folds-1) of the rows. Train: ``ref_day < t_k`` and due + very_late_days + 1
    < t_k (class known at the cut); test: invoice day in ``[t_k, t_{k+1})``. Folds with
    fewer than ``min_train`` training rows or no test row are skipped (and by
    :func:`cross_validate`, folds whose training rows hold a single class).
    """
    qs = first_share + (1.0 - first_share) * np.arange(n_folds) / n_folds
    cuts = np.unique(np.quantile(invoice_day, qs).astype(np.int64))
    ends = np.r_[cuts[1:], np.iinfo(np.int64).max]
    folds = []
    for t, e in zip(cuts, ends, strict=True):
        train = np.flatnonzero((ref_day < t) & (due_day + very_late_days + 1 < t))
        test = np.flatnonzero((invoice_day >= t) & (invoice_day < e))
        if len(train) >= min_train and len(test):
            folds.append((train, test))
    return folds


def weighted_metrics(proba: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None,
                     threshold: float | None = None) -> dict[str, float]:
    """log loss, accuracy (argmax), late F1 and AUC (late = not on time, at ``threshold``
    on P(not on time), default 0.5), multi-class Brier; ``proba`` (n, k), ``y`` (n,)."""
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=float)
    k = proba.shape[1]
    proba = np.clip(proba, 1e-12, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    p_late = 1.0 - proba[:, 0]
    late = y > 0
    thr = 0.5 if threshold is None else threshold
    out = {
        "log_loss": float(log_loss(y, proba, labels=list(range(k)), sample_weight=w)),
        "accuracy": float(accuracy_score(y, proba.argmax(axis=1), sample_weight=w)),
        "late_f1": float(f1_score(late, p_late >= thr, sample_weight=w, zero_division=0)),
        "brier": float(np.average(((proba - np.eye(k)[y]) ** 2).sum(axis=1), weights=w)),
        "auc_late": float(roc_auc_score(late, p_late, sample_weight=w))
        if 0 < late.sum() < len(late) else float("nan"),
    }
    return out


def best_threshold(p_late: np.ndarray, late: np.ndarray, weight: np.ndarray | None = None
                   ) -> float:
    """The threshold on P(not on time) in :data:`THRESHOLD_GRID` maximising (weighted) late
    F1 (ties: the one nearest 0.5). Vectorised: F1 = 2 TP / (2 TP + FP + FN)."""
    w = np.ones(len(late)) if weight is None else np.asarray(weight, dtype=float)
    pred = p_late[None, :] >= THRESHOLD_GRID[:, None]  # (grid, n)
    pos = np.asarray(late, bool)
    tp = (pred & pos) @ w
    fp = (pred & ~pos) @ w
    fn = (~pred & pos) @ w
    denom = 2 * tp + fp + fn
    f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    return float(THRESHOLD_GRID[best[np.argmin(np.abs(THRESHOLD_GRID[best] - 0.5))]])


def cross_validate(candidates: Mapping[str, Callable[[], PaymentModel]], X: pd.DataFrame,
                   days_late: np.ndarray, ref_day: np.ndarray, invoice_day: np.ndarray,
                   due_day: np.ndarray, very_late_days: int, weight: np.ndarray | None = None,
                   n_folds: int = 4) -> dict[str, Any]:
    """Time-series CV of each candidate; returns a JSON-able dict.

    ``candidates``: name -> factory of an unfitted model. Keys of the result: ``folds``
    (cut dates as day numbers, train / test rows), ``models`` (name -> pooled out-of-fold
    metrics at threshold 0.5 plus ``late_f1_at_threshold`` and the per-fold log loss),
    ``winners`` (metric -> name), ``champion`` (lowest log loss), ``threshold`` (the
    champion's late-F1 threshold), ``simple_model_won`` (metrics a non-LightGBM won).
    """
    y = label_classes(days_late, very_late_days)
    folds = [(tr, te) for tr, te in time_series_folds(invoice_day, due_day, ref_day,
                                                      very_late_days, n_folds)
             if len(np.unique(y[tr])) >= 2]  # a one-class fold cannot fit a classifier
    if not folds:
        raise DunningError("too little history for time-series cross-validation (no fold "
                           "has 20 training rows with a known outcome of two classes); add "
                           "history or train the pipeline's model (--lightgbm-only)")
    w = np.ones(len(X)) if weight is None else np.asarray(weight, dtype=float)
    test_all = np.concatenate([te for _, te in folds])
    out: dict[str, Any] = {
        "folds": [{"cut_day": int(invoice_day[te].min()), "train_rows": int(len(tr)),
                   "test_rows": int(len(te))} for tr, te in folds],
        "models": {},
    }
    oof: dict[str, np.ndarray] = {}
    for name, make in candidates.items():
        parts, fold_ll = [], []
        for tr, te in folds:
            model = make().fit(X.iloc[tr], days_late[tr], ref_day[tr], w[tr])
            proba = model.predict_proba(X.iloc[te])
            parts.append(proba)
            fold_ll.append(weighted_metrics(proba, y[te], w[te])["log_loss"])
        oof[name] = np.concatenate(parts)
        m = weighted_metrics(oof[name], y[test_all], w[test_all])
        thr = best_threshold(1.0 - oof[name][:, 0], y[test_all] > 0, w[test_all])
        m["threshold"] = thr
        m["late_f1_at_threshold"] = weighted_metrics(oof[name], y[test_all], w[test_all],
                                                     thr)["late_f1"]
        m["fold_log_loss"] = fold_ll
        out["models"][name] = m
    winners = {}
    for metric, sense in METRICS.items():
        vals = {n: m[metric] for n, m in out["models"].items() if np.isfinite(m[metric])}
        if vals:
            winners[metric] = (min if sense == "min" else max)(vals, key=vals.get)
    out["winners"] = winners
    out["champion"] = winners["log_loss"]
    out["threshold"] = out["models"][out["champion"]]["threshold"]
    out["simple_model_won"] = sorted(k for k, v in winners.items() if v != "lightgbm")
    return out
