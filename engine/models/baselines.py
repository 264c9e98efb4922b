"""Baselines the payment model must beat, fitted and scored on the same rows and split.

- :class:`LogisticBaseline`: multinomial logistic regression on the same features
  (median-imputed with missing indicators, standardised, categoricals one-hot).
- :class:`HistoryRuleBaseline`: "the customer pays like last time": the class of the
  customer's last settled invoice, turned into probabilities by the class frequencies
  that followed each last class in the training rows (Laplace-smoothed; customers without
  history get the overall class shares).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from engine.features import classes_for, label_classes
from engine.models.encoding import learn_categories
from engine.models.payment import select_features


class LogisticBaseline:
    """Logistic regression on the payment-model features. Fitted: ``pipeline_``, ``classes_``."""

    def __init__(self, very_late_days: int = 30, features: Sequence[str] | None = None,
                 C: float = 1.0, max_rows: int = 100_000, random_state: int = 0) -> None:
        self.very_late_days = very_late_days
        self.features = features
        self.C = C
        self.max_rows = max_rows
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, days_late: np.ndarray) -> LogisticBaseline:
        """Fit on (n, k) features and (n,) days late; at most ``max_rows`` random rows."""
        self.classes_ = np.array(classes_for(self.very_late_days))
        y = label_classes(days_late, self.very_late_days)
        self.features_ = list(self.features or select_features(X.columns))
        self.categorical_ = list(learn_categories(X, self.features_))
        num = [c for c in self.features_ if c not in self.categorical_]
        cat = self.categorical_
        pre = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True,
                                                keep_empty_features=True),
                                  StandardScaler()), num),
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                  OneHotEncoder(handle_unknown="ignore")), cat),
        ])
        self.pipeline_ = make_pipeline(pre, LogisticRegression(C=self.C, max_iter=300))
        idx = np.arange(len(X))
        if len(idx) > self.max_rows:
            idx = np.random.default_rng(self.random_state).choice(idx, self.max_rows,
                                                                  replace=False)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # BLAS threads fight over a shared machine's cores
            self.pipeline_.fit(self._frame(X.iloc[idx]), y[idx])
        self.seen_ = self.pipeline_.classes_
        return self

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X[self.features_].copy()
        for c in self.features_:
            if c in self.categorical_:
                out[c] = out[c].astype(object).where(out[c].notna(), "missing").astype(str)
            else:
                out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
        return out

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """(n, n_classes) probabilities (a class unseen at fit gets 0)."""
        p = np.zeros((len(X), len(self.classes_)))
        p[:, self.seen_] = self.pipeline_.predict_proba(self._frame(X))
        return p


class HistoryRuleBaseline:
    """P(class | class of the customer's last settled invoice), from training frequencies.

    Fitted: ``table_`` (n_classes + 1, n_classes): row k = after a last class k, last row
    = no history; ``classes_``.
    """

    def __init__(self, very_late_days: int = 30, alpha: float = 1.0) -> None:
        self.very_late_days = very_late_days
        self.alpha = alpha

    def _last_class(self, X: pd.DataFrame) -> np.ndarray:
        last = X["hist_last_days_late"].to_numpy(dtype=float)
        k = len(self.classes_)
        return np.where(np.isnan(last), k, label_classes(np.nan_to_num(last),
                                                         self.very_late_days))

    def fit(self, X: pd.DataFrame, days_late: np.ndarray) -> HistoryRuleBaseline:
        self.classes_ = np.array(classes_for(self.very_late_days))
        k = len(self.classes_)
        y = label_classes(days_late, self.very_late_days)
        counts = np.full((k + 1, k), self.alpha)
        np.add.at(counts, (self._last_class(X), y), 1.0)
        self.table_ = counts / counts.sum(axis=1, keepdims=True)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.table_[self._last_class(X)]
