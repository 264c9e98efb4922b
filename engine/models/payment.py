"""The payment-probability model: P(on time / late / very late) per invoice, calibrated.

A LightGBM classifier on the as-of features of :mod:`engine.features`, calibrated by
temperature-and-bias scaling of its raw scores on the LAST ``calibration_fraction`` of the
training rows in time order (the model never sees that slice; it is also the early-stopping
set). A LightGBM regressor trained on the late rows predicts how many days late an invoice
is if it is late (``predict_days_late``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

from engine.calendar import to_day
from engine.errors import DunningError
from engine.features import (
    DEFAULT_FEATURES,
    EXTRA_PREFIXES,
    PreparedTables,
    classes_for,
    features_at,
    label_classes,
    prepare_tables,
)
from engine.models.encoding import encode, learn_categories

MODEL_FILE = "payment_model.txt"
REGRESSOR_FILE = "payment_days_late.txt"
META_FILE = "payment_model.json"


def select_features(columns: Sequence[str], include: Sequence[str] = (),
                    exclude: Sequence[str] = ()) -> list[str]:
    """Default features in ``columns`` + ``inv_``/``cust_`` extras + ``include`` - ``exclude``.

    Raises :class:`DunningError` for a name in include/exclude that is not a feature.
    """
    cols = list(columns)
    for name in (*include, *exclude):
        if name not in cols:
            raise DunningError(f"--include-fields/--exclude-fields: {name!r} is not a feature; "
                               f"expected one of {sorted(cols)}")
    chosen = [c for c in DEFAULT_FEATURES if c in cols]
    chosen += [c for c in cols if c.startswith(EXTRA_PREFIXES)]
    chosen += [c for c in include if c not in chosen]
    return [c for c in chosen if c not in set(exclude)]


def _calibrate(raw: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Temperature a and per-class bias b (b[0] = 0) minimising log loss of softmax(a*raw+b)."""
    k = raw.shape[1]

    def nll(theta: np.ndarray) -> float:
        b = np.r_[0.0, theta[1:]]
        return float(-log_softmax(theta[0] * raw + b, axis=1)[np.arange(len(y)), y].mean())

    res = minimize(nll, np.r_[1.0, np.zeros(k - 1)], method="L-BFGS-B",
                   bounds=[(0.05, 20.0)] + [(-10.0, 10.0)] * (k - 1))
    return float(res.x[0]), np.r_[0.0, res.x[1:]]


