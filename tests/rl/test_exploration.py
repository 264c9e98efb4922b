"""WaitHoldExploration: training-only WAIT holds through the action mask."""

from __future__ import annotations

import numpy as np
import pytest

from engine.contract import Action
from simulations.env.layout import LAYOUT

from .conftest import tiny_rl_config


def _venv(small_run, n: int = 128, seed: int = 0):
    from simulations.env import BatchCollectionsVecEnv, LegalMask

    return BatchCollectionsVecEnv(small_run.learned, num_envs=n, mask=LegalMask(), seed=seed,
                                  reward_per_amount=True)


def _hold(venv, probability: float, max_days: int = 10, total: int = 10**9):
    from policies.rl.exploration import WaitHoldExploration

    return WaitHoldExploration(venv, probability, max_days, total, seed=0)


def test_no_hold_leaves_the_legal_masks(small_run):
    inner = _venv(small_run)
    env = _hold(inner, 0.0)
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(20):
        masks = env.env_method("action_masks")
        assert np.array_equal(masks, inner.action_masks())
        allowed = [rng.choice(np.flatnonzero(m)) for m in masks]
        env.step(np.array(allowed))


def test_held_rows_can_only_wait_and_never_remind_inside_the_hold(small_run):
    """p = 1: every episode starts with a hold; no reminder can be sent before it ends."""
    inner = _venv(small_run)
    env = _hold(inner, 1.0, max_days=10)
    obs = env.reset()
    start_hold = env._hold_until.copy()
    assert (start_hold >= 1).all() and (start_hold <= 10).all()
    greedy_phone = np.full(env.num_envs, int(Action.PHONE))
    saw_free_row = False
    for _ in range(12):
        masks = env.env_method("action_masks")
        day = obs[:, LAYOUT["days_overdue"]]
        held = day < env._hold_until
        assert masks[held, int(Action.WAIT)].all()
        assert not masks[held][:, 1:].any()
        # Rows past their hold get the legal masks back (some of them allow a call).
        legal = inner.action_masks()
        assert np.array_equal(masks[~held], legal[~held])
        saw_free_row |= bool(legal[~held, int(Action.PHONE)].any())
        before = LAYOUT.reminders_sent(obs)
        obs, _, done, _ = env.step(np.where(masks[:, int(Action.PHONE)], greedy_phone, 0))
        # A row that was held could not have been reminded this step.
        assert not ((LAYOUT.reminders_sent(obs) > before) & held & ~done).any()
    assert saw_free_row


def test_a_reminder_starts_a_new_hold(small_run):
    env = _hold(_venv(small_run), 1.0, max_days=5)
    obs = env.reset()
    for _ in range(8):  # every start hold (<= 5 days) is over after 6 steps
        obs, *_ = env.step(np.zeros(env.num_envs, dtype=np.int64))
    masks = env.env_method("action_masks")
    can_call = np.flatnonzero(masks[:, int(Action.PHONE)])
    assert len(can_call) > 0
    actions = np.zeros(env.num_envs, dtype=np.int64)
    actions[can_call] = int(Action.PHONE)
    before = LAYOUT.reminders_sent(obs)
    obs, _, done, _ = env.step(actions)
    reminded = np.flatnonzero((LAYOUT.reminders_sent(obs) > before) & ~done)
    assert len(reminded) > 0
    day = obs[reminded, LAYOUT["days_overdue"]]
    assert (env._hold_until[reminded] > day).all()
    assert not env.env_method("action_masks")[reminded][:, 1:].any()


def test_hold_probability_decays_to_zero(small_run):
    env = _hold(_venv(small_run, n=64), 0.8, total=64 * 10)
    env.reset()
    assert env.current_probability == pytest.approx(0.8)
    for _ in range(5):
        env.step(np.zeros(64, dtype=np.int64))
    assert env.current_probability == pytest.approx(0.4)
    for _ in range(5):
        env.step(np.zeros(64, dtype=np.int64))
    assert env.current_probability == 0.0


@pytest.mark.parametrize("bad", [{"probability": -0.1}, {"probability": 1.5}, {"max_days": 0}])
def test_bad_hold_settings_are_refused(small_run, bad):
    from policies.rl.exploration import WaitHoldExploration

    args = {"probability": 0.5, "max_days": 10, "total_timesteps": 100} | bad
    with pytest.raises(ValueError):
        WaitHoldExploration(_venv(small_run, n=8), **args)


def test_training_with_holds_runs_and_is_reproducible(small_run, tmp_path):
    """Same seed, same holds, same weights; the holds change the weights learned."""
    from dataclasses import replace

    import torch

    from policies.rl import RLPolicy, save_artifact, train_maskable_ppo

    weights = []
    for run, p in enumerate((0.5, 0.5, 0.0)):
        cfg = replace(tiny_rl_config(seed=1), hold_probability=p, hold_max_days=10)
        model, curve, secs = train_maskable_ppo(_venv(small_run, n=cfg.n_envs, seed=1), cfg)
        art = save_artifact(model, tmp_path / f"p{run}", cfg, curve, secs,
                            {"environment": "learned"})
        assert RLPolicy.load(art.path).content_hash == art.content_hash
        assert art.metadata["training_config"]["hold_probability"] == p
        weights.append(torch.cat([t.flatten() for t in model.policy.state_dict().values()]))
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])


def test_configs_saved_before_the_holds_read_back_without_holds():
    from policies.rl import RLTrainingConfig

    saved = RLTrainingConfig().to_dict()
    assert saved["hold_probability"] > 0  # holds are on by default now
    del saved["hold_probability"], saved["hold_max_days"]
    old = RLTrainingConfig.from_dict(saved)
    assert old.hold_probability == 0.0
    assert RLTrainingConfig.from_dict(RLTrainingConfig().to_dict()) == RLTrainingConfig()
