"""The direct method: a target policy's value from the LEARNED model (hazard model).

For each logged invoice the target policy is run forward in the learned environment along
its "no event" path (no payment, dispute or complaint yet: the path on which the policy's
later decisions still matter), recording each day's probabilities; the value of following
the policy from day ``t`` then follows by backward induction::

    V_t = p_pay_t * paid_reward_t + (1 - p_pay_t) * (unpaid_reward_t + V_{t+1})
          - p_complaint_t * complaint_cost_t           (V_H = 0; agency handover ends it)

Disputes enter only through ``p_pay`` (a dispute opening today blocks today's payment);
what happens after a dispute or a complaint is approximated by the no-event path. This is
the model part of the doubly robust estimator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.contract import Action
from engine.errors import DunningError
from simulations.env.arrays import take_rows
from simulations.env.core import CollectionsSimulator
from simulations.env.learned import LearnedSource
from simulations.env.masks import ActionMask, default_mask
from simulations.env.source import TransitionSource
from simulations.env.types import EnvState, InvoiceBatch, Outcome
from simulations.ope.dataset import LoggedDataset, world_state


class _NoEventProbe(TransitionSource):
    """Steps the learned model without events and records each day's probabilities."""

    name = "learned-probe"

    def __init__(self, learned: LearnedSource, horizon: int) -> None:
        self.learned = learned
        self.costs = learned.costs
        self.horizon = horizon
        self.days: list[tuple[np.ndarray, ...]] = []

    def sample_invoices(self, n: int, rng: np.random.Generator) -> InvoiceBatch:
        return self.learned.sample_invoices(n, rng)

    def initial_hidden(self, batch: InvoiceBatch) -> None:
        return None

    def step(self, batch: InvoiceBatch, hidden: Any, state: EnvState, actions: np.ndarray,
             rng: np.random.Generator) -> tuple[None, Outcome]:
        p_comp, hazard, p_start, _ = self.learned.day_probabilities(batch, state, actions)
        self.days.append((actions.copy(), state.day.copy(), p_comp, hazard * (1 - p_start)))
        n = len(actions)
        no = np.zeros(n, dtype=bool)
        return None, Outcome(paid=no, complaint=no, disputed=state.disputed.copy(),
                             reward=np.zeros(n))

    def date_range(self) -> Any:
        return self.learned.date_range()


def direct_values(policy: Any, data: LoggedDataset, learned: LearnedSource,
                  mask: ActionMask | None = None) -> np.ndarray:
    """(n, H + 1) model value of following ``policy`` from each logged invoice's day t."""
    if learned.invoice_ids is None:
        raise DunningError("the learned source does not know its invoice ids; build it with "
                           "LearnedSource.from_tables")
    index = {v: i for i, v in enumerate(learned.invoice_ids)}
    missing = [v for v in data.invoice_ids if v not in index]
    if missing:
        raise DunningError(f"invoice {missing[0]} of the logged data is not in the learned "
                           "environment's history (build both from the same tables)")
    rows = np.array([index[v] for v in data.invoice_ids], dtype=np.int64)
    batch = take_rows(learned.pool, rows)
    n, H = data.action.shape
    probe = _NoEventProbe(learned, H)
    sim = CollectionsSimulator(probe, default_mask() if mask is None else mask, horizon=H)
    sim.load(batch)
    act_state = policy.act_state if getattr(policy, "sees_world_state", False) else None
    scenario = getattr(data.params, "scenario", None)
    rng = np.random.default_rng(0)  # unused by the probe
    for _ in range(H):
        if not sim.active.any():
            break
        obs, masks = sim.observations(), sim.action_masks()
        if act_state is not None and scenario is not None:
            ws = world_state(sim.state, scenario)
            ws.done = ~sim.active
            a = act_state(ws)
            a = np.where(masks[np.arange(n), a], a, 0)
        else:
            a = policy.act(obs, masks)
        sim.step(np.where(sim.active, a, 0), rng)

    costs = learned.costs
    values = np.zeros((n, H + 1))
    amount = batch.amount
    for t in range(len(probe.days) - 1, -1, -1):
        a, day, p_comp, p_pay = probe.days[t]
        paid_r = costs.reward(amount, day, a, np.ones(n, bool), np.zeros(n, bool))
        unpaid_r = costs.reward(amount, day, a, np.zeros(n, bool), np.zeros(n, bool))
        complaint = p_comp * costs.complaint_cost * costs.discount(day)
        agency = a == Action.AGENCY
        alive = day < H
        v_next = values[:, t + 1]
        v = np.where(agency, unpaid_r - complaint,
                     p_pay * paid_r + (1 - p_pay) * (unpaid_r + v_next) - complaint)
        values[:, t] = np.where(alive, v, 0.0)
    return values
