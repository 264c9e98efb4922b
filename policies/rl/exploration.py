"""Exploring starts for reminder timing: training-only WAIT holds through the action mask.

Why: the world rewards a reminder most some days after the due date (corporates 5-10 days,
start-ups just before month end, SaaS before quarter end), and between reminders. PPO
improves a policy locally: at day 1 it compares "call now" with "wait one day, then do what
the policy does" (call tomorrow), which is no better - so a policy that calls early never
learns that waiting five days pays, because it almost never reaches "day 5, no reminder".
Masked-PPO trained this way stayed at ~74 % of the oracle gap even in the ground truth,
while the oracle solved WITHOUT the latent reliability still closes ~100 %: the limit was
exploration, not information.

:class:`WaitHoldExploration` wraps the training VecEnv. When an episode starts, and after each
reminder, it draws with probability ``p`` a hold of ``U ~ Uniform{1..max_days}`` days during
which only WAIT is allowed. A one-action mask gives the policy zero log-probability and zero
gradient on those days, so no action the agent did not choose is credited to it; the value
function learns the states the holds reach ("day 7, nothing sent yet"), and the free
decisions before them improve backwards from there. ``p`` decays linearly to 0 over
training so the last updates are on the policy's own state distribution. Evaluation and the
saved policy never see the wrapper.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices

from engine.contract import Action
from simulations.env.layout import LAYOUT


class MaskingVecEnvWrapper(VecEnvWrapper):
    """A training VecEnv wrapper that changes the action masks: ``env_method(
    "action_masks")``, which MaskablePPO calls every step, answers with the subclass's
    :meth:`action_masks` (built from ``self.venv``'s); every other method goes through."""

    def action_masks(self) -> np.ndarray:
        raise NotImplementedError

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        if method_name == "action_masks":
            idx = list(self._get_indices(indices))
            return self.action_masks()[idx]  # type: ignore[return-value]
        return self.venv.env_method(method_name, *method_args, indices=indices,
                                    **method_kwargs)


class WaitHoldExploration(MaskingVecEnvWrapper):
    """Training-only WAIT holds at episode start and after each reminder (see module doc).

    Args:
        venv: the masked training VecEnv (``env_method("action_masks")`` -> ``(n, 6)``).
        probability: chance ``p`` that an episode start or a reminder begins a hold, at the
            start of training; decays linearly to 0 at ``total_timesteps``.
        max_days: longest hold in days (``U`` is uniform on ``1..max_days``).
        total_timesteps: training length in transitions (all envs), for the decay.
        seed: seeds the hold draws.
    """

    def __init__(self, venv: VecEnv, probability: float, max_days: int,
                 total_timesteps: int, seed: int | None = 0) -> None:
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"hold probability must be in [0, 1], got {probability}")
        if max_days < 1:
            raise ValueError(f"hold max_days must be >= 1, got {max_days}")
        super().__init__(venv)
        self.probability = float(probability)
        self.max_days = int(max_days)
        self.total_timesteps = max(1, int(total_timesteps))
        self.timesteps = 0
        self._rng = np.random.default_rng(seed)
        self._hold_until = np.full(self.num_envs, -1.0)
        self._sent = np.zeros(self.num_envs)
        self._day = np.zeros(self.num_envs)

    @property
    def current_probability(self) -> float:
        return self.probability * max(0.0, 1.0 - self.timesteps / self.total_timesteps)

    def _draw(self, rows: np.ndarray, day: np.ndarray) -> None:
        """Start a hold on ``rows`` with probability p, from their current ``day``."""
        if len(rows) == 0:
            return
        hold = self._rng.random(len(rows)) < self.current_probability
        length = self._rng.integers(1, self.max_days + 1, size=len(rows))
        self._hold_until[rows] = np.where(hold, day[rows] + length, -1.0)

    def reset(self) -> np.ndarray:
        obs = self.venv.reset()
        self._sent = LAYOUT.reminders_sent(obs)
        self._day = obs[:, LAYOUT["days_overdue"]].astype(np.float64)
        self._draw(np.arange(self.num_envs), self._day)
        return obs

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, reward, done, infos = self.venv.step_wait()
        self.timesteps += self.num_envs
        sent = LAYOUT.reminders_sent(obs)
        self._day = obs[:, LAYOUT["days_overdue"]].astype(np.float64)
        reminded = np.flatnonzero(~done & (sent > self._sent))
        self._draw(np.flatnonzero(done), self._day)
        self._draw(reminded, self._day)
        self._sent = sent
        return obs, reward, done, infos

    def action_masks(self) -> np.ndarray:
        """The legal masks, with WAIT the only choice on rows inside a hold."""
        masks = np.asarray(self.venv.env_method("action_masks"), dtype=bool).copy()
        held = self._day < self._hold_until
        masks[held] = False
        masks[held, int(Action.WAIT)] = True
        return masks
