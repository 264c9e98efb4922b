"""What the policies share: the :class:`~simulations.policy.Policy` contract they implement."""

from simulations.policy import Policy

__all__ = ["Policy"]
