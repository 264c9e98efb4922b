"""The payment-probability model: P(on time / late / very late) per invoice, calibrated.

A LightGBM classifier on the as-of features of :mod:`engine.features`, calibrated by
temperature-and-bias scaling of its raw scores on the LAST ``calibration_fraction`` of the
training rows in time order (that slice is also the early-stopping set; with ``refit`` the
trees are then refitted on every row with the early-stopped number of rounds). A LightGBM
regressor trained on the late rows predicts how many days late an invoice is if it is late
(``predict_days_late``); with ``payment_dates`` three quantile regressors (10 / 50 / 90 %)
predict the signed days late of every invoice, hence its payment date with an 80 % interval
(``predict_payment``).

The same class also holds the simple models a champion selection compares LightGBM with
(``estimator="logistic"``: logistic regression on the same features; ``"history"``: the
class of the customer's last settled invoice), so whichever wins ships behind one interface
(``fit`` / ``predict_proba`` / ``explain`` / ``save`` / ``load``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
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
from engine.files import atomic_write_text
from engine.models.encoding import encode, learn_categories

MODEL_FILE = "payment_model.txt"
REGRESSOR_FILE = "payment_days_late.txt"
META_FILE = "payment_model.json"
ESTIMATORS: tuple[str, ...] = ("lightgbm", "logistic", "history")
QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)  # an 80 % interval around the median
# A feature whose most frequent value (missing counts as a value) covers at least this share
# of the training rows carries no usable signal: ``drop_constant`` leaves it out.
NEAR_CONSTANT_SHARE = 0.999
LINEAR_MAX_ROWS = 100_000  # the logistic estimator fits on a seeded sample above this
# The day regressors (days late if late, the 10 / 50 / 90 % quantiles) fit on a seeded
# sample of at most this many rows: LightGBM's L1 and quantile objectives re-sort every
# leaf's residuals each round, so they cost several times a classifier round, and a median
# or a decile is estimated to a fraction of a day long before a million rows.
REGRESSOR_MAX_ROWS = 100_000


def near_constant_features(X: pd.DataFrame, features: Sequence[str],
                           share: float = NEAR_CONSTANT_SHARE) -> list[str]:
    """The ``features`` of ``X`` (n, k) whose top value (NaN included) covers >= ``share``."""
    out = []
    n = max(len(X), 1)
    for c in features:
        top = X[c].value_counts(dropna=False, sort=True)
        if len(top) <= 1 or top.iloc[0] / n >= share:
            out.append(c)
    return out


def horizon_weights(snapshot: np.ndarray) -> np.ndarray:
    """(n,) row weights giving every scoring horizon (``snapshot`` code: invoice date,
    between invoice and due, due + k) the same total weight, uniform within a horizon
    (mean weight 1).

    Uniform within a horizon keeps P(class | state at that horizon) what the data says
    (weights that sum to one per invoice would not: a long-late invoice has more snapshot
    rows, so its invoice-date row would weigh less than a prompt payer's and the
    invoice-date probabilities would lean to on time). Equal totals stop the many late
    snapshot rows after the due date from crowding out the invoice-date rows, where
    most questions are asked.
    """
    codes, inv, counts = np.unique(snapshot, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inv]
    return w * len(w) / w.sum()


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


def calibrate(raw: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None
               ) -> tuple[float, np.ndarray]:
    """Temperature a and per-class bias b (b[0] = 0) minimising the (weighted) log loss of
    softmax(a*raw+b)."""
    k = raw.shape[1]
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=float)

    def nll(theta: np.ndarray) -> float:
        b = np.r_[0.0, theta[1:]]
        ll = log_softmax(theta[0] * raw + b, axis=1)[np.arange(len(y)), y]
        return float(-(ll * w).sum() / w.sum()) if weight is not None else float(-ll.mean())

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
    estimator : ``lightgbm`` (default), ``logistic`` or ``history`` (see the module).
    refit : after early stopping, refit the trees on ALL rows (calibration included) with
        the early-stopped number of rounds; calibration stays the held-out one.
    drop_constant : leave out (near-)constant features (:data:`NEAR_CONSTANT_SHARE`);
        they are listed in ``dropped_features_``.
    payment_dates : also fit the 10 / 50 / 90 % quantile regressors of signed days late.
    random_state, n_jobs : seed and LightGBM threads (None: 1; OpenMP threads busy-wait and
        slow down ten-fold on a machine whose cores are shared; pass 2+ on a free machine).

    Fitted attributes: ``classes_`` (names), ``features_``, ``categories_``, ``booster_``
    (LightGBM only), ``linear_`` / ``history_`` (the simple estimators' parameters),
    ``regressor_`` (or None), ``quantile_models_`` (dict quantile -> booster, or empty),
    ``temperature_``, ``bias_``, ``best_iteration_``, ``n_train_``, ``n_calibration_``,
    ``dropped_features_``, ``threshold_`` (decision threshold on P(not on time), set by the
    caller, e.g. from time-series cross-validation; None = argmax).
    """

    def __init__(self, very_late_days: int = 30, features: Sequence[str] | None = None,
                 n_estimators: int = 150, learning_rate: float = 0.08, num_leaves: int = 15,
                 min_child_samples: int = 200, calibration_fraction: float = 0.25,
                 fit_days_late: bool = True, random_state: int = 0,
                 n_jobs: int | None = None, max_train_rows: int = 600_000,
                 estimator: str = "lightgbm", refit: bool = False,
                 drop_constant: bool = False, payment_dates: bool = False) -> None:
        if very_late_days < 0:
            raise DunningError(f"very_late_days must be >= 0, got {very_late_days}")
        if estimator not in ESTIMATORS:
            raise DunningError(f"estimator {estimator!r} is not one of {list(ESTIMATORS)}")
        self.estimator = estimator
        self.refit = refit
        self.drop_constant = drop_constant
        self.payment_dates = payment_dates
        self.threshold_: float | None = None
        # set by fit/load; defaults so a booster wrapped by engine.scale.train saves as before
        self.booster_: lgb.Booster | None = None
        self.linear_: dict[str, Any] | None = None
        self.history_: np.ndarray | None = None
        self.quantile_models_: dict[float, lgb.Booster] = {}
        self.dropped_features_: list[str] = []
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
            order: np.ndarray | None = None, weight: np.ndarray | None = None,
            censored: np.ndarray | None = None) -> PaymentModel:
        """Fit on feature rows ``X`` (n, k) and their days late (n,) (settle - due, days).

        ``order`` (n,) sorts rows in time (e.g. snapshot day numbers); the latest
        ``calibration_fraction`` of rows calibrate. Default: the given row order.
        ``weight`` (n,) optional row weights (e.g. :func:`horizon_weights`).
        ``censored`` (n,) bool: rows whose days late is only a lower bound (not yet paid);
        they train the classifier (their class is known) but not the day regressors.
        """
        days_late = np.asarray(days_late, dtype=float)
        if len(X) != len(days_late):
            raise ValueError(f"X has {len(X)} rows but days_late has {len(days_late)}")
        if len(X) < 20:
            raise DunningError(f"only {len(X)} invoices with a known outcome to train on; "
                               "need at least 20 (choose a later --as-of date or add data)")
        w = np.ones(len(X)) if weight is None else np.asarray(weight, dtype=float)
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
        features = list(self.features) if self.features is not None else \
            select_features(X.columns)
        self.dropped_features_ = []
        if self.estimator == "history":  # the rule reads the last class (and if overdue)
            features = ["hist_last_days_late",
                        *(["days_overdue"] if "days_overdue" in X.columns else [])]
        elif self.drop_constant:
            self.dropped_features_ = near_constant_features(X, features)
            features = [c for c in features if c not in self.dropped_features_]
            if not features and self.estimator != "history":
                raise DunningError("every feature is constant on the training rows; "
                                   "nothing to learn from (add data or fields)")
        self.features_ = features
        self.categories_ = learn_categories(X.iloc[tr], self.features_)
        M = encode(X, self.features_, self.categories_)
        self._on_time_booster_ = None
        self.booster_, self.linear_, self.history_ = None, None, None
        self.temperature_, self.bias_ = 1.0, np.zeros(len(self.classes_))
        if self.estimator == "lightgbm":
            self._fit_trees(M, y, w, tr, cal)
        elif self.estimator == "logistic":
            self._fit_linear(M, y, w, np.concatenate([tr, cal]))
        else:
            self._fit_history(M, y, w)
        self.n_train_, self.n_calibration_ = int(len(tr)), int(len(cal))
        self.regressor_ = None
        self.quantile_models_ = {}
        if self.fit_days_late or self.payment_dates:
            exact = np.ones(len(X), bool) if censored is None else ~np.asarray(censored, bool)
            self._fit_regressors(M, days_late, w, tr[exact[tr]], cal[exact[cal]])
        return self

    def _cat_idx(self) -> list[int]:
        return [j for j, c in enumerate(self.features_) if c in self.categories_]

    def _fit_trees(self, M: np.ndarray, y: np.ndarray, w: np.ndarray, tr: np.ndarray,
                   cal: np.ndarray) -> None:
        """Early stopping and calibration on ``cal``; with ``refit`` the trees are then
        refitted on tr + cal with the early-stopped number of rounds."""
        objective = "binary" if len(self.classes_) == 2 else "multiclass"
        dtrain = lgb.Dataset(M[tr], y[tr], weight=None if self._unweighted(w) else w[tr],
                             feature_name=self.features_, categorical_feature=self._cat_idx(),
                             free_raw_data=True)
        dcal = lgb.Dataset(M[cal], y[cal], weight=None if self._unweighted(w) else w[cal],
                           reference=dtrain)
        self.booster_ = lgb.train(
            self._params(objective), dtrain, num_boost_round=self.n_estimators,
            valid_sets=[dcal], callbacks=[lgb.early_stopping(30, verbose=False)])
        self.best_iteration_ = int(self.booster_.best_iteration or self.n_estimators)
        self.temperature_, self.bias_ = calibrate(self._raw(M[cal]), y[cal],
                                                   None if self._unweighted(w) else w[cal])
        if self.refit:
            rows = np.sort(np.concatenate([tr, cal]))
            dall = lgb.Dataset(M[rows], y[rows], weight=w[rows], feature_name=self.features_,
                               categorical_feature=self._cat_idx())
            self.booster_ = lgb.train(self._params(objective), dall,
                                      num_boost_round=self.best_iteration_)

    @staticmethod
    def _unweighted(w: np.ndarray) -> bool:
        """All weights one: fit without weights (bit-identical to the models fitted before
        weights existed, e.g. the demo's)."""
        return bool(np.all(w == 1.0))

    def _fit_linear(self, M: np.ndarray, y: np.ndarray, w: np.ndarray, rows: np.ndarray
                    ) -> None:
        """Logistic regression (L2, C = 1) on median-imputed, standardised numbers with
        missing-value indicators and one-hot categoricals, fitted on ``rows`` (a seeded
        sample of :data:`LINEAR_MAX_ROWS` of them when more: a linear model has converged
        long before, and lbfgs on millions of rows takes minutes)."""
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        if len(rows) > LINEAR_MAX_ROWS:
            rng = np.random.default_rng(self.random_state)
            rows = np.sort(rng.choice(rows, LINEAR_MAX_ROWS, replace=False))

        num = [j for j, c in enumerate(self.features_) if c not in self.categories_]
        sub = M[rows]
        with np.errstate(all="ignore"):
            med = [float(np.nanmedian(sub[:, j])) if np.isfinite(sub[:, j]).any() else 0.0
                   for j in num]
        lin: dict[str, Any] = {"num": num, "median": med,
                               "indicator": [j for j in num if np.isnan(sub[:, j]).any()]}
        lin["mean"], lin["scale"] = [], []
        Z = self._design(M[rows], lin, fitted=False)
        mean, scale = Z.mean(axis=0), Z.std(axis=0)
        scale[scale == 0] = 1.0
        lin["mean"], lin["scale"] = mean.tolist(), scale.tolist()
        Z = (Z - mean) / scale
        lr = LogisticRegression(C=1.0, max_iter=500)
        with threadpool_limits(1):  # BLAS threads fight over a shared machine's cores
            lr.fit(Z, y[rows], sample_weight=w[rows])
        k = len(self.classes_)
        coef = np.zeros((k, Z.shape[1]))
        intercept = np.full(k, -30.0)  # a class never seen in training: ~0 probability
        if len(lr.classes_) == 2:  # sklearn's binary form: one logit for the second class
            coef[lr.classes_[1]], intercept[lr.classes_[1]] = lr.coef_[0], lr.intercept_[0]
            intercept[lr.classes_[0]] = 0.0
        else:
            coef[lr.classes_], intercept[lr.classes_] = lr.coef_, lr.intercept_
        lin["coef"], lin["intercept"] = coef.tolist(), intercept.tolist()
        self.linear_ = lin
        self.best_iteration_ = 0

    def _design(self, M: np.ndarray, lin: Mapping[str, Any], fitted: bool = True
                ) -> np.ndarray:
        """(n, d) design matrix of the logistic model; ``groups_`` maps columns to features."""
        cols, groups = [], []
        for j, med in zip(lin["num"], lin["median"], strict=True):
            x = M[:, j]
            cols.append(np.where(np.isnan(x), med, x))
            groups.append(j)
        for j in lin["indicator"]:
            cols.append(np.isnan(M[:, j]).astype(float))
            groups.append(j)
        for j, c in enumerate(self.features_):
            if c in self.categories_:
                for code in range(len(self.categories_[c])):
                    cols.append((M[:, j] == code).astype(float))
                    groups.append(j)
        self.groups_ = np.array(groups, dtype=np.int64)
        Z = np.column_stack(cols) if cols else np.zeros((len(M), 0))
        if fitted:
            Z = (Z - np.asarray(lin["mean"])) / np.asarray(lin["scale"])
        return Z

    def _fit_history(self, M: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
        """P(class | class of the customer's last settled invoice, overdue yet?),
        Laplace-smoothed; ``history_`` (2 (n_classes + 1), n_classes): row = last class
        (n_classes = no history) + (n_classes + 1) if the invoice is past its due date at
        the row's date (an overdue invoice can no longer be on time; without that the rule
        would mix every scoring horizon)."""
        k = len(self.classes_)
        counts = np.full((2 * (k + 1), k), 1.0)
        np.add.at(counts, (self._history_row(M), y), w)
        self.history_ = counts / counts.sum(axis=1, keepdims=True)
        self.best_iteration_ = 0

    def _history_row(self, M: np.ndarray) -> np.ndarray:
        last = M[:, 0]  # features_ == ["hist_last_days_late"(, "days_overdue")]
        k = len(self.classes_)
        row = np.where(np.isnan(last), k, label_classes(np.nan_to_num(last),
                                                        self.very_late_days))
        if M.shape[1] > 1:
            row = row + (k + 1) * (np.nan_to_num(M[:, 1]) > 0)
        return row

    def _fit_regressors(self, M: np.ndarray, days_late: np.ndarray, w: np.ndarray,
                        tr: np.ndarray, cal: np.ndarray) -> None:
        """Days late if late (L1 on the late rows) and the signed days-late quantiles, each
        on at most :data:`REGRESSOR_MAX_ROWS` rows (a seeded sample, in the same proportion
        from the earlier rows ``tr`` and the later ``cal``; the selection recipe's models
        only: the pipeline's keep their regressor, bytes and hash)."""
        if self.refit or self.payment_dates:
            tr, cal = _cap_rows(tr, cal, REGRESSOR_MAX_ROWS, self.random_state)
        if self.fit_days_late:
            late_tr, late_cal = tr[days_late[tr] > 0], cal[days_late[cal] > 0]
            if len(late_tr) + len(late_cal) >= 20:
                self.regressor_ = self._boost(M, days_late, w, late_tr, late_cal, "l1", {})
        if self.payment_dates:  # the early-stopped fit itself: quantile boosting is slow
            for q in QUANTILES:
                self.quantile_models_[q] = self._boost(M, days_late, w, tr, cal, "quantile",
                                                       {"alpha": q}, refit=False)

    def _boost(self, M: np.ndarray, target: np.ndarray, w: np.ndarray, tr: np.ndarray,
               cal: np.ndarray, objective: str, extra: dict[str, Any], refit: bool = True
               ) -> lgb.Booster:
        """A LightGBM regressor. Old recipe: min(n_estimators, 300) rounds on tr + cal.
        With ``self.refit``: at most 300 rounds early-stopped on the later rows ``cal``
        (time order; a regressor with too many rounds overfits the tails), then (``refit``)
        refitted on tr + cal with that many rounds, or (not ``refit``) kept as it is."""
        plain = self._unweighted(w)
        params = {**self._params(objective), **extra}
        rows = np.concatenate([tr, cal])
        rounds = min(self.n_estimators, 300)
        if self.refit and len(tr) >= 20 and len(cal) >= 10:
            # day targets are noisier than classes: a slower rate, early stopping decides
            params["learning_rate"] = min(self.learning_rate, 0.03)
            dtr = lgb.Dataset(M[tr], target[tr], weight=None if plain else w[tr],
                              feature_name=self.features_, categorical_feature=self._cat_idx())
            dcal = lgb.Dataset(M[cal], target[cal], weight=None if plain else w[cal],
                               reference=dtr)
            probe = lgb.train(params, dtr, num_boost_round=rounds, valid_sets=[dcal],
                              callbacks=[lgb.early_stopping(30, verbose=False)])
            if not refit:
                return probe
            rounds = max(int(probe.best_iteration or rounds), 10)
        d = lgb.Dataset(M[rows], target[rows], weight=None if plain else w[rows],
                        feature_name=self.features_, categorical_feature=self._cat_idx())
        return lgb.train(params, d, num_boost_round=rounds)

    # -- prediction
    def _check_fitted(self) -> None:
        if not hasattr(self, "features_"):
            raise DunningError("the payment model is not fitted; call fit() or load() first")

    def _threads(self, n_rows: int) -> int:
        return self.n_jobs or 1

    def _raw(self, M: np.ndarray) -> np.ndarray:
        """(n, n_classes) logits before calibration."""
        if self.linear_ is not None:
            return self._design(M, self.linear_) @ np.asarray(self.linear_["coef"]).T \
                + np.asarray(self.linear_["intercept"])
        if self.history_ is not None:
            return np.log(self.history_[self._history_row(M)])
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
        """(n, n_classes) calibrated probabilities, columns in ``classes_`` order. ``X``:
        features, or the matrix :meth:`encode` made of them."""
        M = X if isinstance(X, np.ndarray) else self.encode(X)
        return softmax(self.temperature_ * self._raw(M) + self.bias_, axis=1)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """(n,) most likely class name."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def predict_days_late(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """(n,) predicted days late IF the invoice is late (median regression, days).
        ``X``: features, or the matrix :meth:`encode` made of them (shared by the models)."""
        self._check_fitted()
        if self.regressor_ is None:
            raise DunningError("this model was trained without the days-late regressor")
        M = X if isinstance(X, np.ndarray) else self.encode(X)
        return self.regressor_.predict(M, num_threads=self._threads(len(M)))

    def predict_payment(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """(n, 3) signed days late (settle - due; negative = early) at the 10 / 50 / 90 %
        quantiles: the median payment day and an 80 % interval (sorted per row, since
        separately fitted quantiles may cross). ``X``: features, or the matrix
        :meth:`encode` made of them (encode once, then :meth:`predict_proba` and this)."""
        self._check_fitted()
        if not getattr(self, "quantile_models_", None):
            raise DunningError("this model was trained without payment dates; retrain with "
                               "`dunning train-model` (payment dates are on by default)")
        M = X if isinstance(X, np.ndarray) else self.encode(X)
        q = np.column_stack([self.quantile_models_[a].predict(
            M, num_threads=self._threads(len(M))) for a in QUANTILES])
        return np.sort(q, axis=1)

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
        if self.booster_ is None:
            risk = self._simple_contributions(M)
        elif len(self.classes_) == 2:
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
                texts[r].append(f"{'+' if e > 0 else '-'} {describe_factor(name, v)}")
        out["factors"] = ["; ".join(t) for t in texts]
        return out

    def _simple_contributions(self, M: np.ndarray) -> np.ndarray:
        """(n, k) risk contributions (logit units, + = towards NOT on time) of the simple
        estimators: the logistic model's coefficient x standardised value summed per
        feature, on the on-time logit minus the mean of the other classes' logits (binary:
        exactly the log-odds of late, up to the intercept); the history rule's
        first feature (the last invoice's lateness) carries the whole log-odds of not paying
        on time."""
        if self.history_ is not None:
            logp = np.log(self.history_[self._history_row(M)])
            risk = np.zeros((len(M), len(self.features_)))
            risk[:, 0] = np.log1p(-np.exp(logp[:, 0])) - logp[:, 0]  # one factor: the rule
            return risk
        Z = self._design(M, self.linear_)
        coef = np.asarray(self.linear_["coef"])
        on_time = coef[0] - coef[1:].mean(axis=0)  # on time against the other classes
        per_col = -Z * on_time
        risk = np.zeros((len(M), len(self.features_)))
        np.add.at(risk.T, self.groups_, per_col.T)
        return risk

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
            **self._new_meta(),
        }

    def _new_meta(self) -> dict[str, Any]:
        """Keys of the options added with the champion selection, written only when set, so
        a model fitted with the old defaults keeps its bytes and hash."""
        out: dict[str, Any] = {}
        if self.estimator != "lightgbm":
            out["estimator"] = self.estimator
        if self.linear_ is not None:
            out["linear"] = self.linear_
        if self.history_ is not None:
            out["history"] = self.history_.tolist()
        if self.refit:
            out["refit"] = True
        if self.drop_constant:
            out["dropped_features"] = self.dropped_features_
        if self.quantile_models_:
            out["quantiles"] = list(QUANTILES)
        if self.threshold_ is not None:
            out["threshold"] = self.threshold_
        return out

    def save(self, directory: str | Path, extra: dict[str, Any] | None = None) -> str:
        """Write the LightGBM text model(s) and JSON metadata; return the content hash.

        The hash (sha256 of the model texts and the metadata, first 16 hex chars) is stored
        in the metadata as ``hash`` and identifies the artifact in every prediction.
        """
        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        texts = {}
        if self.booster_ is not None:
            texts[MODEL_FILE] = self.booster_.model_to_string(num_iteration=self.best_iteration_)
        if self.regressor_ is not None:
            texts[REGRESSOR_FILE] = self.regressor_.model_to_string()
        for q, booster in self.quantile_models_.items():
            texts[_quantile_file(q)] = booster.model_to_string()
        meta = {**self._meta(), **(extra or {})}
        h = hashlib.sha256()
        for name in sorted(texts):
            h.update(texts[name].encode())
        h.update(json.dumps(meta, sort_keys=True, default=str).encode())
        meta["hash"] = h.hexdigest()[:16]
        for name, text in texts.items():
            atomic_write_text(d / name, text)
        atomic_write_text(d / META_FILE, json.dumps(meta, indent=2, default=str))
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
                random_state=p["random_state"], estimator=meta.get("estimator", "lightgbm"),
                refit=bool(meta.get("refit", False)),
                drop_constant="dropped_features" in meta,
                payment_dates="quantiles" in meta)
        m.classes_ = np.array(meta["classes"])
        m.features_ = list(meta["features"])
        m.categories_ = {k: list(v) for k, v in meta["categories"].items()}
        m.temperature_ = float(meta["temperature"])
        m.bias_ = np.array(meta["bias"], dtype=float)
        m.best_iteration_ = int(meta["best_iteration"])
        m.n_train_, m.n_calibration_ = meta["n_train"], meta["n_calibration"]
        m.booster_, m.linear_, m.history_ = None, meta.get("linear"), None
        m._on_time_booster_ = None
        if "history" in meta:
            m.history_ = np.array(meta["history"], dtype=float)
        if m.estimator == "lightgbm":
            m.booster_ = lgb.Booster(model_file=str(d / MODEL_FILE))
            m.best_iteration_ = m.booster_.current_iteration()
        reg = d / REGRESSOR_FILE
        m.regressor_ = lgb.Booster(model_file=str(reg)) if reg.is_file() else None
        m.quantile_models_ = {float(q): lgb.Booster(model_file=str(d / _quantile_file(q)))
                              for q in meta.get("quantiles", [])}
        m.dropped_features_ = list(meta.get("dropped_features", []))
        m.threshold_ = meta.get("threshold")
        m.hash_ = meta.get("hash")
        art = d / "artifact.json"  # a train-model artifact: its hash covers both models
        if art.is_file():
            m.hash_ = json.loads(art.read_text()).get("hash", m.hash_)
        m.meta_ = meta
        return m


def _cap_rows(tr: np.ndarray, cal: np.ndarray, max_rows: int, seed: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """``tr`` and ``cal`` (sorted row positions) thinned by one seeded Bernoulli sample to
    about ``max_rows`` together, each kept sorted; unchanged when they are fewer."""
    n = len(tr) + len(cal)
    if n <= max_rows:
        return tr, cal
    keep = np.random.default_rng(seed + 1).random(n) < max_rows / n
    return tr[keep[: len(tr)]], cal[keep[len(tr):]]


def _quantile_file(q: float) -> str:
    return f"payment_days_q{round(q * 100):02d}.txt"




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


# Plain-words templates of the reasons `predict` shows ({v}: the readable value).
_FACTOR_TEXT: dict[str, str] = {
    "amount": "amount {v}",
    "amount_rel_customer": "amount {v} x the customer's average",
    "terms_days": "{v} days payment terms",
    "age_days": "issued {v} days ago",
    "paid_share": "{v} of the amount already paid",
    "n_reminders": "{v} reminders sent",
    "days_since_last_action": "last reminder {v} days ago",
    "tenure_days": "customer for {v} days",
    "hist_n_issued": "{v} earlier invoices",
    "hist_n_paid": "{v} earlier invoices paid",
    "hist_n_late": "{v} earlier invoices paid late",
    "hist_share_late": "{v} of earlier invoices paid late",
    "hist_mean_days_late": "paid {v} days late on average",
    "hist_mean_days_late_last3": "last 3 invoices paid {v} days late on average",
    "hist_days_late_trend": "lateness trend {v} days (last 3 vs average)",
    "hist_last_days_late": "last invoice paid {v} days late",
    "hist_max_days_late_last5": "at most {v} days late on the last 5 invoices",
    "hist_mean_days_to_pay": "pays {v} days after the invoice date on average",
    "hist_mean_amount": "average invoice {v}",
    "hist_days_since_last_payment": "last payment {v} days ago",
    "hist_n_open": "{v} other invoices open",
    "hist_open_amount": "{v} open on other invoices",
    "hist_share_disputed": "{v} of earlier invoices disputed",
}
_SHARES = ("paid_share", "hist_share_late", "hist_share_disputed")
_FLAGS = {"disputed_flag": ("disputed", "not disputed"),
          "dispute_open": ("dispute open", "no open dispute")}


def readable_number(v: float) -> str:
    """A number for people: 1,040 not 1.04e+03; 2.5 not 2.5000; integers without decimals."""
    if abs(v) >= 100 or float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:,.2f}".rstrip("0").rstrip(".")


def describe_factor(name: str, value: object) -> str:
    """One reason in plain words: ``("hist_mean_days_late", nan)`` -> "no payment history",
    ``("days_overdue", 1040.0)`` -> "1,040 days overdue"."""
    missing = value is None or (isinstance(value, float) and np.isnan(value))
    if missing:
        if name.startswith("hist_"):
            return "no payment history"
        return f"{name.replace('_', ' ')} unknown"
    if not isinstance(value, (int, float, np.number)) or isinstance(value, bool):
        return f"{name.replace('_', ' ')}: {value}"
    v = float(value)
    if name in _FLAGS:
        return _FLAGS[name][0 if v else 1]
    if name == "days_overdue":
        return f"{readable_number(v)} days overdue" if v > 0 else \
            "due today" if v == 0 else f"due in {readable_number(-v)} days"
    if name in ("hist_last_days_late", "hist_mean_days_late") and v < 0:
        what = "last invoice" if name == "hist_last_days_late" else "on average"
        return f"paid {readable_number(-v)} days early ({what})"
    shown = f"{v:.0%}" if name in _SHARES else readable_number(v)
    template = _FACTOR_TEXT.get(name)
    return template.format(v=shown) if template else f"{name.replace('_', ' ')} {shown}"
