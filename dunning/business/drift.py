"""Drift monitoring: has the data moved away from what the payment model was trained on?

Two signals, each with a threshold that raises a :class:`DriftWarning`:

- feature shift: the population stability index (PSI) of each feature between the
  training period (reference) and a recent window,
  ``PSI = sum_b (a_b - e_b) * ln(a_b / e_b)`` over bins ``b`` (deciles of the reference for a
  number, categories for a string, missing values as a bin of their own), with shares
  floored at 1e-4. Rule of thumb: < 0.1 stable, 0.1-0.2 watch, > 0.2 warning.
- calibration drift: the expected calibration error (ECE) of P(on time) against what
  happened, per time window: ``ECE = sum_b n_b / n * |mean(p)_b - mean(y)_b|`` over 10
  equal-width probability bins; above 0.05 -> warning (a 5-point miscalibration changes the
  expected cash per bucket noticeably), but only when the ECE also exceeds what a perfectly
  calibrated model would show on that window's size 95 % of the time (ECE is biased upwards
  on small samples: about 0.04 on 800 invoices). Windows with fewer than ``min_window``
  invoices are reported but not judged.

:func:`drift_report` runs both against the store and a saved model (used by
``dunning drift`` and the HTML report).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from engine.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# Calendar features differ between any two periods by construction (a winter window has
# other months than a summer one); their PSI is reported, never judged.
SEASONAL_FEATURES: tuple[str, ...] = (
    "invoice_month", "due_weekday", "due_days_to_month_end", "due_days_to_quarter_end",
    "holidays_in_terms",
)
# Counts that grow with a customer's age by construction: a later window has more history
# than the training period even when nothing changed. They are compared as rates: issued
# invoices per 30 days of customer tenure, paid per issued, late per paid.
GROWING_COUNTS: dict[str, tuple[str, float]] = {
    "hist_n_issued": ("tenure_days", 30.0),
    "hist_n_paid": ("hist_n_issued", 1.0),
    "hist_n_late": ("hist_n_paid", 1.0),
}
PSI_WATCH = 0.1
PSI_WARNING = 0.2
ECE_WARNING = 0.05
_FLOOR = 1e-4
CALIBRATION_COLUMNS: tuple[str, ...] = (
    "window_start", "n", "mean_p", "observed", "ece", "ece_noise", "threshold", "status",
)


class DriftWarning(UserWarning):
    """The payment model's inputs or calibration drifted past a threshold."""


# --------------------------------------------------------------------------- feature PSI
def population_stability_index(
    reference: pd.Series | np.ndarray, recent: pd.Series | np.ndarray, n_bins: int = 10
) -> float:
    """PSI between two samples of one feature (see module docstring). >= 0; 0 = same shares."""
    import numpy as np
    import pandas as pd

    ref, new = pd.Series(reference), pd.Series(recent)
    if ref.notna().sum() == 0 and new.notna().sum() == 0:
        return 0.0
    numeric = pd.api.types.is_numeric_dtype(ref) and not pd.api.types.is_bool_dtype(ref)
    if numeric:
        values = ref.dropna().to_numpy(float)
        edges = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1])) \
            if len(values) else np.array([])

        def shares(s: pd.Series) -> np.ndarray:
            x = s.to_numpy(float)
            nan = np.isnan(x)
            counts = np.bincount(np.searchsorted(edges, x[~nan], side="right"),
                                 minlength=len(edges) + 1).astype(float)
            return np.append(counts, nan.sum()) / max(len(x), 1)
    else:
        cats = sorted(set(ref.dropna().astype(str)) | set(new.dropna().astype(str)))

        def shares(s: pd.Series) -> np.ndarray:
            counts = s.dropna().astype(str).value_counts().reindex(cats, fill_value=0)
            return np.append(counts.to_numpy(float), s.isna().sum()) / max(len(s), 1)

    e = np.maximum(shares(ref), _FLOOR)
    a = np.maximum(shares(new), _FLOOR)
    return float(((a - e) * np.log(a / e)).sum())