class PaymentModel:
    """Calibrated LightGBM classifier of the payment class of an invoice.

    Parameters
    ----------
    very_late_days : N; classes on time (<= 0 days late), late (1..N), very late (> N).
        N = 0 gives a binary model (on time vs late).
    features : feature names to use; default :func:`select_features` of the columns at fit.
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM settings
        (``n_estimators`` is the maximum; early stopping on the calibration slice).
    calibration_fraction : share of the latest training rows held out for calibration.
    max_train_rows : above this many training rows, fit on a seeded random sample of them
        (and calibrate on at most a quarter as many): keeps 1M-invoice histories (~4M
        snapshot rows) within minutes at no measurable loss.
    fit_days_late : also fit the days-late regressor.
    random_state, n_jobs : seed and LightGBM threads (None: 1; OpenMP threads busy-wait and
        slow down ten-fold on a machine whose cores are shared; pass 2+ on a free machine).

    Fitted attributes: ``classes_`` (names), ``features_``, ``categories_``, ``booster_``,
    ``regressor_`` (or None), ``temperature_``, ``bias_``, ``best_iteration_``,
    ``n_train_``, ``n_calibration_``.
    """

    def __init__(self, very_late_days: int = 30, features: Sequence[str] | None = None,
                 n_estimators: int = 150, learning_rate: float = 0.08, num_leaves: int = 15,
                 min_child_samples: int = 200, calibration_fraction: float = 0.25,
                 fit_days_late: bool = True, random_state: int = 0,
                 n_jobs: int | None = None, max_train_rows: int = 600_000) -> None:
        if very_late_days < 0:
            raise DunningError(f"very_late_days must be >= 0, got {very_late_days}")
        self.very_late_days = very_late_days
        self.features = features
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.calibration_fraction = calibration_fraction
        self.fit_days_late = fit_days_late
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.max_train_rows = max_train_rows

    # -- fitting
    def _params(self, objective: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "objective": objective, "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves, "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": 0.8, "bagging_fraction": 0.9, "bagging_freq": 1,
            "lambda_l2": 1.0, "seed": self.random_state, "num_threads": self.threads_,
            "verbosity": -1, "deterministic": True, "force_row_wise": True,
            "max_cat_to_onehot": 8,
        }
        if objective == "multiclass":
            params["num_class"] = len(self.classes_)
        return params

    def fit(self, X: pd.DataFrame, days_late: np.ndarray,
            order: np.ndarray | None = None) -> PaymentModel:
        """Fit on feature rows ``X`` (n, k) and their days late (n,) (settle - due, days).

        ``order`` (n,) sorts rows in time (e.g. snapshot day numbers); the latest
        ``calibration_fraction`` of rows calibrate. Default: the given row order.
        """
        days_late = np.asarray(days_late, dtype=float)
        if len(X) != len(days_late):
            raise ValueError(f"X has {len(X)} rows but days_late has {len(days_late)}")
        if len(X) < 20:
            raise DunningError(f"only {len(X)} invoices with a known outcome to train on; "
                               "need at least 20 (choose a later --as-of date or add data)")
        self.classes_ = np.array(classes_for(self.very_late_days))
        self.threads_ = self.n_jobs or 1
        y = label_classes(days_late, self.very_late_days)
        idx = np.arange(len(X)) if order is None else np.argsort(order, kind="stable")
        n_cal = int(round(len(idx) * self.calibration_fraction))
        n_cal = min(max(n_cal, 10), len(idx) // 2)
        tr, cal = idx[:-n_cal], idx[-n_cal:]
        rng = np.random.default_rng(self.random_state)
        if len(tr) > self.max_train_rows:  # large histories: a seeded sample is as good
            tr = np.sort(rng.choice(tr, self.max_train_rows, replace=False))
        if len(cal) > self.max_train_rows // 4:
            cal = np.sort(rng.choice(cal, self.max_train_rows // 4, replace=False))
        self.features_ = list(self.features) if self.features is not None else \
            select_features(X.columns)
        self.categories_ = learn_categories(X.iloc[tr], self.features_)
        M = encode(X, self.features_, self.categories_)
        cat_idx = [j for j, c in enumerate(self.features_) if c in self.categories_]
        objective = "binary" if len(self.classes_) == 2 else "multiclass"
        dtrain = lgb.Dataset(M[tr], y[tr], feature_name=self.features_,
                             categorical_feature=cat_idx, free_raw_data=True)
        dcal = lgb.Dataset(M[cal], y[cal], reference=dtrain)
        self._on_time_booster_ = None
        self.booster_ = lgb.train(
            self._params(objective), dtrain, num_boost_round=self.n_estimators,
            valid_sets=[dcal], callbacks=[lgb.early_stopping(30, verbose=False)])
        self.best_iteration_ = int(self.booster_.best_iteration or self.n_estimators)
        self.temperature_, self.bias_ = _calibrate(self._raw(M[cal]), y[cal])
        self.n_train_, self.n_calibration_ = int(len(tr)), int(len(cal))
        self.regressor_ = None
        if self.fit_days_late:
            late = np.concatenate([tr, cal])
            late = late[days_late[late] > 0]
            if len(late) >= 20:
                dl = lgb.Dataset(M[late], days_late[late], feature_name=self.features_,
                                 categorical_feature=cat_idx)
                self.regressor_ = lgb.train(self._params("l1"), dl,
                                            num_boost_round=min(self.n_estimators, 300))
        return self

    # -- prediction
    def _check_fitted(self) -> None:
        if not hasattr(self, "booster_"):
            raise DunningError("the payment model is not fitted; call fit() or load() first")

    def _threads(self, n_rows: int) -> int:
        return self.n_jobs or 1

    def _raw(self, M: np.ndarray) -> np.ndarray:
        raw = self.booster_.predict(M, raw_score=True, num_iteration=self.best_iteration_,
                                    num_threads=self._threads(len(M)))
        if raw.ndim == 1:  # binary: class 0 logit 0, class 1 logit s
            raw = np.column_stack([np.zeros_like(raw), raw])
        return raw

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        """(n, len(features_)) float matrix of ``X`` in the model's feature order."""
        self._check_fitted()
        return encode(X, self.features_, self.categories_)

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """(n, n_classes) calibrated probabilities, columns in ``classes_`` order."""
        M = X if isinstance(X, np.ndarray) else self.encode(X)
        return softmax(self.temperature_ * self._raw(M) + self.bias_, axis=1)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """(n,) most likely class name."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def predict_days_late(self, X: pd.DataFrame) -> np.ndarray:
        """(n,) predicted days late IF the invoice is late (median regression, days)."""
        self._check_fitted()
        if self.regressor_ is None:
            raise DunningError("this model was trained without the days-late regressor")
        M = self.encode(X)
        return self.regressor_.predict(M, num_threads=self._threads(len(M)))

    def explain(self, X: pd.DataFrame, top_k: int = 3) -> pd.DataFrame:
        """Top ``top_k`` factors of each row's risk of NOT paying on time.

        Uses LightGBM ``pred_contrib`` (SHAP values in raw-score space) of the on-time
        class, negated, so a positive contribution raises the risk. Call it only on the
        rows to show: it costs ~ (n_features x trees) per row. Returns (n, 3*top_k):
        ``factor_i`` (feature name), ``value_i`` (its value), ``effect_i`` (risk
        contribution, logit units) and a text column ``factors`` ("+ hist_share_late=0.8").
        """
        M = self.encode(X)
        k = len(self.features_)
        if len(self.classes_) == 2:
            contrib = self.booster_.predict(M, pred_contrib=True,
                                            num_iteration=self.best_iteration_,
                                            num_threads=self._threads(len(M)))
            risk = contrib[:, :k]  # binary: contributions to the late logit
        else:
            contrib = self._on_time_booster().predict(M, pred_contrib=True,
                                                      num_threads=self._threads(len(M)))
            risk = -contrib[:, :k]  # on-time logit, negated: towards NOT on time
        risk = risk * self.temperature_
        order = np.argsort(-np.abs(risk), axis=1)[:, :top_k]
        rows = np.arange(len(X))
        out = pd.DataFrame(index=X.index)
        names = np.array(self.features_, dtype=object)
        values = X[self.features_].to_numpy(dtype=object)
        texts = [[] for _ in range(len(X))]
        for i in range(min(top_k, k)):
            j = order[:, i]
            eff = risk[rows, j]
            vals = values[rows, j]
            out[f"factor_{i + 1}"] = names[j]
            out[f"value_{i + 1}"] = vals
            out[f"effect_{i + 1}"] = eff
            for r, (name, v, e) in enumerate(zip(names[j], vals, eff, strict=True)):
                shown = f"{v:.3g}" if isinstance(v, float) else str(v)
                texts[r].append(f"{'+' if e > 0 else '-'} {name}={shown}")
        out["factors"] = ["; ".join(t) for t in texts]
        return out

    def _on_time_booster(self) -> lgb.Booster:
        """The on-time class's trees alone, as a one-output model (cached).

        ``pred_contrib`` of a multiclass model computes SHAP values for every class; we only
        need the on-time logit, so its trees (every n_class-th) are cut out of the model
        text: identical values at 1/n_class of the cost.
        """
        if getattr(self, "_on_time_booster_", None) is None:
            text = self.booster_.model_to_string(num_iteration=self.best_iteration_)
            head, rest = text.split("\nTree=", 1)
            trees_text, tail = ("Tree=" + rest).split("\nend of trees", 1)
            trees = re.split(r"\n(?=Tree=\d+\n)", trees_text.strip("\n"))
            n_class = len(self.classes_)
            mine = [re.sub(r"^Tree=\d+", f"Tree={j}", t)
                    for j, t in enumerate(trees[::n_class])]
            header = []
            for line in head.split("\n"):
                if line.startswith("tree_sizes="):
                    continue  # sizes of the full model; LightGBM parses without them
                if line.startswith(("num_class=", "num_tree_per_iteration=")):
                    line = line.split("=")[0] + "=1"
                elif line.startswith("objective="):
                    line = "objective=regression"  # raw score = the on-time logit
                header.append(line)
            model = "\n".join(header) + "\n" + "\n\n".join(mine) + "\n\nend of trees" + tail
            self._on_time_booster_ = lgb.Booster(model_str=model)
        return self._on_time_booster_

    # -- persistence
    def _meta(self) -> dict[str, Any]:
        return {
            "kind": "payment_model", "classes": self.classes_.tolist(),
            "very_late_days": self.very_late_days, "features": self.features_,
            "categories": self.categories_, "temperature": self.temperature_,
            "bias": self.bias_.tolist(), "best_iteration": self.best_iteration_,
            "n_train": self.n_train_, "n_calibration": self.n_calibration_,
            "params": {"n_estimators": self.n_estimators, "learning_rate": self.learning_rate,
                       "num_leaves": self.num_leaves,
                       "min_child_samples": self.min_child_samples,
                       "calibration_fraction": self.calibration_fraction,
                       "max_train_rows": self.max_train_rows,
                       "random_state": self.random_state},
        }

    def save(self, directory: str | Path, extra: dict[str, Any] | None = None) -> str:
        """Write the LightGBM text model(s) and JSON metadata; return the content hash.

        The hash (sha256 of the model texts and the metadata, first 16 hex chars) is stored
        in the metadata as ``hash`` and identifies the artifact in every prediction.
        """
        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        texts = {MODEL_FILE: self.booster_.model_to_string(num_iteration=self.best_iteration_)}
        if self.regressor_ is not None:
            texts[REGRESSOR_FILE] = self.regressor_.model_to_string()
        meta = {**self._meta(), **(extra or {})}
        h = hashlib.sha256()
        for name in sorted(texts):
            h.update(texts[name].encode())
        h.update(json.dumps(meta, sort_keys=True, default=str).encode())
        meta["hash"] = h.hexdigest()[:16]
        for name, text in texts.items():
            _atomic_write(d / name, text)
        _atomic_write(d / META_FILE, json.dumps(meta, indent=2, default=str))
        self.hash_ = meta["hash"]
        return self.hash_

    @classmethod
    def load(cls, directory: str | Path) -> PaymentModel:
        """Load a model saved by :meth:`save`; a clear error if the directory is not one."""
        d = Path(directory)
        meta_path = d / META_FILE
        if not meta_path.is_file():
            raise DunningError(f"{d}: no {META_FILE} found; expected a model directory written "
                               "by `dunning train-model --out DIR`")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise DunningError(f"{meta_path}: line {exc.lineno}: not valid JSON ({exc.msg})"
                               ) from None
        p = meta["params"]
        m = cls(very_late_days=meta["very_late_days"], features=meta["features"],
                n_estimators=p["n_estimators"], learning_rate=p["learning_rate"],
                num_leaves=p["num_leaves"], min_child_samples=p["min_child_samples"],
                calibration_fraction=p["calibration_fraction"],
                random_state=p["random_state"])
        m.classes_ = np.array(meta["classes"])
        m.features_ = list(meta["features"])
        m.categories_ = {k: list(v) for k, v in meta["categories"].items()}
        m.temperature_ = float(meta["temperature"])
        m.bias_ = np.array(meta["bias"], dtype=float)
        m.best_iteration_ = int(meta["best_iteration"])
        m.n_train_, m.n_calibration_ = meta["n_train"], meta["n_calibration"]
        m.booster_ = lgb.Booster(model_file=str(d / MODEL_FILE))
        m.best_iteration_ = m.booster_.current_iteration()
        reg = d / REGRESSOR_FILE
        m.regressor_ = lgb.Booster(model_file=str(reg)) if reg.is_file() else None
        m.hash_ = meta.get("hash")
        art = d / "artifact.json"  # a train-model artifact: its hash covers both models
        if art.is_file():
            m.hash_ = json.loads(art.read_text()).get("hash", m.hash_)
        m.meta_ = meta
        return m


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def three_class_proba(proba: np.ndarray) -> np.ndarray:
    """(n, 2) binary or (n, 3) model output -> (n, 3) on time / late / very late (a binary
    model, trained with ``very_late_days = 0``, has no very-late class: 0)."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape[1] == 3:
        return proba
    return np.column_stack([proba[:, 0], proba[:, 1], np.zeros(len(proba))])


def payment_probs_at_due(model: PaymentModel, tables: Any, invoice_ids: Sequence[str],
                         as_of: Any = None) -> np.ndarray:
    """(n, 3) probabilities of ``invoice_ids`` as of their due dates: the observation's
    ``payment_probs`` in training, evaluation and production alike.

    ``tables``: contract tables (dict of DataFrames) or a ``PreparedTables``; only facts
    dated before each invoice's reference day are used. ``as_of``: an invoice not yet due
    on ``as_of`` is scored as of ``as_of`` (its due date is still ahead).
    """
    p = tables if isinstance(tables, PreparedTables) else prepare_tables(tables)
    pos = pd.Index(p.invoice_id.astype(str)).get_indexer(np.asarray(invoice_ids, dtype=str))
    if (pos < 0).any():
        missing = np.asarray(invoice_ids)[pos < 0][0]
        raise DunningError(f"invoice {missing!r} is not in the tables")
    ref = p.due_day[pos]
    if as_of is not None:
        ref = np.minimum(ref, to_day(as_of))
    return three_class_proba(model.predict_proba(features_at(p, pos, ref)))
