"""Train, evaluate (time-ordered) and save the model artifact behind `dunning train-model`.

The artifact directory holds::

    payment_model.txt / payment_days_late.txt / payment_model.json   (PaymentModel.save)
    hazard_model.txt / hazard_model.json                               (HazardModel.save)
    model_card.json / model_card.md                                    (this module)
    artifact.json   {"hash": ..., "payment_hash": ..., "hazard_hash": ...}

Evaluation: the invoices whose class is known at ``as_of`` are split at the 80 % quantile
of their invoice dates. Models (LightGBM + baselines) are fitted on the rows known at the
split date and scored on the invoices issued on or after it ("future period"). The saved
model is then refitted on everything known at ``as_of``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.calendar import from_day, to_day
from engine.errors import DunningError
from engine.features import (
    PreparedTables,
    TrainingFrame,
    build_hazard_frame,
    build_training_frame,
    class_known,
    classes_for,
    frame_known_at,
    label_classes,
    prepare_tables,
)
from engine.files import atomic_write_text
from engine.models.baselines import HistoryRuleBaseline, LogisticBaseline
from engine.models.hazard import HazardModel
from engine.models.metrics import calibration_curve, classification_metrics
from engine.models.payment import (
    PaymentModel,
    horizon_weights,
    near_constant_features,
    select_features,
)
from engine.models.selection import cross_validate

Progress = Callable[[str], None]


ROW_DESIGNS: tuple[str, ...] = ("snapshots", "weighted", "invoice")
# Candidate name in the selection -> PaymentModel estimator (names as in the evaluation).
CANDIDATES: dict[str, str] = {"lightgbm": "lightgbm", "logistic_regression": "logistic",
                              "history_rule": "history"}


@dataclass
class TrainConfig:
    """Options of `dunning train-model` (see docs/payment-model.md).

    The defaults are the pipeline's (``dunning demo``, ``retrain``, ``what-if``): LightGBM
    on unweighted snapshot rows, no selection. :meth:`recommended` is what ``dunning
    train-model`` and ``evaluate-model`` use: one row per invoice per scoring horizon, each
    horizon weighted alike (``rows="weighted"``, :func:`horizon_weights`; ``"invoice"``:
    the invoice-date row only), trees
    refitted on all rows after early stopping, (near-)constant features left out, the
    champion of LightGBM / logistic regression / the history rule chosen by time-series
    cross-validation (``cv_folds`` folds), payment-date quantile regressors.
    """

    very_late_days: int = 30
    include_fields: Sequence[str] = ()
    exclude_fields: Sequence[str] = ()
    test_fraction: float = 0.2
    hazard: bool = True
    seed: int = 0
    payment_params: dict[str, Any] = field(default_factory=dict)
    hazard_params: dict[str, Any] = field(default_factory=dict)
    rows: str = "snapshots"
    champion: bool = False
    refit: bool = False
    drop_constant: bool = False
    payment_dates: bool = False
    cv_folds: int = 4
    cv_max_rows: int = 100_000

    def __post_init__(self) -> None:
        if self.rows not in ROW_DESIGNS:
            raise DunningError(f"rows {self.rows!r} is not one of {list(ROW_DESIGNS)}")

    @classmethod
    def recommended(cls, **overrides: Any) -> TrainConfig:
        """The selection recipe (see the class docstring); ``overrides`` win."""
        base: dict[str, Any] = {"rows": "weighted", "champion": True, "refit": True,
                                "drop_constant": True, "payment_dates": True}
        return cls(**{**base, **overrides})


@dataclass
class TrainingRows:
    """The rows a model is fitted on (from a :class:`TrainingFrame` and a row design):
    X (n, k), days late, time order, weight (or None), invoice and due day per row."""

    X: pd.DataFrame
    days_late: np.ndarray
    ref_day: np.ndarray
    weight: np.ndarray | None
    invoice_day: np.ndarray
    due_day: np.ndarray
    invoice_pos: np.ndarray
    snapshot: np.ndarray
    censored: np.ndarray | None = None


def training_rows(p: PreparedTables, as_day: int, cfg: TrainConfig,
                  frame: TrainingFrame | None = None) -> TrainingRows:
    """Training rows known at ``as_day`` under ``cfg.rows``: every snapshot (unweighted),
    every snapshot with :func:`horizon_weights`, or the invoice-date row only. ``frame``:
    the snapshot rows at ``as_day`` or a later date (same seed), cut down rather than
    computed again (:func:`frame_known_at`)."""
    f = as_of_frame(p, as_day, cfg, frame)
    keep = np.ones(len(f.X), bool) if cfg.rows != "invoice" else f.snapshot == -1
    pos = f.invoice_pos[keep]
    weight = horizon_weights(f.snapshot[keep]) if cfg.rows == "weighted" else None
    return TrainingRows(X=f.X[keep].reset_index(drop=True), days_late=f.days_late[keep],
                        ref_day=f.ref_day[keep], weight=weight,
                        invoice_day=f.invoice_day[keep], due_day=p.due_day[pos],
                        invoice_pos=pos, snapshot=f.snapshot[keep],
                        censored=f.censored[keep])


def as_of_frame(p: PreparedTables, as_day: int, cfg: TrainConfig,
                frame: TrainingFrame | None = None) -> TrainingFrame:
    """``build_training_frame`` at ``as_day`` with ``cfg``'s seed (``stable_draw``), cut out
    of ``frame`` (built so at ``as_day`` or later) when given."""
    if frame is None:
        return build_training_frame(p, from_day(as_day), cfg.very_late_days, seed=cfg.seed,
                                    stable_draw=True)
    return frame_known_at(p, frame, from_day(as_day), cfg.very_late_days)


def candidate_models(cfg: TrainConfig, features: Sequence[str], n_rows: int,
                     final: bool = False) -> dict[str, Callable[[], PaymentModel]]:
    """Factories of the models the selection compares (``final``: with the regressors)."""
    params = {**auto_params(n_rows), **cfg.payment_params}

    def make(estimator: str) -> Callable[[], PaymentModel]:
        return lambda: PaymentModel(
            cfg.very_late_days, features=features, estimator=estimator, refit=cfg.refit,
            drop_constant=cfg.drop_constant, random_state=cfg.seed, fit_days_late=final,
            payment_dates=final and cfg.payment_dates,
            **(params if estimator == "lightgbm" else {}))

    return {name: make(est) for name, est in CANDIDATES.items()}


RECIPE_MAX_TRAIN_ROWS = 300_000
LARGE_ROWS = 200_000  # from here on the recipe takes the larger learning rate


def auto_params(n_rows: int) -> dict[str, Any]:
    """LightGBM settings of the selection recipe, scaled to the data (``n_rows``: all the
    training rows): leaves of at least 1 % of the rows (20 to 200), small trees, up to 400
    rounds cut by early stopping, fitted on a seeded sample of at most
    :data:`RECIPE_MAX_TRAIN_ROWS` rows (calibrated on at most a quarter as many): seven-leaf
    trees with 200-row leaves have no use for more, and it keeps a million-invoice ledger
    (3M snapshot rows) within the 5-minute budget. Learning rate 0.08, or 0.15 from
    :data:`LARGE_ROWS` rows: there the early-stopped model has a third of the trees (79
    rounds instead of 196 on 150k synthetic invoices, held-out log loss 0.5836 vs 0.5828,
    accuracy 0.753 vs 0.752), which scoring a million open invoices needs to stay near 10 s.
    One rule for every ledger, not tuned to one."""
    return {"n_estimators": 400, "learning_rate": 0.15 if n_rows >= LARGE_ROWS else 0.08,
            "num_leaves": 7, "min_child_samples": int(np.clip(n_rows // 100, 20, 200)),
            "max_train_rows": RECIPE_MAX_TRAIN_ROWS}


def _cv_sample(invoice_pos: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Row positions of a seeded sample of whole invoices with at most ~``max_rows`` rows
    (all rows when fewer): 4 folds x 3 models on a million-invoice ledger would take long,
    and the ranking of the candidates is stable well before that."""
    if len(invoice_pos) <= max_rows:
        return np.arange(len(invoice_pos))
    inv = np.unique(invoice_pos)
    take = np.random.default_rng(seed).random(len(inv)) < max_rows / len(invoice_pos)
    return np.flatnonzero(np.isin(invoice_pos, inv[take]))


