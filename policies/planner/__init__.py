"""The planner: the exact DP of the oracle solved on the company's LEARNED transition model.

Certainty-equivalent model-based planning: no gradient steps; what it loses against the
oracle is the learned model's error (docs/planner.md)::

    from policies.planner import LearnedDynamics, PlannerPolicy
    planner = PlannerPolicy(LearnedDynamics.from_source(learned_source))
    planner.plan(batch); planner.act(observations, masks)

The names are imported lazily, so that ``policies.planner.files`` (what a policy loader
needs to recognise a planner directory) does not load the planner and the learned model.
"""

from typing import Any

__all__ = ["LearnedDynamics", "LearnedModel", "PlannerPolicy"]


def __getattr__(name: str) -> Any:
    if name in ("LearnedDynamics", "LearnedModel"):
        from policies.planner import model

        return getattr(model, name)
    if name == "PlannerPolicy":
        from policies.planner.policy import PlannerPolicy

        return PlannerPolicy
    raise AttributeError(f"module 'policies.planner' has no attribute {name!r}")
