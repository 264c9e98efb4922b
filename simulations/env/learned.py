"""``LearnedSource``: transitions from what a company can learn from its own history.

Payment: the learned daily hazard model (``engine.models.HazardModel``) on each invoice's
static features as of its due date plus the day's dynamic inputs (reminders sent before
today, days since the last one, calendar). No payment lands on a weekend or bank holiday
(the hazard is not even asked then). Complaints: per (segment, channel) rates from the
``actions.complaint`` column per (segment, channel, days overdue, reminders so far, days
since the last contact), shrunk toward coarser levels (:class:`ComplaintModel`), and a
hazard multiplier once the customer has complained. Disputes: per segment daily opening and
resolution rates from ``invoices.dispute_opened`` / ``dispute_resolved``; a disputed invoice
does not pay. Costs and the discount rate come from a scenario file (the company's own
figures). Invoices are replayed from the company's history (those due before the as-of
date).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.calendar import NEVER, BusinessCalendar, from_day, to_day, to_days
from engine.contract import N_ACTIONS, Action, is_reminder
from engine.errors import DunningError
from engine.features import NO_REMINDER_DAYS, REMINDER_CHANNELS, reminder_dynamics
from engine.models.payment import three_class_proba
from legal_rules.facts import NEVER_DAYS
from simulations.env.arrays import take_rows
from simulations.env.layout import SEGMENT_NAMES, jurisdiction_codes, segment_codes
from simulations.env.source import TransitionSource
from simulations.env.types import NO_MILESTONE, CostModel, EnvState, InvoiceBatch, Outcome

_PRIOR_WEIGHT = 20.0  # pseudo-observations pulling a segment's rate to the overall rate


@dataclass
class LearnedParams:
    """``InvoiceBatch.params`` of the learned source: the hazard model's static inputs."""

    static: np.ndarray  # (n, k_static) float
    pool_row: np.ndarray  # (n,) int64 row of the invoice in the source's pool


# Bucket edges (left-closed) of the complaint model's timing inputs. Chosen to separate what
# a complaint depends on in practice: an early reminder (first weeks after due), a reminder
# soon after the previous one, and the number already sent.
OVERDUE_EDGES = np.array([0, 7, 14, 25, 45])  # days overdue when the reminder is sent
# The complaint model's grid of the same: finer, since each of its levels is estimated from
# every reminder sent then (a multiplicative model, see ComplaintModel).
COMPLAINT_OVERDUE_EDGES = np.array([0, 4, 7, 11, 14, 17, 20, 23, 26, 29, 32, 35, 40, 45, 60])
REMINDER_EDGES = np.array([0, 1, 2, 3])  # reminders sent before this one
SINCE_EDGES = np.array([0, 7, 14, NEVER_DAYS])  # days since the last contact (NEVER = none)
_COMPLAINT_PRIOR = 30.0  # pseudo-reminders pulling a complaint factor level toward 1


def _bucket(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 1)