def select_champion(p: PreparedTables, as_day: int, cfg: TrainConfig,
                    progress: Progress | None = None, frame: TrainingFrame | None = None
                    ) -> tuple[PaymentModel, dict[str, Any], TrainingRows]:
    """Time-series CV of the candidates on the rows known at ``as_day``; the champion (lowest
    log loss) refitted on all of them with the CV threshold. Returns (model, selection
    dict, rows). ``frame``: as :func:`training_rows`."""
    rows = training_rows(p, as_day, cfg, frame)
    features = select_features(rows.X.columns, cfg.include_fields, cfg.exclude_fields)
    if progress:
        progress(f"time-series cross-validation of {len(CANDIDATES)} models on "
                 f"{len(rows.X):,} rows")
    cv = _cv_sample(rows.invoice_pos, cfg.cv_max_rows, cfg.seed)
    # the candidates' settings follow the whole training set, so the CV compares the
    # recipe that is shipped (a sample of it only speeds the comparison up)
    sel = cross_validate(candidate_models(cfg, features, len(rows.X)), rows.X.iloc[cv],
                         rows.days_late[cv], rows.ref_day[cv], rows.invoice_day[cv],
                         rows.due_day[cv], cfg.very_late_days,
                         None if rows.weight is None else rows.weight[cv], cfg.cv_folds)
    sel["cv_rows"] = int(len(cv))
    for fold in sel["folds"]:
        fold["cut_date"] = str(from_day(fold.pop("cut_day")))
    if progress:
        progress(f"refitting {sel['champion']} on {len(rows.X):,} rows with the day "
                 "regressors")
    model = candidate_models(cfg, features, len(rows.X), final=True)[sel["champion"]]()
    model.fit(rows.X, rows.days_late, rows.ref_day, rows.weight, rows.censored)
    model.threshold_ = sel["threshold"]
    sel["rows"] = cfg.rows
    # what the data offers no signal in, whichever model won (the history rule reads two)
    sel["dropped_features"] = near_constant_features(rows.X, features) \
        if cfg.drop_constant else []
    return model, sel, rows


