"""Shared fixtures of the simulation tests: the packaged default world and legal rules."""

from __future__ import annotations

import pytest

from simulations.env import GroundTruthSource, LegalMask


@pytest.fixture(scope="session")
def legal_mask() -> LegalMask:
    return LegalMask()


@pytest.fixture(scope="session")
def gt_source() -> GroundTruthSource:
    return GroundTruthSource("default", pool_size=4000, seed=0)
