"""`dunning train-model / predict / customers` end to end on a real DuckDB store."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dunning.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def store(company, tmp_path_factory):
    from engine.ingest import ingest

    d = tmp_path_factory.mktemp("store")
    paths = company.write(d / "export")
    db = d / "dunning.duckdb"
    ingest([p for p in paths if p.suffix == ".csv"], db=db)
    return db


@pytest.fixture(scope="module")
def artifact(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "m"
    res = runner.invoke(app, ["train-model", "--db", str(store), "--out", str(out),
                              "--very-late-days", "20", "--exclude-fields", "industry",
                              "--no-hazard"])
    assert res.exit_code == 0, res.output
    return out


def test_train_model_writes_a_versioned_artifact(artifact):
    card = json.loads((artifact / "model_card.json").read_text())
    meta = json.loads((artifact / "payment_model.json").read_text())
    assert card["very_late_days"] == 20 and meta["very_late_days"] == 20
    assert "industry" not in meta["features"]
    assert (artifact / "payment_model.txt").is_file()
    assert not (artifact / "hazard_model.txt").exists()  # --no-hazard
    assert (artifact / "model_card.md").read_text().startswith("# Payment model card")
    assert set(card["evaluation"]["models"]) == {"lightgbm", "logistic_regression",
                                                 "history_rule"}
    assert "hazard_evaluation" not in card


def test_predict_writes_probabilities_and_the_hash(store, artifact, tmp_path):
    out = tmp_path / "pred.csv"
    res = runner.invoke(app, ["predict", "--db", str(store), "--model", str(artifact),
                              "--out", str(out), "--top", "5"])
    assert res.exit_code == 0, res.output
    pred = pd.read_csv(out)
    probs = pred[["p_on_time", "p_late", "p_very_late"]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert (pred["at_risk"] == (pred["p_on_time"] < 0.5)).all()
    art = json.loads((artifact / "artifact.json").read_text())
    assert (pred["model_hash"] == art["hash"]).all()
    assert pred["factors"].notna().sum() == 5  # explained only for the rows shown
    risk = (1 - pred["p_on_time"]) * pred["balance"]
    assert risk.is_monotonic_decreasing


def test_customers_summary(store, artifact, tmp_path):
    out = tmp_path / "cust.parquet"
    res = runner.invoke(app, ["customers", "--db", str(store), "--model", str(artifact),
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    c = pd.read_parquet(out)
    expected = c[["expected_on_time", "expected_late", "expected_very_late"]].sum(axis=1)
    np.testing.assert_allclose(expected, c["open_balance"], rtol=1e-6)
    assert ((c["share_predicted_late"] >= 0) & (c["share_predicted_late"] <= 1)).all()


def test_empty_store_is_a_clear_error(tmp_path, artifact):
    from engine.store import Store

    Store(tmp_path / "empty.duckdb")
    res = runner.invoke(app, ["predict", "--db", str(tmp_path / "empty.duckdb"),
                              "--model", str(artifact)])
    assert res.exit_code == 2 and "store is empty" in res.output
    assert "Traceback" not in res.output


def test_as_of_before_any_data_is_a_clear_error(store, artifact):
    res = runner.invoke(app, ["predict", "--db", str(store), "--model", str(artifact),
                              "--as-of", "2001-01-01"])
    assert res.exit_code == 2 and "before any data" in res.output


def test_not_a_model_directory(store, tmp_path):
    res = runner.invoke(app, ["predict", "--db", str(store), "--model", str(tmp_path)])
    assert res.exit_code == 2 and "train-model" in res.output


def test_model_features_not_in_the_store(store, artifact, tmp_path):
    """A model trained with a mapping's extra column cannot score a store without it."""
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(artifact, bad)
    meta = json.loads((bad / "payment_model.json").read_text())
    meta["features"].append("inv_paperless_bill")
    (bad / "payment_model.json").write_text(json.dumps(meta))
    res = runner.invoke(app, ["predict", "--db", str(store), "--model", str(bad)])
    assert res.exit_code == 2 and "inv_paperless_bill" in res.output


def test_artifact_with_hazard_model(prepared, small_params, tmp_path):
    """The full artifact (payment + hazard + card) through the Python API, small settings."""
    from engine.models import HazardModel, PaymentModel
    from engine.models.training import TrainConfig, train_artifact

    cfg = TrainConfig(payment_params=small_params, hazard_params={"n_estimators": 30})
    res = train_artifact(prepared, tmp_path, cfg=cfg)
    card = json.loads((tmp_path / "model_card.json").read_text())
    surv = card["hazard_evaluation"]["survival"]["all"]
    assert surv["invoices"] > 0 and surv["predicted"][0] == surv["kaplan_meier"][0] == 1.0
    # the learned survival curve tracks Kaplan-Meier on the later invoices
    assert card["hazard_evaluation"]["survival"]["all"]["max_abs_gap"] < 0.15
    assert HazardModel.load(tmp_path).hash_ == card["hazard_hash"]
    assert PaymentModel.load(tmp_path).hash_ == res.hash
    assert "## Daily hazard model" in (tmp_path / "model_card.md").read_text()
