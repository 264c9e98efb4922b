"""The oracle in the evaluation harness: solve each evaluation batch exactly, then play it.

Wraps ``policies.oracle`` (exact backward induction over the ground truth). The harness
calls :meth:`GroundTruthOracle.bind_simulator` with the simulator holding the invoices about
to be run; the oracle solves those invoices under the same legal rules and then, every day,
reads the true world state of each row. It only works on a ``GroundTruthSource``: it is the
upper bound no real policy can reach, not something a user can deploy.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from engine.errors import InputError
from simulations.policy import Policy


class GroundTruthOracle(Policy):
    """Optimal policy of the ground-truth MDP for the simulator's invoices.

    Args:
        as_of: date the legal rules are evaluated at while solving (default: the
            scenario's start date; the environment itself uses each day's date).
        solution: an ``OracleSolution`` already solved for exactly the invoices the
            simulator will hold, in the same order (skips solving; e.g. for benchmarks).
    """

    sees_world_state = True

    name = "oracle"

    def __init__(self, as_of: dt.date | None = None, solution: Any = None) -> None:
        self.as_of = as_of
        self._policy: Any = None
        self.solution: Any = solution
        self._given = solution is not None

    def bind_simulator(self, sim: Any) -> None:
        from policies.oracle import OraclePolicy, solve
        from simulations.env.ground_truth import GroundTruthSource
        from simulations.env.masks import FixedDateMask

        source = sim.source
        if not isinstance(source, GroundTruthSource):
            raise InputError("the oracle needs the ground-truth world (GroundTruthSource); "
                             f"got {type(source).__name__}")
        mask_fn = FixedDateMask(sim.mask, self.as_of or source.scenario.start_date)
        if not self._given:
            params = self.solved_params(source.params_of(sim.batch))
            self.solution = solve(params, source.scenario, mask_fn, horizon=sim.horizon,
                                  keep_policy=True)
        self._policy = OraclePolicy(self.solution).bind(lambda: (None, sim.hidden))

    def solved_params(self, params: Any) -> Any:
        """The invoice parameters the MDP is solved with (the true ones; a diagnostic
        subclass may blind the oracle to some of them - it is still played in the truth)."""
        return params

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        if self._policy is None:
            raise RuntimeError("GroundTruthOracle.act: bind_simulator(sim) must be called "
                               "first (the evaluation harness does it)")
        return self._policy.act(observations, masks)

    def act_state(self, state: Any, rows: Any = None) -> np.ndarray:
        """Optimal actions for a world state of the solved invoices (off-policy evaluation)."""
        from policies.oracle import OraclePolicy

        if self.solution is None:
            raise RuntimeError("GroundTruthOracle.act_state needs a solution")
        return OraclePolicy(self.solution).act_state(state, rows)
