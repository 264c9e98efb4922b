"""PPO held to the DP's spacing: no reminder within ``min_days_between`` days of the last,
in training (SpacedMasks) and whenever the saved policy acts (its timing rules)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from engine.contract import Action
from simulations.env.layout import LAYOUT, SEGMENT_NAMES

from .conftest import tiny_rl_config


def _venv(small_run, n: int = 128, seed: int = 0):
    from simulations.env import BatchCollectionsVecEnv, LegalMask

    return BatchCollectionsVecEnv(small_run.learned, num_envs=n, mask=LegalMask(), seed=seed,
                                  reward_per_amount=True)


def test_spaced_masks_let_no_reminder_follow_the_last_within_the_gap(small_run):
    """Send a reminder whenever one is allowed: with the wrapper the gaps between an invoice's
    reminders are all >= 7 days, and the unwrapped env does send some sooner."""
    from policies.rl.timing_rules import TimingRules
    from policies.rl.training import SpacedMasks

    gaps = {}
    for spaced in (True, False):
        inner = _venv(small_run)
        env = SpacedMasks(inner, TimingRules().with_min_gap(7)) if spaced else inner
        obs = env.reset()
        last = np.full(env.num_envs, -1.0)
        seen = []
        for _ in range(40):
            masks = np.asarray(env.env_method("action_masks"), dtype=bool)
            legal = inner.action_masks()
            assert not (masks & ~legal).any()  # the wrapper only takes actions away
            assert masks[:, int(Action.WAIT)].all()
            # any reminder allowed today (the legal rules alone space some channels)
            actions = np.zeros(env.num_envs, dtype=np.int64)
            for a in (Action.EMAIL, Action.LETTER, Action.PHONE):
                actions = np.where((actions == 0) & masks[:, int(a)], int(a), actions)
            before = LAYOUT.reminders_sent(obs)
            day = obs[:, LAYOUT["days_overdue"]].copy()
            obs, _, done, _ = env.step(actions)
            sent = (LAYOUT.reminders_sent(obs) > before) & ~done
            again = sent & (last >= 0)
            seen.extend((day[again] - last[again]).tolist())
            last = np.where(done, -1.0, np.where(sent, day, last))
        gaps[spaced] = np.array(seen)
    assert len(gaps[True]) > 0 and gaps[True].min() >= 7
    assert gaps[False].min() < 7


def test_the_saved_policy_keeps_the_spacing_it_was_trained_with(small_run, tmp_path):
    from policies.rl import RLPolicy, save_artifact, train_maskable_ppo
    from policies.rl.timing_rules import TimingRule, TimingRules

    cfg = replace(tiny_rl_config(seed=2), min_days_between=7)
    model, curve, secs = train_maskable_ppo(_venv(small_run, n=cfg.n_envs, seed=2), cfg)
    searched = TimingRules({"corporate": TimingRule(6, 14), "saas": TimingRule(9, 0)})
    art = save_artifact(model, tmp_path / "spaced", cfg, curve, secs,
                        {"environment": "learned"}, timing=searched)
    policy = RLPolicy.load(art.path)
    rules = policy.timing.rules
    assert rules["corporate"] == TimingRule(6, 14)  # a longer searched gap stays
    assert rules["saas"] == TimingRule(9, 7)
    assert all(r.min_days_between >= 7 for r in rules.values())
    # acting, a SaaS customer: reminded 3 days ago it may only wait, 8 days ago it may call
    obs = np.zeros((2, LAYOUT.dim), dtype=np.float32)
    obs[:, LAYOUT["days_overdue"]] = 30
    obs[:, LAYOUT["days_since_contact"]] = [3, 8]
    obs[:, LAYOUT.slice("reminders").start + 2] = 1  # one call sent
    obs[:, LAYOUT.slice("segment").start + SEGMENT_NAMES.index("saas")] = 1
    masks = np.zeros((2, 6), dtype=bool)
    masks[:, [int(Action.WAIT), int(Action.PHONE)]] = True
    assert (LAYOUT.reminders_sent(obs) > 0).all()
    assert policy.timing.held(obs).tolist() == [True, False]
    assert policy.act(obs, masks)[0] == int(Action.WAIT)
    # a config saved before the spacing reads back without it
    saved = cfg.to_dict()
    del saved["min_days_between"]
    from policies.rl import RLTrainingConfig

    assert RLTrainingConfig.from_dict(saved).min_days_between == 0
    assert RLTrainingConfig().min_days_between == 7
