"""The collections environment: one invoice per episode, one day per step.

Public API::

    from simulations.env import (CollectionsEnv, BatchCollectionsVecEnv, CollectionsSimulator,
                                 GroundTruthSource, LearnedSource, TransitionSource,
                                 LAYOUT, ObservationLayout, LegalMask, AllowAll)

``gymnasium.make("dunning/Collections-v0")`` builds :class:`CollectionsEnv` on the default
scenario's ground truth and ``gymnasium.make_vec("dunning/Collections-v0", num_envs=1024)``
the batched :class:`~simulations.env.gym_vector.CollectionsVectorEnv`. Gymnasium (1.x) has no
plugin discovery (its entry-point plugin system was removed in 1.0), so in a fresh
interpreter name the module in the id - ``gymnasium.make("simulations.env:dunning/
Collections-v0")`` - or import this package first. Heavy pieces (world, models, legal
rules) load lazily.
"""

from __future__ import annotations

from typing import Any

import gymnasium

from simulations.env.layout import LAYOUT, SEGMENT_NAMES, ObservationLayout

ENV_ID = "dunning/Collections-v0"

__all__ = [
    "ENV_ID", "LAYOUT", "SEGMENT_NAMES", "AllowAll", "BatchCollectionsVecEnv",
    "CollectionsEnv", "CollectionsSimulator", "CollectionsVectorEnv", "CostModel", "EnvState",
    "GroundTruthSource", "InvoiceBatch", "LearnedSource", "LegalMask", "ObservationLayout",
    "Outcome", "StepResult", "TransitionSource", "legal_facts",
]

# Loaded on first use: the observation layout (and the builder in
# ``simulations.env.observation``) must be importable for serving a policy without the
# simulator, the legal masks or the transition sources.
_LAZY = {
    "CollectionsSimulator": "simulations.env.core",
    "StepResult": "simulations.env.core",
    "AllowAll": "simulations.env.masks",
    "LegalMask": "simulations.env.masks",
    "legal_facts": "simulations.env.masks",
    "TransitionSource": "simulations.env.source",
    "CostModel": "simulations.env.types",
    "EnvState": "simulations.env.types",
    "InvoiceBatch": "simulations.env.types",
    "Outcome": "simulations.env.types",
    "CollectionsEnv": "simulations.env.gym_env",
    "CollectionsVectorEnv": "simulations.env.gym_vector",
    "BatchCollectionsVecEnv": "simulations.env.vec_env",
    "GroundTruthSource": "simulations.env.ground_truth",
    "LearnedSource": "simulations.env.learned",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'simulations.env' has no attribute {name!r}")


if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="simulations.env.gym_env:CollectionsEnv",
                       vector_entry_point="simulations.env.gym_vector:CollectionsVectorEnv",
                       max_episode_steps=None)
