"""Logged trajectories for off-policy evaluation, rebuilt from the contract tables.

Each complete episode of the history (an invoice unpaid at its due date, whose horizon
ended before the as-of date) is replayed day by day through the environment's bookkeeping
(``CollectionsSimulator`` with a :class:`ReplaySource` that plays back the logged payments,
complaints and disputes), which gives for every invoice-day the observation and legal mask
a policy would have seen, the logged action, its reward and the logging policy's
probability of it (recorded in ``actions.propensity`` for action days; the world's
``logging_policy_probs`` gives every day's, including "wait").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.calendar import NEVER, from_day, to_day, to_days
from engine.contract import Action
from simulations.env.core import CollectionsSimulator
from simulations.env.masks import ActionMask, AllowAll, default_mask
from simulations.env.source import TransitionSource
from simulations.env.types import CostModel, EnvState, InvoiceBatch, Outcome

PSCORE_FLOOR = 1e-3


@dataclass
class LoggedOutcomes:
    """``InvoiceBatch.params`` of the replay: what happened to each invoice, per day."""

    paid_day: np.ndarray  # (n,) days after due of the full payment, -1 none
    dispute_open: np.ndarray  # (n,) days after due a dispute opened, -1 none
    dispute_end: np.ndarray  # (n,) days after due it was resolved, -1 none
    action: np.ndarray  # (n, H) int8 logged action per day (0 = wait)
    complaint: np.ndarray  # (n, H) bool complaint about that day's action


class ReplaySource(TransitionSource):
    """Plays back logged outcomes (deterministic; ``rng`` is not used)."""

    name = "replay"

    def __init__(self, costs: CostModel, horizon: int) -> None:
        self.costs = costs
        self.horizon = horizon

    def sample_invoices(self, n: int, rng: np.random.Generator) -> InvoiceBatch:
        raise NotImplementedError("a replay only plays the logged invoices it was given")

    def initial_hidden(self, batch: InvoiceBatch) -> None:
        return None

    def initially_disputed(self, batch: InvoiceBatch, hidden: Any) -> np.ndarray:
        lo: LoggedOutcomes = batch.params
        return np.zeros(len(lo.paid_day), dtype=bool)  # disputes open after the due date

    def step(self, batch: InvoiceBatch, hidden: Any, state: EnvState, actions: np.ndarray,
             rng: np.random.Generator) -> tuple[None, Outcome]:
        lo: LoggedOutcomes = batch.params
        t = state.day
        day_idx = np.minimum(t, lo.action.shape[1] - 1)
        complaint = lo.complaint[np.arange(len(t)), day_idx] & (actions > 0)
        paid = lo.paid_day == t
        opened = (lo.dispute_open >= 0) & (lo.dispute_open <= t)
        closed = (lo.dispute_end >= 0) & (lo.dispute_end <= t)
        reward = self.costs.reward(batch.amount, t, actions, paid, complaint)
        return None, Outcome(paid=paid, complaint=complaint, disputed=opened & ~closed,
                             reward=reward)


@dataclass
class LoggedDataset:
    """Logged episodes as (invoice, day) arrays; ``n`` invoices, ``H`` days.

    ``obs`` (n, H, dim) float32 and ``masks`` (n, H, 6) what a policy would have seen;
    ``action`` (n, H) logged action; ``pscore`` (n, H) the logging policy's probability
    of it (1 after the episode ended; NaN = not known: a history from the store logs no
    probability for "wait" days, and maybe none for some actions); ``reward`` (n, H)
    money discounted to the due date; ``active`` (n, H) the episode was running that day;
    ``terminated`` (n, H) it ended with that day's step; ``final_obs`` (n, dim) the
    observation after its last step; ``batch`` the invoices;
    ``propensity_mismatch`` the share of action days whose recomputed propensity differs
    from the recorded one (the recorded one is used); ``inconsistent_days`` days whose
    logged action had recomputed probability 0 (floored at ``PSCORE_FLOOR``);
    ``refused_logged_actions`` logged actions today's legal rules would have vetoed;
    ``logging_probs`` (n, H, 6) float32 the logging policy's probability of every action on
    every logged invoice-day (recomputed from the replayed state; 0 after the end), for the
    support diagnostics of :mod:`simulations.ope.support`.
    """

    obs: np.ndarray
    masks: np.ndarray
    action: np.ndarray
    pscore: np.ndarray
    reward: np.ndarray
    active: np.ndarray
    batch: InvoiceBatch
    invoice_ids: np.ndarray
    params: Any
    propensity_mismatch: float
    refused_logged_actions: int
    inconsistent_days: int = 0
    world_states: list[Any] | None = None  # per day: the replayed world state (for the oracle)
    logging_probs: np.ndarray | None = None  # (n, H, 6) mu(a | x_t), recomputed
    terminated: np.ndarray | None = None  # (n, H) bool the episode ended with that day's step
    final_obs: np.ndarray | None = None  # (n, dim) float32 the observation after the last step

    @property
    def n(self) -> int:
        return self.action.shape[0]

    @property
    def logged_value(self) -> float:
        """Mean return of the logging policy itself (on-policy average)."""
        return float(self.reward.sum(axis=1).mean())


def world_state(state: EnvState, scenario: Any) -> Any:
    from simulations.world import WorldState

    K, N = scenario.max_days_since_reminder, scenario.max_reminders
    sent = state.reminders.sum(axis=1)
    since = state.days_since_contact()
    return WorldState(
        t=state.day.astype(np.int64),
        k=np.where(sent > 0, np.minimum(since, K), K).astype(np.int64),
        n=np.minimum(sent, N).astype(np.int64),
        w=np.minimum(state.reminders[:, 0] + state.reminders[:, 1], N).astype(np.int64),
        c=state.last_channel.astype(np.int64),
        final_notice=state.final_notice_day >= 0,
        complaint=state.complained.copy(),
        disputed=state.disputed.copy(),
        done=np.zeros(len(state.day), dtype=bool),
    )


@dataclass
class LoggedHistory:
    """What the contract tables say about the complete logged episodes (``n`` invoices).

    ``rows`` (n,) rows of the invoices table; ``ids`` (n,) invoice ids; ``outcomes`` the
    logged payments, disputes, actions and complaints per day after due (the replay's
    ``InvoiceBatch.params``); ``recorded`` (n, H) the logged propensity of each action day
    (NaN where no action was taken or none was logged).
    """

    rows: np.ndarray
    ids: np.ndarray
    outcomes: LoggedOutcomes
    recorded: np.ndarray


def logged_history(tables: dict[str, pd.DataFrame], as_of: Any, horizon: int,
                   max_invoices: int | None = None, seed: int = 0) -> LoggedHistory:
    """The complete episodes of ``tables`` (invoices unpaid on their due date whose
    ``horizon`` days after due ended before ``as_of``), at most ``max_invoices`` of them
    (a seeded random subset), with their logged outcomes per day after due."""
    H = int(horizon)
    inv = tables["invoices"]
    ids = inv["invoice_id"].astype(str).to_numpy()
    due = to_days(pd.to_datetime(inv["due_date"]).to_numpy())
    payments = tables["payments"]
    pay = payments.groupby(payments["invoice_id"].astype(str))["payment_date"]
    last_pay = pay.max()
    paid_day = to_days(pd.to_datetime(pd.Series(ids).map(last_pay)).to_numpy())
    has_paid = paid_day != NEVER
    paid_off = np.where(has_paid, paid_day - due, -1).astype(np.int64)
    # complete episodes of invoices still open on their due date (the episode starts there)
    rows = np.flatnonzero((due + H <= to_day(as_of)) & (~has_paid | (paid_off >= 0)))
    if max_invoices is not None and len(rows) > max_invoices:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_invoices, replace=False))
    n = len(rows)
    pos = {v: i for i, v in enumerate(ids[rows])}

    def offset(col: str) -> np.ndarray:
        if col not in inv:
            return np.full(n, -1, dtype=np.int64)
        d = to_days(pd.to_datetime(inv[col].iloc[rows]).to_numpy())
        return np.where(d == NEVER, -1, d - due[rows]).astype(np.int64)

    acts = tables["actions"]
    a_ids = acts["invoice_id"].astype(str).to_numpy()
    a_pos = np.array([pos.get(a, -1) for a in a_ids], dtype=np.int64)
    keep = a_pos >= 0
    a_day = to_days(pd.to_datetime(acts["action_date"]).to_numpy())[keep] - due[rows][a_pos[keep]]
    a_code = np.array([int(Action.from_channel(c)) for c in acts["channel"].astype(str)],
                      dtype=np.int64)[keep]
    comp = acts["complaint"] if "complaint" in acts else pd.Series(False, index=acts.index)
    a_comp = comp.astype(str).str.lower().eq("true").to_numpy()[keep]
    prop = acts["propensity"] if "propensity" in acts else pd.Series(np.nan, index=acts.index)
    a_prop = pd.to_numeric(prop, errors="coerce").to_numpy(dtype=float)[keep]
    a_pos = a_pos[keep]
    inside = (a_day >= 0) & (a_day < H)
    action = np.zeros((n, H), dtype=np.int64)
    complaint = np.zeros((n, H), dtype=bool)
    recorded = np.full((n, H), np.nan)
    action[a_pos[inside], a_day[inside]] = a_code[inside]
    complaint[a_pos[inside], a_day[inside]] = a_comp[inside]
    recorded[a_pos[inside], a_day[inside]] = a_prop[inside]
    outcomes = LoggedOutcomes(paid_day=paid_off[rows], dispute_open=offset("dispute_opened"),
                              dispute_end=offset("dispute_resolved"), action=action,
                              complaint=complaint)
    return LoggedHistory(rows=rows, ids=ids[rows], outcomes=outcomes, recorded=recorded)


def build_logged_dataset(company: Any, mask: ActionMask | None = None,
                         max_invoices: int | None = None, seed: int = 0) -> LoggedDataset:
    """Replay the complete episodes of a generated company's history.

    ``company`` is a ``simulations.world.Company`` (its tables are the logs; its true
    ``params`` give the world's logging probabilities for the wait days). At most
    ``max_invoices`` episodes (a seeded random subset) are kept.
    """
    from simulations import world
    from simulations.env.ground_truth import GroundTruthSource

    sc = company.params.scenario
    tables = {k: getattr(company, k) for k in ("invoices", "payments", "actions")}
    hist = logged_history(tables, company.as_of, sc.horizon_days, max_invoices, seed)
    params = company.params.take(hist.rows)
    batch = GroundTruthSource(sc).batch_from_params(params)
    return replay_history(hist, batch, sc, mask, params,
                          lambda ws: world.logging_policy_probs(params, ws))


def logged_dataset_from_tables(tables: dict[str, pd.DataFrame], scenario: Any,
                               as_of: Any = None, mask: ActionMask | None = None,
                               max_invoices: int | None = None, seed: int = 0
                               ) -> LoggedDataset:
    """Replay the complete episodes of an ingested history (contract tables, e.g.
    ``Store.tables()``), with costs and horizon from ``scenario``.

    Nothing but the tables is known: ``pscore`` is the logged ``actions.propensity`` on
    action days and NaN (missing) wherever it was not logged, including every "wait" day
    (the probability of not acting is never logged); ``logging_probs`` is ``None``; the
    observation's payment probabilities are (1/3, 1/3, 1/3) (no payment model).
    """
    from engine.features import prepare_tables
    from simulations.env.learned import batch_from_tables

    day = prepare_tables(tables).last_day if as_of is None else to_day(as_of)
    hist = logged_history(tables, from_day(day), scenario.horizon_days, max_invoices, seed)
    n = len(hist.ids)
    batch = batch_from_tables(tables, hist.ids, np.zeros((n, 0)),
                              np.full((n, 3), 1.0 / 3.0))
    return replay_history(hist, batch, scenario, mask, None, None)


def replay_history(hist: LoggedHistory, batch: InvoiceBatch, sc: Any,
                   mask: ActionMask | None, params: Any,
                   probs_of: Callable[[Any], np.ndarray] | None) -> LoggedDataset:
    """Replay ``hist`` day by day from ``batch`` (the invoices at their due date).

    ``probs_of(world_state)`` -> (n, 6) the logging policy's probabilities when known (a
    generated company); without it only the logged propensities are used and every other
    day's is NaN (missing).
    """
    from simulations.env.layout import LAYOUT

    H = int(sc.horizon_days)
    n = len(hist.ids)
    action, recorded = hist.outcomes.action, hist.recorded
    batch.params = hist.outcomes
    legal = default_mask() if mask is None else mask
    # The history is what it is: replay every logged action (no mask), but record the
    # legal mask a policy would have had to respect.
    sim = CollectionsSimulator(ReplaySource(CostModel.from_scenario(sc), H), AllowAll())
    sim.load(batch)
    obs = np.zeros((n, H, LAYOUT.dim), dtype=np.float32)
    final_obs = np.zeros((n, LAYOUT.dim), dtype=np.float32)
    masks = np.ones((n, H, 6), dtype=bool)
    pscore = np.full((n, H), np.nan)
    logging_probs = np.zeros((n, H, 6), dtype=np.float32) if probs_of is not None else None
    reward = np.zeros((n, H))
    active = np.zeros((n, H), dtype=bool)
    terminated = np.zeros((n, H), dtype=bool)
    refused = 0
    world_states: list[Any] = []
    for t in range(H):
        act = sim.active.copy()
        if not act.any():
            break
        obs[:, t] = sim.observations()
        masks[:, t] = legal(sim.facts, sim.as_of)
        refused += int((act & ~masks[np.arange(n), t, action[:, t]]).sum())
        ws = world_state(sim.state, sc)
        ws.done = ~act
        world_states.append(ws)
        a_t = action[:, t]
        if probs_of is not None and logging_probs is not None:
            probs = probs_of(ws)
            logging_probs[:, t] = np.where(act[:, None], probs, 0.0)
            pscore[:, t] = probs[np.arange(n), a_t]
        res = sim.step(a_t, np.random.default_rng(0))
        reward[:, t] = res.reward
        active[:, t] = act
        terminated[:, t] = res.terminated
        final_obs[res.terminated] = sim.observations()[res.terminated]
    has_record = ~np.isnan(recorded) & active
    gap = np.abs(pscore - recorded)[has_record & ~np.isnan(pscore)]
    # The recorded propensity is the truth for action days. A day the replayed state gives
    # probability 0 (the tables keep only the first opening and last resolution of repeated
    # disputes, so the replay can be off there) is floored so weights stay finite; a day
    # with no probability at all (not logged, not known) stays NaN: never invented.
    pscore = np.where(has_record, recorded, pscore)
    inconsistent = int((active & (pscore <= 0)).sum())
    pscore = np.where(active, np.where(np.isnan(pscore), np.nan,
                                       np.maximum(pscore, PSCORE_FLOOR)), 1.0)
    return LoggedDataset(obs=obs, masks=masks, action=action, pscore=pscore, reward=reward,
                         active=active, batch=batch, invoice_ids=hist.ids, params=params,
                         propensity_mismatch=float((gap > 1e-6).mean()) if gap.size else 0.0,
                         inconsistent_days=inconsistent, world_states=world_states,
                         refused_logged_actions=refused, logging_probs=logging_probs,
                         terminated=terminated, final_obs=final_obs)


__all__ = ["LoggedDataset", "LoggedHistory", "LoggedOutcomes", "ReplaySource",
           "build_logged_dataset", "logged_dataset_from_tables", "logged_history",
           "replay_history"]