def as_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every :data:`GROWING_COUNTS` feature divided by its denominator (x its
    scale; NaN where the denominator is missing or 0). A count whose denominator column
    is absent stays as it is."""
    import numpy as np

    out = frame.copy()
    for name, (denominator, scale) in GROWING_COUNTS.items():
        if name in frame.columns and denominator in frame.columns:
            d = frame[denominator].to_numpy(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[name] = np.where(d > 0, frame[name].to_numpy(float) * scale / d, np.nan)
    return out


def compared_as(name: str, columns: list[str]) -> str:
    """How :func:`feature_psi` compares ``name``: its value or a rate of it."""
    if name in GROWING_COUNTS and GROWING_COUNTS[name][0] in columns:
        d, scale = GROWING_COUNTS[name]
        return f"per {scale:g} days of {d}" if scale != 1.0 else f"per {d}"
    return "value"


def psi_status(value: float) -> str:
    return "warning" if value > PSI_WARNING else "watch" if value > PSI_WATCH else "ok"


def feature_psi(
    reference: pd.DataFrame, recent: pd.DataFrame, features: list[str] | None = None,
    n_bins: int = 10, not_judged: tuple[str, ...] = SEASONAL_FEATURES,
) -> pd.DataFrame:
    """PSI per feature, largest first. Columns: feature, psi, compared_as, status.

    ``status`` is ok / watch / warning, or ``seasonal`` for the ``not_judged`` features.
    Counts that grow with customer age (:data:`GROWING_COUNTS`) are compared as rates
    (``compared_as``), so a model trained yesterday shows no drift in them.
    """
    import pandas as pd

    features = features or [c for c in reference.columns if c in recent.columns]
    missing = [f for f in features if f not in recent.columns or f not in reference.columns]
    if missing:
        raise InputError(f"drift: feature(s) {', '.join(missing)} missing from one period")
    cols = [c for c in reference.columns if c in recent.columns]
    ref_r, new_r = as_rates(reference), as_rates(recent)
    rows = [(f, population_stability_index(ref_r[f], new_r[f], n_bins), compared_as(f, cols))
            for f in features]
    out = pd.DataFrame(rows, columns=["feature", "psi", "compared_as"])
    out["status"] = out["psi"].map(psi_status).where(~out["feature"].isin(not_judged),
                                                       "seasonal")
    return out.sort_values("psi", ascending=False, ignore_index=True)


# ----------------------------------------------------------------------- calibration
def expected_calibration_error(p: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """ECE of probabilities ``p`` (n,) against 0/1 outcomes ``y`` (n,), equal-width bins.

    This is the calibration of one class's probability (P(on time)), which is what the
    cash forecast uses; ``engine.models.metrics.expected_calibration_error`` is the top-label
    ECE of the multi-class model (a different quantity).
    """
    import numpy as np

    p, y = np.asarray(p, float), np.asarray(y, float)
    if len(p) != len(y):
        raise InputError(f"calibration: {len(p)} probabilities but {len(y)} outcomes")
    if len(p) == 0:
        return float("nan")
    idx = np.minimum((p * n_bins).astype(int), n_bins - 1)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y, minlength=n_bins)
    return float(np.abs(sum_p - sum_y).sum() / len(p))


def ece_noise_level(p: np.ndarray, n_bins: int = 10, quantile: float = 0.95,
                    n_sim: int = 200, seed: int = 0) -> float:
    """The ECE a perfectly calibrated model would exceed with probability 1 - ``quantile``.

    ECE is biased upwards on small samples (about 0.04 for 800 invoices in 10 bins even
    when every probability is right), so a fixed threshold alone warns on noise. Outcomes
    are drawn as ``y ~ Bernoulli(p)`` ``n_sim`` times (seeded) and the ``quantile`` of
    their ECE is returned: an observed ECE above it is unlikely to be sampling noise.
    """
    import numpy as np

    p = np.asarray(p, float)
    if len(p) == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    sims = [expected_calibration_error(p, (rng.random(len(p)) < p).astype(float), n_bins)
            for _ in range(n_sim)]
    return float(np.quantile(sims, quantile))


def calibration_by_window(
    p: np.ndarray, y: np.ndarray, dates: pd.Series | np.ndarray, freq: str = "MS",
    min_window: int = 50, judged_from: date | None = None,
) -> pd.DataFrame:
    """ECE per calendar window (``freq`` a pandas period alias start, default month start).

    Columns: window_start, n, mean_p, observed, ece, ece_noise (:func:`ece_noise_level`
    of the window), threshold (``max(ECE_WARNING, ece_noise)``), status (ok / warning /
    too few / training). A window warns when its ECE exceeds both 0.05 and its own noise
    level. Windows starting before ``judged_from`` (the model's training period: in-sample,
    so not drift) are reported with status ``training`` and never warn.
    """
    import pandas as pd

    frame = pd.DataFrame({"p": p, "y": y, "date": pd.to_datetime(dates)})
    frame["window_start"] = frame["date"].dt.to_period(freq[0]).dt.start_time
    rows = []
    for i, (start, part) in enumerate(frame.groupby("window_start", sort=True)):
        probs = part["p"].to_numpy()
        ece = expected_calibration_error(probs, part["y"].to_numpy())
        noise = ece_noise_level(probs, seed=i)
        threshold = max(ECE_WARNING, noise)
        status = ("training" if judged_from is not None and start.date() < judged_from
                  else "too few" if len(part) < min_window
                  else "warning" if ece > threshold else "ok")
        rows.append((start.date(), len(part), part["p"].mean(), part["y"].mean(), ece, noise,
                     threshold, status))
    return pd.DataFrame(rows, columns=CALIBRATION_COLUMNS)


# ---------------------------------------------------------------------------- report
@dataclass
class DriftReport:
    """Feature PSI and calibration per window, and the warnings they raise."""

    features: pd.DataFrame
    calibration: pd.DataFrame
    reference_period: tuple[str, str]
    recent_period: tuple[str, str]
    model: str = ""
    messages: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.messages:
            self.messages = self._messages()

    def _messages(self) -> list[str]:
        out = [
            f"feature {r.feature}: PSI {r.psi:.3f} > {PSI_WARNING} (distribution shifted)"
            for r in self.features.itertuples() if r.status == "warning"
        ]
        out += [
            f"calibration {r.window_start}: ECE {r.ece:.3f} > {r.threshold:.3f} "
            f"(predicted {r.mean_p:.2f} on time, observed {r.observed:.2f})"
            for r in self.calibration.itertuples() if r.status == "warning"
        ]
        return out

    @property
    def drifted(self) -> bool:
        return bool(self.messages)

    def warn(self) -> None:
        """Issue one :class:`DriftWarning` per message."""
        for message in self.messages:
            warnings.warn(message, DriftWarning, stacklevel=2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "reference_period": list(self.reference_period),
            "recent_period": list(self.recent_period),
            "drifted": self.drifted,
            "warnings": list(self.messages),
            "features": self.features.to_dict(orient="records"),
            "calibration": [
                {**r, "window_start": str(r["window_start"])}
                for r in self.calibration.to_dict(orient="records")
            ],
        }


def drift_between(
    reference: pd.DataFrame, recent: pd.DataFrame, features: list[str],
    p_on_time: np.ndarray | None = None, on_time: np.ndarray | None = None,
    dates: pd.Series | None = None, freq: str = "MS", min_window: int = 50, model: str = "",
    reference_period: tuple[str, str] = ("", ""), recent_period: tuple[str, str] = ("", ""),
    judged_from: date | None = None,
) -> DriftReport:
    """A :class:`DriftReport` from plain inputs: two feature frames and, optionally, the
    model's P(on time) for invoices with known outcome (``on_time`` 0/1) dated by ``dates``."""
    import pandas as pd

    calibration = (
        calibration_by_window(p_on_time, on_time, dates, freq, min_window, judged_from)
        if p_on_time is not None and on_time is not None and dates is not None
        else pd.DataFrame(columns=list(CALIBRATION_COLUMNS))
    )
    return DriftReport(
        features=feature_psi(reference, recent, features),
        calibration=calibration,
        reference_period=reference_period,
        recent_period=recent_period,
        model=model,
    )


def thresholds() -> dict[str, float]:
    """The warning thresholds, as shown in the report."""
    return {"psi_watch": PSI_WATCH, "psi_warning": PSI_WARNING, "ece_warning": ECE_WARNING}
