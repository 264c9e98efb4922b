"""Run a state-based decision rule through the ground truth and measure each invoice's NPV."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulations.world.dynamics import WorldState, initial_state, logging_policy_probs, step
from simulations.world.params import InvoiceParams

Chooser = Callable[[WorldState], np.ndarray]  # state (n,) -> actions (n,)


@dataclass
class RolloutResult:
    """Per invoice, shape (n,): NPV at the due date (currency), paid, reminders, complaints."""

    npv: np.ndarray
    paid: np.ndarray
    reminders: np.ndarray
    complaints: np.ndarray
    agency: np.ndarray


def rollout(params: InvoiceParams, choose: Chooser, rng: np.random.Generator) -> RolloutResult:
    """Simulate every invoice from its due date to the end of its episode under ``choose``."""
    state = initial_state(params)
    n = len(params)
    npv = np.zeros(n)
    paid = np.zeros(n, bool)
    reminders = np.zeros(n, np.int64)
    complaints = np.zeros(n, np.int64)
    agency = np.zeros(n, bool)
    while not state.done.all():
        actions = np.asarray(choose(state), dtype=np.int64)
        state, out = step(params, state, actions, rng)
        npv += out.reward * out.discount
        paid |= out.paid
        reminders += (out.action >= 1) & (out.action <= 4)
        complaints += out.complaint
        agency |= out.agency
    return RolloutResult(npv, paid, reminders, complaints, agency)


def logging_chooser(params: InvoiceParams, rng: np.random.Generator) -> Chooser:
    """A chooser that samples the logging policy (the randomised fixed schedule)."""

    def choose(state: WorldState) -> np.ndarray:
        probs = logging_policy_probs(params, state)
        cum = np.cumsum(probs, axis=1)
        u = rng.random(len(state)) * cum[:, -1]
        return (cum <= u[:, None]).sum(axis=1)

    return choose
