"""Exact backward induction over the ground-truth MDP (``simulations.world.dynamics``).

The solver is :func:`policies.common.dp.backward_induction`; this module gives it the
world's transition model (:class:`WorldModel`). For each invoice the dynamic state is
``(k, n, w, c, final_notice, complaint, disputed)`` at each day ``t`` (see the dynamics
module; ``w`` the emails and letters sent, so that the written reminders the company rules
count are exact); the reachable states are enumerated once per scenario (``S`` of them).
With a legal mask the DP sends no reminder within 7 days of the last one (its own
restriction, see ``policies.common.dp``). For ``t = H-1 .. 0``::

    Q_t(s, a) = r(s, a) + E[ gamma * V_{t+1}(s') ]     (paid / agency / horizon: terminal)
    V_t(s)    = max over legally allowed a of Q_t(s, a),    V_H = 0

with exactly the probabilities of :func:`simulations.world.transition_probs` (the same
formulas: ``pay_hazard`` and ``complaint_probability``). ``V_0`` of the initial state is the
maximal expected NPV at the due date (currency). Vectorised over invoices in batches.
Memory: the argmax policy is kept as int8, ``H * S`` bytes per invoice (about 0.65 MB).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.calendar import from_days
from engine.contract import N_ACTIONS
from policies.common.dp import (
    AGENCY,
    ComplaintRows,
    DayMasks,
    FactGroups,
    ReminderGrid,
    StateSpace,
    TransitionModel,
    backward_induction,
)
from simulations.world.dynamics import (
    MAX_COMPLAINT_PROBABILITY,
    WorldState,
    complaint_day_factor,
    complaint_state_factor,
    effect_static,
    facts_from_state,
    pay_hazard,
    pay_hazard_from_effect,
    tables,
)
from simulations.world.params import InvoiceParams
from simulations.world.scenario import Scenario

# facts -> (m, 6) bool, or (facts, decision dates datetime64[D] (m,)) -> (m, 6) bool.
MaskFn = Callable[..., np.ndarray]
STRING_FACTS = ("currency", "customer_type", "jurisdiction", "region", "industry")


def _wants_dates(mask_fn: MaskFn) -> bool:
    """True if ``mask_fn`` takes (facts, as_of) like ``simulations.env.LegalMask``."""
    try:
        params = inspect.signature(mask_fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def allow_all(facts: dict[str, np.ndarray]) -> np.ndarray:
    """A mask function that allows every action (no legal rules)."""
    return np.ones((len(facts["days_overdue"]), N_ACTIONS), dtype=bool)


@dataclass
class OracleSolution:
    """Optimal values and actions for ``n`` invoices.

    ``value``: (n,) maximal expected NPV at the due date from the initial state (currency).
    ``policy``: (n, H, S) int8 optimal action per invoice, day and flat state.
    """

    params: InvoiceParams
    space: StateSpace
    horizon: int
    value: np.ndarray
    policy: np.ndarray

    def action(self, state: WorldState, rows: np.ndarray | None = None) -> np.ndarray:
        """Optimal action for each row of ``state`` (invoices ``rows`` of the solution;
        default ``0..n-1``). Finished rows and days at or after the horizon get WAIT."""
        rows = np.arange(len(state)) if rows is None else np.asarray(rows)
        s = self.space.lookup(state)
        t = np.minimum(state.t, self.horizon - 1)
        act = self.policy[rows, t, s].astype(np.int64)
        return np.where(state.done | (state.t >= self.horizon), 0, act)


class WorldModel(TransitionModel):
    """The ground-truth transition model of a batch of invoices (true parameters), with
    exactly the probabilities of :func:`simulations.world.transition_probs` (the same
    formulas: ``pay_hazard`` and ``complaint_probability``)."""

    def __init__(self, params: InvoiceParams, mask_fn: MaskFn | None) -> None:
        self.params = params
        self.tb = tb = tables(params.scenario)
        self.mask_fn = mask_fn
        seg = np.asarray(params.segment)[:, None]
        self.amount = np.asarray(params.amount, np.float64)
        self.gamma = float(tb.gamma)
        self.action_cost = np.asarray(tb.action_cost, np.float64)
        self.complaint_cost = float(tb.complaint_cost)
        self.agency_value = self.amount * tb.agency_value_share - tb.action_cost[AGENCY]
        self.dispute_start = tb.dispute_start[seg[:, 0]]
        self.dispute_resolve = tb.dispute_resolve[seg[:, 0]]
        self._seg = seg
        self._rel = np.asarray(params.reliability)[:, None]
        self._ms = np.asarray(params.milestone_offset)[:, None]
        self._resp = np.asarray(params.response, np.float64)[:, None]
        self._shift = np.asarray(params.timing_shift, np.int64)[:, None]

    def setup(self, space: StateSpace, grid: ReminderGrid) -> None:
        tb, seg, params = self.tb, self._seg, self.params
        B = len(params)  # noqa: N806
        self.space, self.grid = space, grid
        self._comp = space.complaint[None]
        # Waiting, the hazard depends on the state only through (k, n, c, complaint): it is
        # computed on one column per distinct tuple (U of them, about S / 8), then spread.
        keys = np.stack([space.k, space.n, space.c, space.complaint])
        _, first, self._wait_of = np.unique(keys, axis=1, return_index=True,
                                            return_inverse=True)
        self._wait_of = self._wait_of.reshape(-1)
        self._wait_k, self._wait_comp = space.k[None, first], space.complaint[None, first]
        self._wait_effect = effect_static(tb, seg, self._wait_k, space.n[None, first],
                                          space.c[None, first], self._resp)  # (B, U)
        k, n = space.k[None], space.n[None]
        # A reminder's complaint probability depends on the state only through (grid row g,
        # complaint flag, "previous reminder recent" flag of the complaint model): rows
        # r = (g * 2 + complaint) * 2 + recent.
        G = grid.size  # noqa: N806
        r_g = np.repeat(np.arange(G), 4)
        r_comp, r_recent = np.tile([0, 0, 1, 1], G), np.tile([0, 1, 0, 1], G).astype(bool)
        r_n = grid.n[r_g]  # reminders sent before this one
        recent_k = tb.c_frequent_days[seg] - 1  # complaint_state_factor: recent if k < frequent
        r_state = complaint_state_factor(tb, seg, np.where(r_recent, 0, tb.K + 1)[None],
                                         np.where(r_recent, np.maximum(r_n, 1), r_n)[None])
        self._r_state = np.where(r_recent[None] & (r_n[None] == 0), np.nan, r_state)
        recent = (n > 0) & (k <= recent_k)
        of_state = (grid.key[None] * 2 + self._comp) * 2 + recent  # (B, S)
        self._rows = ComplaintRows(g=r_g, complaint=r_comp, of_state=of_state)
        self._reminded_day, self._reminded = -1, np.zeros(0)
        if self.mask_fn is not None:  # facts do not depend on the complaint flag: first half
            # where the DP's spacing allows only WAIT the mask is not read: not evaluated
            self._free = np.flatnonzero(~space.spacing_block()[:space.half])
            self._with_dates = _wants_dates(self.mask_fn)
            self._fact_groups = FactGroups(self.mask_fn, STRING_FACTS)
            self._days: DayMasks | None = None
            # String facts are the same every day: encode them once as categoricals.
            self._strings = {name: pd.Categorical(values) for name, values in
                             facts_from_state(params, space.world_state(
                                 0, np.zeros(B, dtype=np.int64))).items()
                             if name in STRING_FACTS}

    def _cal(self, t: int) -> np.ndarray:
        p = self.params
        return p.calendar.pay_multiplier[p.segment, p.jurisdiction, p.due_index + t][:, None]

    def mask(self, t: int) -> np.ndarray | None:
        if self.mask_fn is None:
            return None
        if self._days is None or t >= len(self._days):  # the DP asks for its last day first
            self._days = DayMasks(len(self.params), self.space, t + 1, self._facts,
                                  self._judge, lambda _t: self._free, self._fact_groups)
        return self._days(t)

    def _facts(self, t: int, inv: np.ndarray, states: np.ndarray) -> dict[str, Any]:
        """The legal facts of invoices ``inv`` in first-half states ``states`` on day ``t``."""
        facts = facts_from_state(self.params.take(inv), self.space.world_state(t, states))
        return facts | {name: values[inv] for name, values in self._strings.items()}

    def _judge(self, facts: dict[str, Any], t: np.ndarray, inv: np.ndarray) -> np.ndarray:
        if self._with_dates:
            return self.mask_fn(facts, from_days(self.params.due_day[inv] + t))
        return self.mask_fn(facts)

    def wait_hazard(self, t: int) -> np.ndarray:
        h = pay_hazard_from_effect(self.tb, self._seg, self._rel, self._cal(t), self._ms, t,
                                   self._wait_k, self._wait_effect, self._wait_comp,
                                   shift=self._shift)
        return h[:, self._wait_of]

    def reminder_hazard(self, t: int, a: int) -> np.ndarray:
        if self._reminded_day != t:  # the four reminders of day t in one evaluation
            # In the world a complaint today lowers today's payment: by the next complaint
            # flag. Axes (B, reminder, G, current complaint, next complaint).
            x = (slice(None), slice(None), None, None, None)
            reminders = np.arange(1, AGENCY)[None, :, None, None, None]
            self._reminded = pay_hazard(
                self.tb, self._seg[x], self._rel[x], self._cal(t)[x], self._ms[x], t, 0,
                self.grid.n_post[None, None, :, None, None], reminders,
                np.array([False, True])[None, None, None, None, :], response=self._resp[x],
                shift=self._shift[x])
            self._reminded_day = t
        return self._reminded[:, a - 1]

    def complaint_rows(self) -> ComplaintRows:
        return self._rows

    def complaint_probability(self, t: int, a: int) -> np.ndarray:
        return np.minimum(self._r_state * complaint_day_factor(self.tb, self._seg, t,
                                                               np.int64(a)),
                          MAX_COMPLAINT_PROBABILITY)


def solve(params: InvoiceParams, scenario: Scenario | None = None,
          mask_fn: MaskFn | None = None, horizon: int | None = None, batch_size: int = 32,
          keep_policy: bool = True) -> OracleSolution:
    """Solve the ground-truth MDP of every invoice in ``params`` exactly.

    Args:
        params: the invoices (true parameters), n rows.
        scenario: must be ``params.scenario`` (given for clarity; default: that one).
        mask_fn: legal mask ``facts -> (m, 6) bool`` or ``(facts, as_of) -> (m, 6) bool``
            (``as_of``: decision dates, datetime64[D] (m,); e.g. ``simulations.env.LegalMask``
            or ``VectorEvaluator(load_rules()).mask``). Facts come from
            :func:`simulations.world.facts_from_state` (string facts as
            ``pandas.Categorical``). Default (None): everything allowed. WAIT is always
            treated as allowed.
        horizon: days after due with a decision; default (and for agreement with
            :func:`simulations.world.step`) ``scenario.horizon_days``.
        batch_size: invoices solved together (memory ~ batch * S * 6 * 8 bytes * a few).
        keep_policy: keep the (n, H, S) int8 argmax table (needed by :class:`OraclePolicy`).
    """
    sc = params.scenario if scenario is None else scenario
    if sc is not params.scenario and sc != params.scenario:
        raise ValueError("scenario differs from params.scenario")
    horizon = sc.horizon_days if horizon is None else int(horizon)
    if not 1 <= horizon <= sc.horizon_days:
        raise ValueError(f"horizon must be in 1..{sc.horizon_days}, got {horizon}")
    space = StateSpace.build(sc.max_days_since_reminder, sc.max_reminders)
    n = len(params)
    start = space.start
    value = np.zeros(n)
    policy = np.zeros((n, horizon, space.size), dtype=np.int8) if keep_policy else None
    for lo in range(0, n, batch_size):
        rows = np.arange(lo, min(lo + batch_size, n))
        v, pol = backward_induction(WorldModel(params.take(rows), mask_fn), space, horizon,
                                    keep_policy)
        value[rows] = v[:, start]
        if policy is not None:
            policy[rows] = pol
    return OracleSolution(params=params, space=space, horizon=horizon, value=value,
                          policy=policy if policy is not None else np.zeros((n, 0, 0), np.int8))
