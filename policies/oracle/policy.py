"""The oracle behind the common :class:`Policy` interface."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from policies.oracle.solver import OracleSolution
from simulations.policy import Policy
from simulations.world.dynamics import WorldState

StateSource = Callable[[], tuple[np.ndarray | None, WorldState]]


class OraclePolicy(Policy):
    """Plays the optimal action of an :class:`OracleSolution` for the true current state.

    Bind a state source before calling :meth:`act`: either a callable returning
    ``(rows, world_state)`` (``rows``: the solution row of each env row, or None for
    ``0..n-1``), or an object with attributes ``world_state`` and optionally
    ``oracle_rows``. If an optimal action is vetoed by ``masks`` (a different mask than the
    one solved with), WAIT is played instead.
    """

    sees_world_state = True

    name = "oracle"

    def __init__(self, solution: OracleSolution) -> None:
        self.solution = solution
        self._source: StateSource | None = None

    def bind(self, source: Any) -> OraclePolicy:
        if callable(source):
            self._source = source
        else:
            self._source = lambda: (getattr(source, "oracle_rows", None), source.world_state)
        return self

    def act_state(self, state: WorldState, rows: np.ndarray | None = None) -> np.ndarray:
        """Optimal actions (n,) for a world state of the solution's invoices ``rows``."""
        return self.solution.action(state, rows)

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        if self._source is None:
            raise RuntimeError("OraclePolicy.act needs the true state: call bind(...) first")
        rows, state = self._source()
        actions = self.act_state(state, rows)
        if masks is not None:
            masks = np.asarray(masks, dtype=bool)
            allowed = masks[np.arange(len(actions)), actions]
            actions = np.where(allowed, actions, 0)
        return actions.astype(np.int64)
