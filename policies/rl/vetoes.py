"""Count which legal rules vetoed which actions while a policy was being evaluated."""

from __future__ import annotations

from typing import Any

import numpy as np

from simulations.policy import Policy


class VetoCounter(Policy):
    """Wraps a policy; counts, per rule id, the (invoice-day, action) pairs its veto removed.

    The evaluation harness calls ``bind_simulator(sim)`` before each run; every ``act``
    then reads the rule that vetoed each forbidden action of every open invoice that day
    (``sim.vetoed_by``). ``counts`` maps rule id -> vetoed pairs, summed over runs.
    The wrapped policy's actions are returned unchanged.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.name = policy.name
        self.counts: dict[str, int] = {}
        self._sim: Any = None

    def bind_simulator(self, sim: Any) -> None:
        self._sim = sim
        self.policy.bind_simulator(sim)

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        sim = self._sim
        if sim is not None:
            rows = np.flatnonzero(sim.active & ~np.asarray(masks, dtype=bool).all(axis=1))
            if len(rows):
                by = np.asarray(sim.vetoed_by(rows))
                hits = np.bincount(by[by >= 0].ravel(), minlength=len(sim.mask.rule_ids))
                for i in np.flatnonzero(hits):
                    rule = sim.mask.rule_ids[int(i)]
                    self.counts[rule] = self.counts.get(rule, 0) + int(hits[i])
        return self.policy.act(observations, masks)