@dataclass(frozen=True)
class ComplaintModel:
    """P(complaint | reminder) per (segment, channel, overdue, reminders, since) bucket.

    A multiplicative (log-linear) model per segment, fitted like a Poisson regression by
    iterative proportional fitting::

        P = base[seg] * channel[seg, ch] * overdue[seg, o] * reminders[seg, r] * since[seg, s]

    each factor level its observed over expected complaints, shrunk toward 1 with
    ``_COMPLAINT_PRIOR`` pseudo-reminders (the segment's base toward the pooled rate).
    Every factor is estimated from all reminders of its level (e.g. the "day 20-23" factor
    from first, second and third reminders sent then), so a rare combination is the product
    of well-estimated effects, not the rate of whatever shares its coarser cell. The earlier
    nested estimate (overdue bucket, then reminders so far, then days since) on a 0/7/14/25/
    45 grid gave, in a sampled company of the tuning family, a corporate's first call on
    day 25-45 8.3 % (the world: 1.5 %) and a family business's first e-mail on day 17-25
    15.5 % (the world: 3.5 %, its early-complaint step is day 17); the finer grid
    (:data:`COMPLAINT_OVERDUE_EDGES`) resolves a step anywhere from day 14 to 45 (the
    sampled companies draw it from 15-35). A cell the history never saw gets the product
    of its levels, never 0 (docs/planner.md, "Complaints and handovers").

    ``table``: (segments, 6, n_overdue, n_reminders, n_since); 0 for wait and agency.
    """

    table: np.ndarray

    @classmethod
    def fit(cls, seg: np.ndarray, channel: np.ndarray, overdue: np.ndarray,
            reminders: np.ndarray, since: np.ndarray, complaint: np.ndarray,
            n_segments: int, iterations: int = 20) -> ComplaintModel:
        """From one row per reminder sent (arrays (m,)); ``since`` = NEVER_DAYS if none."""
        dims = (N_ACTIONS, len(COMPLAINT_OVERDUE_EDGES), len(REMINDER_EDGES), len(SINCE_EDGES))
        table = np.zeros((n_segments, *dims))
        if len(seg) == 0:
            return cls(table)
        seg = np.asarray(seg, np.int64)
        keys = (np.asarray(channel, np.int64), _bucket(overdue, COMPLAINT_OVERDUE_EDGES),
                _bucket(reminders, REMINDER_EDGES), _bucket(since, SINCE_EDGES))
        y = np.asarray(complaint, dtype=float)
        pooled = (y.sum() + 0.5) / (len(y) + 1.0)
        base = np.full(n_segments, pooled)
        factors = [np.ones((n_segments, d)) for d in dims]

        def fitted() -> np.ndarray:
            mu = base[seg].copy()
            for f, key in zip(factors, keys, strict=True):
                mu *= f[seg, key]
            return mu

        for _ in range(iterations):
            mu = fitted()
            ev = np.bincount(seg, weights=y, minlength=n_segments)
            ex = np.bincount(seg, weights=mu / base[seg], minlength=n_segments)
            base = (ev + _COMPLAINT_PRIOR * pooled) / (ex + _COMPLAINT_PRIOR)
            for j, (f, key, d) in enumerate(zip(factors, keys, dims, strict=True)):
                mu = fitted()
                flat = seg * d + key
                ev = np.bincount(flat, weights=y, minlength=n_segments * d).reshape(-1, d)
                ex = np.bincount(flat, weights=mu / f[seg, key],
                                 minlength=n_segments * d).reshape(-1, d)
                cnt = np.bincount(flat, minlength=n_segments * d).reshape(-1, d)
                ratio = np.divide(ev, ex, out=np.ones_like(ev), where=ex > 0)
                f[:] = (cnt * ratio + _COMPLAINT_PRIOR) / (cnt + _COMPLAINT_PRIOR)
                _never_less_annoying(j, f)
        ch, ov, rb, sb = factors
        table = (base[:, None, None, None, None] * ch[:, :, None, None, None]
                 * ov[:, None, :, None, None] * rb[:, None, None, :, None]
                 * sb[:, None, None, None, :])
        table = np.minimum(table, 1.0)
        table[:, Action.WAIT] = 0.0
        table[:, Action.AGENCY] = 0.0
        return cls(table)

    @staticmethod
    def grid_shape() -> tuple[int, int, int]:
        """``table.shape[2:]``: (overdue, reminders, since) buckets of this version."""
        return len(COMPLAINT_OVERDUE_EDGES), len(REMINDER_EDGES), len(SINCE_EDGES)

    def predict(self, seg: np.ndarray, action: np.ndarray, overdue: np.ndarray,
                reminders: np.ndarray, since: np.ndarray) -> np.ndarray:
        """P(complaint) (n,) of sending ``action`` in the given state (0 for wait, agency)."""
        return self.table[seg, action, _bucket(overdue, COMPLAINT_OVERDUE_EDGES),
                          _bucket(reminders, REMINDER_EDGES), _bucket(since, SINCE_EDGES)]


def _never_less_annoying(factor: int, levels: np.ndarray) -> None:
    """In place, per segment, the complaint model's factor number ``factor`` (0 channel, 1
    day overdue, 2 reminders before, 3 days since): a reminder after more reminders, or
    sooner after the last contact, is taken to be at least as likely to draw a complaint as
    one after fewer, or later (reminders before non-decreasing, days since non-increasing
    over its recent buckets; "never contacted" apart). The others are left alone.

    Why: the history rarely holds what a learned policy would try (no two reminders within 7
    days on the default company, a third reminder only late), and a level without data keeps
    the factor 1 while its neighbours are fitted: a call 3 days after the last looked less
    annoying than one 10 days after it (0.026 against 0.030 for corporates; the world
    triples it), and PPO trained with seeds 1 and 2 called every few days (380 and 242
    complaints per 1,000 in the truth; rl_training_seeds.json). The timing and the number of
    reminders are also confounded in the history (the third reminder is always late). A
    level is raised to its less annoying neighbour's, never lowered."""
    if factor == 2:
        levels[:] = np.maximum.accumulate(levels, axis=1)
    elif factor == 3:  # the last bucket is NEVER_DAYS: no earlier contact
        levels[:, :-1] = np.maximum.accumulate(levels[:, :-1][:, ::-1], axis=1)[:, ::-1]