def time_split_day(p: PreparedTables, as_day: int, very_late_days: int,
                   test_fraction: float) -> int:
    """Day at the (1 - test_fraction) quantile of the invoice dates with a known class."""
    days = np.sort(p.invoice_day[class_known(p, as_day, very_late_days)])
    if len(days) < 50:
        raise DunningError(f"only {len(days)} invoices have a known outcome before "
                           f"{from_day(as_day)}; need at least 50 to train and evaluate "
                           "(choose a later --as-of date or add history)")
    return int(days[int(len(days) * (1.0 - test_fraction))])


def evaluate_payment(p: PreparedTables, as_day: int, cfg: TrainConfig,
                     progress: Progress | None = None, frame: TrainingFrame | None = None
                     ) -> dict[str, Any]:
    """Time-ordered evaluation of LightGBM vs baselines; returns the metrics dict.

    With ``cfg.champion`` the three models are the selection's candidates, fitted on the
    rows of ``cfg.rows`` (weights included); else the pipeline's LightGBM and the plain
    baselines on every snapshot row. ``frame``: the snapshot rows at ``as_day`` with
    ``cfg.seed`` (built when None); the test rows and, with ``cfg.champion``, the training
    rows are cut out of it.
    """
    split = time_split_day(p, as_day, cfg.very_late_days, cfg.test_fraction)
    if cfg.champion:
        test = frame if frame is not None else as_of_frame(p, as_day, cfg)
    else:
        test = build_training_frame(p, from_day(as_day), cfg.very_late_days, since=None)
    sel = test.invoice_day >= split
    Xte, dl_te, snap = test.X[sel], test.days_late[sel], test.snapshot[sel]
    if cfg.champion:
        train = training_rows(p, split, cfg, test)
        features = select_features(train.X.columns, cfg.include_fields, cfg.exclude_fields)
        models: dict[str, Any] = {n: make() for n, make in candidate_models(
            cfg, features, len(train.X)).items()}
    else:
        frame = build_training_frame(p, from_day(split), cfg.very_late_days)
        train = TrainingRows(X=frame.X, days_late=frame.days_late, ref_day=frame.ref_day,
                             weight=None, invoice_day=frame.invoice_day,
                             due_day=p.due_day[frame.invoice_pos],
                             invoice_pos=frame.invoice_pos, snapshot=frame.snapshot)
        features = select_features(train.X.columns, cfg.include_fields, cfg.exclude_fields)
        models = {
            "lightgbm": PaymentModel(cfg.very_late_days, features=features,
                                     fit_days_late=False, random_state=cfg.seed,
                                     **cfg.payment_params),
            "logistic_regression": LogisticBaseline(cfg.very_late_days, features=features,
                                                    random_state=cfg.seed),
            "history_rule": HistoryRuleBaseline(cfg.very_late_days),
        }
    if progress:
        progress(f"evaluation: {len(train.X):,} training rows before {from_day(split)}, "
                 f"{len(Xte):,} test rows after")
    classes = classes_for(cfg.very_late_days)
    y = label_classes(dl_te, cfg.very_late_days)
    at_issue = snap == -1
    out: dict[str, Any] = {
        "split_date": str(from_day(split)), "as_of": str(from_day(as_day)),
        "train_rows": int(len(train.X)), "test_rows": int(len(Xte)),
        "test_invoices": int(at_issue.sum()), "models": {},
    }
    for name, model in models.items():
        if isinstance(model, PaymentModel):
            model.fit(train.X, train.days_late, train.ref_day, train.weight)
        else:
            model.fit(train.X, train.days_late)
        proba = model.predict_proba(Xte)
        out["models"][name] = {
            "at_invoice_date": classification_metrics(proba[at_issue], y[at_issue], classes),
            "all_snapshots": classification_metrics(proba, y, classes),
        }
        if name == "lightgbm":
            out["calibration"] = calibration_curve(proba[at_issue], y[at_issue], classes)
            imp = model.booster_.feature_importance("gain")
            order = np.argsort(-imp)
            out["feature_importance"] = [
                {"feature": model.features_[j], "gain_share": float(imp[j] / imp.sum())}
                for j in order if imp[j] > 0]
    ll = {k: v["at_invoice_date"]["log_loss"] for k, v in out["models"].items()}
    out["lightgbm_beats_baselines_on_log_loss"] = bool(
        ll["lightgbm"] < min(ll["logistic_regression"], ll["history_rule"]))
    return out


