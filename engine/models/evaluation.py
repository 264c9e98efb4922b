"""Time-split evaluation of the payment model on any ledger (``dunning evaluate-model``).

Train on what was known before a cut date (outcomes known at the cut, features as of each
row's date, the champion chosen by time-series CV inside that period, as ``dunning
train-model`` does); score every invoice issued on or after the cut at its invoice date
(its history features use what was known at that date; the model stays the one of the
cut) and compare with what happened, next to baselines a user could build by hand:

- ``global_mean``: the class shares and mean days of the training period for everyone;
- ``customer_mean``: the customer's own history known at the invoice date (share paid
  late, mean days late, mean days to pay), the global figures without history;
- ``logistic_regression`` / ``lightgbm`` / ``history_rule``: every candidate of the
  selection refitted on the whole training period.

Metrics: accuracy, late F1 (late = not on time; at 0.5 and, for the shipped model, at its
CV threshold), AUC of P(late), log loss, Brier, a calibration curve of P(late), the MAE
of predicted days to pay (settled invoices) and of predicted days late (late ones); and
``horizons``: the candidates' classification metrics at due + k (k in the snapshot days)
on the test invoices still unpaid then.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import DunningError
from engine.features import (
    DEFAULT_SNAPSHOT_DAYS,
    PreparedTables,
    class_known,
    classes_for,
    features_at,
    from_day,
    label_classes,
    prepare_tables,
    to_day,
)
from engine.models.metrics import calibration_curve
from engine.models.payment import select_features
from engine.models.selection import weighted_metrics
from engine.models.training import TrainConfig, candidate_models, select_champion


def _late_proba(p_late: np.ndarray, k: int, very_share: float) -> np.ndarray:
    """(n, k) class probabilities from P(not on time), splitting late / very late by
    ``very_share`` for a three-class model."""
    p_late = np.clip(p_late, 1e-6, 1 - 1e-6)
    if k == 2:
        return np.column_stack([1 - p_late, p_late])
    return np.column_stack([1 - p_late, p_late * (1 - very_share), p_late * very_share])


def _horizons(p: PreparedTables, test: np.ndarray, dl: np.ndarray,
              fitted: Mapping[str, Any], cfg: TrainConfig, end: int,
              horizons: tuple[int, ...] = DEFAULT_SNAPSHOT_DAYS) -> dict[str, Any]:
    """Classification metrics of the fitted candidates at due + k for the test invoices
    still unpaid at the start of that day (and before the end of the data)."""
    y_all = label_classes(dl, cfg.very_late_days)
    out: dict[str, Any] = {}
    for k in horizons:
        day = p.due_day[test] + k
        sel = (day < end) & (p.settle_day[test] >= day)
        if sel.sum() < 20 or len(np.unique(y_all[sel])) < 2:
            continue
        X = features_at(p, test[sel], day[sel])
        out[f"due+{k}"] = {"n": int(sel.sum()), "late_share": float((y_all[sel] > 0).mean()),
                           "models": {n: weighted_metrics(m.predict_proba(X), y_all[sel])
                                      for n, m in fitted.items()}}
    return out


def evaluate_cut(tables: Mapping[str, pd.DataFrame] | PreparedTables, cut: object,
                 cfg: TrainConfig | None = None) -> dict[str, Any]:
    """The evaluation dict (JSON-able) of a model trained before ``cut``; see the module."""
    cfg = cfg or TrainConfig.recommended(hazard=False)
    p = tables if isinstance(tables, PreparedTables) else prepare_tables(tables)
    cut_day = to_day(cut)
    end = p.last_day + 1
    test = np.flatnonzero((p.invoice_day >= cut_day) & class_known(p, end, cfg.very_late_days))
    if len(test) == 0:
        raise DunningError(f"--cut {from_day(cut_day)}: no invoice issued on or after it has a "
                           f"known outcome by the end of the data ({from_day(p.last_day)}); "
                           "choose an earlier cut")
    if int((p.invoice_day < cut_day).sum()) < 50:
        raise DunningError(f"--cut {from_day(cut_day)}: fewer than 50 invoices before it to "
                           "train on; choose a later cut")
    model, selection, rows = select_champion(p, cut_day, cfg)
    X = features_at(p, test, p.invoice_day[test])
    dl = p.days_late[test].copy()
    settled = ~np.isnan(dl)
    dl[~settled] = (end - 1 - p.due_day[test][~settled]).astype(float)  # lower bound
    y = label_classes(dl, cfg.very_late_days)
    classes = classes_for(cfg.very_late_days)
    k = len(classes)
    terms = (p.due_day[test] - p.invoice_day[test]).astype(float)
    days_to_pay = dl + terms

    # training-period figures for the baselines: invoice-date rows, settled outcomes
    first = rows.snapshot == -1
    tr_dl = rows.days_late[first]
    tr_y = label_classes(tr_dl, cfg.very_late_days)
    shares = np.bincount(tr_y, minlength=k) / len(tr_y)
    late_tr = tr_y > 0
    very_share = float((tr_y == 2).sum() / max(late_tr.sum(), 1)) if k == 3 else 0.0
    inv_tr = rows.invoice_pos[first]
    tr_pay = tr_dl + (p.due_day[inv_tr] - p.invoice_day[inv_tr])
    g_days_late = float(np.mean(tr_dl))
    g_days_to_pay = float(np.mean(tr_pay))
    g_late_days = float(np.mean(tr_dl[late_tr])) if late_tr.any() else 0.0

    hist_share = X["hist_share_late"].to_numpy(float)
    hist_late = X["hist_mean_days_late"].to_numpy(float)
    hist_pay = X["hist_mean_days_to_pay"].to_numpy(float)
    probas: dict[str, np.ndarray] = {
        "global_mean": np.tile(shares, (len(test), 1)),
        "customer_mean": _late_proba(np.where(np.isnan(hist_share), 1 - shares[0],
                                              hist_share), k, very_share),
    }
    fitted = {selection["champion"]: model}
    features = select_features(rows.X.columns, cfg.include_fields, cfg.exclude_fields)
    for name, make in candidate_models(cfg, features, len(rows.X)).items():
        if name not in fitted:
            fitted[name] = make().fit(rows.X, rows.days_late, rows.ref_day, rows.weight,
                                      rows.censored)
        probas[name] = fitted[name].predict_proba(X)

    out: dict[str, Any] = {
        "cut": str(from_day(cut_day)), "data_end": str(from_day(p.last_day)),
        "classes": list(classes), "train_rows": int(len(rows.X)),
        "train_invoices": int(len(np.unique(rows.invoice_pos))),
        "test_invoices": int(len(test)), "test_settled": int(settled.sum()),
        "test_late_share": float((y > 0).mean()),
        "shipped": selection["champion"], "threshold": selection["threshold"],
        "selection": {n: {m: v for m, v in s.items() if m != "fold_log_loss"}
                      for n, s in selection["models"].items()},
        "models": {},
    }
    for name, proba in probas.items():
        r = weighted_metrics(proba, y)
        if name == selection["champion"]:
            r["late_f1_at_threshold"] = weighted_metrics(proba, y, threshold=out["threshold"]
                                                         )["late_f1"]
        out["models"][name] = r
    out["calibration"] = calibration_curve(probas[selection["champion"]], y, classes)

    # days: to pay (settled invoices) and late (settled late invoices)
    lt = settled & (dl > 0)
    days: dict[str, dict[str, float | None]] = {
        "global_mean": {"days_to_pay": np.full(len(test), g_days_to_pay),
                        "days_late": np.full(len(test), g_late_days)},
        "customer_mean": {
            "days_to_pay": np.where(np.isnan(hist_pay), g_days_to_pay, hist_pay),
            "days_late": np.where(np.isnan(hist_late) | (hist_late <= 0), g_late_days,
                                  hist_late)},
    }
    shipped: dict[str, Any] = {}  # the shipped artifact's LightGBM regressors
    if model.quantile_models_:
        shipped["days_to_pay"] = model.predict_payment(X)[:, 1] + terms
    if model.regressor_ is not None:
        shipped["days_late"] = model.predict_days_late(X)
    days[selection["champion"]] = shipped
    for name, d in days.items():
        m = out["models"][name]
        if "days_to_pay" in d and settled.any():
            m["mae_days_to_pay"] = float(np.abs(d["days_to_pay"][settled]
                                                - days_to_pay[settled]).mean())
        if "days_late" in d and lt.any():
            m["mae_days_late"] = float(np.abs(d["days_late"][lt] - dl[lt]).mean())
    out["horizons"] = _horizons(p, test, dl, fitted, cfg, end)
    out["note"] = (f"global mean days late {g_days_late:.1f}; the shipped model's days come "
                   "from its LightGBM regressors (median of signed days late; days late if "
                   "late), whichever classifier won")
    return out

