"""Exact backward induction over the ground-truth MDP (``simulations.world.dynamics``).

For each invoice the dynamic state is ``(k, n, c, final_notice, complaint, disputed)`` at
each day ``t`` (see the dynamics module); the reachable states are enumerated once per
scenario (``S`` of them: about 2,400 with K = 21, N = 4). For ``t = H-1 .. 0``::

    Q_t(s, a) = r(s, a) + E[ gamma * V_{t+1}(s') ]     (paid / agency / horizon: terminal)
    V_t(s)    = max over legally allowed a of Q_t(s, a),    V_H = 0

with exactly the probabilities of :func:`simulations.world.transition_probs` (the same
formulas: ``pay_hazard`` and ``complaint_probability``). ``V_0`` of the initial state is the
maximal expected NPV at the due date (currency). Vectorised over invoices in batches.
Memory: the argmax policy is kept as int8, ``H * S`` bytes per invoice (about 0.3 MB).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.calendar import from_days
from engine.contract import N_ACTIONS
from simulations.world.dynamics import (
    AGENCY,
    FINAL_NOTICE,
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


@dataclass(frozen=True)
class StateSpace:
    """The reachable decision states, flat index ``s`` in ``0..S-1``.

    Arrays (S,): ``k, n, c, final_notice, complaint, disputed``. States with ``complaint``
    are the second half: ``s + half`` is ``s`` with a complaint. ``index`` is a dense lookup
    ``index[k, n, c, f, complaint, disputed] -> s`` (-1 if unreachable). ``next_state[a]``
    (a = 0..4) has shape (S, 2, 2): the state after action ``a`` on day t, for the
    complaint flag and dispute flag of the next day.
    """

    k: np.ndarray
    n: np.ndarray
    c: np.ndarray
    final_notice: np.ndarray
    complaint: np.ndarray
    disputed: np.ndarray
    index: np.ndarray
    next_state: np.ndarray  # (5, S, 2, 2)

    @property
    def size(self) -> int:
        return len(self.k)

    @property
    def half(self) -> int:
        return self.size // 2

    @classmethod
    def build(cls, K: int, N: int) -> StateSpace:
        base = [(K, 0, 0, 0, d) for d in (0, 1)]
        for n in range(1, N + 1):
            for c in range(1, FINAL_NOTICE + 1):
                for f in (0, 1):
                    if c == FINAL_NOTICE and f == 0:
                        continue
                    base += [(k, n, c, f, d) for k in range(1, K + 1) for d in (0, 1)]
        rows = [(k, n, c, f, comp, d) for comp in (0, 1) for (k, n, c, f, d) in base]
        arr = np.array(rows, dtype=np.int64)
        index = np.full((K + 1, N + 1, FINAL_NOTICE + 1, 2, 2, 2), -1, dtype=np.int64)
        index[tuple(arr.T)] = np.arange(len(arr))
        k, n, c, f, comp, _ = arr.T
        nxt = np.zeros((FINAL_NOTICE + 1, len(arr), 2, 2), dtype=np.int64)
        for a in range(FINAL_NOTICE + 1):
            if a == 0:
                k2 = np.where(n > 0, np.minimum(k + 1, K), K)
                n2, c2, f2 = n, c, f
            else:
                k2 = np.ones_like(k)
                n2, c2 = np.minimum(n + 1, N), np.full_like(c, a)
                f2 = f | (a == FINAL_NOTICE)
            for cp in (0, 1):
                for d in (0, 1):
                    nxt[a, :, cp, d] = index[k2, n2, c2, f2, comp | cp, d]
        assert (nxt >= 0).all()
        return cls(k=k, n=n, c=c, final_notice=f.astype(bool), complaint=comp.astype(bool),
                   disputed=arr[:, 5].astype(bool), index=index, next_state=nxt)

    def lookup(self, state: WorldState) -> np.ndarray:
        """Flat state index of each row of a :class:`WorldState`, shape (n,)."""
        return self.index[state.k, state.n, state.c, state.final_notice.astype(np.int64),
                          state.complaint.astype(np.int64), state.disputed.astype(np.int64)]

    def world_state(self, t: int, rows: np.ndarray) -> WorldState:
        """The :class:`WorldState` of flat states ``rows`` on day ``t``."""
        return WorldState(t=np.full(len(rows), t, dtype=np.int64), k=self.k[rows],
                          n=self.n[rows], c=self.c[rows],
                          final_notice=self.final_notice[rows], complaint=self.complaint[rows],
                          disputed=self.disputed[rows], done=np.zeros(len(rows), dtype=bool))


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


def _continuation(v_next: np.ndarray, nxt: np.ndarray, h: np.ndarray, p_start: np.ndarray,
                  p_end: np.ndarray, disputed: np.ndarray, amount: np.ndarray,
                  gamma: float) -> np.ndarray:
    """E[payment today + gamma * V(next state)] for a fixed next complaint flag.

    ``nxt`` (..., 2): next flat state for next-day dispute flag 0/1; ``h`` P(pay | no
    dispute); ``disputed`` the dispute flag today. Shapes broadcast to (B, ...)."""
    v0 = v_next[:, nxt[..., 0]]
    v1 = v_next[:, nxt[..., 1]]
    free = (1 - p_start) * (h * amount + gamma * (1 - h) * v0) + p_start * gamma * v1
    blocked = gamma * (p_end * v0 + (1 - p_end) * v1)
    return np.where(disputed, blocked, free)


@dataclass(frozen=True)
class _ReminderGrid:
    """After a reminder, the future depends on the state only through (n, f, disputed) and
    the next complaint flag: Q of reminders is computed on this small grid (G = 4 (N+1)).

    ``key`` (S,): grid row of each state; ``n, f, d`` (G,); ``next_state[a]`` (G, 2, 2):
    next flat state by next complaint flag and next dispute flag."""

    key: np.ndarray
    n_post: np.ndarray
    disputed: np.ndarray
    next_state: np.ndarray  # (5, G, 2, 2); row 0 unused

    @classmethod
    def build(cls, space: StateSpace, K: int, N: int) -> _ReminderGrid:
        n = np.repeat(np.arange(N + 1), 4)
        f = np.tile(np.repeat([0, 1], 2), N + 1)
        d = np.tile([0, 1], 2 * (N + 1))
        key = space.n * 4 + space.final_notice.astype(np.int64) * 2 + space.disputed
        n_post = np.minimum(n + 1, N)
        nxt = np.zeros((FINAL_NOTICE + 1, len(n), 2, 2), dtype=np.int64)
        for a in range(1, FINAL_NOTICE + 1):
            f2 = f | (a == FINAL_NOTICE)
            for cp in (0, 1):
                for d2 in (0, 1):
                    nxt[a, :, cp, d2] = space.index[1, n_post, a, f2, cp, d2]
        assert (nxt[1:] >= 0).all()
        return cls(key=key, n_post=n_post, disputed=d.astype(bool), next_state=nxt)


def _solve_batch(params: InvoiceParams, space: StateSpace, mask_fn: MaskFn | None,
                 horizon: int, keep_policy: bool) -> tuple[np.ndarray, np.ndarray | None]:
    tb = tables(params.scenario)
    B, S, half = len(params), space.size, space.half
    grid = _ReminderGrid.build(space, tb.K, tb.N)

    def col(x: np.ndarray) -> np.ndarray:  # (B,) -> (B, 1)
        return np.asarray(x)[:, None]

    seg, rel, ms = col(params.segment), col(params.reliability), col(params.milestone_offset)
    amount = col(params.amount)
    p_start, p_end = tb.dispute_start[seg], tb.dispute_resolve[seg]
    k, n, c = space.k[None], space.n[None], space.c[None]
    comp, disp = space.complaint[None], space.disputed[None]
    agency_q = amount * tb.agency_value_share - tb.action_cost[AGENCY]
    # A reminder's Q depends on the state only through (grid row g, complaint flag, "previous
    # reminder recent" flag of the complaint model): computed on that small grid (B, 4 G),
    # row r = (g * 2 + complaint) * 2 + recent, then gathered to the states.
    G = len(grid.n_post)
    r_g = np.repeat(np.arange(G), 4)
    r_comp, r_recent = np.tile([0, 0, 1, 1], G), np.tile([0, 1, 0, 1], G).astype(bool)
    r_n = r_g // 4  # grid rows are ordered by n first (4 per n)
    w_same, w_comp = r_g * 2 + r_comp, r_g * 2 + 1  # columns of W (B, G * 2)
    recent_k = tb.c_frequent_days[seg] - 1  # complaint_state_factor: recent if k < frequent
    r_state = complaint_state_factor(tb, seg, np.where(r_recent, 0, tb.K + 1)[None],
                                     np.where(r_recent, np.maximum(r_n, 1), r_n)[None])
    r_state = np.where(r_recent[None] & (r_n[None] == 0), np.nan, r_state)  # unreachable
    recent = (n > 0) & (k <= recent_k)
    r_of_state = (grid.key[None] * 2 + comp) * 2 + recent  # (B, S)
    if mask_fn is not None:  # facts do not depend on the complaint flag: first half only
        params_rep = params.take(np.repeat(np.arange(B), half))
        state_rep = space.world_state(0, np.tile(np.arange(half), B))
        with_dates = _wants_dates(mask_fn)
        # String facts are the same every day: encode them once as categoricals.
        strings = {name: pd.Categorical(values) for name, values in
                   facts_from_state(params_rep, state_rep).items() if name in STRING_FACTS}
    wait_effect = effect_static(tb, seg, k, n, c)  # (B, S), the same every day
    v_next = np.zeros((B, S))
    policy = np.zeros((B, horizon, S), dtype=np.int8) if keep_policy else None
    for t in range(horizon - 1, -1, -1):
        cal = col(params.calendar.pay_multiplier[params.segment, params.jurisdiction,
                                                 params.due_index + t])
        mask = None
        if mask_fn is not None:
            state_rep.t[:] = t
            facts = facts_from_state(params_rep, state_rep) | strings
            if with_dates:
                dates = from_days(params_rep.due_day + t)
                mask = np.asarray(mask_fn(facts, dates), dtype=bool)
            else:
                mask = np.asarray(mask_fn(facts), dtype=bool)
            mask = np.tile(mask.reshape(B, half, N_ACTIONS), (1, 2, 1))
        h = pay_hazard_from_effect(tb, seg, rel, cal, ms, t, k, wait_effect, comp)
        value = _continuation(v_next, space.next_state[0, :, 0], h, p_start, p_end, disp,
                              amount, tb.gamma)
        best = np.zeros((B, S), dtype=np.int8)
        for a in range(1, N_ACTIONS):
            if a == AGENCY:
                q = np.broadcast_to(agency_q, (B, S))
            else:
                # W[b, g, cp]: continuation after reminder a from grid row g, complaint cp.
                h_post = pay_hazard(tb, seg[:, :, None], rel[:, :, None], cal[:, :, None],
                                    ms[:, :, None], t, 0, grid.n_post[None, :, None], a,
                                    np.array([False, True])[None, None, :])
                w = _continuation(v_next, grid.next_state[a], h_post, p_start[:, :, None],
                                  p_end[:, :, None], grid.disputed[None, :, None],
                                  amount[:, :, None], tb.gamma).reshape(B, -1)
                p_c = np.minimum(r_state * complaint_day_factor(tb, seg, t, np.int64(a)),
                                 MAX_COMPLAINT_PROBABILITY)
                # The complaint cost is paid per complaint, also after an earlier one.
                same = w[:, w_same]
                q_small = (same + p_c * (w[:, w_comp] - same - tb.complaint_cost)
                           - tb.action_cost[a])
                q = np.take_along_axis(q_small, r_of_state, axis=1)
            better = q > value
            if mask is not None:
                better &= mask[:, :, a]
            value = np.where(better, q, value)
            best[better] = a
        v_next = value
        if policy is not None:
            policy[:, t] = best
    return v_next, policy


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
    start = space.index[sc.max_days_since_reminder, 0, 0, 0, 0, 0]
    value = np.zeros(n)
    policy = np.zeros((n, horizon, space.size), dtype=np.int8) if keep_policy else None
    for lo in range(0, n, batch_size):
        rows = np.arange(lo, min(lo + batch_size, n))
        v, pol = _solve_batch(params.take(rows), space, mask_fn, horizon, keep_policy)
        value[rows] = v[:, start]
        if policy is not None:
            policy[rows] = pol
    return OracleSolution(params=params, space=space, horizon=horizon, value=value,
                          policy=policy if policy is not None else np.zeros((n, 0, 0), np.int8))
