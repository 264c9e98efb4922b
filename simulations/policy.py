"""The one interface every scheduling policy implements: what the environment, the
evaluation harness and the off-policy estimators call.

It lives here, beside the environment that defines the observation and the action space,
because the harness drives policies; the policies themselves live one layer up
(``policies/``) and import this contract (docs/architecture.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np


class Policy(ABC):
    """Chooses one action per open invoice per day.

    Subclasses implement :meth:`act`. ``observations`` has shape ``(n, obs_dim)`` (the
    columns of :data:`simulations.env.layout.LAYOUT`), ``masks`` has shape
    ``(n, N_ACTIONS)`` (``True`` = allowed by the legal rules). The returned actions, shape
    ``(n,)``, dtype int64, index :class:`engine.contract.Action` and must be allowed by
    ``masks``. ``act`` receives every row of the batch in batch order, finished invoices
    included (their rows are stale and their actions ignored).

    Two optional hooks, with defaults that do nothing:

    - :meth:`bind_simulator` is called by the harness with the simulator before each run
      (the oracle reads the true state through it; a veto counter reads the refusals).
    - a policy with ``sees_world_state = True`` (the oracle) is asked through
      :meth:`act_state` with the replayed world state instead of :meth:`act` by the
      off-policy estimators.
    """

    name: str = "policy"
    sees_world_state: ClassVar[bool] = False

    @abstractmethod
    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Return one action per row of ``observations``."""

    def bind_simulator(self, sim: Any) -> None:  # noqa: B027 - an optional hook
        """Called with the simulator before each evaluation run; the default ignores it."""

    def act_state(self, state: Any, rows: np.ndarray | None = None) -> np.ndarray:
        """One action per row of the true world ``state`` (only if ``sees_world_state``)."""
        raise NotImplementedError(f"{type(self).__name__} does not see the world state")
