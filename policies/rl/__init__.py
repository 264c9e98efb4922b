"""The RL reminder scheduler: MaskablePPO trained in the learned collections environment.

- :class:`RLTrainingConfig`, :func:`train_maskable_ppo` (``policies.rl.training``)
- :class:`RLPolicy` (``act(observations, masks)``, ``RLPolicy.load(dir)``),
  :func:`save_artifact`, :func:`load_artifact` (``policies.rl.policy``)

The training names load on first use: serving a saved policy (``RLPolicy.load``) needs
neither the simulator nor the training code (tested in ``tests/rl/test_serving.py``).
"""

from __future__ import annotations

from typing import Any

from policies.rl.policy import RLArtifact, RLPolicy, load_artifact, save_artifact

__all__ = [
    "RLArtifact", "RLPolicy", "RLTrainingConfig", "TrainingCurve", "load_artifact",
    "save_artifact", "train_maskable_ppo",
]

_TRAINING = ("RLTrainingConfig", "TrainingCurve", "train_maskable_ppo")


def __getattr__(name: str) -> Any:
    if name in _TRAINING:
        from policies.rl import training

        return getattr(training, name)
    raise AttributeError(f"module 'policies.rl' has no attribute {name!r}")