def empirical_survival(d_over: np.ndarray, event: np.ndarray, days: int) -> np.ndarray:
    """Kaplan-Meier S(d) for d = 0..days, P(unpaid at the start of day d after due), from
    invoice-day rows at risk (days overdue and paid-that-day, (m,) each, every row kept):
    the risk set of day d is the rows of day d, so a day left out of the rows (an open
    dispute, :func:`engine.features.in_dispute`) is left out of both estimates alike."""
    at_risk = np.bincount(d_over.astype(np.int64), minlength=days + 1)[:days]
    events = np.bincount(d_over.astype(np.int64), weights=event, minlength=days + 1)[:days]
    rate = np.divide(events, at_risk, out=np.zeros(days), where=at_risk > 0)
    return np.concatenate([[1.0], np.cumprod(1.0 - rate)])


def evaluate_hazard(p: PreparedTables, as_day: int, cfg: TrainConfig, split: int,
                    days: int = 90) -> dict[str, Any]:
    """Fit the hazard model before ``split``; on invoices due later compare the mean
    predicted survival (with their logged reminders and calendar) against Kaplan-Meier,
    overall and per segment, at days 0..``days`` after due; plus weighted log loss."""
    model = HazardModel(random_state=cfg.seed, **cfg.hazard_params)
    model.fit_tables(p, from_day(split))
    test = build_hazard_frame(p, from_day(as_day), horizon_days=days, max_rows=10**9,
                              max_invoices=50_000, seed=cfg.seed)
    due = p.due_day[test.rows]
    keep = due >= split
    # with the customer response the static rows need the history: the test frame keeps
    # every row (max_rows 10**9), so its invoices are the rows' unique ones
    static = model.static_matrix(test.static if model.response_ is None else
                                 model.static_frame(p, np.unique(test.rows)))
    h = model.predict_hazard(static[test.static_index[keep]],
                             {k: v[keep] for k, v in test.dynamic.items()})
    rows, d_over, ev = test.rows[keep], (test.day - due)[keep], test.event[keep]
    if len(rows) == 0:
        return {"note": "no invoices due after the split date"}
    from sklearn.metrics import log_loss

    base = float(ev.mean())
    out: dict[str, Any] = {
        "test_invoice_days": int(len(rows)), "test_payments": int(ev.sum()),
        "log_loss": float(log_loss(ev, np.clip(h, 1e-9, 1 - 1e-9), labels=[0, 1])),
        "log_loss_constant_rate": float(log_loss(ev, np.full(len(ev), base), labels=[0, 1])),
        "survival": {},
    }
    seg = p.customers["segment"].astype(object).fillna("unknown").astype(str).to_numpy()
    seg_rows = seg[p.cust[rows]]
    for name in ["all", *sorted(set(seg_rows))]:
        m = np.ones(len(rows), bool) if name == "all" else seg_rows == name
        # predicted survival per invoice: cumulative product of (1 - h) over its days
        pred = _mean_predicted_survival(rows[m], d_over[m], h[m], days)
        r_inv = np.unique(rows[m])
        km = empirical_survival(d_over[m], ev[m], days)
        pts = [0, 7, 14, 30, 45, 60, 90]
        out["survival"][name] = {
            "invoices": int(len(r_inv)),
            "days": pts, "predicted": [float(pred[d]) for d in pts if d <= days],
            "kaplan_meier": [float(km[d]) for d in pts if d <= days],
            "max_abs_gap": float(np.abs(pred - km).max()),
        }
    return out


