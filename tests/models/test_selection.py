"""Champion selection: time-series folds without future outcomes, the card's verdicts,
constant features left out, the simple estimators behind the PaymentModel interface."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.features import build_invoice_features, build_training_frame, open_balance
from engine.models import PaymentModel
from engine.models.payment import describe_factor, horizon_weights, readable_number
from engine.models.predict import score_open_invoices
from engine.models.selection import cross_validate, time_series_folds
from engine.models.training import (
    CANDIDATES,
    TrainConfig,
    _selection_lines,
    train_artifact,
    training_rows,
)


@pytest.fixture(scope="module")
def frame(prepared):
    """A third of the invoices' snapshot rows (keeps each fit to a second or two)."""
    f = build_training_frame(prepared, "2025-06-01", very_late_days=30)
    keep = f.invoice_pos % 3 == 0
    return type(f)(X=f.X[keep].reset_index(drop=True), days_late=f.days_late[keep],
                   censored=f.censored[keep], ref_day=f.ref_day[keep],
                   invoice_day=f.invoice_day[keep], snapshot=f.snapshot[keep],
                   invoice_pos=f.invoice_pos[keep])


@pytest.fixture(scope="module")
def open_X(prepared):
    return build_invoice_features(prepared, "2025-06-01")


def test_folds_are_ordered_by_invoice_date_and_see_no_future_outcome(prepared):
    rows = training_rows(prepared, prepared.last_day + 1, TrainConfig.recommended())
    folds = time_series_folds(rows.invoice_day, rows.due_day, rows.ref_day, 30, n_folds=4)
    assert len(folds) == 4
    cuts = []
    for train, test in folds:
        cut = rows.invoice_day[test].min()
        cuts.append(cut)
        assert (rows.ref_day[train] < cut).all()  # every feature dated before the cut
        assert (rows.due_day[train] + 31 < cut).all()  # every label known at the cut
        assert len(np.intersect1d(rows.invoice_pos[train], rows.invoice_pos[test])) == 0
    assert cuts == sorted(cuts) and len(set(cuts)) == 4


def test_horizon_weights_keep_each_horizon_uniform_and_equal():
    snap = np.array([-1] * 6 + [0] * 3 + [30])
    w = horizon_weights(snap)
    assert w.mean() == pytest.approx(1.0)
    for code in (-1, 0, 30):
        assert np.ptp(w[snap == code]) == 0  # uniform within a horizon
        assert w[snap == code].sum() == pytest.approx(len(w) / 3)  # equal totals


