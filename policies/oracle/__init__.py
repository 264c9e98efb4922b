"""The oracle: the exact optimum of the ground-truth MDP (backward induction), an upper bound.

::

    from policies.oracle import solve, OraclePolicy
    sol = solve(params, scenario, mask_fn)       # OracleSolution: value (n,), policy table
    actions = sol.action(world_state)            # optimal actions for a WorldState (n,)
    policy = OraclePolicy(sol).bind(env)         # Policy interface for an environment

``OraclePolicy.act(observations, masks)`` ignores the observations (the oracle sees the true
state): it reads the current ``WorldState`` (and the solution rows of the env's invoices)
from what :meth:`OraclePolicy.bind` received.
"""

from policies.oracle.policy import OraclePolicy
from policies.oracle.solver import OracleSolution, StateSpace, allow_all, solve

__all__ = ["OraclePolicy", "OracleSolution", "StateSpace", "allow_all", "solve"]
