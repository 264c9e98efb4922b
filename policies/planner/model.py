"""The learned transition model as a :class:`~policies.common.dp.TransitionModel`.

The same probabilities :class:`simulations.env.learned.LearnedSource` draws from (the
company's hazard model with its reminder lift, the complaint model, dispute rates and the
complaint hazard multiplier, no payment on weekends and bank holidays), evaluated on the
DP's decision states so that the exact solver can plan in them (certainty equivalence).

One approximation: the DP state keeps the number of reminders ``n``, the number ``w`` of
emails and letters, the last channel ``c`` and whether a final notice was sent, not the
count per channel the hazard model reads. The counts are reconstructed
(:func:`state_counts`) as one final notice if one was sent, ``n - w - f`` calls and the
``w`` emails and letters in the last channel when it was one of them (else as emails). The
written reminders the legal rules count (``w + f``) and the calls are exact.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.calendar import BusinessCalendar, CalendarDay, from_day, from_days
from engine.contract import Action
from engine.errors import InputError
from engine.features import NO_REMINDER_DAYS, REMINDER_CHANNELS, reminder_dynamics
from legal_rules.facts import NEVER_DAYS
from policies.common.dp import (
    MIN_SPACING_DAYS,
    ComplaintRows,
    DayMasks,
    FactGroups,
    ReminderGrid,
    StateSpace,
    TransitionModel,
)
from simulations.env.arrays import take_rows
from simulations.env.learned import SINCE_EDGES, BehaviourRates
from simulations.env.masks import STRING_FACTS, ActionMask, CategoricalFacts, legal_facts
from simulations.env.types import CostModel, EnvState, InvoiceBatch

FINAL = int(Action.FINAL_NOTICE)
# days since the last reminder standing for "long ago": past the reminder lift's window
# (engine.models.reminder_lift.WINDOW_DAYS), the reminders' counts kept
DECAYED_DAYS = 30


@dataclass
class LearnedDynamics:
    """What the planner plans with: the fitted models of :class:`LearnedSource`.

    ``hazard`` a fitted ``engine.models.HazardModel``; ``rates`` complaint and dispute
    rates; ``costs`` the company's costs and discount rate; ``horizon`` days after due
    with a decision; ``K`` cap of days since the last reminder in the DP state (15: the
    legal rules' longest waiting period is "14 days", the complaint model's last bucket
    starts at 14; the hazard model sees at most 15 days since a reminder), ``N`` cap of
    reminders; ``min_support`` > 0: a reminder is allowed only where the history logged at
    least that many of its segment, channel, day overdue and number
    (:class:`simulations.env.learned.ReminderSupport`, ``rates.support``): the planner
    does not act on the learned model's value of reminders it has (almost) never seen;
    ``reminder_prior`` > 0: the effect of a reminder within ``K`` days of it is shrunk
    toward none with that many pseudo-reminders against the logged ones of its cell
    (:meth:`LearnedModel._shrunk`): pessimism where the history is thin;
    ``support_by_day`` False: both count a cell over every day overdue (support for how
    many reminders of a channel, not for when;
    :meth:`simulations.env.learned.ReminderSupport.over_days`); ``complaint_weight``: the
    planner counts each complaint it risks at this many times the company's complaint
    cost (>= 1; 1 = the cost alone). Why: the learned model overrates the reminders the
    planner adds beyond the history's, and a reminder's complaint risk is what those have
    in common (calls, repeated reminders); the weight is the Lagrange multiplier of a
    complaint budget (docs/planner.md, "Complaint weight"). Evaluations and the reported
    NPV always use the cost itself.
    """

    hazard: Any
    rates: BehaviourRates
    costs: CostModel
    horizon: int = 120
    K: int = 15  # noqa: N815
    N: int = 4  # noqa: N815
    min_support: int = 0
    reminder_prior: float = 0.0
    support_by_day: bool = True
    complaint_weight: float = 1.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.complaint_weight) and self.complaint_weight >= 1.0):
            raise InputError(f"complaint_weight must be a number >= 1 (times the complaint "
                             f"cost), got {self.complaint_weight}")
        if self.min_support < 0:
            raise InputError(f"min_support must be >= 0 logged reminders, got "
                             f"{self.min_support}")
        if self.reminder_prior < 0:
            raise InputError(f"reminder_prior must be >= 0 pseudo-reminders, got "
                             f"{self.reminder_prior}")
        if (self.min_support > 0 or self.reminder_prior > 0) and self.rates.support is None:
            raise InputError("min_support and reminder_prior need the logged reminders per cell "
                             "(BehaviourRates.support); the rates have none")

    @classmethod
    def from_source(cls, source: Any, K: int = 15, N: int = 4,  # noqa: N803
                    min_support: int = 0, reminder_prior: float = 0.0,
                    complaint_weight: float = 1.0) -> LearnedDynamics:
        """From a :class:`simulations.env.learned.LearnedSource`."""
        return cls(source.hazard, source.rates, source.costs, int(source.horizon), K, N,
                   int(min_support), float(reminder_prior),
                   complaint_weight=float(complaint_weight))


def state_counts(n: np.ndarray, w: np.ndarray, c: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(m, 4) reminders per channel (email, letter, phone, final notice) of DP states with
    ``n`` reminders, ``w`` of them emails and letters, last channel ``c`` and final-notice
    flag ``f`` (arrays (m,)): ``f`` final notices, ``n - w - f`` calls (at least 0: ``n``
    and ``w`` are capped), the ``w`` in the last channel if it is email or letter, else in
    email."""
    n, w, c, f = (np.asarray(x, np.int64) for x in (n, w, c, f))
    counts = np.zeros((len(n), 4), dtype=np.float64)
    counts[:, FINAL - 1] = f
    counts[:, int(Action.PHONE) - 1] = np.maximum(n - w - f, 0)
    chan = np.where((c == int(Action.EMAIL)) | (c == int(Action.LETTER)), c, int(Action.EMAIL))
    counts[np.arange(len(n)), chan - 1] += w
    return counts


