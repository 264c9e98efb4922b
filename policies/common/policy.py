"""The one interface every scheduling policy implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Policy(ABC):
    """Chooses one action per open invoice per day.

    Subclasses implement :meth:`act`. ``observations`` has shape ``(n, obs_dim)`` (the
    layout documented by ``simulations.env``), ``masks`` has shape ``(n, N_ACTIONS)``
    (``True`` = allowed by the legal rules). The returned actions, shape ``(n,)``, dtype
    int64, index :class:`engine.contract.Action` and must be allowed by ``masks``.
    """

    name: str = "policy"

    @abstractmethod
    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Return one action per row of ``observations``."""
