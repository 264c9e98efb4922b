"""Calendar phases (the environment's batch calendar agrees with the functions) and the
hazard model's calendar lift: it recovers a planted payment peak, keeps weekday effects out,
and makes the fitted hazard model reproduce a segment's month-end peak that plain trees
flatten."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from engine.calendar import (
    BusinessCalendar,
    days_to_month_end,
    days_to_quarter_end,
    month_phase,
    quarter_phase,
    to_days,
    weekday,
)
from engine.errors import DunningError
from engine.models.calendar_lift import ALPHA, CalendarLift, calendar_p_value
from engine.models.hazard import HAZARD_META, HazardModel


@pytest.mark.parametrize("date, month, quarter", [
    ("2025-01-01", 0, 0), ("2025-01-02", 1, 1), ("2025-01-31", -1, 30),
    ("2025-02-14", 13, 44), ("2025-02-15", -14, -45), ("2025-03-31", -1, -1),
    ("2025-04-01", 0, 0), ("2024-02-29", -1, -32), ("2024-02-28", -2, -33),
    ("2024-12-31", -1, -1),
])
def test_phases_count_from_the_nearest_boundary(date, month, quarter):
    day = to_days([date])
    assert month_phase(day).tolist() == [month]
    assert quarter_phase(day).tolist() == [quarter]


def test_simulation_calendar_is_the_engine_calendar_inside_and_outside_its_range():
    cal = BusinessCalendar(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    for first, last in (("2024-01-01", "2024-12-31"), ("2023-11-01", "2025-03-31")):
        dates = np.arange(np.datetime64(first), np.datetime64(last) + 1)
        days = to_days(dates)
        out = cal.lookup(np.full(len(dates), cal.place("DE")), days)
        for name, fn in (("month_phase", month_phase), ("quarter_phase", quarter_phase),
                         ("days_to_month_end", days_to_month_end),
                         ("days_to_quarter_end", days_to_quarter_end),
                         ("weekday", weekday)):
            np.testing.assert_array_equal(getattr(out, name), fn(days), err_msg=name)
    assert out.days_to_month_end[dates == np.datetime64("2024-02-29")].tolist() == [0]


def _planted_rows(n: int = 1_000_000, seed: int = 0):
    """Group 1 pays 8x on the turn of the month (phases -3..1) and 0.5x otherwise; group 2
    pays 3x on Tuesdays (a payment run), flat over the month; no weekend payments."""
    rng = np.random.default_rng(seed)
    day = to_days(["2023-01-01"])[0] + rng.integers(0, 730, n)
    group = rng.integers(1, 3, n)
    wd = weekday(day)
    mp = month_phase(day)
    factor = np.where(group == 1, np.where((mp >= -3) & (mp <= 1), 8.0, 0.5),
                      np.where(wd == 1, 3.0, 1.0)) * (wd < 5)
    event = (rng.random(n) < 0.01 * factor).astype(float)
    dynamic = {"weekday": wd.astype(float), "is_holiday": np.zeros(n),
               "month_phase": mp.astype(float), "quarter_phase": quarter_phase(day).astype(float)}
    return group, dynamic, event


def test_lift_recovers_a_planted_peak_and_leaves_weekday_runs_out():
    group, dynamic, event = _planted_rows()
    lift = CalendarLift.fit(group, dynamic, event, np.ones(len(event)), n_groups=3,
                            smoothing=30.0, group_feature="segment")
    peak = np.isin(np.arange(-31, 31), [-3, -2, -1, 0, 1])
    inside = np.isin(np.arange(-31, 31), np.arange(-14, 15))  # every month has these days
    g1 = lift.month[1]  # true: 4.7 on the peak, 0.29 off it (shrunk toward 1 by smoothing)
    assert g1[peak].min() > 3.5 and g1[~peak & inside].max() < 0.5
    # Group 2 has no calendar, so the test keeps its tables flat. Over 8 quarters each
    # quarter day falls on few weekdays: without the weekday adjustment the Tuesday run
    # would look like a quarter calendar.
    assert (lift.month[2] == 1.0).all() and (lift.quarter[2] == 1.0).all()
    assert (lift.month[0] == 1.0).all() and (lift.quarter[0] == 1.0).all()  # no rows


def test_calendar_p_value_separates_noise_from_a_peak():
    rng = np.random.default_rng(0)
    expected = np.full(62, 40.0)
    flat = [calendar_p_value(rng.poisson(expected).astype(float), expected) for _ in range(200)]
    assert np.mean(np.array(flat) < 0.05) < 0.1 and min(flat) > ALPHA / 10
    peaked = expected * np.where(np.arange(62) < 3, 3.0, 1.0)
    assert calendar_p_value(rng.poisson(peaked).astype(float), expected) < 1e-10


def test_lift_transform_and_round_trip():
    group, dynamic, event = _planted_rows(50_000)
    lift = CalendarLift.fit(group, dynamic, event, np.ones(len(event)), 3, 30.0, "segment")
    back = CalendarLift.from_dict(json.loads(json.dumps(lift.to_dict())))
    np.testing.assert_array_equal(back.month, lift.month)
    rows = {"month_phase": np.array([-1.0, -1.0, -1.0, 40.0]),
            "quarter_phase": np.array([0.0, 0.0, 0.0, 0.0])}
    out = back.transform(np.array([1, 7, -1, 1]), rows)
    # codes the fit never saw count as "unknown" (group 0: no lift)
    assert out["month_lift"][0] == lift.month[1, 30] and out["month_lift"][1:3].tolist() == [1, 1]
    assert out["month_lift"][3] == lift.month[1, -1]  # phases beyond the range are clipped


def _peak_ratio(frame, prepared, h: np.ndarray) -> float:
    """Start-ups' mean hazard on the turn of the month over the rest, business days."""
    seg = prepared.customers["segment"].astype(str).to_numpy()[prepared.cust[frame.rows]]
    mp = frame.dynamic["month_phase"]
    keep = (seg == "startup") & (frame.dynamic["weekday"] < 5)
    peak = keep & (mp >= -3) & (mp <= 1)
    off = keep & ~peak
    return (np.average(h[peak], weights=frame.weight[peak])
            / np.average(h[off], weights=frame.weight[off]))


