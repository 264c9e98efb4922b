"""Fixed input scaling of the observation for the policy network.

The environment's observation is in natural units (days up to the horizon, counts, a log
amount); a small MLP learns faster on inputs of order one. The scaling is a fixed affine
map per field of :data:`simulations.env.layout.LAYOUT` (no running statistics), so the
saved policy needs nothing but its SB3 zip to reproduce its actions.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from simulations.env.layout import LAYOUT, ObservationLayout

# field -> (offset, scale): scaled = (x - offset) / scale. Fields not listed pass through.
FIELD_SCALING: dict[str, tuple[float, float]] = {
    "days_overdue": (60.0, 60.0),
    "reminders": (0.0, 2.0),
    "days_since_contact": (30.0, 30.0),
    "log_amount": (3.0, 1.0),
    "weekday": (3.0, 3.0),
    "days_to_month_end": (15.0, 15.0),
    "days_to_quarter_end": (45.0, 45.0),
    "days_to_milestone": (0.0, 30.0),
}
CLIP = 5.0


def scaling_vectors(layout: ObservationLayout = LAYOUT) -> tuple[np.ndarray, np.ndarray]:
    """``(offset, scale)``, each ``(layout.dim,)`` float32, for ``(obs - offset) / scale``."""
    offset = np.zeros(layout.dim, np.float32)
    scale = np.ones(layout.dim, np.float32)
    for name, (off, sc) in FIELD_SCALING.items():
        offset[layout.slice(name)] = off
        scale[layout.slice(name)] = sc
    return offset, scale


class ScaledObservation(BaseFeaturesExtractor):
    """Features = ``clip((obs - offset) / scale, -5, 5)``; shape ``(batch, obs_dim)``."""

    def __init__(self, observation_space: gym.spaces.Box) -> None:
        dim = int(np.prod(observation_space.shape))
        super().__init__(observation_space, features_dim=dim)
        if dim != LAYOUT.dim:
            raise ValueError(f"observation has {dim} columns; the RL policy expects "
                             f"simulations.env.layout.LAYOUT with {LAYOUT.dim}")
        offset, scale = scaling_vectors()
        self.register_buffer("offset", torch.as_tensor(offset))
        self.register_buffer("scale", torch.as_tensor(scale))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        x = (observations.flatten(1) - self.offset) / self.scale
        return torch.clamp(x, -CLIP, CLIP)
