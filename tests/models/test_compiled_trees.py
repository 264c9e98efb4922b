"""The compiled trees (lleaves) give LightGBM's values bit for bit, and compile only once a
model has predicted enough rows to pay for it."""

from __future__ import annotations

import pickle
import sys

import lightgbm as lgb
import numpy as np
import pytest

from engine.models.compiled import ENV_SWITCH, BoosterPredictor
from engine.models.hazard import HazardModel


def _booster(seed: int = 0) -> tuple[lgb.Booster, np.ndarray]:
    """A binary booster on 3 numeric inputs (one with missing values and zeros) and one
    categorical input, and rows that probe its edges: NaN, 0, exact split thresholds,
    negatives, unseen and missing categories."""
    rng = np.random.default_rng(seed)
    n = 4000
    X = np.column_stack([rng.normal(size=n), rng.integers(0, 40, n).astype(float),  # noqa: N806
                         rng.exponential(size=n), rng.integers(0, 6, n).astype(float)])
    X[rng.random(n) < 0.1, 2] = np.nan
    X[rng.random(n) < 0.1, 2] = 0.0
    logit = X[:, 0] + 0.05 * X[:, 1] - np.nan_to_num(X[:, 2]) + (X[:, 3] == 2) - 1
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    booster = lgb.train({"objective": "binary", "num_leaves": 15, "verbosity": -1,
                         "seed": seed, "min_data_in_leaf": 20, "max_cat_to_onehot": 4},
                        lgb.Dataset(X, y, categorical_feature=[3]), num_boost_round=30)
    thresholds = [float(t["threshold"]) for t in _splits(booster) if t["decision_type"] != "=="]
    probe = rng.normal(size=(len(thresholds) * 4 + 400, 4)) * [3, 30, 2, 5]
    probe[: len(thresholds), 0] = thresholds  # exactly on a threshold: goes left
    probe[len(thresholds): 2 * len(thresholds), 2] = thresholds
    probe[::7, 2] = np.nan
    probe[1::7, 2] = 0.0
    probe[2::7, 3] = np.nan  # missing category
    probe[3::7, 3] = 99.0  # unseen category
    probe[4::7, 3] = -1.0  # negative category: LightGBM reads it as missing
    return booster, np.vstack([X[:500], probe])


def _splits(booster: lgb.Booster) -> list[dict]:
    out, stack = [], [t["tree_structure"] for t in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            out.append(node)
            stack += [node["left_child"], node["right_child"]]
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_the_compiled_trees_give_lightgbms_values_bit_for_bit(seed: int) -> None:
    booster, X = _booster(seed)  # noqa: N806
    predictor = BoosterPredictor(booster, compile_after_rows=0)
    compiled = predictor.predict(X)
    assert predictor.compiled_
    # the same leaf in every tree and the same summation order: the same bits
    assert np.array_equal(compiled, booster.predict(X, num_threads=1))
    assert compiled.shape == (len(X),)
    assert np.array_equal(predictor.predict(X[3::5]), compiled[3::5])
    assert predictor.predict(X[:0]).shape == (0,)


def test_a_predictor_compiles_once_it_has_predicted_enough_rows() -> None:
    booster, X = _booster()  # noqa: N806
    predictor = BoosterPredictor(booster, compile_after_rows=len(X) + 10)
    first = predictor.predict(X)
    assert not predictor.compiled_ and predictor.rows_ == len(X)
    second = predictor.predict(X[:20])  # past the threshold: compiled from this call on
    assert predictor.compiled_
    assert np.array_equal(second, first[:20])
    with pytest.raises(ValueError, match="dimension"):  # a wrong width is refused, not read
        predictor.predict(X[:, :3])


def test_the_switch_and_a_missing_compiler_fall_back_to_lightgbm(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    booster, X = _booster()  # noqa: N806
    reference = booster.predict(X, num_threads=1)
    monkeypatch.setenv(ENV_SWITCH, "0")
    off = BoosterPredictor(booster, compile_after_rows=0)
    assert np.array_equal(off.predict(X), reference)
    assert not off.compiled_
    monkeypatch.delenv(ENV_SWITCH)
    monkeypatch.setitem(sys.modules, "lleaves", None)  # import lleaves raises ImportError
    missing = BoosterPredictor(booster, compile_after_rows=0)
    assert np.array_equal(missing.predict(X), reference)
    assert not missing.compiled_
    assert "lleaves is not installed" in caplog.text


def test_a_hazard_model_predicts_the_same_compiled_and_pickles_without_the_code(
        hazard_frame, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = hazard_frame
    model = HazardModel(n_estimators=10).fit(frame)
    rows = np.arange(0, len(frame.event), 50)
    static = model.static_matrix(frame.static)[frame.static_index[rows]]
    dynamic = {name: v[rows] for name, v in frame.dynamic.items()}
    lightgbm = model.predict_hazard(static, dynamic)  # a few rows: not compiled
    assert not model._predictor.compiled_
    monkeypatch.setattr(model._predictor, "compile_after_rows", 0)
    before = model.predict_hazard(static, dynamic)
    assert model._predictor.compiled_
    assert np.array_equal(before, lightgbm)
    copy = pickle.loads(pickle.dumps(model))
    assert "_predictor" not in copy.__dict__
    assert np.array_equal(copy.predict_hazard(static, dynamic), before)