def _linear_world(n: int = 1600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Late iff a logistic function of one number: the logistic model is the true one."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    late = rng.random(n) < 1 / (1 + np.exp(-2.5 * x))
    X = pd.DataFrame({"x": x, "noise": rng.normal(size=n),
                      "hist_last_days_late": rng.choice([np.nan, -2.0, 5.0], n),
                      "constant": np.zeros(n)})
    return X, np.where(late, 6.0, -1.0), np.arange(n) + 40_000


def test_cross_validation_picks_the_lowest_log_loss_and_says_a_simple_model_won():
    X, dl, day = _linear_world()
    cands = {name: (lambda est=est: PaymentModel(0, features=["x", "noise", "constant"]
                                                 if est != "history" else None,
                                                 estimator=est, drop_constant=True,
                                                 n_estimators=60, min_child_samples=20,
                                                 fit_days_late=False))
             for name, est in (("lightgbm", "lightgbm"), ("logistic_regression", "logistic"),
                               ("history_rule", "history"))}
    sel = cross_validate(cands, X, dl, day, day, day - 10, 0, n_folds=3)
    ll = {n: m["log_loss"] for n, m in sel["models"].items()}
    assert sel["champion"] == min(ll, key=ll.get) == "logistic_regression"
    assert sel["winners"]["log_loss"] == "logistic_regression"
    assert ll["history_rule"] > ll["logistic_regression"] + 0.1  # x matters, history not
    assert 0.05 <= sel["threshold"] <= 0.95
    lines = "\n".join(_selection_lines({"selection": {**sel, "rows": "invoice", "folds": [
        {"cut_date": str(f["cut_day"])} for f in sel["folds"]]}}))
    assert "Shipped: **logistic_regression**" in lines
    assert "A simple model (logistic_regression) won on log loss" in lines


def test_constant_features_are_left_out_and_simple_models_round_trip(frame, open_X, tmp_path):
    for est in ("lightgbm", "logistic", "history"):
        m = PaymentModel(30, estimator=est, drop_constant=True, n_estimators=40,
                         min_child_samples=50, payment_dates=est == "lightgbm")
        m.fit(frame.X, frame.days_late, frame.ref_day, horizon_weights(frame.snapshot))
        if est != "history":
            assert "n_agency" in m.dropped_features_  # the world never hands over early
            assert not set(m.dropped_features_) & set(m.features_)
            for c in m.dropped_features_:
                assert frame.X[c].value_counts(dropna=False).iloc[0] / len(frame.X) >= 0.999
        P = m.predict_proba(open_X)
        np.testing.assert_allclose(P.sum(axis=1), 1.0)
        m.save(tmp_path / est)
        back = PaymentModel.load(tmp_path / est)
        assert back.estimator == est and back.features_ == m.features_
        np.testing.assert_allclose(back.predict_proba(open_X), P, rtol=1e-12)
        ex = back.explain(open_X.iloc[:5], top_k=1)
        assert ex["factors"].str.match(r"^[+-] ").all()
        assert "nan" not in " ".join(ex["factors"]) and "e+0" not in " ".join(ex["factors"])


def test_logistic_explanations_add_up_to_the_on_time_logit(frame, open_X):
    m = PaymentModel(0, estimator="logistic", drop_constant=True).fit(
        frame.X, frame.days_late, frame.ref_day)
    M = m.encode(open_X.iloc[:20])
    risk = m._simple_contributions(M)
    logit = np.log(m.predict_proba(M)[:, 1] / m.predict_proba(M)[:, 0])
    # binary: the risk contributions + the intercept (at the mean design) are the late logit
    base = logit - risk.sum(axis=1)
    np.testing.assert_allclose(base, base[0], atol=1e-9)


def test_refit_trains_on_every_row(frame, open_X):
    kw = {"n_estimators": 60, "min_child_samples": 50, "fit_days_late": False}
    es = PaymentModel(0, **kw).fit(frame.X, frame.days_late, frame.ref_day)
    full = PaymentModel(0, refit=True, **kw).fit(frame.X, frame.days_late, frame.ref_day)
    assert full.booster_.current_iteration() == es.best_iteration_
    assert es.temperature_ == full.temperature_  # calibration from the held-out slice
    assert not np.allclose(es.predict_proba(open_X), full.predict_proba(open_X))


def test_payment_quantiles_bracket_the_median(frame, open_X, prepared):
    m = PaymentModel(30, payment_dates=True, refit=True, n_estimators=40, learning_rate=0.1,
                     min_child_samples=50, fit_days_late=False)
    m.fit(frame.X, frame.days_late, frame.ref_day)
    q = m.predict_payment(open_X)
    assert q.shape == (len(open_X), 3) and (np.diff(q, axis=1) >= 0).all()
    np.testing.assert_array_equal(m.predict_payment(m.encode(open_X)), q)  # one shared matrix
    # the predict path encodes once and re-orders the matrix with its rows: same figures
    scored = score_open_invoices(prepared, m, "2025-06-01", explain_top=0, outlook=True)
    direct = pd.Series(np.round(q[:, 1], 1), index=open_X.index)
    np.testing.assert_array_equal(scored["predicted_days_late"].to_numpy(),
                                  direct.loc[scored["invoice_id"]].to_numpy())
    np.testing.assert_array_equal(scored["balance"].to_numpy(), np.round(open_balance(
        prepared, scored["invoice_id"].to_numpy(), "2025-06-01"), 2))
    # the 80 % interval covers about 80 % of the training outcomes
    qt = m.predict_payment(frame.X)
    inside = (frame.days_late >= qt[:, 0]) & (frame.days_late <= qt[:, 2])
    assert 0.65 < inside.mean() < 0.95


def test_reasons_in_plain_words():
    assert describe_factor("hist_mean_days_late", float("nan")) == "no payment history"
    assert describe_factor("days_overdue", 1040.0) == "1,040 days overdue"
    assert describe_factor("days_overdue", -12.0) == "due in 12 days"
    assert describe_factor("hist_share_late", 0.8) == "80% of earlier invoices paid late"
    assert describe_factor("hist_last_days_late", -3.0) == "paid 3 days early (last invoice)"
    assert describe_factor("segment", "corporate") == "segment: corporate"
    assert describe_factor("disputed_flag", 1.0) == "disputed"
    assert readable_number(2.5) == "2.5" and readable_number(12345.678) == "12,346"


def test_train_artifact_with_the_selection_recipe(prepared, tmp_path):
    cfg = TrainConfig.recommended(hazard=False, very_late_days=0, rows="invoice", cv_folds=2,
                                  payment_params={"n_estimators": 60,
                                                  "learning_rate": 0.1})
    res = train_artifact(prepared, tmp_path / "m", cfg=cfg)
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    sel = card["selection"]
    ll = {n: m["log_loss"] for n, m in sel["models"].items()}
    assert sel["champion"] == min(ll, key=ll.get)
    assert CANDIDATES[sel["champion"]] == card["estimator"]
    assert set(sel["winners"]) == {"log_loss", "accuracy", "late_f1", "brier", "auc_late"}
    assert card["dropped_features"] and not set(card["dropped_features"]) & set(card["features"])
    md = (tmp_path / "m" / "model_card.md").read_text()
    assert "Champion chosen by time-series cross-validation" in md
    for name in card["dropped_features"]:
        assert name not in md  # left out of the card's feature list, too
    model = PaymentModel.load(tmp_path / "m")
    assert model.hash_ == res.hash and model.threshold_ == sel["threshold"]
    assert model.quantile_models_  # payment dates ship with the recipe


def test_too_little_history_is_a_clear_error():
    from engine.errors import DunningError

    X, dl, day = _linear_world(n=20)  # fewer than 20 training rows in every fold
    cands = {"lightgbm": lambda: PaymentModel(0, features=["x"], n_estimators=5)}
    with pytest.raises(DunningError, match="too little history.*--lightgbm-only"):
        cross_validate(cands, X, dl, day, day, day - 10, 0)
    # one class only in every fold's training rows: skipped, hence the same error
    with pytest.raises(DunningError, match="two classes"):
        cross_validate(cands, *_linear_world(n=400)[:1], np.full(400, -1.0),
                       np.arange(400), np.arange(400), np.arange(400) - 10, 0)
