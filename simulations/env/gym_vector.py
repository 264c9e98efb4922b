"""``CollectionsVectorEnv``: the batched environment as a gymnasium ``VectorEnv``.

``gymnasium.make_vec("dunning/Collections-v0", num_envs=1024)`` builds it (the registered
``vector_entry_point``): the same numpy batch as the SB3 :class:`BatchCollectionsVecEnv`
(one array step for all invoices, no Python loop per invoice), with gymnasium 1.x's
vector API: ``reset(seed=) -> (obs, infos)``, ``step(actions) -> (obs, rewards,
terminations, truncations, infos)``, same-step autoreset (a finished invoice is replaced at
once; its last observation is ``infos["final_obs"][i]``, its info ``infos["final_info"]``,
both flagged by ``infos["_final_obs"]``). ``action_masks()`` -> ``(num_envs, 6)``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from simulations.env.masks import ActionMask
from simulations.env.source import TransitionSource
from simulations.env.spaces import action_space, observation_space
from simulations.env.vec_env import BatchCollectionsVecEnv


class CollectionsVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` invoices stepped as one batch (gymnasium ``VectorEnv``).

    Args:
        num_envs: invoices in parallel.
        source: transitions and new invoices (default: the ground truth of ``scenario``).
        scenario: scenario name or YAML path, used when ``source`` is None.
        mask: legal mask (default: the packaged rules).
        horizon: write-off day (default: the source's).
        reward_per_amount: rewards divided by the invoice amount (scale-free).

    Rewards, observations, vetoes and episode ends are those of
    :class:`~simulations.env.gym_env.CollectionsEnv`; ``reset(seed=s)`` makes the run
    reproducible (invoice draws and daily draws).
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 16, source: TransitionSource | None = None,
                 scenario: str = "default", mask: ActionMask | None = None,
                 horizon: int | None = None, reward_per_amount: bool = False) -> None:
        if source is None:
            from simulations.env.ground_truth import GroundTruthSource

            source = GroundTruthSource(scenario)
        self.batch_env = BatchCollectionsVecEnv(source, num_envs, mask=mask, seed=None,
                                                reward_per_amount=reward_per_amount,
                                                horizon=horizon)
        self.num_envs = int(num_envs)
        self.single_observation_space = observation_space()
        self.single_action_space = action_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self.batch_env.seed(seed)
            self.action_space.seed(seed)
        return self.batch_env.reset(), {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                 np.ndarray, dict[str, Any]]:
        self.batch_env.step_async(np.asarray(actions))
        obs, rewards, done, env_infos = self.batch_env.step_wait()
        truncated = np.array([bool(i.get("TimeLimit.truncated", False)) for i in env_infos])
        terminated = done & ~truncated
        infos: dict[str, Any] = {}
        for i, info in enumerate(env_infos):
            if not info:
                continue
            info = dict(info)
            final = info.pop("terminal_observation", None)
            if final is not None:
                info.pop("TimeLimit.truncated", None)
                infos = self._add_info(infos, {"final_obs": final, "final_info": info}, i)
            else:
                infos = self._add_info(infos, info, i)
        return obs, rewards, terminated, truncated, infos

    def action_masks(self) -> np.ndarray:
        """``(num_envs, 6)`` bool: the actions the legal rules allow today per invoice."""
        return self.batch_env.action_masks()

    def close_extras(self, **kwargs: Any) -> None:
        self.batch_env.close()
