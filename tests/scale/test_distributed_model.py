"""Shard reading, distributed scoring (exact) and distributed training (equal quality)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from engine.errors import DunningError
from engine.features import build_training_frame, label_classes, prepare_tables, to_day
from engine.models.payment import PaymentModel
from engine.models.predict import score_open_invoices
from engine.scale.score import score_distributed
from engine.scale.shards import ParquetExport, read_shard
from engine.scale.train import DistributedTrainConfig, fit_distributed

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


def test_distributed_scoring_equals_local(client, store, export, local_model):
    day = store.latest_date()
    local = score_open_invoices(store.tables(as_of=day), local_model,
                                day + dt.timedelta(days=1), explain_top=10)
    dist = score_distributed(client, export, local_model, day, explain_top=10, n_shards=4)
    assert len(local) > 100
    pd.testing.assert_frame_equal(dist, local)


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