@dataclass(frozen=True)
class ReminderSupport:
    """How many reminders the history logged per (segment, channel, day overdue when sent,
    reminders sent before) cell, on the complaint model's grid
    (:data:`COMPLAINT_OVERDUE_EDGES`, :data:`REMINDER_EDGES`): where a planner may trust
    the learned model's value of a reminder (docs/planner.md, "Logged support").

    ``count``: (segments, 6, n_overdue, n_reminders) int; 0 for wait and agency.
    """

    count: np.ndarray

    @classmethod
    def fit(cls, seg: np.ndarray, channel: np.ndarray, overdue: np.ndarray,
            reminders: np.ndarray, n_segments: int) -> ReminderSupport:
        """From one row per reminder sent (arrays (m,))."""
        shape = (n_segments, N_ACTIONS, len(COMPLAINT_OVERDUE_EDGES), len(REMINDER_EDGES))
        flat = np.ravel_multi_index(
            (np.asarray(seg, np.int64), np.asarray(channel, np.int64),
             _bucket(overdue, COMPLAINT_OVERDUE_EDGES), _bucket(reminders, REMINDER_EDGES)),
            shape)
        return cls(np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape))

    def over_days(self) -> ReminderSupport:
        """The same counted over every day overdue (each day's cell holds the total of its
        segment, channel and number): support for how many reminders, not for when."""
        return ReminderSupport(np.broadcast_to(self.count.sum(axis=2, keepdims=True),
                                               self.count.shape).copy())

    def cell(self, seg: np.ndarray, action: np.ndarray, overdue: np.ndarray,
             reminders: np.ndarray) -> np.ndarray:
        """Logged reminders of the cell of each (segment, action, day overdue when sent,
        reminders sent before); the arrays broadcast together."""
        return self.count[np.asarray(seg, np.int64), np.asarray(action, np.int64),
                          _bucket(overdue, COMPLAINT_OVERDUE_EDGES),
                          _bucket(reminders, REMINDER_EDGES)]

    def at(self, seg: np.ndarray, overdue: int, reminders: np.ndarray) -> np.ndarray:
        """(B, m, 6) logged reminders of each action for invoices of segments ``seg`` (B,)
        on day ``overdue`` after due in states with ``reminders`` (m,) sent before."""
        return self.cell(np.asarray(seg)[:, None, None], np.arange(N_ACTIONS)[None, None],
                         np.asarray(overdue), np.asarray(reminders)[None, :, None])


@dataclass(frozen=True)
class BehaviourRates:
    """Rates estimated from the history tables (index: layout.SEGMENT_NAMES, Action)."""

    complaint: np.ndarray  # (segments, 6) P(complaint | action) over all timings (summary)
    dispute_start: np.ndarray  # (segments,) per overdue day
    dispute_resolve: np.ndarray  # (segments,) per disputed day
    complaint_model: ComplaintModel | None = None  # timing-aware; None: use ``complaint``
    complaint_hazard: np.ndarray | None = None  # (segments,) hazard multiplier after one
    support: ReminderSupport | None = None  # logged reminders per cell (None: not counted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "complaint": {s: {Action(a).channel: float(self.complaint[i, a])
                              for a in range(1, Action.AGENCY)}
                          for i, s in enumerate(SEGMENT_NAMES)},
            "dispute_start": dict(zip(SEGMENT_NAMES, self.dispute_start.tolist(), strict=True)),
            "dispute_resolve": dict(zip(SEGMENT_NAMES, self.dispute_resolve.tolist(),
                                        strict=True)),
            "complaint_hazard": (None if self.complaint_hazard is None else
                                 dict(zip(SEGMENT_NAMES, self.complaint_hazard.tolist(),
                                          strict=True))),
        }