def _mean_predicted_survival(rows: np.ndarray, d_over: np.ndarray, h: np.ndarray,
                             days: int) -> np.ndarray:
    """Average over invoices of prod_{d' < d}(1 - h) with the risk-set weighting of KM:
    the hazard of day d averaged over the invoices still at risk at d, chained."""
    s = np.ones(days + 1)
    for d in range(days):
        at = d_over == d
        s[d + 1] = s[d] * (1.0 - (h[at].mean() if at.any() else 0.0))
    return s


@dataclass
class TrainResult:
    out_dir: Path
    hash: str
    card: dict[str, Any]


def train_artifact(tables: Mapping[str, pd.DataFrame] | PreparedTables, out_dir: str | Path,
                   as_of: object | None = None, cfg: TrainConfig | None = None,
                   progress: Progress | None = None) -> TrainResult:
    """Evaluate on a time split, refit on all history known at ``as_of``, save everything.

    ``as_of`` defaults to the day after the latest date in the data.
    """
    cfg = cfg or TrainConfig()
    p = tables if isinstance(tables, PreparedTables) else prepare_tables(tables)
    as_day = p.last_day + 1 if as_of is None else to_day(as_of)
    if as_day <= int(p.invoice_day.min()):
        raise DunningError(f"as-of date {from_day(as_day)} is before any data (the first "
                           f"invoice is dated {from_day(int(p.invoice_day.min()))})")
    say = progress or (lambda _msg: None)
    say("evaluating on a time-ordered split")
    # the recipe's rows at as_of, built once: the held-out test rows, the rows before the
    # split and the final training rows are all cut out of it (features are as of each row)
    frame = as_of_frame(p, as_day, cfg) if cfg.champion else None
    evaluation = evaluate_payment(p, as_day, cfg, progress, frame)
    selection: dict[str, Any] | None = None
    if cfg.champion:
        say("choosing the payment model by time-series cross-validation")
        model, selection, full = select_champion(p, as_day, cfg, progress, frame)
    else:
        say("training the payment model on all history")
        full = build_training_frame(p, from_day(as_day), cfg.very_late_days)
        features = select_features(full.X.columns, cfg.include_fields, cfg.exclude_fields)
        model = PaymentModel(cfg.very_late_days, features=features, random_state=cfg.seed,
                             **cfg.payment_params)
        model.fit(full.X, full.days_late, full.ref_day)
    period = {"first_invoice": str(from_day(int(p.invoice_day.min()))),
              "as_of": str(from_day(as_day)), "training_rows": int(len(full.X)),
              "training_invoices": int(len(np.unique(full.invoice_pos)))}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payment_hash = model.save(out, extra={"data_period": period,
                                          "metrics": evaluation["models"]["lightgbm"]})
    card: dict[str, Any] = {
        "model": "payment_model", "payment_hash": payment_hash,
        "classes": model.classes_.tolist(), "very_late_days": cfg.very_late_days,
        "features": model.features_, "excluded_fields": list(cfg.exclude_fields),
        "included_fields": list(cfg.include_fields), "data_period": period,
        "calibration_params": {"temperature": model.temperature_,
                               "bias": model.bias_.tolist()},
        "evaluation": evaluation,
    }
    if selection is not None:
        card["estimator"] = model.estimator
        card["selection"] = selection
        card["dropped_features"] = selection["dropped_features"]
        card["threshold"] = model.threshold_
    if cfg.hazard:
        say("training the daily hazard model")
        split = time_split_day(p, as_day, cfg.very_late_days, cfg.test_fraction)
        card["hazard_evaluation"] = evaluate_hazard(p, as_day, cfg, split)
        hazard = HazardModel(random_state=cfg.seed, **cfg.hazard_params).fit_tables(
            p, from_day(as_day))
        card["hazard_hash"] = hazard.save(out)
        card["hazard"] = {"static_features": hazard.static_features_,
                          "dynamic_features": hazard.dynamic_features_,
                          "rows": hazard.n_rows_, "payments": hazard.n_events_}
    return write_artifact_files(out, card, payment_hash)


