"""A batched numpy implementation of stable-baselines3's ``VecEnv`` for many invoices.

One :class:`BatchCollectionsVecEnv` steps ``num_envs`` invoices together with array code
(no Python loop over invoices); a finished invoice is replaced at once by a new one from
the source (SB3 auto-reset convention: the returned observation is the new invoice's,
``infos[i]["terminal_observation"]`` is the finished one's). ``action_masks()`` returns the
legal-rules mask ``(num_envs, 6)`` that sb3-contrib's ``MaskablePPO`` reads through
``env_method("action_masks")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices

from simulations.env.core import CollectionsSimulator, StepResult
from simulations.env.masks import ActionMask, default_mask
from simulations.env.source import TransitionSource
from simulations.env.spaces import action_space, observation_space


class BatchCollectionsVecEnv(VecEnv):
    """``num_envs`` invoices stepped as one numpy batch (SB3 ``VecEnv``).

    Args:
        source: transitions and new invoices (``LearnedSource`` to train,
            ``GroundTruthSource`` to evaluate).
        num_envs: invoices in parallel.
        mask: legal mask (default: the packaged rules via ``LegalMask``).
        seed: seeds invoice sampling and the daily draws.
        reward_per_amount: divide rewards by the invoice amount (a scale-free reward,
            handy for RL); :attr:`last_money` always holds the last rewards in money and
            ``infos[i]["money_return"]`` an ended episode's total.
        horizon: write-off day (default: the source's).

    Observations are ``(num_envs, LAYOUT.dim)`` float32 (see ``simulations.env.layout``),
    actions ``(num_envs,)`` ints in ``engine.contract.Action``. A requested action the mask
    refuses is replaced by WAIT and counted in ``refused_attempts`` (and flagged in
    ``infos[i]["refused"]``, with the vetoing rule's id in ``infos[i]["vetoed_by"]``).
    """

    def __init__(self, source: TransitionSource, num_envs: int = 1024,
                 mask: ActionMask | None = None, seed: int | None = 0,
                 reward_per_amount: bool = False, horizon: int | None = None) -> None:
        self.render_mode = None
        self.sim = CollectionsSimulator(source, default_mask() if mask is None else mask,
                                        horizon=horizon)
        self.source = source
        self.reward_per_amount = reward_per_amount
        self._rng = np.random.default_rng(seed)
        self._actions: np.ndarray | None = None
        self.refused_attempts = 0
        self.episodes_finished = 0
        super().__init__(num_envs, observation_space(), action_space())

    # -- VecEnv core ---------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        if self._seeds[0] is not None:
            self._rng = np.random.default_rng(self._seeds[0])
        self.sim.load(self.source.sample_invoices(self.num_envs, self._rng))
        self._ep_return = np.zeros(self.num_envs)
        self._ep_len = np.zeros(self.num_envs, dtype=np.int64)
        self._reset_seeds()
        self._reset_options()
        return self.sim.observations()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        assert self._actions is not None, "step_async must be called before step_wait"
        n = self.num_envs
        asked = self._actions
        refused_rows = np.flatnonzero(~self.sim.masks[np.arange(n), asked])
        vetoed = {}
        if len(refused_rows):  # name the vetoing rule while today's facts are at hand
            by = self.sim.vetoed_by(refused_rows)[np.arange(len(refused_rows)),
                                                   asked[refused_rows]]
            vetoed = {int(r): self.sim.mask.rule_ids[b] if b >= 0 else "unknown"
                      for r, b in zip(refused_rows, by, strict=True)}
        res: StepResult = self.sim.step(asked, self._rng, refresh=False)
        self._actions = None
        money = res.reward
        reward = money / self.sim.batch.amount if self.reward_per_amount else money
        self._ep_return += money
        self._ep_len += 1
        self.refused_attempts += int(res.refused.sum())
        obs = self.sim.observations()
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(res.refused):
            infos[i]["refused"] = True
            infos[i]["vetoed_by"] = vetoed.get(int(i), "unknown")
        done = res.terminated | res.truncated
        finished = np.flatnonzero(done)
        if len(finished):
            for i in finished:
                infos[i].update({
                    "terminal_observation": obs[i].copy(),
                    "TimeLimit.truncated": bool(res.truncated[i]),
                    "paid": bool(res.outcome.paid[i] and res.executed[i] != 5),
                    "written_off": bool(res.written_off[i]),
                    "money_return": float(self._ep_return[i]),
                    "episode_days": int(self._ep_len[i]),
                })
            self.episodes_finished += len(finished)
            self.sim.replace_rows(finished, self.source.sample_invoices(len(finished), self._rng),
                                  refresh=False)
            self._ep_return[finished] = 0.0
            self._ep_len[finished] = 0
        self.sim.refresh()
        if len(finished):
            obs[finished] = self.sim.observations()[finished]
        self.last_money = money
        return obs, reward.astype(np.float32), done, infos

    def action_masks(self) -> np.ndarray:
        """``(num_envs, 6)`` bool: actions the legal rules allow today per invoice.

        Raises:
            RuntimeError: before the first :meth:`reset` (there are no invoices yet).
        """
        if self.sim.batch is None:
            raise RuntimeError("action_masks() before reset(): there are no invoices yet; "
                               "call reset() first (the masks are the legal rules applied to "
                               "the invoices reset() draws)")
        return self.sim.action_masks()

    def close(self) -> None:
        return None

    # -- attribute plumbing (one process: every "env" is a row of the batch) ------------
    def _indices(self, indices: VecEnvIndices) -> list[int]:
        return list(self._get_indices(indices))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        idx = self._indices(indices)
        if method_name == "action_masks":
            # one (6,) row per env, as one (k, 6) array: np.stack and torch take it as is
            return self.action_masks()[idx]  # type: ignore[return-value]
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in idx]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]
