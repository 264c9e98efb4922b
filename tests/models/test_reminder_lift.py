"""The reminder lift (engine.models.reminder_lift): a shrunk, factorised correction of the
hazard trees' reminder effect by channel, send day, reminder number and days since."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import DunningError
from engine.features import NO_REMINDER_DAYS, REMINDER_CHANNELS, reminder_dynamics
from engine.models.hazard import HAZARD_META, HazardModel
from engine.models.reminder_lift import FINE_SEND_DAY_EDGES, SEND_DAY_EDGES, ReminderLift

EMAIL, PHONE = 1, 3


def _rows(channel: np.ndarray, send_day: np.ndarray, number: np.ndarray, since: np.ndarray
          ) -> dict[str, np.ndarray]:
    """Dynamic inputs of rows whose last reminder was the ``number``-th, on ``channel``."""
    counts = {f"n_{c}": np.where(channel == j + 1, 1.0, 0.0)
              for j, c in enumerate(REMINDER_CHANNELS)}
    counts["n_email"] = counts["n_email"] + (number - 1)  # earlier reminders were emails
    calendar = {k: np.zeros(len(channel)) for k in ("weekday", "days_to_month_end",
                                                     "days_to_quarter_end", "is_holiday",
                                                     "month_phase", "quarter_phase")}
    return reminder_dynamics(send_day + since, counts, since.astype(float),
                             channel.astype(float), calendar)


def _planted(n: int = 400_000, seed: int = 0):
    """Group 1: the trees predict a flat 2 % after every reminder, the truth is 0.3x for
    reminders sent before day 4 and 0.7x for every later reminder (seen on email only)."""
    rng = np.random.default_rng(seed)
    first = rng.random(n) < 0.7
    channel = np.where(first, rng.choice([EMAIL, PHONE], n), EMAIL)
    number = np.where(first, 1, 2)
    send = rng.integers(0, 30, n)
    since = rng.integers(0, 21, n)
    dyn = _rows(channel, send, number, since)
    truth = 0.02 * np.where(send < 4, 0.3, 1.0) * np.where(number >= 2, 0.7, 1.0)
    event = (rng.random(n) < truth).astype(float)
    group = np.ones(n, dtype=np.int64)
    return group, dyn, event, np.full(n, 0.02)


def test_lift_recovers_planted_send_day_and_number_effects():
    group, dyn, event, trees = _planted()
    lift = ReminderLift.fit(group, dyn, event, np.ones(len(event)), trees, n_groups=2,
                            smoothing=10.0, group_feature="segment")
    probe = _rows(np.array([PHONE, PHONE, PHONE, EMAIL]), np.array([1, 12, 12, 12]),
                  np.array([1, 1, 2, 2]), np.array([2, 2, 2, 2]))
    f = lift.factor(np.ones(4, dtype=np.int64), probe)
    assert f[0] / f[1] == pytest.approx(0.3, abs=0.06)  # an early call is worth less
    # the number effect was only seen on emails, yet it carries over to a second call
    assert f[2] / f[1] == pytest.approx(0.7, abs=0.07)
    assert f[3] / f[1] == pytest.approx(0.7, abs=0.07)
    assert all((lvl == 1.0).all() for lvl in (t[0] for t in lift.factors))  # group 0: no rows


def test_lift_is_one_outside_the_reminder_window_and_for_unknown_groups():
    group, dyn, event, trees = _planted(100_000)
    lift = ReminderLift.fit(group, dyn, event, np.ones(len(event)), trees, 2, 10.0, "segment")
    never = _rows(np.zeros(2, dtype=np.int64), np.zeros(2), np.zeros(2), np.zeros(2))
    never["days_since_last_reminder"] = np.full(2, float(NO_REMINDER_DAYS))
    never["last_reminder_overdue"] = np.full(2, -1.0)
    assert lift.factor(np.array([1, 1]), never).tolist() == [1.0, 1.0]
    old = _rows(np.array([EMAIL]), np.array([0]), np.array([1]), np.array([30]))
    assert lift.factor(np.array([1]), old).tolist() == [1.0]
    early = _rows(np.array([EMAIL, EMAIL]), np.array([1, 1]), np.array([1, 1]),
                  np.array([1, 1]))
    out = lift.factor(np.array([7, -1]), early)  # codes the fit never saw: no lift
    assert out.tolist() == [1.0, 1.0]


def test_thin_levels_are_shrunk_toward_the_trees():
    fitted = {}
    for name, n, seed in (("rich", 400_000, 0), ("thin", 2_000, 1)):
        group, dyn, event, trees = _planted(n, seed=seed)
        fitted[name] = ReminderLift.fit(group, dyn, event, np.ones(n), trees, 2, 10.0,
                                        "segment")
    early = np.searchsorted(SEND_DAY_EDGES, 1, side="right") - 1
    late = np.searchsorted(SEND_DAY_EDGES, 12, side="right") - 1
    ratio = {k: m.factors[1][1, early] / m.factors[1][1, late] for k, m in fitted.items()}
    assert ratio["rich"] < 0.45 and 0.45 < ratio["thin"] <= 1.2


def test_lift_round_trip():
    group, dyn, event, trees = _planted(50_000)
    lift = ReminderLift.fit(group, dyn, event, np.ones(len(event)), trees, 2, 10.0, "segment")
    back = ReminderLift.from_dict(json.loads(json.dumps(lift.to_dict())))
    np.testing.assert_array_equal(back.factor(group, dyn), lift.factor(group, dyn))


def test_lift_resolves_a_window_of_best_send_days_after_the_second_week():
    """A group that pays twice as well after reminders sent on days 29-34 (a peak of 6 days,
    the scenario family draws 4-12 anywhere from day 3 to 40): the lift of a reminder sent
    on day 30 is twice that of one sent on day 38 or 24 (the earlier grid's buckets
    [21, 30) and [30, 45) averaged the peak with the days around it: 1.4x)."""
    rng = np.random.default_rng(5)
    n = 400_000
    send = rng.integers(0, 46, n)
    since = rng.integers(0, 21, n)
    dyn = _rows(np.full(n, EMAIL), send, np.ones(n, dtype=np.int64), since)
    truth = 0.02 * np.where((send >= 29) & (send <= 34), 2.0, 1.0)
    event = (rng.random(n) < truth).astype(float)
    probe = _rows(np.full(4, EMAIL), np.array([30, 33, 38, 24]), np.ones(4, dtype=np.int64),
                  np.full(4, 2))
    ratio = {}
    for name, edges in (("fine", FINE_SEND_DAY_EDGES), ("default", None)):
        lift = ReminderLift.fit(np.ones(n, dtype=np.int64), dyn, event, np.ones(n),
                                np.full(n, 0.02), 2, 10.0, "segment", send_day_edges=edges)
        f = lift.factor(np.ones(4, dtype=np.int64), probe)
        ratio[name] = (f[0] / f[2], f[1] / f[3])
    assert ratio["fine"] == (pytest.approx(2.0, abs=0.25), pytest.approx(2.0, abs=0.25))
    assert ratio["default"][0] < 1.6  # the default grid averages the window away


def test_a_lift_keeps_its_grid_and_one_saved_without_has_the_default():
    group, dyn, event, trees = _planted(50_000)
    fine = ReminderLift.fit(group, dyn, event, np.ones(len(event)), trees, 2, 10.0, "segment",
                            send_day_edges=FINE_SEND_DAY_EDGES)
    saved = fine.to_dict()
    assert saved["send_day_edges"] == FINE_SEND_DAY_EDGES.tolist()
    back = ReminderLift.from_dict(json.loads(json.dumps(saved)))
    np.testing.assert_array_equal(back.factor(group, dyn), fine.factor(group, dyn))
    with pytest.raises(ValueError, match="send-day factors"):  # its grid dropped
        ReminderLift.from_dict({k: v for k, v in saved.items() if k != "send_day_edges"})
    default = ReminderLift.fit(group, dyn, event, np.ones(len(event)), trees, 2, 10.0,
                               "segment")
    assert "send_day_edges" not in default.to_dict()  # models saved before: same hash
    assert ReminderLift.from_dict(default.to_dict()).send_day_edges.tolist() == (
        SEND_DAY_EDGES.tolist())


def test_a_saved_hazard_model_keeps_its_send_day_grid(hazard_frame, tmp_path):
    fine = HazardModel(n_estimators=5, reminder_lift_send_day_edges=FINE_SEND_DAY_EDGES)
    fine.fit(hazard_frame).save(tmp_path / "fine")
    back = HazardModel.load(tmp_path / "fine")
    assert back.reminder_lift_.send_day_edges.tolist() == FINE_SEND_DAY_EDGES.tolist()
    assert back.reminder_lift_send_day_edges == FINE_SEND_DAY_EDGES.tolist()
    HazardModel(n_estimators=5).fit(hazard_frame).save(tmp_path / "default")
    assert HazardModel.load(tmp_path / "default").reminder_lift_send_day_edges is None


def test_send_day_edges_that_are_no_grid_fail_before_training(hazard_frame):
    with pytest.raises(DunningError, match="reminder_lift_send_day_edges"):
        HazardModel(n_estimators=5, reminder_lift_send_day_edges=[2, 5, 9]).fit(hazard_frame)


def _second_call_ratio(model: HazardModel, static: np.ndarray) -> tuple[float, float]:
    """Mean hazard of the week after a call on day 9 that is the 2nd reminder, over the same
    call as the 1st; and a call on day 1 over a call on day 6 (first reminders)."""
    n = len(static)

    def week(send: int, number: int) -> float:
        total = 0.0
        for j in range(7):
            probe = _rows(np.full(n, PHONE), np.full(n, send), np.full(n, number),
                          np.full(n, j))
            total += model.predict_hazard(static, probe).mean()
        return total

    return week(9, 2) / week(9, 1), week(1, 1) / week(6, 1)


def test_lift_gives_the_hazard_model_a_reminder_number_and_timing(prepared, hazard_frame):
    corporate = (prepared.customers["segment"].astype(str).to_numpy()[
        prepared.cust[hazard_frame.rows]] == "corporate")
    idx = np.unique(hazard_frame.static_index[corporate])[:300]
    ratios = {}
    for smoothing in (None, 10.0):
        model = HazardModel(reminder_lift_smoothing=smoothing).fit(hazard_frame)
        ratios[smoothing] = _second_call_ratio(
            model, model.static_matrix(hazard_frame.static.iloc[idx]))
    # The generated corporates: a 2nd reminder works 0.7x, a call before day 5 0.3x. The
    # trees alone value a second call like a first and barely see the early-call penalty.
    (second_plain, early_plain), (second_lift, early_lift) = ratios[None], ratios[10.0]
    assert second_lift < second_plain - 0.05 and second_lift < 0.95, ratios
    assert early_lift < early_plain - 0.1, ratios


def test_models_without_the_lift_keep_their_format_and_hash(hazard_frame, tmp_path):
    hashes = {}
    for smoothing, sub in ((10.0, "lift"), (None, "plain")):
        hashes[sub] = HazardModel(n_estimators=20, reminder_lift_smoothing=smoothing).fit(
            hazard_frame).save(tmp_path / sub)
    plain = json.loads((tmp_path / "plain" / HAZARD_META).read_text())
    # no new keys: a model without the lift hashes as before the lift existed
    assert "reminder_lift" not in plain and "reminder_lift_smoothing" not in plain["params"]
    assert hashes["lift"] != hashes["plain"]
    assert HazardModel().reminder_lift_smoothing == 10.0  # on by default


def test_lift_learns_a_milestone_level_when_given_the_milestones():
    """Planted: reminders sent before the invoice's milestone, on days still before it, pay
    0.25x what the trees predict; once it is reached they pay as predicted; invoices without
    a milestone (NaN) are unaffected."""
    rng = np.random.default_rng(4)
    n = 300_000
    channel = rng.choice([EMAIL, PHONE], n)
    send, since = rng.integers(0, 40, n), rng.integers(0, 21, n)
    milestone = np.where(rng.random(n) < 0.5, np.nan, rng.integers(-10, 50, n).astype(float))
    dyn = _rows(channel, send, np.ones(n, dtype=np.int64), since)
    still_before = send + since < milestone  # NaN compares False
    event = (rng.random(n) < 0.02 * np.where(still_before, 0.25, 1.0)).astype(float)
    group = np.ones(n, dtype=np.int64)
    lift = ReminderLift.fit(group, dyn, event, np.ones(n), np.full(n, 0.02), 2, 10.0,
                            "segment", milestone=milestone)
    assert lift.uses_milestone
    probe = _rows(np.full(4, PHONE), np.array([5, 5, 25, 5]), np.ones(4, dtype=np.int64),
                  np.array([2, 2, 2, 2]))
    f = lift.factor(np.ones(4, dtype=np.int64), probe, np.array([20.0, 6.0, 10.0, np.nan]))
    assert f[0] / f[2] == pytest.approx(0.25, abs=0.05)  # sent and still before
    assert f[1] / f[2] == pytest.approx(1.0, abs=0.1)  # sent before, reached since
    assert f[3] / f[2] == pytest.approx(1.0, abs=0.1)  # no milestone
    with pytest.raises(ValueError, match="milestone"):
        lift.factor(np.ones(4, dtype=np.int64), probe)
    back = ReminderLift.from_dict(json.loads(json.dumps(lift.to_dict())))
    assert back.uses_milestone
    plain = ReminderLift.fit(group, dyn, event, np.ones(n), np.full(n, 0.02), 2, 10.0,
                             "segment")
    assert not plain.uses_milestone and len(plain.factors) == 4


def _first_letter_lift(model: HazardModel, static: np.ndarray, day: np.ndarray) -> np.ndarray:
    """(n,) hazard on ``day`` after a first letter sent that day over waiting."""
    n = len(day)
    sent = _rows(np.full(n, 2), day, np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.int64))
    wait = _rows(np.zeros(n, dtype=np.int64), day, np.zeros(n, dtype=np.int64),
                 np.zeros(n, dtype=np.int64))
    wait["days_since_last_reminder"] = np.full(n, float(NO_REMINDER_DAYS))
    wait["last_reminder_overdue"] = np.full(n, -1.0)
    return model.predict_hazard(static, sent) / model.predict_hazard(static, wait)


def test_milestone_inputs_see_that_a_reminder_before_the_milestone_is_wasted(hazard_frame,
                                                                            tmp_path):
    """The generated construction invoices wait for a project milestone and the world
    ignores reminders sent before it (true lift 1.0). Without the milestone inputs the
    model gives a letter 5 days before the milestone several times the hazard of waiting."""
    ms = hazard_frame.static["days_due_to_milestone"].to_numpy()
    rows = hazard_frame.static.iloc[np.where(np.isfinite(ms) & (ms >= 5))[0]]
    day = rows["days_due_to_milestone"].to_numpy() - 5
    lifts = {}
    for flag in (False, True):
        model = HazardModel(milestone_inputs=flag).fit(hazard_frame)
        lifts[flag] = float(np.mean(_first_letter_lift(model, model.static_matrix(rows), day)))
    assert lifts[False] > 3.0 and lifts[True] < 1.5, lifts
    model.save(tmp_path)
    loaded = HazardModel.load(tmp_path)
    assert loaded.milestone_inputs and loaded.reminder_lift_.uses_milestone
    np.testing.assert_array_equal(
        _first_letter_lift(loaded, loaded.static_matrix(rows), day),
        _first_letter_lift(model, model.static_matrix(rows), day))
