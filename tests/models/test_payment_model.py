"""PaymentModel: probabilities, persistence, determinism, explanations, errors, evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import DunningError
from engine.features import build_invoice_features, build_training_frame
from engine.models import PaymentModel, select_features
from engine.models.training import TrainConfig, evaluate_payment


@pytest.fixture(scope="module")
def frame(prepared):
    return build_training_frame(prepared, "2025-06-01", very_late_days=30)


@pytest.fixture(scope="module")
def fitted(frame, small_params):
    return PaymentModel(very_late_days=30, **small_params).fit(frame.X, frame.days_late,
                                                               frame.ref_day)


@pytest.fixture(scope="module")
def open_X(prepared):
    return build_invoice_features(prepared, "2025-06-01")


def test_probabilities_sum_to_one(fitted, open_X):
    P = fitted.predict_proba(open_X)
    assert P.shape == (len(open_X), 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-9)
    assert set(fitted.predict(open_X)) <= set(fitted.classes_)
    assert fitted.classes_.tolist() == ["on_time", "late", "very_late"]
    # an invoice long past due cannot be paid on time any more: the model learnt that
    overdue = open_X["days_overdue"].to_numpy() > 40
    assert overdue.any() and P[overdue, 0].max() < 0.2


def test_binary_when_n_is_zero(frame, open_X, small_params):
    m = PaymentModel(very_late_days=0, **small_params).fit(frame.X, frame.days_late,
                                                           frame.ref_day)
    P = m.predict_proba(open_X)
    assert P.shape == (len(open_X), 2) and m.classes_.tolist() == ["on_time", "late"]
    np.testing.assert_allclose(P.sum(axis=1), 1.0)


def test_save_load_round_trip(fitted, open_X, tmp_path):
    h = fitted.save(tmp_path)
    loaded = PaymentModel.load(tmp_path)
    np.testing.assert_allclose(loaded.predict_proba(open_X), fitted.predict_proba(open_X))
    assert loaded.hash_ == h and loaded.features_ == fitted.features_
    assert fitted.save(tmp_path / "again") == h  # content hash: same model, same hash


def test_same_seed_same_model(frame, open_X, fitted, small_params):
    again = PaymentModel(very_late_days=30, **small_params).fit(frame.X, frame.days_late,
                                                                frame.ref_day)
    np.testing.assert_array_equal(again.predict_proba(open_X), fitted.predict_proba(open_X))


def test_explain_gives_top_factors_with_direction(fitted, open_X):
    ex = fitted.explain(open_X.iloc[:7], top_k=3)
    assert len(ex) == 7
    assert set(ex["factor_1"]) <= set(fitted.features_)
    # sorted by absolute effect
    assert (ex["effect_1"].abs() >= ex["effect_2"].abs()).all()
    assert all(t.count(";") == 2 and t[0] in "+-" for t in ex["factors"])


def test_missing_values_are_handled(fitted, open_X):
    X = open_X.copy()
    X["hist_mean_days_late"] = np.nan
    X["segment"] = None
    X.loc[X.index[0], "amount"] = np.nan
    P = fitted.predict_proba(X)
    assert np.isfinite(P).all()


def test_features_missing_from_the_data_is_a_clear_error(fitted, open_X):
    with pytest.raises(DunningError, match="hist_share_late"):
        fitted.predict_proba(open_X.drop(columns="hist_share_late"))


def test_field_selection(frame):
    cols = select_features(frame.X.columns, include=["disputed_flag"],
                           exclude=["amount", "segment"])
    assert "disputed_flag" in cols and "amount" not in cols and "segment" not in cols
    assert "disputed_flag" not in select_features(frame.X.columns)
    with pytest.raises(DunningError, match="not a feature"):
        select_features(frame.X.columns, exclude=["no_such_field"])


def test_days_late_regressor(frame, open_X, small_params):
    m = PaymentModel(**small_params).fit(frame.X, frame.days_late, frame.ref_day)
    d = m.predict_days_late(open_X)
    assert d.shape == (len(open_X),) and np.median(d) > 0


def test_time_split_evaluation_beats_the_history_rule(prepared, small_params):
    cfg = TrainConfig(payment_params=small_params)
    ev = evaluate_payment(prepared, prepared.last_day + 1, cfg)
    m = {k: v["at_invoice_date"] for k, v in ev["models"].items()}
    assert ev["test_invoices"] > 100
    assert m["lightgbm"]["log_loss"] < m["history_rule"]["log_loss"]
    # ~500 test invoices: a perfectly calibrated model still shows an ECE of a few points;
    # this checks calibration is not broken (the uncalibrated history rule is at ~0.24)
    assert m["lightgbm"]["ece"] < min(0.15, m["history_rule"]["ece"] / 2)
    # better than predicting the class shares of the test period itself
    share = np.array(list(m["lightgbm"]["class_share"].values()))
    prior_ll = -(share * np.log(np.clip(share, 1e-12, 1))).sum()
    assert m["lightgbm"]["log_loss"] < prior_ll


def test_explanations_are_the_on_time_class_shap_values(fitted, open_X):
    """The fast path (on-time trees cut out of the model) equals LightGBM's full pred_contrib."""
    M = fitted.encode(open_X.iloc[:50])
    full = fitted.booster_.predict(M, pred_contrib=True, num_iteration=fitted.best_iteration_)
    k = len(fitted.features_)
    ex = fitted.explain(open_X.iloc[:50], top_k=1)
    j = [fitted.features_.index(f) for f in ex["factor_1"]]
    expected = -full[np.arange(50), j] * fitted.temperature_
    np.testing.assert_allclose(ex["effect_1"].to_numpy(), expected, rtol=1e-9, atol=1e-12)
    assert full.shape[1] == 3 * (k + 1)