def write_artifact_files(out: Path, card: dict[str, Any], payment_hash: str) -> TrainResult:
    """Seal an artifact directory whose models are saved: the artifact hash (payment hash
    + hazard hash, so either model changing changes it) into ``card``, then
    ``model_card.json``, ``model_card.md`` and ``artifact.json``, each written atomically.
    The one writer for local and distributed (``engine.scale.train``) training."""
    h = hashlib.sha256(payment_hash.encode())
    h.update(str(card.get("hazard_hash", "")).encode())
    card["hash"] = h.hexdigest()[:16]
    atomic_write_text(out / "model_card.json", json.dumps(card, indent=2, default=str))
    atomic_write_text(out / "model_card.md", render_card(card))
    atomic_write_text(out / "artifact.json", json.dumps(
        {"hash": card["hash"], "payment_hash": payment_hash,
         "hazard_hash": card.get("hazard_hash")}, indent=2))
    return TrainResult(out_dir=out, hash=card["hash"], card=card)


SIMPLE_MODELS = ("logistic_regression", "history_rule")


def _holdout_verdict(ev: Mapping[str, Any]) -> str:
    """Which model won each held-out metric, with the margin on log loss (a 0.002 win is
    said to be one)."""
    rows = {n: m["at_invoice_date"] for n, m in ev["models"].items()}
    parts = []
    for metric, sense in (("log_loss", min), ("accuracy", max), ("macro_f1", max),
                          ("brier", min)):
        best = sense(rows, key=lambda n, metric=metric: rows[n][metric])
        parts.append(f"{metric.replace('_', ' ')}: {best}")
    ll = sorted(r["log_loss"] for r in rows.values())
    return (f"Best on the held-out period - {'; '.join(parts)} (log-loss margin to the "
            f"runner-up {ll[1] - ll[0]:.4f}).")


