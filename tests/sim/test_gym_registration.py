"""Gymnasium registration: make() from a fresh interpreter, make_vec() giving the batched
vector env (same numbers as the SB3 one), and action_masks() before reset() a clear error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest

import simulations.env  # noqa: F401 - registers dunning/Collections-v0 for this process
from simulations.env import BatchCollectionsVecEnv, CollectionsEnv, CollectionsVectorEnv

ROOT = Path(__file__).resolve().parents[2]


def test_make_with_the_module_in_the_id_works_in_a_fresh_interpreter() -> None:
    code = ("import gymnasium, sys\n"
            "assert 'simulations' not in sys.modules\n"
            "env = gymnasium.make('simulations.env:dunning/Collections-v0')\n"
            "obs, info = env.reset(seed=3)\n"
            "print(obs.shape, env.unwrapped.action_masks().shape,\n"
            "      type(env.unwrapped).__name__)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(38,) (6,) CollectionsEnv"


def _masked_actions(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random allowed action per row (wait is always allowed)."""
    scores = rng.random(masks.shape) * masks
    return np.argmax(scores, axis=1)


def test_make_vec_builds_the_batched_vector_env(gt_source, legal_mask) -> None:
    venv = gymnasium.make_vec("dunning/Collections-v0", num_envs=16, source=gt_source,
                              mask=legal_mask)
    assert isinstance(venv, CollectionsVectorEnv)
    assert venv.observation_space.shape == (16, 38) and venv.action_space.shape == (16,)
    sb3 = BatchCollectionsVecEnv(gt_source, 16, mask=legal_mask, seed=5)
    obs, infos = venv.reset(seed=5)
    np.testing.assert_array_equal(obs, sb3.reset())
    assert infos == {}
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(60):
        actions = _masked_actions(venv.action_masks(), rng)
        np.testing.assert_array_equal(venv.action_masks(), sb3.action_masks())
        obs, rew, term, trunc, infos = venv.step(actions)
        sb3.step_async(actions)
        obs2, rew2, done2, infos2 = sb3.step_wait()
        np.testing.assert_array_equal(obs, obs2)
        np.testing.assert_array_equal(rew, rew2)
        np.testing.assert_array_equal(term | trunc, done2)
        if (term | trunc).any():
            ended += int((term | trunc).sum())
            rows = np.flatnonzero(term | trunc)
            assert infos["_final_obs"][rows].all()
            for r in rows:
                np.testing.assert_array_equal(infos["final_obs"][r],
                                              infos2[r]["terminal_observation"])
            assert "money_return" in infos["final_info"]
    assert ended > 0  # episodes ended and were replaced in the same step
    assert obs.shape == (16, 38) and venv.observation_space.contains(obs)


def test_vector_env_reset_seed_is_reproducible(gt_source, legal_mask) -> None:
    runs = []
    for _ in range(2):
        venv = CollectionsVectorEnv(8, source=gt_source, mask=legal_mask)
        obs, _ = venv.reset(seed=11)
        total = np.zeros(8)
        for _ in range(30):
            obs, rew, *_ = venv.step(np.ones(8, np.int64) * (obs[:, 0] == 14))
            total += rew
        runs.append(total)
    np.testing.assert_array_equal(runs[0], runs[1])


def test_action_masks_before_reset_is_a_clear_error(gt_source, legal_mask) -> None:
    sb3 = BatchCollectionsVecEnv(gt_source, 4, mask=legal_mask, seed=0)
    with pytest.raises(RuntimeError, match=r"before reset\(\).*call reset\(\) first"):
        sb3.env_method("action_masks")
    sb3.reset()
    assert sb3.env_method("action_masks").shape == (4, 6)
    with pytest.raises(RuntimeError, match="call reset"):
        CollectionsEnv(source=gt_source, mask=legal_mask).action_masks()
    with pytest.raises(RuntimeError, match="call reset"):
        CollectionsVectorEnv(4, source=gt_source, mask=legal_mask).action_masks()
