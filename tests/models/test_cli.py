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
                              "--no-hazard", "--lightgbm-only"])
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


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """A small company (fits of the selection recipe take seconds on it)."""
    from engine.ingest import ingest
    from simulations import world

    company = world.generate_company(world.load_scenario("default"), 70, 14, seed=5)
    d = tmp_path_factory.mktemp("small")
    paths = company.write(d / "export")
    db = d / "dunning.duckdb"
    ingest([p for p in paths if p.suffix == ".csv"], db=db)
    return db


@pytest.fixture(scope="module")
def champion(small_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("champion") / "m"
    res = runner.invoke(app, ["train-model", "--db", str(small_store), "--out", str(out),
                              "--no-hazard"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "shipped" in res.output and "winners" in res.output
    return out


def test_train_model_ships_the_cross_validated_champion(champion):
    card = json.loads((champion / "model_card.json").read_text())
    sel = card["selection"]
    from engine.models.training import CANDIDATES

    assert CANDIDATES[sel["champion"]] == card["estimator"] and sel["rows"] == "weighted"
    ll = {n: m["log_loss"] for n, m in sel["models"].items()}
    assert sel["champion"] == min(ll, key=ll.get)
    assert "n_agency" in card["dropped_features"] and "n_agency" not in card["features"]


def test_predict_gives_payment_dates_reasons_and_a_worklist(small_store, champion, tmp_path):
    out = tmp_path / "pred.csv"
    res = runner.invoke(app, ["predict", "--db", str(small_store), "--model", str(champion),
                              "--out", str(out), "--top", "8", "--at-risk-threshold", "0.3",
                              "--attention", "5"], terminal_width=250)
    assert res.exit_code == 0, res.output
    assert "needs attention" in res.output
    pred = pd.read_csv(out)
    assert (pred["at_risk"] == (pred["p_on_time"] < 0.3)).all()
    not_due = pred["days_overdue"] <= 0
    assert not_due.any() and "at_risk" in pred  # judged for invoices not yet due, too
    lo, mid, hi = (pred[c] for c in ("days_late_low", "predicted_days_late", "days_late_high"))
    assert (lo <= mid).all() and (mid <= hi).all() and (hi > lo).mean() > 0.9
    due = pd.to_datetime(pred["due_date"])
    paid = pd.to_datetime(pred["predicted_payment_date"])
    as_of = due - pd.to_timedelta(pred["days_overdue"], unit="D")
    assert (paid >= as_of).all()
    late_enough = paid > as_of
    assert late_enough.any()
    assert ((paid - due).dt.days[late_enough] == np.round(mid[late_enough])).all()
    stake = pred["p_very_late"]
    np.testing.assert_allclose(pred["expected_loss"], (pred["balance"] * stake).round(2),
                               atol=0.011)
    assert sorted(pred["attention_rank"]) == list(range(1, len(pred) + 1))
    top = pred.sort_values("attention_rank")["expected_loss"].to_numpy()
    assert (np.diff(top) <= 0).all()
    reasons = " ".join(pred["factors"].dropna())
    assert reasons and "nan" not in reasons and "e+0" not in reasons


def test_evaluate_model_on_a_time_split(small_store, tmp_path):
    out = tmp_path / "ev.json"
    res = runner.invoke(app, ["evaluate-model", "--db", str(small_store), "--cut",
                              "2024-10-01", "--very-late-days", "0", "--rows", "invoice",
                              "--out", str(out), "--report", str(tmp_path / "page")],
                        terminal_width=200)
    assert res.exit_code == 0, res.output
    ev = json.loads(out.read_text())
    _check_evaluation_report((tmp_path / "page" / "index.html").read_text(), ev)
    assert ev["cut"] == "2024-10-01" and ev["test_invoices"] > 100
    assert {"global_mean", "customer_mean", "logistic_regression", "lightgbm",
            "history_rule"} <= set(ev["models"])
    shipped = ev["models"][ev["shipped"]]
    for key in ("accuracy", "late_f1", "auc_late", "log_loss", "brier", "mae_days_to_pay",
                "mae_days_late", "late_f1_at_threshold"):
        assert np.isfinite(shipped[key]), key
    # the global mean predicts the training shares for everyone: no ranking at all
    assert ev["models"]["global_mean"]["auc_late"] == 0.5
    assert shipped["log_loss"] < ev["models"]["global_mean"]["log_loss"]
    assert ev["calibration"]["late"]
    # also scored at due + k on the invoices still unpaid then, fewer at each later k
    h = ev["horizons"]
    assert "due+0" in h and h["due+0"]["n"] > 20
    ns = [h[k]["n"] for k in h]
    assert ns == sorted(ns, reverse=True)
    assert set(h["due+0"]["models"]) == {"lightgbm", "logistic_regression", "history_rule"}


def _check_evaluation_report(html: str, ev: dict) -> None:
    """The evaluation section of the HTML report: one table row per model with its figures
    (baselines first, the shipped model marked), a calibration plot and the MAE bars."""
    import re

    from dunning.report import render_report

    section = re.search(r'<section id="evaluation">(.*?)</section>', html, re.S)[1]
    rows = re.findall(r'<tr data-model="([^"]+)"( class="highlight")?><td>[^<]*</td>(.*?)</tr>',
                      section, re.S)
    assert [r[0] for r in rows][:2] == ["global_mean", "customer_mean"]
    assert {r[0] for r in rows} == set(ev["models"])
    assert [r[0] for r in rows if r[1]] == [ev["shipped"]]
    cells = {r[0]: re.findall(r"<td>([^<]*)</td>", r[2]) for r in rows}
    shipped = ev["models"][ev["shipped"]]
    # accuracy, late F1, AUC, log loss, Brier, MAE days to pay, MAE days late
    assert cells[ev["shipped"]][0] == f"{shipped['accuracy']:.3f}"
    assert cells[ev["shipped"]][3] == f"{shipped['log_loss']:.4f}"
    assert cells[ev["shipped"]][6] == f"{shipped['mae_days_late']:.2f}"
    assert cells["global_mean"][6] == f"{ev['models']['global_mean']['mae_days_late']:.2f}"
    assert cells["lightgbm"][5] == "–" or ev["shipped"] == "lightgbm"  # no regressors there
    assert section.count("<svg") == 3  # calibration, MAE days to pay, MAE days late
    assert "calibration" in section and "MAE of days late" in section
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    # the pipeline's report shows the same section when results.json carries it
    full = render_report({"policies": {"fixed": {"npv": 1.0}}, "evaluation": ev})
    assert re.search(r'<section id="evaluation">(.*?)</section>', full, re.S)[1] == section


def test_evaluate_model_cut_after_the_data_is_a_clear_error(small_store):
    res = runner.invoke(app, ["evaluate-model", "--db", str(small_store), "--cut",
                              "2030-01-01"])
    assert res.exit_code == 2 and "choose an earlier cut" in res.output
