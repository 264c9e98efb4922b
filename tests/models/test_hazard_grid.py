"""HazardModel.predict_hazard_grid: the booster runs on distinct situations only, and the
result is bit for bit predict_hazard on the expanded (invoice x situation) rows."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import DunningError
from engine.features import REMINDER_CHANNELS, build_hazard_frame
from engine.models.hazard import SITUATION_INPUTS, HazardModel

AS_OF = "2025-06-01"
SMALL = {"n_estimators": 30, "learning_rate": 0.2, "min_child_samples": 50,
         "max_invoices": 400}  # a fit in about a second


def _situations(model: HazardModel, frame, m: int, seed: int) -> dict[str, np.ndarray]:
    """``m`` situations of the training rows, plus every split threshold of each
    situation input, the float next to it on both sides, 0, -0.0 and 1e-40 (LightGBM's
    zero) in one input at a time (the others from a training row), plus duplicates."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(frame.event), m)
    sit = {name: frame.dynamic[name][rows].astype(np.float64) for name in SITUATION_INPUTS}
    splits = model._split_points()
    offset = len(model.tree_features_)
    extra: list[dict[str, np.ndarray]] = []
    for name in SITUATION_INPUTS:
        thr = splits.get(offset + model._tree_dynamic().index(name))
        if thr is None or len(thr) == 0:
            continue
        probe = np.concatenate([thr, np.nextafter(thr, np.inf), np.nextafter(thr, -np.inf),
                                [0.0, -0.0, 1e-40]])
        base = rng.integers(0, m, len(probe))
        extra.append({k: (probe if k == name else v[base]) for k, v in sit.items()})
    assert extra, "the fixture model should split on some situation input"
    return {k: np.concatenate([v, *(e[k] for e in extra), v[:20]]) for k, v in sit.items()}


def _expanded(model: HazardModel, static, situations, per_invoice) -> np.ndarray:
    """The reference: predict_hazard on every (invoice, situation) row, (B, m)."""
    B, m = len(static), len(situations["days_overdue"])  # noqa: N806
    dyn = {k: np.repeat(v, m) for k, v in per_invoice.items()}
    dyn.update({k: np.tile(v, B) for k, v in situations.items()})
    return model.predict_hazard(np.repeat(static, m, axis=0), dyn).reshape(B, m)


def _check(model: HazardModel, static, frame, seed: int = 0) -> None:
    sit = _situations(model, frame, 300, seed)
    rows = np.random.default_rng(seed + 1).integers(0, len(frame.event), len(static))
    per_invoice = {k: v[rows] for k, v in frame.dynamic.items() if k not in SITUATION_INPUTS}
    grid = model.predict_hazard_grid(static, sit, per_invoice)
    np.testing.assert_array_equal(grid, _expanded(model, static, sit, per_invoice))
    first, _ = model._distinct_situations(sit)
    assert len(first) < len(sit["days_overdue"])  # the booster ran on fewer rows


@pytest.fixture(scope="module")
def frame(prepared):
    return build_hazard_frame(prepared, AS_OF, horizon_days=120, max_invoices=400)


@pytest.fixture(scope="module")
def model(frame):
    return HazardModel(**SMALL).fit(frame)


def test_grid_equals_predict_hazard_with_the_reminder_lift(frame, model, tmp_path):
    assert model.reminder_lift_ is not None
    static_rows = frame.static.iloc[:7]
    _check(model, model.static_matrix(static_rows), frame)
    model.save(tmp_path)  # a loaded model reads its thresholds from its own booster
    loaded = HazardModel.load(tmp_path)
    _check(loaded, loaded.static_matrix(static_rows), frame, seed=5)


def test_grid_equals_predict_hazard_with_the_calendar_lift(frame):
    model = HazardModel(calendar_lift_smoothing=30.0, **SMALL).fit(frame)
    assert model.calendar_lift_ is not None
    _check(model, model.static_matrix(frame.static.iloc[:7]), frame, seed=2)


def test_grid_equals_predict_hazard_with_the_customer_response(prepared, frame):
    model = HazardModel(customer_response=True, **SMALL).fit_tables(prepared, AS_OF)
    ids = prepared.invoice_id[np.unique(frame.rows)[:7]]
    static = model.static_for_invoices(prepared, ids)
    assert np.isfinite(static[:, len(model.tree_features_):]).any()
    _check(model, static, frame, seed=3)


def test_grid_names_a_missing_input(frame, model):
    sit = {k: np.zeros(2) for k in SITUATION_INPUTS if k != "last_channel"}
    with pytest.raises(DunningError, match="last_channel"):
        model.predict_hazard_grid(model.static_matrix(frame.static.iloc[:1]), sit, {})