def dp_env_state(space: StateSpace, t: int, rows: np.ndarray) -> EnvState:
    """The simulator's :class:`EnvState` on day ``t`` of the DP states ``rows`` (m,), for
    the legal facts: per-channel counts from :func:`state_counts` (the written reminders
    ``w + f`` and the calls are exact), the last reminder ``k`` days ago in channel ``c``.
    The DP keeps reminders 7+ days apart when it has a legal mask
    (``policies.common.dp.MIN_SPACING_DAYS``): the 7-day window holds only the last
    reminder, and after a call the last written reminder (or final notice) came at least 7
    days before it (day ``t - k - 7``, a lower bound of the days since)."""
    sp = space
    m = len(rows)
    k, n, w, c = sp.k[rows], sp.n[rows], sp.w[rows], sp.c[rows]
    f = sp.final_notice[rows]
    sent = n > 0
    last = np.where(sent, t - k, -NEVER_DAYS)
    recent = np.zeros((m, 7), dtype=np.int8)
    within = sent & (k < 7)
    recent[np.flatnonzero(within), (t - k[within]) % 7] = c[within]
    fn_day = np.where(~f, -NEVER_DAYS, np.where(c == FINAL, t - k, t - k - MIN_SPACING_DAYS))
    written = w + f.astype(np.int64)
    written_day = np.where(sent & (c != int(Action.PHONE)), last,
                           np.where(written > 0, t - k - MIN_SPACING_DAYS, -NEVER_DAYS))
    return EnvState(day=np.full(m, t, np.int32),
                    reminders=state_counts(n, w, c, f).astype(np.int16),
                    last_contact_day=last.astype(np.int32),
                    last_written_day=written_day.astype(np.int32),
                    final_notice_day=fn_day.astype(np.int32), recent=recent,
                    disputed=sp.disputed[rows], complained=np.zeros(m, bool),
                    last_channel=c.astype(np.int8))


