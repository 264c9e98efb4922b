"""Shared fixtures of the world tests: the packaged scenarios and a small generated company."""

from __future__ import annotations

import numpy as np
import pytest

from simulations import world


@pytest.fixture(scope="session")
def scenario() -> world.Scenario:
    return world.load_scenario("default")


@pytest.fixture(scope="session")
def company(scenario: world.Scenario) -> world.Company:
    """300 customers over 10 months (about 5,000 invoices)."""
    return world.generate_company(scenario, n_customers=300, months=10, seed=7)


@pytest.fixture()
def params(scenario: world.Scenario) -> world.InvoiceParams:
    return world.sample_invoices(scenario, 2000, np.random.default_rng(11))