def _smoothed(events: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """Per-group rate shrunk to the pooled rate (groups with little data get the pool's)."""
    pooled = events.sum() / max(exposure.sum(), 1e-12)
    return (events + _PRIOR_WEIGHT * pooled) / (exposure + _PRIOR_WEIGHT)


def estimate_rates(tables: Mapping[str, pd.DataFrame], as_of: dt.date) -> BehaviourRates:
    """Complaint, dispute opening and resolution rates known at ``as_of``."""
    customers = tables["customers"]
    invoices = tables["invoices"]
    actions = tables["actions"]
    seg_of_cust = dict(zip(customers["customer_id"].astype(str),
                           segment_codes(customers.get("segment", pd.Series(
                               ["unknown"] * len(customers))).fillna("unknown").to_numpy()),
                           strict=True))
    inv_seg = invoices["customer_id"].astype(str).map(seg_of_cust).fillna(len(SEGMENT_NAMES) - 1)
    inv_seg = inv_seg.to_numpy(dtype=np.int64)
    seg_of_inv = dict(zip(invoices["invoice_id"].astype(str), inv_seg, strict=True))
    n_seg = len(SEGMENT_NAMES)

    complaint = np.zeros((n_seg, N_ACTIONS))
    as_of_day = to_day(as_of)
    actions = actions[_days(actions["action_date"]) <= as_of_day] if len(actions) else actions
    rem = _reminder_rows(actions, invoices, seg_of_inv, n_seg)
    model = None
    comp_hazard = None
    support = None
    if rem is not None:
        for a in range(Action.EMAIL, Action.AGENCY):
            sent = rem["channel"] == a
            events = np.bincount(rem["seg"][sent], weights=rem["complaint"][sent],
                                 minlength=n_seg)
            exposure = np.bincount(rem["seg"][sent], minlength=n_seg).astype(float)
            complaint[:, a] = _smoothed(events, exposure)
        model = ComplaintModel.fit(rem["seg"], rem["channel"], rem["overdue"],
                                   rem["before"], rem["since"], rem["complaint"], n_seg)
        comp_hazard = _complaint_hazard(rem, tables, invoices, as_of_day, n_seg)
        support = ReminderSupport.fit(rem["seg"], rem["channel"], rem["overdue"],
                                      rem["before"], n_seg)

    as_of_ts = pd.Timestamp(as_of)
    due = pd.to_datetime(invoices["due_date"])
    opened = pd.to_datetime(invoices.get("dispute_opened", pd.Series(pd.NaT,
                                                                    index=invoices.index)))
    resolved = pd.to_datetime(invoices.get("dispute_resolved", pd.Series(pd.NaT,
                                                                        index=invoices.index)))
    end = pd.Series(as_of_ts, index=invoices.index)
    # exposure to a dispute opening: overdue days until it opened (or as of)
    stop = opened.where(opened.notna() & (opened >= due), end).clip(upper=as_of_ts)
    overdue_days = (stop - due).dt.days.clip(lower=0).fillna(0).to_numpy(dtype=float)
    started = (opened.notna() & (opened >= due) & (opened <= as_of_ts)).to_numpy()
    d_start = _smoothed(np.bincount(inv_seg, weights=started, minlength=n_seg),
                        np.bincount(inv_seg, weights=overdue_days, minlength=n_seg))
    known = opened.notna() & (opened <= as_of_ts)
    dis_end = resolved.where(resolved.notna() & (resolved <= as_of_ts), end)
    dis_days = ((dis_end - opened).dt.days.clip(lower=1)).where(known, 0).fillna(0)
    ended = (known & resolved.notna() & (resolved <= as_of_ts)).to_numpy()
    d_res = _smoothed(np.bincount(inv_seg, weights=ended, minlength=n_seg),
                      np.bincount(inv_seg, weights=dis_days.to_numpy(dtype=float),
                                  minlength=n_seg))
    if not known.any():
        d_res = np.full(n_seg, 1.0 / 30.0)  # no dispute seen: assume a month to resolve
    return BehaviourRates(complaint=complaint, dispute_start=d_start, dispute_resolve=d_res,
                          complaint_model=model, complaint_hazard=comp_hazard,
                          support=support)


def _reminder_rows(actions: pd.DataFrame, invoices: pd.DataFrame, seg_of_inv: dict,
                   n_seg: int) -> dict[str, np.ndarray] | None:
    """One entry per reminder (email..final notice) with its timing inputs, or None."""
    if not len(actions):
        return None
    inv_id = actions["invoice_id"].astype(str).to_numpy()
    chan = actions["channel"].astype(str).str.lower().map(
        lambda c: int(Action.from_channel(c))).to_numpy(dtype=np.int64)
    day = _days(actions["action_date"])
    due_of = dict(zip(invoices["invoice_id"].astype(str), _days(invoices["due_date"]),
                      strict=True))
    due = np.array([due_of.get(i, -1) for i in inv_id], dtype=np.int64)
    keep = is_reminder(chan) & (due >= 0) & (day >= 0)
    if not keep.any():
        return None
    inv_id, chan, day, due = inv_id[keep], chan[keep], day[keep], due[keep]
    comp = _flag(actions, "complaint", False)[keep]
    order = np.lexsort((day, inv_id))
    inv_id, chan, day, due, comp = (x[order] for x in (inv_id, chan, day, due, comp))
    first = np.r_[True, inv_id[1:] != inv_id[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(inv_id)), 0))
    before = np.arange(len(inv_id)) - start  # reminders of the invoice sent before this one
    prev_day = np.r_[-1, day[:-1]]
    since = np.where(first, NEVER_DAYS, day - prev_day)
    seg = np.array([seg_of_inv.get(i, n_seg - 1) for i in inv_id], dtype=np.int64)
    comp = comp.astype(bool)
    earlier, first_complaint = _complaint_history(start, day, comp)
    return {"invoice_id": inv_id, "seg": seg, "channel": chan, "day": day, "due": due,
            "overdue": day - due, "before": before, "since": since,
            "complaint": comp, "complained_before": earlier,
            "first_complaint_day": first_complaint}


