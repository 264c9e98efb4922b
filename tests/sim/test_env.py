"""The gymnasium environment, the batched VecEnv and the simulator core."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from engine.calendar import BusinessCalendar, to_days
from engine.contract import Action
from simulations.env import (
    ENV_ID,
    LAYOUT,
    BatchCollectionsVecEnv,
    CollectionsEnv,
    CollectionsSimulator,
)
from simulations.env.layout import SEGMENT_NAMES


def test_layout_names_are_unique_and_cover_the_vector():
    names = LAYOUT.column_names()
    assert len(names) == LAYOUT.dim == len(set(names))
    assert LAYOUT["days_overdue"] == 0
    seg = LAYOUT.slice("segment")
    assert seg.stop - seg.start == len(SEGMENT_NAMES)


def test_check_env_passes(gt_source, legal_mask):
    env = CollectionsEnv(source=gt_source, mask=legal_mask)
    check_env(env, skip_render_check=True)


def test_registered_id_builds_the_default_world():
    env = gymnasium.make(ENV_ID)
    obs, info = env.reset(seed=3)
    assert obs.shape == (LAYOUT.dim,)
    mask = env.get_wrapper_attr("action_masks")()
    assert mask.shape == (6,) and mask[Action.WAIT]


def test_a_vetoed_action_is_never_taken(gt_source, legal_mask):
    env = CollectionsEnv(source=gt_source, mask=legal_mask)
    rng = np.random.default_rng(0)
    refused_seen = 0
    for episode in range(6):
        obs, info_prev = env.reset(seed=episode)
        done = False
        while not done:
            mask = env.action_masks()
            action = int(rng.integers(1, 5))  # always ask for a reminder
            before = obs[LAYOUT.slice("reminders")].sum()
            obs, reward, done, truncated, info = env.step(action)
            after = obs[LAYOUT.slice("reminders")].sum()
            if not mask[action]:
                refused_seen += 1
                assert info["refused"] and info["executed"] == "wait"
                assert after == before
                assert Action(action).channel in info_prev["vetoed_by"]
            else:
                assert not info["refused"]
            info_prev = info
    assert refused_seen > 0
    assert env.refused_attempts == refused_seen


def test_paid_reward_is_the_discounted_amount(gt_source, legal_mask):
    sim = CollectionsSimulator(gt_source, legal_mask)
    batch = gt_source.fresh_invoices(500, np.random.default_rng(1))
    sim.load(batch)
    gamma = (1 + gt_source.scenario.costs.annual_discount_rate) ** (-1 / 365)
    seen = 0
    for day in range(sim.horizon):
        res = sim.step(np.zeros(sim.n, dtype=np.int64), np.random.default_rng([1, day]))
        paid = np.flatnonzero(res.outcome.paid & res.active)
        np.testing.assert_allclose(res.reward[paid], batch.amount[paid] * gamma ** day)
        assert np.all(res.reward[~res.outcome.paid] == 0.0)  # waiting is free
        seen += len(paid)
        if not sim.active.any():
            break
    assert seen > 100


def test_vec_env_auto_resets_with_terminal_observation(gt_source, legal_mask):
    env = BatchCollectionsVecEnv(gt_source, num_envs=64, mask=legal_mask, seed=0)
    obs = env.reset()
    assert obs.shape == (64, LAYOUT.dim) and obs.dtype == np.float32
    finished = 0
    for _ in range(60):
        masks = env.action_masks()
        assert masks.shape == (64, 6) and masks[:, 0].all()
        actions = np.where(masks[:, Action.EMAIL], Action.EMAIL, Action.WAIT)
        obs, rewards, dones, infos = env.step(actions)
        for i in np.flatnonzero(dones):
            finished += 1
            assert "terminal_observation" in infos[i]
            assert obs[i, LAYOUT["days_overdue"]] == 0  # a fresh invoice took its place
            assert infos[i]["terminal_observation"][LAYOUT["days_overdue"]] > 0
    assert finished > 0
    assert env.refused_attempts == 0


def test_vec_env_is_seeded(gt_source, legal_mask):
    def rollout(seed: int) -> np.ndarray:
        env = BatchCollectionsVecEnv(gt_source, num_envs=32, mask=legal_mask, seed=seed)
        env.reset()
        total = np.zeros(32)
        for _ in range(40):
            _, r, _, _ = env.step(np.full(32, Action.WAIT))
            total += r
        return total

    np.testing.assert_array_equal(rollout(5), rollout(5))
    assert not np.array_equal(rollout(5), rollout(6))


def test_maskable_ppo_reads_the_vec_env_masks(gt_source, legal_mask):
    from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported

    env = BatchCollectionsVecEnv(gt_source, num_envs=16, mask=legal_mask, seed=0,
                                 reward_per_amount=True)
    env.reset()
    assert is_masking_supported(env)
    masks = get_action_masks(env)
    assert masks.shape == (16, 6)
    np.testing.assert_array_equal(masks, env.action_masks())


def test_calendar_knows_holidays_and_month_ends():
    import datetime as dt

    cal = BusinessCalendar(dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    day = to_days([dt.date(2025, 12, 25), dt.date(2025, 3, 29)])
    out = cal.lookup(cal.places(np.array(["DE", "DE"])), day)
    assert out.is_holiday.tolist() == [True, False]
    assert out.is_weekend.tolist() == [False, True]
    assert out.days_to_month_end.tolist() == [6, 2]
    assert out.days_to_quarter_end.tolist() == [6, 2]


def test_vec_env_reports_refused_actions_and_scaled_rewards(gt_source, legal_mask):
    env = BatchCollectionsVecEnv(gt_source, num_envs=64, mask=legal_mask, seed=2,
                                 reward_per_amount=True)
    env.reset()
    refused = 0
    for _ in range(40):
        masks = env.action_masks()
        actions = np.full(64, Action.PHONE)  # ask for a call every day: often vetoed
        amount = env.sim.batch.amount.copy()
        _, rewards, _, infos = env.step(actions)
        np.testing.assert_allclose(rewards, env.last_money / amount, rtol=1e-5)
        for i in np.flatnonzero(~masks[:, Action.PHONE]):
            refused += 1
            assert infos[i]["refused"] and infos[i]["vetoed_by"] in legal_mask.rule_ids
    assert refused > 0 and env.refused_attempts == refused


def test_the_ground_truth_refuses_other_costs(gt_source):
    """Its reward is the world's own: other costs would be silently ignored."""
    from dataclasses import replace

    from engine.errors import DunningError

    with pytest.raises(DunningError, match="cannot be re-weighted"):
        gt_source.with_costs(replace(gt_source.costs, complaint_cost=800.0))
