"""The per-segment tuned schedule: searched in the learned environment, seeded, saved."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.contract import Action
from engine.errors import InputError
from policies.baselines import DEFAULT_SCHEDULE
from policies.tuned import TunedSchedulePolicy, TuningConfig, tune_schedules
from simulations.env import BatchCollectionsVecEnv, LearnedSource

TINY = TuningConfig(n_invoices=300, iterations=2, population=3, validation_invoices=300,
                    seed=5)


@pytest.fixture(scope="module")
def tuned(learned_source, legal_mask) -> TunedSchedulePolicy:
    return tune_schedules(learned_source, TINY, mask=legal_mask)


def test_tuning_is_seeded(tuned, learned_source, legal_mask):
    again = tune_schedules(learned_source, TINY, mask=legal_mask)
    assert again.to_dict() == tuned.to_dict()
    assert again.meta["validation"] == tuned.meta["validation"]


def test_a_tuned_segment_beat_fixed_on_validation(tuned):
    for seg, v in tuned.meta["validation"].items():
        if v["kept_tuned"]:
            assert v["tuned_npv"] > v["fixed_npv"], seg
        else:
            assert tuned.schedules[seg] == DEFAULT_SCHEDULE, seg
    assert tuned.meta["source"] == "learned"


def test_save_and_load_round_trip(tuned, tmp_path):
    path = tuned.save(tmp_path / "tuned.json")
    back = TunedSchedulePolicy.load(path)
    assert back.to_dict() == tuned.to_dict()
    assert json.loads(path.read_text())["policy"] == "tuned"
    (tmp_path / "bad.json").write_text('{"schedules": {"corporate": [{"day": "x"}]}}')
    with pytest.raises(InputError, match="bad.json"):
        TunedSchedulePolicy.load(tmp_path / "bad.json")
    with pytest.raises(InputError, match="not found"):
        TunedSchedulePolicy.load(tmp_path / "missing.json")


def test_learned_source_learns_from_the_history(learned_source: LearnedSource, legal_mask):
    rates = learned_source.rates
    # family businesses complain about reminders far more often (scenario ground truth)
    fam, corp = 1, 0
    assert rates.complaint[fam, 1:5].mean() > rates.complaint[corp, 1:5].mean()
    env = BatchCollectionsVecEnv(learned_source, num_envs=128, mask=legal_mask, seed=1)
    env.reset()
    paid = 0
    for _ in range(90):
        _, _, dones, infos = env.step(np.zeros(128, dtype=np.int64))
        paid += sum(bool(infos[i].get("paid")) for i in np.flatnonzero(dones))
    assert paid > 50  # the hazard model makes invoices get paid


def test_learned_hazard_cache_is_exact(learned_source: LearnedSource, legal_mask):
    from simulations.env import CollectionsSimulator
    from simulations.env.learned import _dynamic

    sim = CollectionsSimulator(learned_source, legal_mask)
    sim.load(learned_source.sample_invoices(300, np.random.default_rng(2)))
    rng = np.random.default_rng(3)
    for _ in range(25):
        masks = sim.action_masks()
        want = np.where(rng.random(sim.n) < 0.1, Action.EMAIL, Action.WAIT)
        act = np.where(masks[np.arange(sim.n), want], want, 0)
        idx = np.flatnonzero(sim.active & ~sim.cal.is_weekend)
        cached = learned_source._hazard(sim.batch, sim.state, act, sim.cal, idx)
        direct = learned_source.hazard.predict_hazard(sim.batch.params.static[idx],
                                                      _dynamic(sim.state, act, sim.cal, idx))
        np.testing.assert_array_equal(cached, direct)
        sim.step(act, rng)
    assert np.isfinite(learned_source._unreminded).any()


def test_learned_hazard_sees_todays_reminder(learned_source: LearnedSource, legal_mask):
    """A reminder sent today enters today's hazard inputs (as in the training rows)."""
    from simulations.env import CollectionsSimulator
    from simulations.env.learned import _dynamic

    sim = CollectionsSimulator(learned_source, legal_mask)
    sim.load(learned_source.sample_invoices(200, np.random.default_rng(5)))
    rng = np.random.default_rng(6)
    for _ in range(9):  # a few quiet days so days overdue > 0
        sim.step(np.zeros(sim.n, dtype=np.int64), rng)
    idx = np.flatnonzero(sim.active)
    wait = _dynamic(sim.state, np.zeros(sim.n, dtype=np.int64), sim.cal, idx)
    phone = _dynamic(sim.state, np.full(sim.n, int(Action.PHONE)), sim.cal, idx)
    np.testing.assert_array_equal(phone["n_phone"], wait["n_phone"] + 1)
    np.testing.assert_array_equal(phone["days_since_last_reminder"], 0.0)
    np.testing.assert_array_equal(phone["last_channel"], float(Action.PHONE))
    np.testing.assert_array_equal(phone["last_reminder_overdue"], phone["days_overdue"])
    np.testing.assert_array_equal(wait["last_reminder_overdue"], -1.0)
    assert (wait["days_overdue"] > 0).all()