def _complaint_hazard(rem: dict[str, np.ndarray], tables: Mapping[str, pd.DataFrame],
                      invoices: pd.DataFrame, as_of_day: int, n_seg: int) -> np.ndarray:
    """Per segment: payment rate after a complaint over the rate after a comparable reminder.

    For every reminder the daily payment rate over the following 30 days (until payment,
    agency handover or the as-of date) is compared between reminders that drew the
    invoice's first complaint and those sent while the customer had not complained about
    the invoice (their window ends at a later complaint), within strata of (segment,
    reminders sent before, overdue bucket) so that the timing does not confound it:
    observed payments after complaints over the payments expected at the stratum's
    no-complaint rate (a Mantel-Haenszel-type ratio), shrunk toward 1 with 5
    pseudo-payments. Returns (segments,) multipliers <= 1.5.

    Why the reference excludes what follows a complaint: a customer who complained stays
    slower, so reminders sent after the complaint, and the days after a later complaint,
    would count slowed payments as the no-complaint rate and pull the ratio toward 1 (on
    the tuning companies the slowdown came out 1.1-1.2x the world's on average).
    """
    window = 30
    payments = tables.get("payments")
    paid_of: dict[str, int] = {}
    if payments is not None and len(payments):
        pay_day = _days(payments["payment_date"])
        for i, d in zip(payments["invoice_id"].astype(str), pay_day, strict=True):
            if d >= 0:
                paid_of[i] = min(paid_of.get(i, d), d)
    paid = np.array([paid_of.get(i, -1) for i in rem["invoice_id"]], dtype=np.int64)
    actions = tables["actions"]
    ag = actions[actions["channel"].astype(str).str.lower() == "agency"]
    ag_of = dict(zip(ag["invoice_id"].astype(str), _days(ag["action_date"]), strict=True))
    agency = np.array([ag_of.get(i, -1) for i in rem["invoice_id"]], dtype=np.int64)
    earlier, first_complaint = rem["complained_before"], rem["first_complaint_day"]
    c = rem["complaint"] & ~earlier  # the invoice's first complaint
    ref = ~rem["complaint"] & ~earlier  # no complaint yet, nor from this reminder
    end = np.minimum(rem["day"] + window, as_of_day)
    end = np.where((agency >= 0) & (agency < end), agency, end)
    end = np.where(ref & (first_complaint < end), first_complaint, end)
    event = (paid > rem["day"]) & (paid <= end)
    end = np.where(event, paid, end)
    expo = np.maximum(end - rem["day"], 0).astype(float)
    stratum = np.ravel_multi_index(
        (rem["seg"], np.minimum(rem["before"], 3), _bucket(rem["overdue"], OVERDUE_EDGES)),
        (n_seg, 4, len(OVERDUE_EDGES)))
    size = n_seg * 4 * len(OVERDUE_EDGES)
    ev0 = np.bincount(stratum[ref], weights=event[ref], minlength=size)
    ex0 = np.bincount(stratum[ref], weights=expo[ref], minlength=size)
    rate0 = np.where(ex0 > 0, ev0 / np.maximum(ex0, 1e-12), 0.0)
    observed = np.bincount(rem["seg"][c], weights=event[c], minlength=n_seg)
    expected = np.bincount(rem["seg"][c], weights=expo[c] * rate0[stratum[c]], minlength=n_seg)
    prior = 5.0
    return np.clip((observed + prior) / (expected + prior), 0.0, 1.5)


