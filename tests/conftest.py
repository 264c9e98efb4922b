"""Fixtures shared by several test areas: the packaged legal rules and the default world."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def legal_mask() -> Any:
    """``simulations.env.LegalMask`` over the packaged rules."""
    from simulations.env import LegalMask

    return LegalMask()


@pytest.fixture(scope="session")
def gt_source() -> Any:
    """The default ground-truth world with a seeded 4,000-invoice pool."""
    from simulations.env import GroundTruthSource

    return GroundTruthSource("default", pool_size=4000, seed=0)
