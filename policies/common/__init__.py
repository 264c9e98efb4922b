"""Shared policy interface."""

from policies.common.policy import Policy

__all__ = ["Policy"]
