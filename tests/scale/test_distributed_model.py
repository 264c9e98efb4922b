"""Shard reading, distributed scoring (exact) and distributed training (equal quality)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from engine.calendar import from_day, to_day
from engine.errors import DunningError
from engine.features import (
    build_invoice_features,
    build_training_frame,
    class_known,
    label_classes,
    prepare_tables,
)
from engine.models.payment import PaymentModel
from engine.models.predict import score_open_invoices
from engine.models.training import time_split_day
from engine.scale.score import score_distributed
from engine.scale.shards import ParquetExport, build_shard_layout, read_shard
from engine.scale.train import (
    DistributedTrainConfig,
    fit_distributed,
    train_artifact_distributed,
)
from simulations.env.learned import LearnedSource

SPLIT = dt.date(2025, 1, 31)


def test_shards_partition_the_store_exactly(store, export):
    day = dt.date(2025, 3, 15)
    full = store.tables(as_of=day)
    parts = [read_shard(export, k, 3, day) for k in range(3)]
    assert all(len(p["invoices"]) > 0 for p in parts)
    for name, table in full.items():
        key = table.columns[0]
        a = table.sort_values(key).reset_index(drop=True)
        b = pd.concat([p[name] for p in parts]).sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
    # a customer's whole history lies in one shard
    owners = pd.concat([p["invoices"][["customer_id"]].assign(shard=k)
                        for k, p in enumerate(parts)])
    assert owners.groupby("customer_id")["shard"].nunique().max() == 1
    # the shard layout (export re-partitioned by shard) reads exactly the same tables
    layout = build_shard_layout(export, 3)
    assert (layout / "invoices" / "shard=2").is_dir()
    for k, before in enumerate(parts):
        after = read_shard(export, k, 3, day)
        for name, table in before.items():
            pd.testing.assert_frame_equal(after[name], table)


def test_not_an_export_is_a_clear_error(tmp_path):
    with pytest.raises(DunningError, match="dunning export --parquet"):
        ParquetExport(tmp_path)


@pytest.fixture(scope="module")
def local_model(store, tmp_path_factory):
    known = store.tables(as_of=SPLIT)
    tf = build_training_frame(prepare_tables(known), SPLIT + dt.timedelta(days=1), 30)
    m = PaymentModel(30, fit_days_late=False, random_state=0).fit(tf.X, tf.days_late,
                                                                  tf.ref_day)
    m.save(tmp_path_factory.mktemp("model"))
    return m


@pytest.mark.parametrize("outlook", [False, True])
def test_distributed_scoring_equals_local(client, store, export, local_model, outlook):
    day = store.latest_date()
    local = score_open_invoices(store.tables(as_of=day), local_model,
                                day + dt.timedelta(days=1), explain_top=10,
                                at_risk_threshold=0.4, outlook=outlook)
    dist = score_distributed(client, export, local_model, day, explain_top=10, n_shards=4,
                             at_risk_threshold=0.4, outlook=outlook)
    assert len(local) > 100
    pd.testing.assert_frame_equal(dist, local)
    if outlook:  # the needs-attention order is ranked over every shard's rows at once
        assert sorted(dist["attention_rank"]) == list(range(1, len(dist) + 1))


def test_distributed_training_has_equal_quality(client, store, export, local_model):
    fit = fit_distributed(client, export, SPLIT, DistributedTrainConfig(n_shards=4, seed=0))
    assert fit.train_rows + fit.calibration_rows > 10_000
    # held-out future: invoices issued after the split, at their invoice date
    day = store.latest_date()
    test = build_training_frame(prepare_tables(store.tables(as_of=day)),
                                day + dt.timedelta(days=1), 30)
    sel = (test.invoice_day >= to_day(SPLIT)) & (test.snapshot == -1)
    y = label_classes(test.days_late[sel], 30)
    assert sel.sum() > 500
    ll_local = log_loss(y, local_model.predict_proba(test.X[sel]), labels=[0, 1, 2])
    ll_dist = log_loss(y, fit.model.predict_proba(test.X[sel]), labels=[0, 1, 2])
    prior = np.bincount(y, minlength=3) / len(y)
    ll_prior = log_loss(y, np.tile(prior, (len(y), 1)), labels=[0, 1, 2])
    assert abs(ll_dist - ll_local) < 0.01
    assert ll_dist < ll_prior - 0.05  # it learned something real (no-skill: ll_prior)


def test_training_sample_is_capped_and_still_learns(client, store, export, local_model):
    cfg = DistributedTrainConfig(n_shards=4, seed=0, max_train_rows=4000,
                                 max_calibration_rows=1000, fit_days_late=False)
    fit = fit_distributed(client, export, SPLIT, cfg)
    assert fit.sampled and fit.total_rows > 10_000
    assert 3000 <= fit.train_rows <= 4000 and 500 <= fit.calibration_rows <= 1000
    day = store.latest_date()
    test = build_training_frame(prepare_tables(store.tables(as_of=day)),
                                day + dt.timedelta(days=1), 30)
    sel = (test.invoice_day >= to_day(SPLIT)) & (test.snapshot == -1)
    y = label_classes(test.days_late[sel], 30)
    prior = np.bincount(y, minlength=3) / len(y)
    ll_prior = log_loss(y, np.tile(prior, (len(y), 1)), labels=[0, 1, 2])
    assert log_loss(y, fit.model.predict_proba(test.X[sel]), labels=[0, 1, 2]) < ll_prior - 0.03


@pytest.fixture(scope="module")
def cluster_artifact(client, store, export, tmp_path_factory):
    """``train-model --cluster`` through the Python API, on the shared LocalCluster (the
    hazard model kept small: the test is about wiring, its quality is tests/models')."""
    out = tmp_path_factory.mktemp("cluster_model")
    cfg = DistributedTrainConfig(n_shards=4, n_estimators=60,
                                 hazard_params={"max_rows": 150_000, "n_estimators": 30})
    return train_artifact_distributed(client, export, out, store.latest_date(), cfg)


def test_cluster_artifact_is_a_complete_local_artifact(cluster_artifact, store, store_dir):
    out, card = cluster_artifact.out_dir, cluster_artifact.card
    for name in ("payment_model.txt", "payment_days_late.txt", "hazard_model.txt",
                 "hazard_model.json", "model_card.json", "model_card.md", "artifact.json"):
        assert (out / name).is_file(), name
    art = json.loads((out / "artifact.json").read_text())
    assert art["hash"] == card["hash"] and art["hazard_hash"] == card["hazard_hash"]
    assert f"# Payment model card `{card['hash']}`" in (out / "model_card.md").read_text()
    assert card["hazard"]["customers_sampled"] == 400  # all of them (cap 15k)
    assert card["trained_on"]["config"]["max_train_rows"] == 600_000
    # the evaluation split and test invoices are the local trainer's
    day = store.latest_date()
    p = prepare_tables(store.tables(as_of=day))
    split = time_split_day(p, to_day(day) + 1, 30, 0.2)
    ev = card["evaluation"]
    assert ev["split_date"] == str(from_day(split))
    assert ev["test_invoices"] == int(((p.invoice_day >= split)
                                       & class_known(p, to_day(day) + 1, 30)).sum())
    # the consumers of a local artifact: predict (with days late) and the learned env
    model = PaymentModel.load(out)
    assert model.hash_ == card["hash"]
    scored = score_open_invoices(store.tables(as_of=day), model, day + dt.timedelta(days=1))
    assert len(scored) > 100 and (model.predict_days_late(
        build_invoice_features(p, day + dt.timedelta(days=1))) >= 0).all()
    src = LearnedSource.from_store(store_dir / "dunning.duckdb", out)
    assert len(src.sample_invoices(50, np.random.default_rng(0)).amount) == 50
    assert src.hazard.hash_ == card["hazard_hash"]
