"""Drift against a real store and model; retraining with promotion and its log."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from dunning.business.drift import SEASONAL_FEATURES, DriftWarning
from dunning.business.model_io import drift_report, retrain, retrain_log_path
from engine.errors import InputError
from engine.models import PaymentModel
from engine.models.training import TrainConfig

FAST = TrainConfig(hazard=False, payment_params={"n_estimators": 30})


def test_drift_report_covers_the_model_features(world_store, world_model):
    with pytest.warns(DriftWarning):  # the history features grow over the first year
        report = drift_report(world_store, world_model, recent_days=90)
    model = PaymentModel.load(world_model)
    assert set(report.features["feature"]) == set(model.features_)
    assert report.reference_period[1] == "2024-09-01"
    assert report.recent_period == ("2024-10-03", "2024-12-31")
    seasonal = report.features[report.features["feature"].isin(SEASONAL_FEATURES)]
    assert set(seasonal["status"]) <= {"seasonal"}
    cal = report.calibration
    months = [str(d)[:7] for d in cal["window_start"]]
    assert months == [f"2024-{m:02d}" for m in range(1, 13)]
    assert cal["n"].sum() > 1000 and cal["observed"].between(0, 1).all()
    assert json.dumps(report.to_dict(), default=str)


def test_a_planted_amount_shift_is_flagged(world_store, world_model, world_tables,
                                           store_writer, tmp_path):
    base = drift_report(world_store, world_model, recent_days=90, warn=False)
    status = base.features.set_index("feature")["status"]
    assert status["amount"] in ("ok", "watch")
    t = {k: v.copy() for k, v in world_tables.items()}
    late = t["invoices"]["invoice_date"] >= pd.Timestamp("2024-10-01")
    ids = set(t["invoices"].loc[late, "invoice_id"])
    t["invoices"].loc[late, "amount"] *= 10
    t["payments"].loc[t["payments"]["invoice_id"].isin(ids), "amount"] *= 10
    for frame in t.values():
        for col in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[col]):
                frame[col] = frame[col].dt.strftime("%Y-%m-%d")
    shifted = drift_report(store_writer(tmp_path, t), world_model, recent_days=90, warn=False)
    status = shifted.features.set_index("feature")["status"]
    assert status["amount"] == "warning"
    assert any(m.startswith("feature amount:") for m in shifted.messages)


def test_drift_needs_a_recent_window(world_store, world_model):
    with pytest.raises(InputError, match="no invoices in the 5 days"):
        drift_report(world_store, world_model, recent_days=5,
                     as_of=pd.Timestamp("2025-06-30").date(), warn=False)


def test_retrain_keeps_a_better_current_model(world_store, world_tables, tmp_path,
                                              save_model):
    # the current model saw the whole history (holdout included): the candidate cannot win
    current = save_model(world_tables, "2024-12-31", tmp_path / "m", n_estimators=300,
                         min_child_samples=5)
    before = PaymentModel.load(current).hash_
    d = retrain(world_store, current, cfg=FAST)
    assert not d.promoted and d.candidate_log_loss > d.current_log_loss
    assert "stays" in d.reason and d.notes  # the holdout overlaps its training period
    assert PaymentModel.load(current).hash_ == before
    log = json.loads(retrain_log_path(current).read_text())
    assert log[-1]["promoted"] is False and log[-1]["current_hash"] == before


@pytest.mark.slow
def test_retrain_promotes_an_equal_candidate_and_keeps_the_previous(
        world_store, world_tables, tmp_path, save_model):
    # same data (up to 2024-09-01), settings and seed as the candidate: equal log loss
    current = save_model(world_tables, "2024-09-01", tmp_path / "m", n_estimators=30,
                         random_state=0)
    old_hash = PaymentModel.load(current).hash_
    d = retrain(world_store, current, cfg=FAST, policy_dir=tmp_path / "policy")
    assert d.holdout_start == "2024-09-01" and not d.notes
    assert d.candidate_log_loss == pytest.approx(d.current_log_loss, abs=1e-9)
    assert d.promoted and d.new_hash and d.new_hash != old_hash
    new = PaymentModel.load(current)
    assert new.meta_["data_period"]["as_of"] == "2025-01-01"
    assert PaymentModel.load(tmp_path / "m.previous").hash_ == old_hash
    assert "stale" in d.policy
    d2 = retrain(world_store, current, cfg=FAST)  # second run appends to the log
    log = json.loads(retrain_log_path(current).read_text())
    assert len(log) == 2 and log[0]["promoted"] is True
    assert log[1]["current_hash"] == new.hash_ and d2.current_log_loss is not None


def test_retrain_refuses_a_foreign_directory(world_store, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("hi")
    with pytest.raises(InputError, match="holds no payment_model.json"):
        retrain(world_store, tmp_path / "x", cfg=FAST)


def test_the_demo_report_gets_a_drift_section(world_store, world_model, tmp_path):
    """report_step computes drift for the held-out months from the store and the model."""
    import shutil

    from dunning.pipeline import PipelineConfig, report_step

    config = PipelineConfig(out_dir=tmp_path, db=world_store, holdout_months=3)
    shutil.copytree(world_model, config.model_dir)
    policies = {"fixed": {"mean_days_to_pay": 60.0, "reminders_per_invoice": 2.0}}
    results = {"policies": policies, "holdout": {"cut_date": "2024-10-01"}}
    (tmp_path / "results.json").write_text(json.dumps(results))
    html = report_step(config, results).read_text()
    block = results["drift"]
    assert block["available"] and block["recent_period"] == ["2024-10-01", "2024-12-31"]
    # reference: the last 93 days of the training period (up to 2024-09-01)
    assert block["reference_period"] == ["2024-05-31", "2024-09-01"]  # 2024-09-01 - 93 days
    calib = {r["window_start"][:7]: r["status"] for r in block["calibration"]}
    assert calib["2024-08"] == "training" and calib["2024-10"] != "training"
    assert json.loads((tmp_path / "results.json").read_text())["drift"] == block
    assert '<table id="psi-table">' in html and 'id="ece-chart"><svg' in html


def test_drift_section_says_why_it_is_missing(world_store, tmp_path):
    from dunning.business.model_io import drift_section

    assert "no payment model" in drift_section(world_store, tmp_path / "none")["reason"]
    assert "no store" in drift_section(tmp_path / "x.duckdb", tmp_path)["reason"]