class LearnedModel(TransitionModel):
    """The learned dynamics of the ``B`` invoices of ``batch`` on a :class:`StateSpace`.

    Args:
        dynamics: the fitted models.
        batch: the invoices (B rows); ``batch.hazard_static`` (B, k) must hold the hazard
            model's static row of each invoice as of its due date.
        mask: legal mask ``mask(facts, as_of) -> (m, 6) bool`` (None: allow all).
        calendar: a calendar covering the invoices' due dates + horizon (built if None).
    """

    def __init__(self, dynamics: LearnedDynamics, batch: InvoiceBatch,
                 mask: ActionMask | None, calendar: BusinessCalendar | None = None) -> None:
        if batch.hazard_static is None:
            raise InputError("the planner needs each invoice's hazard-model inputs "
                             "(InvoiceBatch.hazard_static)")
        self.dyn, self.batch, self.mask_fn = dynamics, batch, mask
        costs, rates = dynamics.costs, dynamics.rates
        self.seg = batch.segment.astype(np.int64)
        self.amount = np.asarray(batch.amount, np.float64)
        self.gamma = float((1.0 + costs.annual_discount_rate) ** (-1.0 / 365.0))
        self.action_cost = np.asarray(costs.action_cost, np.float64)
        # what the DP charges per complaint: the cost, weighted (LearnedDynamics docstring)
        self.complaint_cost = float(costs.complaint_cost) * dynamics.complaint_weight
        share = (costs.agency_recovery_prob * (1.0 - costs.agency_fee_share)
                 * (1.0 + costs.annual_discount_rate) ** (-costs.agency_delay_days / 365.0))
        self.agency_value = self.amount * share - self.action_cost[Action.AGENCY]
        self.dispute_start = rates.dispute_start[self.seg]
        self.dispute_resolve = rates.dispute_resolve[self.seg]
        mult = (np.ones(len(self.seg)) if rates.complaint_hazard is None
                else rates.complaint_hazard[self.seg])
        self._comp_mult = mult  # (B,) hazard multiplier once the customer complained
        support = rates.support
        if support is not None and not dynamics.support_by_day:
            support = support.over_days()
        self._support = support  # logged reminders per cell, as the options count them
        if calendar is None:
            lo, hi = int(batch.due_day.min()), int(batch.due_day.max())
            calendar = BusinessCalendar(from_day(lo), from_day(hi + dynamics.horizon + 31))
        self.calendar = calendar
        self._place = calendar.places(batch.jurisdiction_iso, batch.region)

    # -- setup ---------------------------------------------------------------------------
    def setup(self, space: StateSpace, grid: ReminderGrid) -> None:
        self.space, self.grid = space, grid
        self._hazard_day = -1
        B = self.n  # noqa: N806
        # The hazard depends on (k, n, c, f): the states without complaint or dispute.
        self._base = np.flatnonzero(~space.complaint & ~space.disputed)
        base_of = np.full(space.size, -1, dtype=np.int64)
        plain = space.index[space.k, space.n, space.w, space.c,
                            space.final_notice.astype(np.int64), 0, 0]
        base_of[:] = np.searchsorted(self._base, plain)
        self._base_of = base_of  # (S,) column of each state in the base hazard table
        b = self._base
        self._b_counts = state_counts(space.n[b], space.w[b], space.c[b],
                                      space.final_notice[b])
        self._b_since = np.where(space.n[b] > 0, space.k[b], NO_REMINDER_DAYS)
        self._b_last = space.c[b]
        # post-reminder grid rows (n, f) with d = 0: counts after reminder a
        self._g_rows = np.flatnonzero(~grid.disputed & grid.used)
        # complaint rows: (grid row, complaint flag, since bucket)
        n_since = len(SINCE_EDGES)
        G = grid.size  # noqa: N806
        self._rows = ComplaintRows(
            g=np.repeat(np.arange(G), 2 * n_since),
            complaint=np.tile(np.repeat([0, 1], n_since), G),
            of_state=((grid.key * 2 + space.complaint) * n_since
                      + self._since_bucket(space))[None])
        # reminders sent before this one: the grid row's n
        self._r_n = np.repeat(grid.n, 2 * n_since)
        self._r_since = np.tile(np.arange(n_since), 2 * G)
        if self.mask_fn is not None:
            self._slim = dataclasses.replace(self.batch, params=None, hazard_static=None)
            strings = CategoricalFacts(B)
            strings.set_rows(np.arange(B), self._slim)
            self._strings = strings.facts()  # string facts as categoricals, once
            self._fact_groups = FactGroups(self.mask_fn, STRING_FACTS)
            self._days: DayMasks | None = None

    @staticmethod
    def _since_bucket(space: StateSpace) -> np.ndarray:
        since = np.where(space.n > 0, space.k, NEVER_DAYS)
        return np.clip(np.searchsorted(SINCE_EDGES, since, side="right") - 1, 0,
                       len(SINCE_EDGES) - 1)

    def _calendar(self, t: int, place: np.ndarray, due: np.ndarray) -> CalendarDay:
        return self.calendar.lookup(place, due + t)

    # -- TransitionModel -----------------------------------------------------------------
    def mask(self, t: int) -> np.ndarray | None:
        legal, support = self._legal_mask(t), self._support_mask(t)
        if legal is None or support is None:
            return legal if support is None else support
        return legal & support

    def _support_mask(self, t: int) -> np.ndarray | None:
        """(B, 6, S) the actions with logged support on day ``t`` (wait and agency always),
        or None without ``min_support``."""
        if self.dyn.min_support <= 0:
            return None
        allowed = self._support.at(self.seg, t, self.space.n) >= self.dyn.min_support
        allowed[:, :, Action.WAIT] = True
        allowed[:, :, Action.AGENCY] = True
        return np.ascontiguousarray(allowed.transpose(0, 2, 1))  # (B, 6, S): the DP's layout

    def _legal_mask(self, t: int) -> np.ndarray | None:
        if self.mask_fn is None:
            return None
        if self._days is None or t >= len(self._days):  # the DP asks for its last day first
            self._days = DayMasks(self.n, self.space, t + 1, self._facts, self._judge,
                                  self._free, self._fact_groups)
        return self._days(t)

    def _free(self, t: int) -> np.ndarray:
        """The reachable first-half states where the DP may act on day ``t`` (its 7-day
        spacing: the others only wait)."""
        sp = self.space
        return np.flatnonzero(self._reachable(t, np.arange(sp.half))
                              & ~sp.spacing_block()[:sp.half])

    def _judge(self, facts: dict[str, Any], t: np.ndarray, inv: np.ndarray) -> np.ndarray:
        return self.mask_fn(facts, from_days(self.batch.due_day[inv] + t))

    def _facts(self, t: int, inv: np.ndarray, states: np.ndarray) -> dict[str, Any]:
        """The legal facts (string facts as categoricals) of invoices ``inv`` (r,) in the
        first-half DP states ``states`` (r,) on day ``t``."""
        batch = take_rows(self._slim, inv)
        cal = self._calendar(t, self._place[inv], batch.due_day)
        facts = legal_facts(batch, dp_env_state(self.space, t, states), cal)
        facts.update({name: values[inv] for name, values in self._strings.items()})
        return facts

    def _predict(self, t: int, counts: np.ndarray, since: np.ndarray, last: np.ndarray
                 ) -> np.ndarray:
        """(B, m) hazard on day ``t`` of every invoice in ``m`` dynamic situations (0 on a
        weekend or bank holiday)."""
        B, m = self.n, len(since)  # noqa: N806
        out = np.zeros((B, m))
        cal = self._calendar(t, self._place, self.batch.due_day)
        open_day = np.flatnonzero(~cal.is_weekend & ~cal.is_holiday)
        if len(open_day) == 0:
            return out
        calendar = {"weekday": cal.weekday, "days_to_month_end": cal.days_to_month_end,
                    "days_to_quarter_end": cal.days_to_quarter_end,
                    "is_holiday": cal.is_holiday, "month_phase": cal.month_phase,
                    "quarter_phase": cal.quarter_phase}
        per_invoice = {name: np.asarray(v[open_day], dtype=np.float64)
                       for name, v in calendar.items()}
        situations = reminder_dynamics(np.full(m, t), {f"n_{ch}": counts[:, j] for j, ch in
                                                       enumerate(REMINDER_CHANNELS)},
                                       since, last, {})
        out[open_day] = self.dyn.hazard.predict_hazard_grid(
            self.batch.hazard_static[open_day], situations, per_invoice)
        return out

    def _reachable(self, t: int, rows: np.ndarray) -> np.ndarray:
        """(len(rows),) bool: the states ``rows`` can occur on day ``t`` (the last reminder
        sent on day t - k >= 0, at most one reminder a day; with a legal mask the DP keeps
        reminders ``MIN_SPACING_DAYS`` apart). The others are never visited (the reachable
        set is closed under transitions), so their numbers do not matter."""
        k, n = self.space.k[rows], self.space.n[rows]
        gap = MIN_SPACING_DAYS if self.mask_fn is not None else 1
        return (n == 0) | ((k <= t) & (gap * (n - 1) <= t - k))

    def _hazards(self, t: int) -> None:
        """Day ``t``'s hazards of every reachable waiting state and of every reminder from
        every grid row, in one call of the hazard model (``_wait_base`` (B, base states),
        ``_post`` (B, 4 reminders, grid rows without dispute))."""
        cols = np.flatnonzero(self._reachable(t, self._base))
        g, rows = self.grid, self._g_rows
        post = [(state_counts(g.n_post[rows],
                              np.minimum(g.w[rows] + (a in (Action.EMAIL, Action.LETTER)),
                                         self.space.N),
                              np.full(len(rows), a), g.final_notice[rows] | (a == FINAL)), a)
                for a in range(1, FINAL + 1)]
        counts = np.concatenate([self._b_counts[cols], *[c for c, _ in post]])
        since = np.concatenate([self._b_since[cols], np.zeros(len(rows) * len(post))])
        last = np.concatenate([self._b_last[cols],
                               *[np.full(len(rows), a) for _, a in post]])
        h = self._predict(t, counts, since, last)
        if self.dyn.reminder_prior > 0:
            h = self._shrunk(t, h, counts, since, last)
        self._wait_base = np.zeros((self.n, len(self._base)))
        self._wait_base[:, cols] = h[:, :len(cols)]
        self._post = h[:, len(cols):].reshape(self.n, len(post), len(rows))
        self._hazard_day = t

    def _shrunk(self, t: int, h: np.ndarray, counts: np.ndarray, since: np.ndarray,
                last: np.ndarray) -> np.ndarray:
        """(B, m) hazards ``h`` with the effect of the last reminder (within ``K`` days of
        it) shrunk toward none by its logged support: ``h_old + s / (s + prior) * (h -
        h_old)``, ``h_old`` the hazard with the same reminders sent long ago
        (:data:`DECAYED_DAYS`), ``s`` the reminders the history logged of the invoice's
        segment, that channel, send day and number (``rates.support``)."""
        recent = (since < self.dyn.K) & (counts.sum(axis=1) > 0)
        if not recent.any():
            return h
        old = self._predict(t, counts[recent], np.full(int(recent.sum()), DECAYED_DAYS),
                            last[recent])
        sent = np.maximum(t - since[recent], 0)
        before = counts[recent].sum(axis=1) - 1
        cells = self._support.cell(self.seg[:, None], last[recent].astype(np.int64)[None],
                                   sent[None], before[None])
        trust = cells / (cells + self.dyn.reminder_prior)
        out = h.copy()
        out[:, recent] = old + trust * (h[:, recent] - old)
        return out

    def wait_hazard(self, t: int) -> np.ndarray:
        self._hazards(t)
        h = self._wait_base[:, self._base_of]  # (B, S)
        comp = self.space.complaint[None]
        h = np.where(comp, np.minimum(h * self._comp_mult[:, None], 1.0), h)
        return np.where(self.space.disputed[None], 0.0, h)

    def reminder_hazard(self, t: int, a: int) -> np.ndarray:
        g, rows = self.grid, self._g_rows
        if self._hazard_day != t:
            self._hazards(t)
        h_rows = self._post[:, a - 1]
        h = np.zeros((self.n, g.size))
        h[:, rows] = h_rows
        h[:, rows + 1] = h_rows  # the disputed twin (its hazard is not used)
        # the complaint flag of TODAY scales today's hazard (as LearnedSource.step does)
        now = np.stack([h, np.minimum(h * self._comp_mult[:, None], 1.0)], axis=2)
        return now[:, :, :, None]  # (B, G, 2 now, 1 next)

    def complaint_rows(self) -> ComplaintRows:
        return self._rows

    def complaint_probability(self, t: int, a: int) -> np.ndarray:
        rates = self.dyn.rates
        seg = self.seg[:, None]
        model = rates.complaint_model
        if model is None:
            return np.broadcast_to(rates.complaint[seg, a], (self.n, len(self._r_n)))
        # each since bucket's left edge stands for the bucket (the last edge is "never")
        return model.predict(seg, np.int64(a), np.full((1, 1), t), self._r_n[None],
                             SINCE_EDGES[self._r_since][None])