def test_grid_equals_predict_hazard_with_the_milestone_inputs(frame):
    """The milestone inputs are derived per invoice from the situation's day and last
    reminder: the grid stays exact for invoices with and without a milestone."""
    model = HazardModel(milestone_inputs=True, **SMALL).fit(frame)
    assert model.reminder_lift_.uses_milestone
    ms = frame.static["days_due_to_milestone"].to_numpy()
    rows = np.concatenate([np.where(np.isfinite(ms))[0][:5], np.where(np.isnan(ms))[0][:3]])
    assert len(rows) == 8
    _check(model, model.static_matrix(frame.static.iloc[rows]), frame, seed=4)


def test_grid_equals_predict_hazard_with_the_reminder_count_input(frame, tmp_path):
    """The reminders sent so far, all channels, are derived from the four counts: the grid
    tells situations apart by the derived input's own thresholds too (two situations that
    differ only in one channel's count, on the same side of that channel's thresholds but
    not of the total's), and a loaded model keeps the option."""
    model = HazardModel(reminder_count_input=True, **{**SMALL, "n_estimators": 80}).fit(frame)
    splits, offset = model._split_points(), len(model.tree_features_)
    column = offset + len(model._tree_dynamic())
    assert model.booster_.feature_name()[column] == "n_reminders"
    total = splits.get(column)
    assert total is not None and len(total) > 0  # the trees use it
    static = model.static_matrix(frame.static.iloc[:7])
    _check(model, static, frame, seed=6)
    pair = None
    for name in (f"n_{c}" for c in REMINDER_CHANNELS):
        own = splits.get(offset + model._tree_dynamic().index(name), np.array([]))
        for thr in total:
            lo, hi = np.floor(thr), np.floor(thr) + 1  # totals on both sides of thr
            if not ((own >= lo) & (own < hi)).any():  # the channel's own code is the same
                pair = (name, lo, hi)
    assert pair is not None, "the fixture model should allow such a pair"
    name, lo, hi = pair
    sit = {k: np.zeros(2) for k in SITUATION_INPUTS}
    sit.update(days_overdue=np.full(2, 20.0), days_since_last_reminder=np.full(2, 3.0),
               last_reminder_overdue=np.full(2, 17.0), last_channel=np.full(2, 3.0))
    sit[name] = np.array([lo, hi])
    first, _ = model._distinct_situations(sit)
    assert len(first) == 2
    per_invoice = {k: v[:7] for k, v in frame.dynamic.items() if k not in SITUATION_INPUTS}
    np.testing.assert_array_equal(model.predict_hazard_grid(static, sit, per_invoice),
                                  _expanded(model, static, sit, per_invoice))
    model.save(tmp_path)
    loaded = HazardModel.load(tmp_path)
    assert loaded.reminder_count_input
    _check(loaded, loaded.static_matrix(frame.static.iloc[:7]), frame, seed=7)


def _count_steps(model: HazardModel, frame, channel: str) -> np.ndarray:
    """(rows, 5) hazard of training rows with ``n_<channel>`` set to 0..4 (1..5 for
    calls), the last reminder a call 3 days ago (so at least one call), the other counts
    as logged: how the count moves the hazard."""
    rows = np.arange(0, len(frame.event), max(1, len(frame.event) // 300))
    static = model.static_matrix(frame.static)[frame.static_index[rows]]
    out = []
    for n in range(5):
        dyn = {k: v[rows].astype(np.float64) for k, v in frame.dynamic.items()}
        dyn.update(days_since_last_reminder=np.full(len(rows), 3.0),
                   last_reminder_overdue=dyn["days_overdue"] - 3.0,
                   last_channel=np.full(len(rows), 3.0))
        dyn["n_phone"] = np.maximum(dyn["n_phone"], 1.0)
        dyn[f"n_{channel}"] = np.full(len(rows), float(n + (channel == "phone")))
        out.append(model.predict_hazard(static, dyn))
    return np.stack(out, axis=1)


def test_reminder_counts_decreasing_never_raise_the_hazard_with_a_count(frame, tmp_path):
    """With the option the hazard of the same row never rises with a count of reminders
    sent (trees constrained, the lift's number factor non-increasing); the plain model's
    does somewhere, and a loaded model keeps the option and its grid stays exact."""
    plain = HazardModel(**{**SMALL, "n_estimators": 80}).fit(frame)
    model = HazardModel(reminder_counts_decreasing=True,
                        **{**SMALL, "n_estimators": 80}).fit(frame)
    rises = 0.0
    for c in REMINDER_CHANNELS:
        steps = _count_steps(model, frame, c)
        assert (np.diff(steps, axis=1) <= 1e-12).all(), c
        rises = max(rises, float(np.diff(_count_steps(plain, frame, c), axis=1).max()))
    assert rises > 0  # the constraint is not idle on this history
    lift = model.reminder_lift_.factors[2]
    assert (np.diff(lift, axis=1) <= 0).all()
    model.save(tmp_path)
    loaded = HazardModel.load(tmp_path)
    assert loaded.reminder_counts_decreasing
    _check(loaded, loaded.static_matrix(frame.static.iloc[:7]), frame, seed=8)
