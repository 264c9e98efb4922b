"""The oracle in the evaluation harness: solve each evaluation batch exactly, then play it.

Wraps ``policies.oracle`` (exact backward induction over the ground truth). The harness
calls :meth:`GroundTruthOracle.bind_simulator` with the simulator holding the invoices about
to be run; the oracle solves those invoices under the same legal rules and then, every day,
reads the true world state of each row. Solutions are kept between calls
(:class:`policies.common.solutions.SolutionCache`): an invoice drawn again in a later
evaluation seed is not solved again. It only works on a ``GroundTruthSource``: it is the
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
        cache_size: solved invoices kept between calls, their tables compressed (a few KB
            each); dropped when the scenario, calendar, rules, date or horizon change.
    """

    sees_world_state = True

    name = "oracle"

    def __init__(self, as_of: dt.date | None = None, solution: Any = None,
                 cache_size: int = 20_000) -> None:
        from policies.common.solutions import SolutionCache

        self.as_of = as_of
        self._policy: Any = None
        self.solution: Any = solution
        self._given = solution is not None
        self._cache = SolutionCache(cache_size)

    def bind_simulator(self, sim: Any) -> None:
        from policies.common.solutions import mask_context
        from policies.oracle import OraclePolicy
        from simulations.env.ground_truth import GroundTruthSource
        from simulations.env.masks import FixedDateMask

        source = sim.source
        if not isinstance(source, GroundTruthSource):
            raise InputError("the oracle needs the ground-truth world (GroundTruthSource); "
                             f"got {type(source).__name__}")
        mask_fn = FixedDateMask(sim.mask, self.as_of or source.scenario.start_date)
        if not self._given:
            params = self.solved_params(source.params_of(sim.batch))
            context = (source.scenario, params.calendar, params.industries,
                       *mask_context(sim.mask), mask_fn.as_of, sim.horizon)
            self.solution = self._solve(params, mask_fn, sim.horizon, context)
        self._policy = OraclePolicy(self.solution).bind(lambda: (None, sim.hidden))

    def _solve(self, params: Any, mask_fn: Any, horizon: int, context: tuple[Any, ...]
               ) -> Any:
        """The ``OracleSolution`` of ``params``: invoices kept from an earlier call under the
        same ``context`` are taken from the cache, the others solved (and kept)."""
        from policies.common.dp import StateSpace
        from policies.oracle import OracleSolution, solve

        def solve_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            new = solve(params.take(rows), sc, mask_fn, horizon=horizon, keep_policy=True)
            return new.value, new.policy

        sc = params.scenario
        space = StateSpace.build(sc.max_days_since_reminder, sc.max_reminders)
        self._cache.use_context(context)
        value, policy = self._cache.solutions(params.row_keys(), (horizon, space.size),
                                              solve_rows)
        return OracleSolution(params=params, space=space, horizon=horizon, value=value,
                              policy=policy)

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
