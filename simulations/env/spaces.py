"""Gymnasium spaces of the collections environments."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from engine.contract import N_ACTIONS
from simulations.env.layout import LAYOUT

_BOUND = 1.0e5


def observation_space() -> spaces.Box:
    """``Box((LAYOUT.dim,), float32)``; only ``days_to_milestone`` can be negative."""
    low = np.zeros(LAYOUT.dim, dtype=np.float32)
    low[LAYOUT["days_to_milestone"]] = -_BOUND
    high = np.full(LAYOUT.dim, _BOUND, dtype=np.float32)
    return spaces.Box(low=low, high=high, dtype=np.float32)


def action_space() -> spaces.Discrete:
    """``Discrete(6)``: wait, email, letter, phone, final notice, agency (engine.contract)."""
    return spaces.Discrete(N_ACTIONS)
