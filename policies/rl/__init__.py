"""The RL reminder scheduler: MaskablePPO trained in the learned collections environment.

- :class:`RLTrainingConfig`, :func:`train_maskable_ppo` (``policies.rl.training``)
- :class:`RLPolicy` (``act(observations, masks)``, ``RLPolicy.load(dir)``),
  :func:`save_artifact`, :func:`load_artifact` (``policies.rl.policy``)
"""

from policies.rl.policy import RLArtifact, RLPolicy, load_artifact, save_artifact
from policies.rl.training import RLTrainingConfig, TrainingCurve, train_maskable_ppo

__all__ = [
    "RLArtifact", "RLPolicy", "RLTrainingConfig", "TrainingCurve", "load_artifact",
    "save_artifact", "train_maskable_ppo",
]
