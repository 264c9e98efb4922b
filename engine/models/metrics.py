"""Classification metrics of the payment model and its baselines (one function, one dict)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """Top-label ECE: sum over confidence bins of |accuracy - confidence| x bin share."""
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def calibration_curve(proba: np.ndarray, y: np.ndarray, classes: tuple[str, ...],
                      n_bins: int = 10) -> dict[str, list[dict[str, float]]]:
    """Per class: bins of predicted probability with mean predicted, observed rate, count."""
    out: dict[str, list[dict[str, float]]] = {}
    for k, name in enumerate(classes):
        p = proba[:, k]
        bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
        rows = []
        for b in range(n_bins):
            sel = bins == b
            if sel.any():
                rows.append({"bin": b / n_bins, "mean_predicted": float(p[sel].mean()),
                             "observed": float((y[sel] == k).mean()), "count": int(sel.sum())})
        out[name] = rows
    return out


def classification_metrics(proba: np.ndarray, y: np.ndarray, classes: tuple[str, ...]
                           ) -> dict[str, object]:
    """log loss, accuracy, macro F1, per-class one-vs-rest AUC, Brier score, ECE, n.

    ``proba`` (n, n_classes) rows summing to 1; ``y`` (n,) int class indices.
    """
    k = len(classes)
    proba = np.clip(proba, 1e-12, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    onehot = np.eye(k)[y]
    auc = {}
    for j, name in enumerate(classes):
        pos = y == j
        auc[name] = float(roc_auc_score(pos, proba[:, j])) if 0 < pos.sum() < len(y) else None
    return {
        "n": int(len(y)),
        "class_share": {name: float((y == j).mean()) for j, name in enumerate(classes)},
        "log_loss": float(log_loss(y, proba, labels=list(range(k)))),
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, average="macro", labels=list(range(k)),
                                   zero_division=0)),
        "auc": auc,
        "brier": float(((proba - onehot) ** 2).sum(axis=1).mean()),
        "ece": expected_calibration_error(proba, y),
    }