def test_lift_lets_the_hazard_model_keep_a_segment_peak(prepared, hazard_frame):
    frame = hazard_frame
    observed = _peak_ratio(frame, prepared, frame.event)
    ratios = {}
    for smoothing in (None, 30.0):
        model = HazardModel(calendar_lift_smoothing=smoothing).fit(frame)
        h = model.predict_hazard(model.static_matrix(frame.static)[frame.static_index],
                                 frame.dynamic)
        ratios[smoothing] = _peak_ratio(frame, prepared, h)
    assert observed > 5  # the generated start-ups do pay at the turn of the month
    assert "month_lift" in model.booster_.feature_name()
    assert "month_phase" not in model.booster_.feature_name()  # only through the lift
    error = {k: abs(np.log(r / observed)) for k, r in ratios.items()}
    assert error[30.0] < 0.5 * error[None], (observed, ratios)


LIFTS = [("calendar_lift_smoothing", "calendar_lift_"),
         ("reminder_lift_smoothing", "reminder_lift_")]


@pytest.mark.parametrize("option, attribute", LIFTS)
def test_lifts_are_saved_and_models_without_them_still_load(hazard_frame, tmp_path, option,
                                                            attribute):
    frame = hazard_frame
    S_rows = frame.static_index[:300]
    dyn = {k: v[:300] for k, v in frame.dynamic.items()}
    for smoothing, sub in ((30.0, "lift"), (None, "plain")):
        model = HazardModel(n_estimators=20, **{option: smoothing}).fit(frame)
        model.save(tmp_path / sub)
        loaded = HazardModel.load(tmp_path / sub)
        S = model.static_matrix(frame.static)[S_rows]
        np.testing.assert_array_equal(loaded.predict_hazard(S, dyn), model.predict_hazard(S, dyn))
        assert (getattr(loaded, attribute) is None) == (smoothing is None)
    meta = json.loads((tmp_path / "plain" / HAZARD_META).read_text())
    meta.pop(attribute.rstrip("_"), None)  # the format before the lift existed
    meta["params"].pop(option, None)
    (tmp_path / "plain" / HAZARD_META).write_text(json.dumps(meta))
    assert getattr(HazardModel.load(tmp_path / "plain"), attribute) is None


@pytest.mark.parametrize("option", [o for o, _ in LIFTS])
@pytest.mark.parametrize("smoothing", [0.0, -5.0])
def test_smoothing_must_be_positive(hazard_frame, option, smoothing):
    with pytest.raises(DunningError, match=option):
        HazardModel(n_estimators=2, **{option: smoothing}).fit(hazard_frame)
