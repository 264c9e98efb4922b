"""The planner: the exact DP of the oracle solved on the company's LEARNED transition model.

Certainty-equivalent model-based planning: no gradient steps; what it loses against the
oracle is the learned model's error::

    from policies.planner import LearnedDynamics, PlannerPolicy
    planner = PlannerPolicy(LearnedDynamics.from_source(learned_source))
    planner.plan(batch); planner.act(observations, masks)
"""

from policies.planner.model import LearnedDynamics, LearnedModel
from policies.planner.policy import PlannerPolicy

__all__ = ["LearnedDynamics", "LearnedModel", "PlannerPolicy"]
