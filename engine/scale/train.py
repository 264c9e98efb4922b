"""Distributed training of the payment model with ``lightgbm.dask``.

1. Rows: a Dask DataFrame with one partition per customer shard (``dd.from_map`` over
   :func:`~engine.scale.shards.read_shard`); each partition builds the point-in-time
   snapshot rows of its customers' invoices with ``engine.features.build_training_frame``
   (the shard holds each customer's full history, so the history features are exact).
2. Global vocabularies of the categorical features (a small reduction) and the calibration
   cut: the latest ``calibration_fraction`` of rows by snapshot day (from the counts per day).
3. ``lightgbm.dask.DaskLGBMClassifier`` trains on the earlier rows where they lie (one
   LightGBM worker per Dask worker, data never gathered).
4. The later rows (a seeded sample of at most ``max_calibration_rows``) are gathered to fit
   the temperature/bias calibration exactly as :class:`PaymentModel` does.

The result is a regular :class:`~engine.models.payment.PaymentModel` (same artifact files;
``dunning predict`` works on it with or without a cluster). Differences to the local fit:
no early stopping (``lightgbm.dask`` has none; ``n_estimators`` rounds are used), no
``max_train_rows`` sampling (all rows), no days-late regressor, no hazard model, and the
random mid-term snapshot day of each invoice is drawn per shard (seed + shard).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.features import build_training_frame, classes_for, label_classes, prepare_tables
from engine.models.encoding import encode, learn_categories
from engine.models.payment import PaymentModel, _atomic_write, _calibrate, select_features
from engine.scale.shards import ParquetExport, read_shard

if TYPE_CHECKING:
    from distributed import Client

    from engine.models.training import TrainResult

LABEL, REF_DAY, INVOICE_DAY, SNAPSHOT = "__label", "__ref_day", "__invoice_day", "__snapshot"
ROW_INFO = (LABEL, REF_DAY, INVOICE_DAY, SNAPSHOT)


@dataclass
class DistributedTrainConfig:
    """Options of distributed training (LightGBM settings as :class:`PaymentModel`)."""

    very_late_days: int = 30
    include_fields: tuple[str, ...] = ()
    exclude_fields: tuple[str, ...] = ()
    n_estimators: int = 150
    learning_rate: float = 0.08
    num_leaves: int = 15
    min_child_samples: int = 200
    calibration_fraction: float = 0.25
    max_calibration_rows: int = 150_000
    seed: int = 0
    n_shards: int | None = None


def shard_training_rows(shard: int, export: ParquetExport, n_shards: int, known_at: dt.date,
                        as_of: dt.date, very_late_days: int, seed: int,
                        since: dt.date | None = None) -> pd.DataFrame:
    """Snapshot rows of one shard: features + ``__label`` (class index) + ``__ref_day``."""
    tables = read_shard(export, shard, n_shards, known_at)
    if len(tables["invoices"]) == 0:
        return pd.DataFrame()
    frame = build_training_frame(prepare_tables(tables), as_of, very_late_days,
                                 since=since, seed=seed + shard)
    X = frame.X.copy()
    X[LABEL] = label_classes(frame.days_late, very_late_days)
    X[REF_DAY] = frame.ref_day
    X[INVOICE_DAY] = frame.invoice_day
    X[SNAPSHOT] = frame.snapshot
    return X


def _encode_part(part: pd.DataFrame, features: list[str],
                 categories: dict[str, list[str]]) -> pd.DataFrame:
    out = pd.DataFrame(encode(part, features, categories), columns=features, index=part.index)
    for c in ROW_INFO:
        out[c] = part[c].to_numpy(np.int64)
    return out


def _uniques(part: pd.DataFrame, cols: list[str]) -> pd.Series:
    """One-element Series holding {column: set of text values} of a partition."""
    return pd.Series([{c: set(part[c].dropna().astype(str)) for c in cols if c in part}])


def _day_counts(rows: Any, col: str) -> pd.Series:
    """Rows per day number of ``col``, sorted by day (summed over partitions)."""
    counts = rows[col].map_partitions(lambda s: s.value_counts(), meta=(col, np.int64)
                                      ).compute()
    return counts.groupby(level=0).sum().sort_index()


@dataclass
class DistributedFit:
    """A fitted model and what it was fitted on."""

    model: PaymentModel
    train_rows: int
    calibration_rows: int
    n_shards: int
    calibration_cut_day: int


def training_rows(client: Client, export: ParquetExport, known_at: dt.date,
                  cfg: DistributedTrainConfig, n_shards: int) -> Any:
    """Persisted Dask DataFrame of the snapshot rows known at the end of ``known_at``."""
    import dask
    import dask.dataframe as dd

    with dask.config.set({"dataframe.convert-string": False}):
        rows = dd.from_map(shard_training_rows, range(n_shards), export=export,
                           n_shards=n_shards, known_at=known_at,
                           as_of=known_at + dt.timedelta(days=1),
                           very_late_days=cfg.very_late_days, seed=cfg.seed,
                           enforce_metadata=False)
        return client.persist(rows)


def fit_distributed(client: Client, export: ParquetExport, known_at: dt.date,
                    cfg: DistributedTrainConfig | None = None, rows: Any = None
                    ) -> DistributedFit:
    """Fit the payment model on every invoice with a known class at the end of ``known_at``
    (``rows``: the :func:`training_rows` of that day, if already built)."""
    import dask
    from lightgbm.dask import DaskLGBMClassifier

    from engine.scale.cluster import n_workers
    from engine.scale.score import default_shards

    cfg = cfg or DistributedTrainConfig()
    n = cfg.n_shards or default_shards(export, n_workers(client))
    own_rows = rows is None
    if own_rows:
        rows = training_rows(client, export, known_at, cfg, n)
    with dask.config.set({"dataframe.convert-string": False}):
        feats = [c for c in rows.columns if c not in ROW_INFO]
        features = select_features(feats, cfg.include_fields, cfg.exclude_fields)
        sample = rows.partitions[0].compute()
        cat_cols = list(learn_categories(sample, features))
        # small reductions, per partition then on the client (no shuffle)
        uniques = rows.map_partitions(_uniques, cat_cols, meta=(None, object)).compute()
        categories = {c: sorted({v for part in uniques for v in part.get(c, ())})
                      for c in cat_cols}
        per_day = _day_counts(rows, REF_DAY)
        cum = per_day.cumsum().to_numpy()
        if len(cum) == 0 or cum[-1] < 20:
            from engine.errors import DunningError

            raise DunningError(f"only {int(cum[-1]) if len(cum) else 0} rows with a known "
                               f"outcome at {known_at}; need at least 20 to train")
        cut = int(per_day.index[np.searchsorted(cum, cum[-1] * (1 - cfg.calibration_fraction))])
        enc = rows.map_partitions(_encode_part, features, categories)
        train = enc[enc[REF_DAY] < cut]
        cal = enc[enc[REF_DAY] >= cut]
        n_cal = int(cum[-1] - per_day[per_day.index < cut].sum())
        frac = min(1.0, cfg.max_calibration_rows / max(n_cal, 1))
        cal_frame = (cal.sample(frac=frac, random_state=cfg.seed) if frac < 1 else cal
                     ).compute()
        X_tr = train[features].to_dask_array(lengths=True)
        y_tr = train[LABEL].to_dask_array(lengths=True)
        cat_idx = [j for j, c in enumerate(features) if c in categories]
        clf = DaskLGBMClassifier(
            client=client, n_estimators=cfg.n_estimators, learning_rate=cfg.learning_rate,
            num_leaves=cfg.num_leaves, min_child_samples=cfg.min_child_samples,
            colsample_bytree=0.8, subsample=0.9, subsample_freq=1, reg_lambda=1.0,
            random_state=cfg.seed, deterministic=True, force_row_wise=True,
            max_cat_to_onehot=8, verbose=-1)
        clf.fit(X_tr, y_tr, feature_name=features, categorical_feature=cat_idx)
        n_train = int(len(y_tr))
    if own_rows:
        client.cancel(rows)
    model = _as_payment_model(clf.booster_, features, categories, cfg)
    y_cal = cal_frame[LABEL].to_numpy(np.int64)
    model.temperature_, model.bias_ = _calibrate(
        model._raw(cal_frame[features].to_numpy(np.float64)), y_cal)
    model.n_train_, model.n_calibration_ = n_train, int(len(y_cal))
    return DistributedFit(model=model, train_rows=n_train, calibration_rows=len(y_cal),
                          n_shards=n, calibration_cut_day=cut)


def _test_proba(part: pd.DataFrame, model: PaymentModel, split: int) -> pd.DataFrame:
    test = part[(part[INVOICE_DAY] >= split) & (part[SNAPSHOT] == -1)] if len(part) else part
    if len(test) == 0:
        return pd.DataFrame({LABEL: pd.Series([], dtype=np.int64),
                             **{c: pd.Series([], dtype=float) for c in model.classes_}})
    proba = model.predict_proba(test)
    out = pd.DataFrame(proba, columns=list(model.classes_))
    out.insert(0, LABEL, test[LABEL].to_numpy(np.int64))
    return out


def evaluate_distributed(client: Client, export: ParquetExport, known_at: dt.date,
                         cfg: DistributedTrainConfig, rows: Any, progress: Any = None
                         ) -> dict[str, Any]:
    """Time-ordered evaluation as :func:`engine.models.training.evaluate_payment` (LightGBM
    only): split at the 80 % quantile of the invoice dates with a known class, fit on the
    rows known before it, log loss etc. on later invoices at their invoice date."""
    import dask

    from engine.features import from_day
    from engine.models.metrics import classification_metrics
    say = progress or (lambda _m: None)
    with dask.config.set({"dataframe.convert-string": False}):
        days = _day_counts(rows[rows[SNAPSHOT] == -1], INVOICE_DAY)
    cum = days.cumsum().to_numpy()
    split = int(days.index[np.searchsorted(cum, cum[-1] * 0.8, side="right")])
    say(f"evaluation: fitting on outcomes known before {from_day(split)}")
    fit = fit_distributed(client, export, from_day(split - 1), cfg)
    meta = _test_proba(pd.DataFrame(columns=[*rows.columns]), fit.model, split)
    with dask.config.set({"dataframe.convert-string": False}):
        test = rows.map_partitions(_test_proba, fit.model, split, meta=meta).compute()
    classes = tuple(fit.model.classes_)
    proba = test[list(classes)].to_numpy(np.float64)
    return {"split_date": str(from_day(split)), "as_of": str(known_at + dt.timedelta(days=1)),
            "train_rows": fit.train_rows, "test_invoices": int(len(test)),
            "models": {"lightgbm_dask": {"at_invoice_date": classification_metrics(
                proba, test[LABEL].to_numpy(np.int64), classes)}}}


def train_artifact_distributed(client: Client, export: ParquetExport, out_dir: str | Path,
                               known_at: dt.date, cfg: DistributedTrainConfig | None = None,
                               progress: Any = None) -> TrainResult:
    """``dunning train-model --cluster``: evaluate on a time split, refit on everything
    known at the end of ``known_at``, save the artifact (same files as the local run, no
    hazard model) with a model card."""
    from engine.features import from_day, to_day
    from engine.models.training import TrainResult
    from engine.scale.cluster import n_workers
    from engine.scale.score import default_shards

    cfg = cfg or DistributedTrainConfig()
    say = progress or (lambda _m: None)
    n = cfg.n_shards or default_shards(export, n_workers(client))
    cfg = replace(cfg, n_shards=n)
    say(f"building snapshot rows in {n} customer shards")
    rows = training_rows(client, export, known_at, cfg, n)
    evaluation = evaluate_distributed(client, export, known_at, cfg, rows, say)
    say("training the payment model on all history (lightgbm.dask)")
    fit = fit_distributed(client, export, known_at, cfg, rows=rows)
    client.cancel(rows)
    model = fit.model
    period = {"as_of": str(from_day(to_day(known_at) + 1)), "training_rows": fit.train_rows}
    out = Path(out_dir)
    payment_hash = model.save(out, extra={"data_period": period, "trained_on": "dask",
                                          "metrics": evaluation["models"]["lightgbm_dask"]})
    card = {"model": "payment_model", "payment_hash": payment_hash, "hash": payment_hash,
            "trained_on": {"cluster": str(client.scheduler.address),
                           "workers": n_workers(client), "shards": n},
            "classes": model.classes_.tolist(), "very_late_days": cfg.very_late_days,
            "features": model.features_, "data_period": period,
            "calibration_params": {"temperature": model.temperature_,
                                   "bias": model.bias_.tolist()},
            "evaluation": evaluation}
    _atomic_write(out / "model_card.json", json.dumps(card, indent=2, default=str))
    _atomic_write(out / "artifact.json", json.dumps(
        {"hash": payment_hash, "payment_hash": payment_hash, "hazard_hash": None}, indent=2))
    return TrainResult(out_dir=out, hash=payment_hash, card=card)


def _as_payment_model(booster: Any, features: list[str], categories: dict[str, list[str]],
                      cfg: DistributedTrainConfig) -> PaymentModel:
    """Wrap a trained booster as a :class:`PaymentModel` (calibration set by the caller)."""
    m = PaymentModel(cfg.very_late_days, features=features, n_estimators=cfg.n_estimators,
                     learning_rate=cfg.learning_rate, num_leaves=cfg.num_leaves,
                     min_child_samples=cfg.min_child_samples,
                     calibration_fraction=cfg.calibration_fraction, fit_days_late=False,
                     random_state=cfg.seed)
    m.classes_ = np.array(classes_for(cfg.very_late_days))
    m.threads_ = 1
    m.features_, m.categories_ = list(features), categories
    m.booster_ = booster
    m.best_iteration_ = int(booster.current_iteration())
    m.regressor_ = None
    m._on_time_booster_ = None
    return m
