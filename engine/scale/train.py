"""Distributed training of the payment model with ``lightgbm.dask``, out of core.

Feature rows are built where the data lies and only a bounded, seeded sample of them is
kept, so memory is bounded by one shard per worker plus the sample whatever the data size,
and the cost of building features stays linear in the data.

1. A cheap DuckDB pass over the invoice Parquet counts the invoices with a known class per
   invoice day: the evaluation split (the local rule, :func:`time_split_day`).
2. One task per *customer shard* (:func:`shard_rows`) reads its customers' full history
   (:func:`~engine.scale.shards.read_shard`), builds the point-in-time snapshot rows with the
   one feature pipeline (``engine.features.build_training_frame``; the shard holds each
   customer's whole history, so the features are exact), draws a seeded uniform key per row
   and keeps only the rows with the smallest keys (``keep`` rows), the held-out test rows
   (at-issue rows issued from the split, a seeded Bernoulli sample of at most
   ``max_test_rows`` in all), a seeded sample of whole customers for the hazard model, and
   small summaries (rows per day, category vocabularies). The shard's other rows are freed.
3. The client reduces the summaries: the calibration cut (the latest
   ``calibration_fraction`` of ALL rows by snapshot day) and key thresholds such that
   "every row with key <= t" is a uniform sample of at most ``max_train_rows`` training rows
   (and ``max_calibration_rows`` calibration rows): the same seeded-sample idea as the local
   trainer's ``max_train_rows``.
4. ``lightgbm.dask.DaskLGBMClassifier`` (and a ``DaskLGBMRegressor`` for days late) fit the
   sampled training rows where they lie; the calibration sample is gathered to fit the
   temperature/bias exactly as :class:`PaymentModel` does.

The result is a regular :class:`~engine.models.payment.PaymentModel` (same artifact files;
``dunning predict`` works on it with or without a cluster). Differences to the local fit (in
the model card's ``trained_on``): no early stopping (``lightgbm.dask`` has none;
``n_estimators`` rounds), the sample is drawn by per-shard keys (seed + shard) rather than
one global draw, and the random mid-term snapshot day of each invoice is drawn per shard.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.calendar import from_day, to_day
from engine.features import build_training_frame, classes_for, label_classes, prepare_tables
from engine.models.encoding import encode, learn_categories
from engine.models.payment import PaymentModel, calibrate, select_features
from engine.scale.shards import ParquetExport, build_shard_layout, read_shard

if TYPE_CHECKING:
    from distributed import Client, Future

    from engine.models.training import TrainResult

LABEL, REF_DAY, INVOICE_DAY, SNAPSHOT = "__label", "__ref_day", "__invoice_day", "__snapshot"
DAYS_LATE, KEY = "__days_late", "__key"
ROW_INFO = (LABEL, REF_DAY, INVOICE_DAY, SNAPSHOT, DAYS_LATE, KEY)


@dataclass
class DistributedTrainConfig:
    """Options of distributed training (LightGBM settings as :class:`PaymentModel`).

    ``max_train_rows`` / ``max_calibration_rows``: the seeded sample of snapshot rows fitted
    / used for calibration (the local trainer's caps); ``max_test_rows``: held-out invoices
    scored by the evaluation; ``max_hazard_customers``: customers whose whole history fits
    the daily hazard model on the client (``hazard=False``: none).
    """

    very_late_days: int = 30
    include_fields: tuple[str, ...] = ()
    exclude_fields: tuple[str, ...] = ()
    n_estimators: int = 150
    learning_rate: float = 0.08
    num_leaves: int = 15
    min_child_samples: int = 200
    calibration_fraction: float = 0.25
    max_train_rows: int = 600_000
    max_calibration_rows: int = 150_000
    max_test_rows: int = 200_000
    test_fraction: float = 0.2
    fit_days_late: bool = True
    hazard: bool = True
    max_hazard_customers: int = 15_000
    hazard_params: dict[str, Any] = field(default_factory=dict)  # HazardModel options
    seed: int = 0
    n_shards: int | None = None

    def keep_per_shard(self, n_shards: int) -> int:
        """Rows a shard task keeps: enough that the union holds both capped samples with a
        25 % margin for uneven shards (keys are uniform, shards are hash-balanced)."""
        f = min(max(self.calibration_fraction, 1e-3), 1 - 1e-3)
        need = max(self.max_train_rows / (1 - f), self.max_calibration_rows / f)
        return int(np.ceil(1.25 * need / n_shards))


@dataclass
class ShardRows:
    """What a shard task keeps of its snapshot rows (bounded, lives on a worker)."""

    sample: pd.DataFrame  # the ``keep`` rows with the smallest keys: features + ROW_INFO
    test: pd.DataFrame  # at-issue rows issued from the split (Bernoulli ``test_rate``)
    ref_days: pd.Series  # rows per snapshot day number (ALL rows of the shard)
    vocab: dict[str, list[str]]  # category vocabulary of the selected features
    features: list[str]
    n_rows: int
    key_bound: float  # every row with key <= key_bound is in ``sample``
    hazard_tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def shard_rows(shard: int, export: ParquetExport, n_shards: int, known_at: dt.date,
               cfg: DistributedTrainConfig, keep: int, test_from: int | None = None,
               test_rate: float = 0.0, hazard_rate: float = 0.0) -> ShardRows:
    """Build the snapshot rows known at the end of ``known_at`` of one shard and keep the
    bounded parts (see the module docstring). Seeded by ``(cfg.seed, shard)``."""
    tables = read_shard(export, shard, n_shards, known_at)
    rng = np.random.default_rng([cfg.seed, shard])
    if len(tables["invoices"]) == 0:
        return ShardRows(pd.DataFrame(), pd.DataFrame(), pd.Series(dtype=np.int64), {}, [],
                         0, np.inf)
    p = prepare_tables(tables)
    frame = build_training_frame(p, known_at + dt.timedelta(days=1), cfg.very_late_days,
                                 seed=cfg.seed + shard)
    X = frame.X
    features = select_features([c for c in X.columns if c not in ROW_INFO],
                               cfg.include_fields, cfg.exclude_fields)
    X[LABEL] = label_classes(frame.days_late, cfg.very_late_days)
    X[REF_DAY] = frame.ref_day
    X[INVOICE_DAY] = frame.invoice_day
    X[SNAPSHOT] = frame.snapshot
    X[DAYS_LATE] = np.asarray(frame.days_late, dtype=np.float64)
    X[KEY] = rng.random(len(X))
    X = X.reset_index(drop=True)
    bound = np.inf
    sample = X
    if len(X) > keep:
        bound = float(np.partition(X[KEY].to_numpy(), keep - 1)[keep - 1])
        sample = X[X[KEY].to_numpy() <= bound]
    test = X.iloc[:0]
    if test_from is not None and test_rate > 0:
        draw = rng.random(len(X)) < test_rate
        test = X[(X[SNAPSHOT].to_numpy() == -1) & (X[INVOICE_DAY].to_numpy() >= test_from)
                 & draw]
    hz: dict[str, pd.DataFrame] = {}
    if hazard_rate > 0:
        hz = _customer_sample(tables, rng.random(len(tables["customers"])) < hazard_rate)
    return ShardRows(sample=sample.copy(), test=test.copy(),
                     ref_days=X[REF_DAY].value_counts(), vocab=learn_categories(X, features),
                     features=features, n_rows=len(X), key_bound=bound, hazard_tables=hz)


def _customer_sample(tables: dict[str, pd.DataFrame], chosen: np.ndarray
                     ) -> dict[str, pd.DataFrame]:
    """The tables restricted to the ``chosen`` customers (whole histories)."""
    cust = tables["customers"][chosen]
    inv = tables["invoices"][tables["invoices"]["customer_id"].isin(cust["customer_id"])]
    return {"customers": cust, "invoices": inv,
            **{t: tables[t][tables[t]["invoice_id"].isin(inv["invoice_id"])]
               for t in ("payments", "actions")}}


def _summary(part: ShardRows) -> tuple[pd.Series, dict, list[str], int, float]:
    return part.ref_days, part.vocab, part.features, part.n_rows, part.key_bound


def _keys(part: ShardRows, cut: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys of the kept training (ref day < cut) and calibration rows."""
    if part.n_rows == 0:
        return np.empty(0), np.empty(0)
    early = part.sample[REF_DAY].to_numpy() < cut
    key = part.sample[KEY].to_numpy()
    return key[early], key[~early]


def _select(part: ShardRows, cut: int, key_max: float, calibration: bool, features: list[str],
            categories: dict[str, list[str]]) -> pd.DataFrame:
    """Encoded sampled rows of one shard: training (ref day < cut) or calibration rows with
    key <= ``key_max``; columns ``features`` + ``__label`` + ``__days_late``."""
    if part.n_rows == 0:
        return _encoded(pd.DataFrame(columns=[*features, *ROW_INFO]), features, categories)
    s = part.sample
    early = s[REF_DAY].to_numpy() < cut
    sel = s[(early != calibration) & (s[KEY].to_numpy() <= key_max)]
    return _encoded(sel, features, categories)


def _encoded(rows: pd.DataFrame, features: list[str], categories: dict[str, list[str]]
             ) -> pd.DataFrame:
    out = pd.DataFrame(encode(rows, features, categories), columns=features)
    out[LABEL] = rows[LABEL].to_numpy(np.int64)
    out[DAYS_LATE] = rows[DAYS_LATE].to_numpy(np.float64)
    return out


def _threshold(keys: list[np.ndarray], cap: int, bound: float) -> float:
    """Largest key t <= ``bound`` with at most ``cap`` keys <= t (the cap-th smallest)."""
    allk = np.concatenate(keys) if keys else np.empty(0)
    allk = allk[allk <= bound]
    if len(allk) <= cap:
        return bound
    return float(np.partition(allk, cap - 1)[cap - 1])


@dataclass
class DistributedFit:
    """A fitted model and what it was fitted on."""

    model: PaymentModel
    train_rows: int  # rows fitted (the sample)
    calibration_rows: int
    n_shards: int
    calibration_cut_day: int
    total_rows: int = 0  # snapshot rows built over all shards
    sampled: bool = False


def build_rows(client: Client, export: ParquetExport, known_at: dt.date,
               cfg: DistributedTrainConfig, n_shards: int, test_from: int | None = None,
               test_rate: float = 0.0, hazard_rate: float = 0.0) -> list[Future]:
    """One :func:`shard_rows` future per shard (results stay on the workers)."""
    keep = cfg.keep_per_shard(n_shards)
    return client.map(shard_rows, range(n_shards), export=export, n_shards=n_shards,
                      known_at=known_at, cfg=cfg, keep=keep, test_from=test_from,
                      test_rate=test_rate, hazard_rate=hazard_rate, pure=False)


def fit_distributed(client: Client, export: ParquetExport, known_at: dt.date,
                    cfg: DistributedTrainConfig | None = None, parts: list[Future] | None = None
                    ) -> DistributedFit:
    """Fit the payment model on (a seeded sample of) every snapshot row with a known class
    at the end of ``known_at``; ``parts``: the :func:`build_rows` of that day if built."""
    from lightgbm.dask import DaskLGBMClassifier, DaskLGBMRegressor

    cfg = cfg or DistributedTrainConfig()
    n = _shards(client, export, cfg)
    own = parts is None
    if own:
        parts = build_rows(client, export, known_at, cfg, n)
    summaries = client.gather(client.map(_summary, parts))
    per_day = pd.concat([s[0] for s in summaries]).groupby(level=0).sum().sort_index()
    cum = per_day.cumsum().to_numpy()
    if len(cum) == 0 or cum[-1] < 20:
        from engine.errors import DunningError

        raise DunningError(f"only {int(cum[-1]) if len(cum) else 0} rows with a known "
                           f"outcome at {known_at}; need at least 20 to train")
    features = next(s[2] for s in summaries if s[2])
    categories = {c: sorted({v for s in summaries for v in s[1].get(c, ())})
                  for c in features if any(c in s[1] for s in summaries)}
    cut = int(per_day.index[np.searchsorted(cum, cum[-1] * (1 - cfg.calibration_fraction))])
    bound = min(s[4] for s in summaries)
    keys = client.gather(client.map(_keys, parts, cut=cut))
    t_train = _threshold([k[0] for k in keys], cfg.max_train_rows, bound)
    t_cal = _threshold([k[1] for k in keys], cfg.max_calibration_rows, bound)
    train = client.map(_select, parts, cut=cut, key_max=t_train, calibration=False,
                       features=features, categories=categories)
    cal_frame = pd.concat(client.gather(client.map(
        _select, parts, cut=cut, key_max=t_cal, calibration=True, features=features,
        categories=categories)), ignore_index=True)
    sizes = client.gather(client.map(len, train))
    train = [f for f, k in zip(train, sizes, strict=True) if k > 0]  # lightgbm: no empty parts
    X_tr, y_tr, dl_tr = _dask_arrays(client, train, features)
    cat_idx = [j for j, c in enumerate(features) if c in categories]
    common = dict(client=client, learning_rate=cfg.learning_rate, num_leaves=cfg.num_leaves,
                  min_child_samples=cfg.min_child_samples, colsample_bytree=0.8,
                  subsample=0.9, subsample_freq=1, reg_lambda=1.0, random_state=cfg.seed,
                  deterministic=True, force_row_wise=True, max_cat_to_onehot=8, verbose=-1)
    clf = DaskLGBMClassifier(n_estimators=cfg.n_estimators, **common)
    clf.fit(X_tr, y_tr, feature_name=features, categorical_feature=cat_idx)
    regressor = None
    if cfg.fit_days_late:  # as PaymentModel: days late of the sampled late rows, L1
        late = client.map(_late_rows, train)
        n_late = client.gather(client.map(len, late))
        late = [f for f, k in zip(late, n_late, strict=True) if k > 0]
        if sum(n_late) >= 20:
            X_late, _, dl_late = _dask_arrays(client, late, features)
            reg = DaskLGBMRegressor(objective="l1", n_estimators=min(cfg.n_estimators, 300),
                                    **common)
            reg.fit(X_late, dl_late, feature_name=features, categorical_feature=cat_idx)
            regressor = reg.booster_
    n_train = int(sum(sizes))
    del train, X_tr, y_tr, dl_tr  # release the encoded sample on the workers
    if own:
        client.cancel(parts)
    model = _as_payment_model(clf.booster_, features, categories, cfg)
    model.regressor_ = regressor
    y_cal = cal_frame[LABEL].to_numpy(np.int64)
    model.temperature_, model.bias_ = calibrate(
        model._raw(cal_frame[features].to_numpy(np.float64)), y_cal)
    model.n_train_, model.n_calibration_ = n_train, int(len(y_cal))
    total = int(sum(s[3] for s in summaries))
    return DistributedFit(model=model, train_rows=n_train, calibration_rows=len(y_cal),
                          n_shards=n, calibration_cut_day=cut, total_rows=total,
                          sampled=bool(n_train + len(y_cal) < total))


def _late_rows(part: pd.DataFrame) -> pd.DataFrame:
    return part[part[DAYS_LATE].to_numpy() > 0].reset_index(drop=True)


def _dask_arrays(client: Client, parts: list[Future], features: list[str]
                 ) -> tuple[Any, Any, Any]:
    """(X, y, days_late) dask arrays over the encoded partitions (known chunk sizes).
    Persisted first: a collection made of futures otherwise loses them inside
    lightgbm.dask's own compute ("lost dependencies")."""
    import dask
    import dask.dataframe as dd

    with dask.config.set({"dataframe.convert-string": False}):
        meta = pd.DataFrame({**{c: pd.Series([], dtype=np.float64) for c in features},
                             LABEL: pd.Series([], dtype=np.int64),
                             DAYS_LATE: pd.Series([], dtype=np.float64)})
        df = client.persist(dd.from_delayed(parts, meta=meta, verify_meta=False))
        return (df[features].to_dask_array(lengths=True),
                df[LABEL].to_dask_array(lengths=True),
                df[DAYS_LATE].to_dask_array(lengths=True))


def _shards(client: Client, export: ParquetExport, cfg: DistributedTrainConfig) -> int:
    """Number of shards; their Parquet layout is written once (on a worker)."""
    from engine.scale.cluster import n_workers
    from engine.scale.score import default_shards

    n = cfg.n_shards or default_shards(export, n_workers(client))
    client.submit(build_shard_layout, export, n, pure=False).result()
    return n


def known_class_days(export: ParquetExport, as_day: int, very_late_days: int) -> pd.Series:
    """Invoices whose class is known at the start of ``as_day``, counted per invoice day
    number (sorted): :func:`engine.features.class_known` (due + N + 1 < as_day, issued
    before as_day) as one streaming DuckDB aggregate over the invoice Parquet."""
    import duckdb

    with duckdb.connect() as con:
        con.execute("SET threads=2")
        frame = con.execute(
            f"SELECT invoice_date, count(*) AS n FROM read_parquet('{export.glob('invoices')}', "
            "hive_partitioning=false) WHERE due_date + $late < $as_of AND invoice_date < $as_of "
            "GROUP BY invoice_date ORDER BY invoice_date",
            {"late": very_late_days + 1, "as_of": from_day(as_day)}).df()
    days = [to_day(d) for d in frame["invoice_date"]]
    return pd.Series(frame["n"].to_numpy(np.int64), index=days).sort_index()


def split_day(days: pd.Series, test_fraction: float) -> int:
    """The local evaluation split (:func:`engine.models.training.time_split_day`) from the
    counts per day: the day at position ``int(n * (1 - test_fraction))`` of the sorted
    invoice days."""
    from engine.errors import DunningError

    n = int(days.sum())
    if n < 50:
        raise DunningError(f"only {n} invoices have a known outcome; need at least 50 to "
                           "train and evaluate (choose a later --as-of date or add history)")
    cum = days.cumsum().to_numpy()
    return int(days.index[np.searchsorted(cum, int(n * (1.0 - test_fraction)), side="right")])


def _test_part(part: ShardRows) -> pd.DataFrame:
    return part.test


def _hazard_part(part: ShardRows) -> dict[str, pd.DataFrame]:
    return part.hazard_tables


def evaluate_distributed(client: Client, export: ParquetExport, known_at: dt.date,
                         cfg: DistributedTrainConfig, split: int, test: pd.DataFrame,
                         progress: Any = None) -> dict[str, Any]:
    """Time-ordered evaluation as :func:`engine.models.training.evaluate_payment`: fit on
    the rows known before ``split`` (lightgbm.dask; the baselines on the client on a
    calibration-sized sample of the same rows) and score the held-out ``test`` invoices
    (issued from ``split``, at their invoice date)."""
    from engine.models.baselines import HistoryRuleBaseline, LogisticBaseline
    from engine.models.metrics import calibration_curve, classification_metrics

    say = progress or (lambda _m: None)
    say(f"evaluation: fitting on outcomes known before {from_day(split)}")
    cfg = replace(cfg, fit_days_late=False)  # the evaluation scores classes only
    n = _shards(client, export, cfg)
    parts = build_rows(client, export, from_day(split - 1), cfg, n)
    fit = fit_distributed(client, export, from_day(split - 1), cfg, parts=parts)
    base_rows = pd.concat(client.gather(client.map(_baseline_rows, parts, cfg=cfg)),
                          ignore_index=True)
    client.cancel(parts)
    classes = tuple(fit.model.classes_)
    y = test[LABEL].to_numpy(np.int64)
    models: dict[str, Any] = {"lightgbm_dask": fit.model}
    for name, m in (("logistic_regression", LogisticBaseline(
            cfg.very_late_days, features=fit.model.features_, random_state=cfg.seed)),
                    ("history_rule", HistoryRuleBaseline(cfg.very_late_days))):
        models[name] = m.fit(base_rows, base_rows[DAYS_LATE].to_numpy(np.float64))
    out: dict[str, Any] = {"split_date": str(from_day(split)),
                           "as_of": str(known_at + dt.timedelta(days=1)),
                           "train_rows": fit.train_rows, "train_rows_built": fit.total_rows,
                           "test_invoices": int(len(test)), "models": {}}
    for name, m in models.items():
        proba = m.predict_proba(test)
        out["models"][name] = {"at_invoice_date": classification_metrics(proba, y, classes)}
        if name == "lightgbm_dask":
            out["calibration"] = calibration_curve(proba, y, classes)
    imp = fit.model.booster_.feature_importance("gain")
    out["feature_importance"] = [
        {"feature": fit.model.features_[j], "gain_share": float(imp[j] / imp.sum())}
        for j in np.argsort(-imp) if imp[j] > 0]
    ll = {k: v["at_invoice_date"]["log_loss"] for k, v in out["models"].items()}
    out["lightgbm_beats_baselines_on_log_loss"] = bool(
        ll["lightgbm_dask"] < min(ll["logistic_regression"], ll["history_rule"]))
    return out


def _baseline_rows(part: ShardRows, cfg: DistributedTrainConfig) -> pd.DataFrame:
    """This shard's share (lowest keys) of a ``max_calibration_rows`` sample of its training
    rows, for the baselines, which fit on the client."""
    share = -(-cfg.max_calibration_rows // max(1, cfg.n_shards or 1))
    return part.sample.nsmallest(min(share, len(part.sample)), KEY) if part.n_rows else \
        part.sample


def train_artifact_distributed(client: Client, export: ParquetExport, out_dir: str | Path,
                               known_at: dt.date, cfg: DistributedTrainConfig | None = None,
                               progress: Any = None) -> TrainResult:
    """``dunning train-model --cluster``: evaluate on a time split, refit on everything
    known at the end of ``known_at``, fit the daily hazard model on a customer sample, save
    the artifact (the local run's files) with its model card (JSON + Markdown)."""
    from engine.models.training import write_artifact_files

    cfg = cfg or DistributedTrainConfig()
    say = progress or (lambda _m: None)
    n = _shards(client, export, cfg)
    cfg = replace(cfg, n_shards=n)
    as_day = to_day(known_at) + 1
    days = known_class_days(export, as_day, cfg.very_late_days)
    split = split_day(days, cfg.test_fraction)
    n_test = int(days[days.index >= split].sum())
    customers = _count(export, "customers")
    say(f"building snapshot rows in {n} customer shards")
    parts = build_rows(client, export, known_at, cfg, n, test_from=split,
                       test_rate=min(1.0, cfg.max_test_rows / max(n_test, 1)),
                       hazard_rate=min(1.0, cfg.max_hazard_customers / max(customers, 1))
                       if cfg.hazard else 0.0)
    test = pd.concat(client.gather(client.map(_test_part, parts)), ignore_index=True)
    evaluation = evaluate_distributed(client, export, known_at, cfg, split, test, say)
    say("training the payment model on all history (lightgbm.dask)")
    fit = fit_distributed(client, export, known_at, cfg, parts=parts)
    hazard_tables = client.gather(client.map(_hazard_part, parts)) if cfg.hazard else []
    client.cancel(parts)
    model = fit.model
    first = int(days.index.min())
    period = {"first_invoice": str(from_day(first)), "as_of": str(from_day(as_day)),
              "training_rows": fit.total_rows, "training_invoices": int(days.sum())}
    trained_on = {"cluster": str(client.scheduler.address), "workers": _workers(client),
                  "shards": n, "rows_built": fit.total_rows, "rows_fitted": fit.train_rows,
                  "calibration_rows": fit.calibration_rows,
                  "config": asdict(cfg),
                  "differences_to_local": (
                      "lightgbm.dask: n_estimators rounds, no early stopping; the fitted rows are "
                      f"a seeded sample of at most max_train_rows={cfg.max_train_rows:,} "
                      "(uniform keys drawn per shard); the random mid-term snapshot day is "
                      "drawn per shard; the baselines and the hazard model are fitted on the "
                      "client on seeded samples (rows / whole customers)")}
    out = Path(out_dir)
    payment_hash = model.save(out, extra={"data_period": period, "trained_on": "dask",
                                          "metrics": evaluation["models"]["lightgbm_dask"]})
    card: dict[str, Any] = {
        "model": "payment_model", "payment_hash": payment_hash, "trained_on": trained_on,
        "classes": model.classes_.tolist(), "very_late_days": cfg.very_late_days,
        "features": model.features_, "excluded_fields": list(cfg.exclude_fields),
        "included_fields": list(cfg.include_fields), "data_period": period,
        "calibration_params": {"temperature": model.temperature_, "bias": model.bias_.tolist()},
        "evaluation": evaluation}
    if cfg.hazard:
        say("training the daily hazard model on a customer sample (client)")
        card.update(_fit_hazard(hazard_tables, out, as_day, split, cfg))
    return write_artifact_files(out, card, payment_hash)


def _fit_hazard(parts: list[dict[str, pd.DataFrame]], out: Path, as_day: int, split: int,
                cfg: DistributedTrainConfig) -> dict[str, Any]:
    """Fit + evaluate the daily hazard model (engine.models) on the gathered customer
    sample; save it into ``out``; return the card entries of the local trainer."""
    from engine.contract import TABLE_ORDER, TABLES
    from engine.models.hazard import HazardModel
    from engine.models.training import TrainConfig, evaluate_hazard

    tables = {t: pd.concat([p[t] for p in parts if p], ignore_index=True)
              .sort_values(TABLES[t].key, kind="stable").reset_index(drop=True)
              for t in TABLE_ORDER}
    p = prepare_tables(tables)
    tc = TrainConfig(very_late_days=cfg.very_late_days, seed=cfg.seed,
                     hazard_params=dict(cfg.hazard_params))
    evaluation = evaluate_hazard(p, as_day, tc, split)
    hazard = HazardModel(random_state=cfg.seed, **cfg.hazard_params).fit_tables(
        p, from_day(as_day))
    return {"hazard_evaluation": evaluation, "hazard_hash": hazard.save(out),
            "hazard": {"static_features": hazard.static_features_,
                       "dynamic_features": hazard.dynamic_features_,
                       "rows": hazard.n_rows_, "payments": hazard.n_events_,
                       "customers_sampled": int(len(tables["customers"]))}}


def _count(export: ParquetExport, table: str) -> int:
    import duckdb

    with duckdb.connect() as con:
        return int(con.execute(f"SELECT count(*) FROM read_parquet('{export.glob(table)}', "
                               "hive_partitioning=false)").fetchone()[0])


def _workers(client: Client) -> int:
    from engine.scale.cluster import n_workers

    return n_workers(client)


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
