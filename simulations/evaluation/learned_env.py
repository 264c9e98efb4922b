"""Build the learned environment the CLI tunes policies in, with as little wiring as possible.

From a store and model directory (``--db``, ``--model``) when given; otherwise from a
history generated from the scenario itself (``world.generate_company``) with a hazard model
fitted on it: what a company with only its own data would have (the tuned schedules never
see the world's parameters, only the history the world produced).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulations.env.learned import LearnedSource


def build_learned_source(scenario: Any, db: Path | None = None, model: Path | None = None,
                         history_customers: int = 800, history_months: int = 12,
                         seed: int = 0, status: Callable[[str], None] | None = None
                         ) -> LearnedSource:
    """The learned environment of ``scenario`` (costs) from a store+model or a history."""
    say = status or (lambda _msg: None)
    if model is not None:
        from engine.config import DEFAULT_DB

        say(f"learned environment from {db or DEFAULT_DB} and {model}")
        return LearnedSource.from_store(db or DEFAULT_DB, model, scenario)
    from engine.models.hazard import HazardModel
    from simulations import world

    sc = world.load_scenario(scenario) if isinstance(scenario, str | Path) else scenario
    say(f"generating {history_customers} customers x {history_months} months of history")
    company = world.generate_company(sc, history_customers, history_months, seed + 1000)
    tables = {"customers": company.customers, "invoices": company.invoices,
              "payments": company.payments, "actions": company.actions}
    say("fitting the hazard model on that history")
    hazard = HazardModel(random_state=seed).fit_tables(tables, company.as_of)
    return LearnedSource.from_tables(tables, hazard, None, sc, company.as_of)