def _selection_lines(card: Mapping[str, Any]) -> list[str]:
    """The champion, the metric each candidate won in time-series CV, and a plain note when
    a simple model won."""
    sel = card.get("selection")
    if not sel:
        return []
    lines = ["", "## Champion chosen by time-series cross-validation", "",
             f"{len(sel['folds'])} expanding folds ordered by invoice date (cuts "
             f"{', '.join(f['cut_date'] for f in sel['folds'])}); training rows of a fold "
             "are dated before its cut with the outcome known at the cut; rows: "
             f"{sel['rows']}. Shipped: **{sel['champion']}** (lowest log loss); decision "
             f"threshold on P(not on time) {sel['threshold']:.2f} (best late F1 out of fold).",
             "", "| model | log loss | accuracy | late F1 (0.5) | late F1 (threshold) | "
             "Brier | AUC late |", "|---|---|---|---|---|---|---|"]
    for name, m in sel["models"].items():
        lines.append(f"| {name} | {m['log_loss']:.4f} | {m['accuracy']:.3f} | "
                     f"{m['late_f1']:.3f} | {m['late_f1_at_threshold']:.3f} | "
                     f"{m['brier']:.4f} | {m['auc_late']:.3f} |")
    won = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sel["winners"].items())
    lines += ["", f"Winners: {won}."]
    simple = sorted({v for v in sel["winners"].values() if v in SIMPLE_MODELS})
    if simple:
        metrics = ", ".join(k.replace("_", " ") for k, v in sel["winners"].items()
                            if v in SIMPLE_MODELS)
        lines.append(f"A simple model ({', '.join(simple)}) won on {metrics}: on this "
                     "ledger the extra complexity of LightGBM does not pay there.")
    return lines


def render_card(card: Mapping[str, Any]) -> str:
    """The model card as Markdown (the JSON twin is the machine-readable source)."""
    ev = card["evaluation"]
    lines = [
        f"# Payment model card `{card['hash']}`", "",
        f"- classes: {', '.join(card['classes'])} (very late = more than "
        f"{card['very_late_days']} days after due)",
        f"- data: invoices from {card['data_period']['first_invoice']} known at "
        f"{card['data_period']['as_of']}; {card['data_period']['training_invoices']:,} "
        f"invoices, {card['data_period']['training_rows']:,} snapshot rows",
        f"- evaluation: trained on outcomes known before {ev['split_date']}, tested on "
        f"{ev['test_invoices']:,} invoices issued from {ev['split_date']} "
        f"(predicted at their invoice date)",
        f"- features ({len(card['features'])}): {', '.join(card['features'])}",
        *([f"- {len(card['dropped_features'])} constant or near-constant features left "
           "out (listed in model_card.json)"] if card.get("dropped_features") else []),
        *_selection_lines(card),
        "", "## Held-out future period (at invoice date)", "",
        "| model | log loss | accuracy | macro F1 | Brier | ECE | " +
        " | ".join(f"AUC {c}" for c in card["classes"]) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(card["classes"]),
    ]
    for name, m in ev["models"].items():
        r = m["at_invoice_date"]
        aucs = " | ".join("-" if r["auc"][c] is None else f"{r['auc'][c]:.3f}"
                          for c in card["classes"])
        lines.append(f"| {name} | {r['log_loss']:.4f} | {r['accuracy']:.3f} | "
                     f"{r['macro_f1']:.3f} | {r['brier']:.4f} | {r['ece']:.4f} | {aucs} |")
    lines += ["", _holdout_verdict(ev), "", "## Feature importance of LightGBM (share of "
              "gain, top 15)", ""]
    lines += [f"- {f['feature']}: {f['gain_share']:.3f}" for f in ev["feature_importance"][:15]]
    if "hazard_evaluation" in card and "survival" in card["hazard_evaluation"]:
        he = card["hazard_evaluation"]
        lines += ["", "## Daily hazard model", "",
                  f"Log loss on later invoice-days {he['log_loss']:.4f} (constant rate "
                  f"{he['log_loss_constant_rate']:.4f}). Mean predicted vs Kaplan-Meier "
                  "survival (P unpaid d days after due):", "",
                  "| segment | invoices | " + " | ".join(
                      f"d{d}" for d in he["survival"]["all"]["days"]) + " |",
                  "|---|---|" + "---|" * len(he["survival"]["all"]["days"])]
        for seg, s in he["survival"].items():
            cells = " | ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(s["predicted"],
                                                                  s["kaplan_meier"], strict=True))
            lines.append(f"| {seg} | {s['invoices']} | {cells} |")
    lines += ["", "Calibration curve data: `model_card.json` -> evaluation.calibration.", ""]
    return "\n".join(lines)