def _complaint_history(start: np.ndarray, day: np.ndarray, complaint: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``(earlier (m,) bool, first (m,) int64)`` for reminder rows grouped by invoice
    (``start`` (m,): the index of the invoice's first row, rows in day order within it):
    whether an earlier reminder of the row's invoice drew a complaint, and the day of the
    invoice's first complaint (int64 max when none)."""
    c = np.asarray(complaint, dtype=bool)
    counted = np.cumsum(c) - c  # complaints on rows before this one, all invoices
    earlier = (counted - counted[start]) > 0
    first = np.full(len(c), np.iinfo(np.int64).max)
    np.minimum.at(first, start[c], np.asarray(day, dtype=np.int64)[c])
    return earlier, first[start]


class LearnedSource(TransitionSource):
    """Transitions from the company's learned models (see the module docstring).

    Build it with :meth:`from_tables` or :meth:`from_store`. ``pool`` holds the replayed
    invoices (an :class:`InvoiceBatch` whose ``params`` is :class:`LearnedParams`).
    """

    name = "learned"

    def __init__(self, pool: InvoiceBatch, hazard: Any, rates: BehaviourRates,
                 costs: CostModel, horizon: int = 120,
                 invoice_ids: np.ndarray | None = None) -> None:
        if len(pool.amount) == 0:
            raise DunningError("the learned environment has no invoices to replay: the history "
                               "holds no invoice due before the as-of date")
        self.pool = pool
        self.hazard = hazard
        self.rates = rates
        self.costs = costs
        self.horizon = int(horizon)
        self.invoice_ids = invoice_ids  # (pool,) id of each pool row, when known
        # Hazard of each pool invoice on each day while nothing has been sent yet (the most
        # common state): the model's inputs then depend only on the day, so the value is
        # computed once and reused (exact, NaN = not computed yet).
        self._unreminded = np.full((len(pool.amount), self.horizon + 1), np.nan)
        first = int(pool.due_day.min())
        last = int(pool.due_day.max()) + self.horizon + 31
        self._calendar = BusinessCalendar(from_day(first), from_day(last))
        self._place = self._calendar.places(pool.jurisdiction_iso, pool.region)  # per pool row

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_tables(cls, tables: Mapping[str, pd.DataFrame], hazard: Any,
                    payment_model: Any = None, scenario: Any = "default",
                    as_of: dt.date | None = None, horizon: int | None = None,
                    max_invoices: int = 50_000, seed: int = 0) -> LearnedSource:
        """From contract tables (as DataFrames) and a fitted ``HazardModel``.

        ``payment_model`` (a fitted ``PaymentModel``) fills the observation's payment
        probabilities; ``scenario`` gives costs and discount rate (name, path or Scenario);
        invoices due before ``as_of`` (default: the latest date in the tables) are replayed,
        at most ``max_invoices`` of the most recent ones.
        """
        from engine.features import prepare_tables

        costs, scen_horizon = _costs_of(scenario)
        p = prepare_tables(tables)
        as_of_day = p.last_day if as_of is None else to_day(as_of)
        as_of_date = from_day(as_of_day)
        rows = np.flatnonzero(p.due_day < as_of_day)
        if len(rows) > max_invoices:
            rows = rows[np.argsort(p.due_day[rows], kind="stable")[-max_invoices:]]
        static_df = hazard.static_frame(p, rows)  # as of each due date, as when serving
        static = hazard.static_matrix(static_df)
        if payment_model is not None:
            probs = three_class_proba(payment_model.predict_proba(static_df))
        else:
            probs = np.full((len(rows), 3), 1.0 / 3.0)
        ids = np.asarray(p.invoice_id[rows], dtype=str)
        pool = batch_from_tables(tables, ids, static, probs)
        rates = estimate_rates(tables, as_of_date)
        return cls(pool, hazard, rates, costs,
                   horizon=scen_horizon if horizon is None else horizon, invoice_ids=ids)

    @classmethod
    def from_store(cls, db: str | Path, model_dir: str | Path, scenario: Any = "default",
                   as_of: dt.date | None = None, horizon: int | None = None) -> LearnedSource:
        """From a DuckDB store and a model directory written by ``dunning train-model``."""
        from engine.models.hazard import HazardModel
        from engine.models.payment import PaymentModel
        from engine.store import Store

        model_dir = Path(model_dir)
        if not Path(db).is_file():
            raise DunningError(f"--db {db}: no such store; create it with `dunning ingest`")
        hazard = HazardModel.load(model_dir)
        try:
            payment = PaymentModel.load(model_dir)
        except DunningError:
            payment = None
        tables = Store(db).tables(as_of)
        return cls.from_tables(tables, hazard, payment, scenario, as_of, horizon)

    # -- TransitionSource ----------------------------------------------------------------
    def sample_invoices(self, n: int, rng: np.random.Generator) -> InvoiceBatch:
        return take_rows(self.pool, rng.integers(0, len(self.pool.amount), size=n))

    def initial_hidden(self, batch: InvoiceBatch) -> None:
        return None

    def day_probabilities(self, batch: InvoiceBatch, state: EnvState, actions: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(p_complaint, p_pay_if_no_dispute, p_dispute_start, p_dispute_end)`` (n,) each.

        ``p_pay_if_no_dispute`` is 0 on a disputed invoice, a weekend or bank holiday and
        on agency handover; otherwise the hazard model's probability for today.
        """
        n = len(actions)
        seg = batch.segment.astype(np.int64)
        is_rem = is_reminder(actions)
        p_comp = self._complaint_probability(seg, state, actions, is_rem)
        p_start = np.where(state.disputed, 0.0, self.rates.dispute_start[seg])
        p_end = np.where(state.disputed, self.rates.dispute_resolve[seg], 0.0)
        cal = self._calendar.lookup(self._place[batch.params.pool_row],
                                    batch.due_day + state.day)
        can_pay = (~state.disputed & (actions != Action.AGENCY)
                   & ~cal.is_weekend & ~cal.is_holiday)
        hazard = np.zeros(n)
        idx = np.flatnonzero(can_pay)
        if len(idx):
            hazard[idx] = self._hazard(batch, state, actions, cal, idx)
            if self.rates.complaint_hazard is not None:
                # a customer who complained pays at the rate learned after complaints
                hit = idx[state.complained[idx]]
                hazard[hit] *= self.rates.complaint_hazard[seg[hit]]
                hazard = np.minimum(hazard, 1.0)
        return p_comp, hazard, p_start, p_end

    def _complaint_probability(self, seg: np.ndarray, state: EnvState, actions: np.ndarray,
                               is_rem: np.ndarray) -> np.ndarray:
        """P(complaint) (n,) of today's actions, from the timing-aware model when fitted."""
        model = self.rates.complaint_model
        if model is None:
            return np.where(is_rem, self.rates.complaint[seg, actions], 0.0)
        p = model.predict(seg, actions, state.day, state.reminders.sum(axis=1),
                          state.days_since_contact())
        return np.where(is_rem, p, 0.0)

    def _hazard(self, batch: InvoiceBatch, state: EnvState, actions: np.ndarray, cal: Any,
                idx: np.ndarray) -> np.ndarray:
        """Hazard model output for rows ``idx`` after today's ``actions`` (a reminder acts on
        the day it is sent, as in the hazard model's training rows), from the cache for rows
        never reminded."""
        out = np.empty(len(idx))
        act = actions[idx]
        fresh = ((state.reminders[idx].sum(axis=1) == 0)
                 & ~is_reminder(act))
        day = np.minimum(state.day[idx], self.horizon)
        pool_row = batch.params.pool_row[idx]
        cached = np.full(len(idx), np.nan)
        cached[fresh] = self._unreminded[pool_row[fresh], day[fresh]]
        todo = np.isnan(cached)
        out[~todo] = cached[~todo]
        if todo.any():
            rows = idx[todo]  # only these need the model's inputs (hot path)
            out[todo] = self.hazard.predict_hazard(batch.params.static[rows],
                                                   _dynamic(state, actions, cal, rows))
            keep = fresh[todo]
            self._unreminded[pool_row[todo][keep], day[todo][keep]] = out[todo][keep]
        return out

    def step(self, batch: InvoiceBatch, hidden: Any, state: EnvState, actions: np.ndarray,
             rng: np.random.Generator) -> tuple[None, Outcome]:
        u = rng.random((3, len(actions)))
        p_comp, hazard, p_start, p_end = self.day_probabilities(batch, state, actions)
        complaint = u[0] < p_comp
        ended = state.disputed & (u[1] < p_end)
        started = ~state.disputed & (u[1] < p_start)
        paid = ~started & (u[2] < hazard)
        reward = self.costs.reward(batch.amount, state.day, actions, paid, complaint)
        disputed = (state.disputed & ~ended) | started
        return None, Outcome(paid=paid, complaint=complaint, disputed=disputed, reward=reward)

    def date_range(self) -> tuple[dt.date, dt.date]:
        return (from_day(int(self.pool.due_day.min())), from_day(int(self.pool.due_day.max())))


def _dynamic(state: EnvState, actions: np.ndarray, cal: Any, idx: np.ndarray
             ) -> dict[str, np.ndarray]:
    """The hazard model's dynamic inputs (see ``HazardModel.predict_hazard``) of rows idx
    once today's ``actions`` (n,) are sent: a reminder today counts, 0 days ago."""
    act = actions[idx]
    today = is_reminder(act)
    rem = state.reminders[idx].astype(np.float64)
    rem[np.flatnonzero(today), act[today] - 1] += 1.0
    since = np.where(today, 0, state.days_since_contact()[idx])
    since = np.where(since >= NEVER_DAYS, NO_REMINDER_DAYS, since)
    calendar = {"weekday": cal.weekday[idx], "days_to_month_end": cal.days_to_month_end[idx],
                "days_to_quarter_end": cal.days_to_quarter_end[idx],
                "is_holiday": cal.is_holiday[idx], "month_phase": cal.month_phase[idx],
                "quarter_phase": cal.quarter_phase[idx]}
    return reminder_dynamics(state.day[idx], {f"n_{c}": rem[:, j] for j, c in
                                              enumerate(REMINDER_CHANNELS)},
                             since, np.where(today, act, state.last_channel[idx]), calendar)


def _costs_of(scenario: Any) -> tuple[CostModel, int]:
    if isinstance(scenario, CostModel):
        return scenario, 120
    from simulations.world import load_scenario

    sc = load_scenario(scenario) if isinstance(scenario, str | Path) else scenario
    return CostModel.from_scenario(sc), int(sc.horizon_days)


def _flag(df: pd.DataFrame, name: str, default: bool) -> np.ndarray:
    if name not in df:
        return np.full(len(df), default)
    col = df[name]
    return col.map(lambda v: default if pd.isna(v) else str(v).strip().lower()
                   in ("true", "1", "yes")).to_numpy(dtype=bool)


def _days(values: pd.Series) -> np.ndarray:
    """Dates -> ``engine.calendar`` day numbers (missing or unparsable -> -1)."""
    d = pd.to_datetime(values, errors="coerce").to_numpy().astype("datetime64[D]")
    out = to_days(d)
    return np.where(out == NEVER, -1, out)


def batch_from_tables(tables: Mapping[str, pd.DataFrame], ids: np.ndarray, static: np.ndarray,
                      probs: np.ndarray) -> InvoiceBatch:
    """The invoices ``ids`` (n,) as a batch at their due date, read from the contract tables.

    ``static`` (n, k) is the hazard model's static input of each invoice (kept in
    ``params``), ``probs`` (n, 3) its payment-model probabilities.
    """
    inv = tables["invoices"].assign(invoice_id=lambda d: d["invoice_id"].astype(str))
    inv = inv.set_index("invoice_id").loc[ids].reset_index()
    customers = tables["customers"].assign(customer_id=lambda d: d["customer_id"].astype(str))
    cust = customers.set_index("customer_id").loc[inv["customer_id"].astype(str)]
    cust = cust.reset_index(drop=True)
    n = len(ids)

    def text(df: pd.DataFrame, name: str, default: str) -> np.ndarray:
        if name not in df:
            return np.full(n, default)
        values = df[name].astype(object).where(df[name].notna(), default)
        return np.asarray(values.to_numpy(dtype=object), dtype=str)

    jur = np.char.upper(text(cust, "jurisdiction", ""))
    opted = np.char.lower(text(cust, "opted_out_channels", ""))
    due = _days(inv["due_date"])
    ms = _days(inv["milestone_date"]) if "milestone_date" in inv else np.full(n, -1)
    return InvoiceBatch(
        amount=inv["amount"].to_numpy(dtype=np.float64),
        segment=segment_codes(text(cust, "segment", "unknown")),
        jurisdiction=jurisdiction_codes(jur),
        jurisdiction_iso=jur,
        is_b2c=np.char.lower(text(cust, "customer_type", "b2b")) == "b2c",
        due_day=due,
        invoice_day=_days(inv["invoice_date"]),
        milestone_day=np.where(ms < 0, NO_MILESTONE, ms - due).astype(np.int32),
        payment_probs=np.asarray(probs, dtype=np.float32),
        industry=np.char.lower(text(cust, "industry", "")),
        currency=np.char.upper(text(inv, "currency", "")),
        region=np.char.upper(text(cust, "region", "")),
        opted_out=np.stack([np.char.find(opted, c) >= 0 for c in ("email", "phone", "letter")],
                           axis=1),
        agency_consent=_flag(cust, "agency_consent", True),
        reminder_fee_agreed=_flag(cust, "reminder_fee_agreed", False),
        params=LearnedParams(static=np.asarray(static, dtype=np.float64),
                             pool_row=np.arange(n, dtype=np.int64)),
        hazard_static=np.asarray(static, dtype=np.float64),
    )
