"""A small learned environment: a generated history, a hazard model fitted on it."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def company():
    from simulations import world

    return world.generate_company(world.load_scenario("default"), 250, 8, seed=3)


@pytest.fixture(scope="session")
def history(company):
    sc = company.params.scenario
    tables = {"customers": company.customers, "invoices": company.invoices,
              "payments": company.payments, "actions": company.actions}
    return sc, tables, company.as_of


@pytest.fixture(scope="session")
def learned_source(history):
    from engine.models.hazard import HazardModel
    from simulations.env import LearnedSource

    sc, tables, as_of = history
    hazard = HazardModel(n_estimators=30, random_state=0).fit_tables(tables, as_of)
    return LearnedSource.from_tables(tables, hazard, None, sc, as_of)
