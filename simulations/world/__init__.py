"""Ground-truth synthetic company: scenarios, the invoice MDP (vectorised), the generator.

No model sees this module's parameters; it writes the ERP-like files models learn from and
it is the world the oracle solves exactly. Public API (see ``dynamics`` for the MDP)::

    from simulations import world
    scenario = world.load_scenario("default")                # or a YAML path
    params = world.sample_invoices(scenario, n, rng)          # InvoiceParams, arrays (n,)
    state = world.initial_state(params)                       # WorldState at the due date
    probs = world.transition_probs(params, state, actions)    # TransitionProbs (n,)
    state, outcome = world.step(params, state, actions, rng)  # StepOutcome (n,)
    facts = world.facts_from_state(params, state)             # legal facts, dict of (n,)
    p = world.logging_policy_probs(params, state)             # (n, 6)
    company = world.generate_company(scenario, n_customers, months, seed)
    company.write(out_dir)                                    # the four CSVs + summary.json

Costs and the daily discount are in ``scenario.costs`` (:class:`Costs`).
"""

from simulations.world.calendar import WorldCalendar
from simulations.world.dynamics import (
    StepOutcome,
    TransitionProbs,
    WorldState,
    advance,
    facts_from_state,
    initial_state,
    logging_policy_probs,
    step,
    transition_probs,
)
from simulations.world.generate import Company, generate_company
from simulations.world.params import InvoiceParams, sample_invoices
from simulations.world.scenario import Costs, Scenario, load_scenario, packaged_scenarios

__all__ = [
    "Company", "Costs", "InvoiceParams", "Scenario", "StepOutcome", "TransitionProbs",
    "WorldCalendar", "WorldState", "advance", "facts_from_state", "generate_company",
    "initial_state", "load_scenario", "logging_policy_probs", "packaged_scenarios",
    "sample_invoices", "step", "transition_probs",
]
