"""The ground-truth MDP of one open invoice, vectorised over invoices (numpy only).

State of an open invoice on day ``t`` after due, before today's decision (:class:`WorldState`):

- ``t``  days overdue, 0 .. horizon-1 (0 = the due date)
- ``k``  days since the last reminder, 1 .. K (K = ``max_days_since_reminder``: "K or more";
  ``k = K`` also when no reminder was sent)
- ``n``  reminders sent so far, 0 .. N (N = ``max_reminders``: "N or more")
- ``w``  written reminders other than the final notice (email, letter) sent so far, 0 .. N
  ("N or more"); with ``final_notice`` it gives the written reminders the company rules count
  (``w + final_notice``), the calls being ``n - w - final_notice``
- ``c``  channel of the last reminder, 0 = none, 1 email, 2 letter, 3 phone, 4 final notice
- ``final_notice`` a final notice was sent; ``complaint`` the customer complained (pays
  slower from then on); ``disputed`` an open dispute (blocks payment); ``done`` the episode
  ended (paid, handed to the agency, or the horizon was reached: written off)

One day (:func:`advance`): the action takes effect at once (a reminder sets ``k = 0`` for
today's hazard, ``n += 1``, ``c = a``; it may cause a complaint, drawn first); AGENCY ends
the episode with the expected agency value. Then, if disputed, the dispute may end (no
payment today); otherwise a dispute may start (no payment today) or the invoice is paid in
full with probability ``1 - exp(-lambda)`` (see :class:`SegmentBehaviour`). Then ``t += 1``
and the episode is truncated at ``t == horizon``.

Reward of a day, in currency on that day (multiply by ``outcome.discount = gamma**t`` for
the value at the due date): ``amount`` if paid, minus the action's cost, minus
``complaint_cost`` per complaint; AGENCY gives ``amount * recovery_p * (1 - fee) *
gamma**delay - cost``. Costs live in ``params.scenario.costs``.

Usage::

    params = sample_invoices(scenario, n, rng)          # InvoiceParams, arrays (n,)
    state = initial_state(params)                       # WorldState at the due date
    probs = transition_probs(params, state, actions)    # TransitionProbs, arrays (n,)
    state, outcome = step(params, state, actions, rng)  # new WorldState, StepOutcome
    facts = facts_from_state(params, state)             # legal facts, dict of (n,) arrays
    p_log = logging_policy_probs(params, state)         # (n, 6) logging policy

``step`` never mutates its input state. Actions on finished rows are ignored (WAIT).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from engine.calendar import to_days
from engine.contract import CUSTOMER_TYPES, N_ACTIONS, Action
from legal_rules.facts import CONVENIENT_LOCAL_HOUR, NEVER_DAYS
from simulations.world.params import InvoiceParams
from simulations.world.scenario import Scenario

AGENCY = int(Action.AGENCY)
FINAL_NOTICE = int(Action.FINAL_NOTICE)
PHONE = int(Action.PHONE)
MAX_COMPLAINT_PROBABILITY = 0.95


class ModelTables:
    """The scenario's per-segment numbers as arrays for fancy indexing (S = segments)."""

    def __init__(self, sc: Scenario) -> None:
        seg = sc.segments
        self.K, self.N, self.H = sc.max_days_since_reminder, sc.max_reminders, sc.horizon_days
        self.hazard = np.array([s.hazard for s in seg])
        # trend[s, t] = exp(overdue_trend * t / 30), t = 0..H (days after due).
        self.trend = np.exp(np.array([s.overdue_trend_per_30_days for s in seg])[:, None]
                            * np.arange(self.H + 1)[None, :] / 30.0)
        self.pre_due_hazard = np.array([s.pre_due_hazard for s in seg])
        self.effect = np.array([s.reminder_effect for s in seg])
        self.strength = np.array((0.0,) + sc.channel_strength)  # (5,), 0 = no reminder
        self.complaint_factor = np.array((0.0,) + sc.channel_complaint_factor + (0.0,))  # (6,)
        # decay_pow[s, k] = decay**k for k = 0..K; dimin_pow[s, n] = dimin**(n-1), n = 0..N.
        self.decay_pow = np.array([s.reminder_decay ** np.arange(self.K + 1) for s in seg])
        self.dimin_pow = np.array([s.reminder_diminishing ** np.maximum(np.arange(self.N + 1) - 1,
                                                                        0) for s in seg])
        # timing[s, d]: multiplier of a reminder sent on day d after due (d = 0..H).
        self.timing = np.ones((len(seg), self.H + 1))
        for i, s in enumerate(seg):
            for start, mult in s.reminder_timing:
                self.timing[i, min(start, self.H + 1):] = mult
        self.slowdown = np.array([s.complaint_slowdown for s in seg])
        self.before_milestone = np.array([s.before_milestone_factor for s in seg])
        cm = [s.complaint for s in seg]
        self.c_base = np.array([c.base for c in cm])
        self.c_early_days = np.array([c.early_days for c in cm])
        self.c_early_factor = np.array([c.early_factor for c in cm])
        self.c_frequent_days = np.array([c.frequent_days for c in cm])
        self.c_frequent_factor = np.array([c.frequent_factor for c in cm])
        self.c_per_prior = np.array([c.per_prior_reminder for c in cm])
        self.dispute_start = np.array([s.dispute_start for s in seg])
        self.dispute_resolve = np.array([s.dispute_resolve for s in seg])
        self.action_cost = np.array(sc.costs.action)
        self.agency_value_share = sc.costs.agency_value_share
        self.complaint_cost = sc.costs.complaint
        self.gamma = sc.costs.daily_discount


_TABLES: dict[int, tuple[Scenario, ModelTables]] = {}


def tables(scenario: Scenario) -> ModelTables:
    """Cached :class:`ModelTables` of a scenario."""
    hit = _TABLES.get(id(scenario))
    if hit is None or hit[0] is not scenario:
        hit = (scenario, ModelTables(scenario))
        _TABLES[id(scenario)] = hit
    return hit[1]


@dataclass
class WorldState:
    """Dynamic state of n invoices; arrays of shape (n,). See the module docstring."""

    t: np.ndarray  # int64
    k: np.ndarray  # int64
    n: np.ndarray  # int64
    w: np.ndarray  # int64, written reminders except the final notice (email, letter)
    c: np.ndarray  # int64
    final_notice: np.ndarray  # bool
    complaint: np.ndarray  # bool
    disputed: np.ndarray  # bool
    done: np.ndarray  # bool

    def copy(self) -> WorldState:
        return WorldState(**{f.name: getattr(self, f.name).copy() for f in fields(self)})

    def take(self, rows: np.ndarray) -> WorldState:
        return WorldState(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def __len__(self) -> int:
        return len(self.t)


def initial_state(params: InvoiceParams) -> WorldState:
    """State at the due date: nothing sent, no complaint, no dispute."""
    n = len(params)
    K = params.scenario.max_days_since_reminder
    z = np.zeros(n, dtype=np.int64)
    f = np.zeros(n, dtype=bool)
    return WorldState(t=z.copy(), k=np.full(n, K, dtype=np.int64), n=z.copy(), w=z.copy(),
                      c=z.copy(),
                      final_notice=f.copy(), complaint=f.copy(), disputed=f.copy(), done=f.copy())


# ----------------------------------------------------------------------------- core formulas
# Broadcastable: the oracle calls these with invoice arrays of shape (B, 1) and state grids
# of shape (1, S); the step with shape (n,) everywhere.


def effect_static(tb: ModelTables, seg: np.ndarray, k: np.ndarray, n: np.ndarray,
                  c: np.ndarray, response: np.ndarray) -> np.ndarray:
    """The day-independent part of the reminder effect: effect * response * strength *
    decay**k * diminishing**(n-1) (0 when no reminder was sent; ``response`` the
    customer's own, ``InvoiceParams.response``)."""
    return (tb.effect[seg] * tb.strength[c] * tb.decay_pow[seg, k] * tb.dimin_pow[seg, n]
            * response)


def pay_hazard_from_effect(tb: ModelTables, seg: np.ndarray, rel: np.ndarray, cal: np.ndarray,
                           ms_off: np.ndarray, t: np.ndarray, k: np.ndarray,
                           static_effect: np.ndarray, complaint: np.ndarray, *,
                           shift: np.ndarray) -> np.ndarray:
    """:func:`pay_hazard` with ``effect_static(tb, seg, k, n, c, response)`` precomputed."""
    send_day = np.clip(t - k, 0, tb.H)
    # The customer answers a reminder sent on day d as its segment does one sent on d - shift.
    timing = tb.timing[seg, np.clip(send_day - shift, 0, tb.H)]
    # Reminders sent before the milestone are wasted.
    effect = np.where(send_day >= ms_off, static_effect * timing, 0.0)
    lam = (tb.hazard[seg] * tb.trend[seg, np.clip(t, 0, tb.H)] * rel * cal * (1.0 + effect)
           * np.where(complaint, tb.slowdown[seg], 1.0)
           * np.where(t < ms_off, tb.before_milestone[seg], 1.0))
    return -np.expm1(-lam)


def pay_hazard(tb: ModelTables, seg: np.ndarray, rel: np.ndarray, cal: np.ndarray,
               ms_off: np.ndarray, t: np.ndarray, k: np.ndarray, n: np.ndarray, c: np.ndarray,
               complaint: np.ndarray, *, response: np.ndarray, shift: np.ndarray
               ) -> np.ndarray:
    """P(paid today | not disputed, no dispute starts), after today's action.

    ``k, n, c`` are the post-action values (``k = 0`` if reminded today), ``cal`` the
    calendar multiplier of today (0 on non-business days), ``response`` and ``shift`` the
    customer's own reminder response and timing (``InvoiceParams.response``,
    ``InvoiceParams.timing_shift``).
    """
    return pay_hazard_from_effect(tb, seg, rel, cal, ms_off, t, k,
                                  effect_static(tb, seg, k, n, c, response), complaint,
                                  shift=shift)


def complaint_state_factor(tb: ModelTables, seg: np.ndarray, k: np.ndarray,
                           n: np.ndarray) -> np.ndarray:
    """The part of the complaint probability that depends on the reminders so far."""
    return (np.where((n > 0) & (k < tb.c_frequent_days[seg]), tb.c_frequent_factor[seg], 1.0)
            * (1.0 + tb.c_per_prior[seg] * n))


def complaint_day_factor(tb: ModelTables, seg: np.ndarray, t: np.ndarray,
                         action: np.ndarray) -> np.ndarray:
    """The part that depends on the day after due and the channel (0 for WAIT, AGENCY)."""
    return (tb.c_base[seg] * tb.complaint_factor[action]
            * np.where(t < tb.c_early_days[seg], tb.c_early_factor[seg], 1.0))


def complaint_probability(tb: ModelTables, seg: np.ndarray, t: np.ndarray, k: np.ndarray,
                          n: np.ndarray, action: np.ndarray) -> np.ndarray:
    """P(complaint | action sent in state (t, k, n)); 0 for WAIT and AGENCY."""
    p = complaint_day_factor(tb, seg, t, action) * complaint_state_factor(tb, seg, k, n)
    return np.minimum(p, MAX_COMPLAINT_PROBABILITY)


def calendar_multiplier(params: InvoiceParams, t: np.ndarray) -> np.ndarray:
    """Today's calendar factor of each invoice (0 on weekends/holidays), shape of ``t``."""
    return params.calendar.pay_multiplier[params.segment, params.jurisdiction,
                                          params.due_index + t]


# ----------------------------------------------------------------------------- step API


@dataclass
class TransitionProbs:
    """True probabilities of today's events given state and action, arrays (n,).

    ``pay`` is the marginal P(paid today) (over a possible complaint and dispute),
    ``pay_hazard`` P(paid | no dispute, complaint state unchanged), ``complaint``
    P(complaint from today's reminder), ``dispute_start`` P(a dispute opens today),
    ``dispute_end`` P(an open dispute is resolved today), ``agency`` 1 where AGENCY ends it.
    """

    pay: np.ndarray
    pay_hazard: np.ndarray
    complaint: np.ndarray
    dispute_start: np.ndarray
    dispute_end: np.ndarray
    agency: np.ndarray


def written_ordinary(actions: np.ndarray) -> np.ndarray:
    """True where the action is a written reminder other than the final notice (email,
    letter): the ones ``WorldState.w`` counts."""
    actions = np.asarray(actions)
    return (actions == int(Action.EMAIL)) | (actions == int(Action.LETTER))


def _post_action(tb: ModelTables, state: WorldState, actions: np.ndarray):
    remind = (actions >= 1) & (actions <= FINAL_NOTICE)
    k = np.where(remind, 0, state.k)
    n = np.where(remind, np.minimum(state.n + 1, tb.N), state.n)
    c = np.where(remind, actions, state.c)
    return remind, k, n, c


def transition_probs(params: InvoiceParams, state: WorldState,
                     actions: np.ndarray) -> TransitionProbs:
    """The true probabilities :func:`step` draws from (finished rows: all 0)."""
    tb = tables(params.scenario)
    actions = np.asarray(actions, dtype=np.int64)
    active = ~state.done
    seg = params.segment
    remind, k, n, c = _post_action(tb, state, actions)
    p_comp = np.where(active & remind,
                      complaint_probability(tb, seg, state.t, state.k, state.n, actions), 0.0)
    cal = calendar_multiplier(params, state.t)
    args = (tb, seg, params.reliability, cal, params.milestone_offset, state.t, k, n, c)
    own = {"response": params.response, "shift": params.timing_shift}
    h_same = pay_hazard(*args, state.complaint, **own)
    h_comp = pay_hazard(*args, np.ones_like(state.complaint), **own)
    h = np.where(state.complaint, h_same, (1 - p_comp) * h_same + p_comp * h_comp)
    open_ = active & (actions != AGENCY)
    p_start = np.where(open_ & ~state.disputed, tb.dispute_start[seg], 0.0)
    p_end = np.where(open_ & state.disputed, tb.dispute_resolve[seg], 0.0)
    pay = np.where(open_ & ~state.disputed, (1 - p_start) * h, 0.0)
    return TransitionProbs(pay=pay, pay_hazard=np.where(open_, h_same, 0.0), complaint=p_comp,
                           dispute_start=p_start, dispute_end=p_end,
                           agency=(active & (actions == AGENCY)).astype(float))


@dataclass
class StepOutcome:
    """What happened today, arrays (n,). ``reward`` is in currency on day ``t`` (before the
    step); ``discount`` is gamma**t, so ``reward * discount`` is valued at the due date."""

    action: np.ndarray  # int64, the action applied (WAIT on finished rows)
    paid: np.ndarray  # bool
    paid_amount: np.ndarray  # float
    complaint: np.ndarray  # bool
    dispute_started: np.ndarray  # bool
    dispute_ended: np.ndarray  # bool
    agency: np.ndarray  # bool, handed over today (episode ends)
    agency_recovered: np.ndarray  # bool, the agency will recover the amount (drawn)
    truncated: np.ndarray  # bool, horizon reached unpaid (written off)
    reward: np.ndarray  # float
    discount: np.ndarray  # float


def advance(params: InvoiceParams, state: WorldState, actions: np.ndarray,
            draws: np.ndarray) -> tuple[WorldState, StepOutcome]:
    """One day with given uniform draws ``draws`` of shape (3, n): complaint, dispute, pay.

    An event happens when its draw is below its probability; :func:`step` passes
    ``rng.random((3, n))``. Exposed so tests can enumerate outcomes exactly.
    """
    tb = tables(params.scenario)
    seg = params.segment
    actions = np.asarray(actions, dtype=np.int64)
    active = ~state.done
    actions = np.where(active, actions, 0)
    u_comp, u_disp, u_pay = draws
    remind, k, n, c = _post_action(tb, state, actions)
    p_comp = complaint_probability(tb, seg, state.t, state.k, state.n, actions)
    complaint_now = remind & (u_comp < p_comp)
    comp = state.complaint | complaint_now
    agency = actions == AGENCY
    open_ = active & ~agency
    cal = calendar_multiplier(params, state.t)
    h = pay_hazard(tb, seg, params.reliability, cal, params.milestone_offset, state.t, k, n, c,
                   comp, response=params.response, shift=params.timing_shift)
    ended = open_ & state.disputed & (u_disp < tb.dispute_resolve[seg])
    started = open_ & ~state.disputed & (u_disp < tb.dispute_start[seg])
    paid = open_ & ~state.disputed & ~started & (u_pay < h)
    recovered = active & agency & (u_pay < params.scenario.costs.agency_recovery_probability)

    reward = (np.where(paid, params.amount, 0.0) - tb.action_cost[actions]
              - np.where(complaint_now, tb.complaint_cost, 0.0)
              + np.where(active & agency, params.amount * tb.agency_value_share, 0.0))
    t_next = np.where(active, state.t + 1, state.t)
    truncated = open_ & ~paid & (t_next >= tb.H)
    new = WorldState(
        t=t_next,
        k=np.where(active & (n > 0), np.minimum(k + 1, tb.K), state.k),
        n=n, w=np.where(written_ordinary(actions), np.minimum(state.w + 1, tb.N), state.w), c=c,
        final_notice=state.final_notice | (actions == FINAL_NOTICE),
        complaint=comp,
        disputed=(state.disputed & ~ended) | started,
        done=state.done | paid | (active & agency) | truncated,
    )
    outcome = StepOutcome(
        action=actions, paid=paid, paid_amount=np.where(paid, params.amount, 0.0),
        complaint=complaint_now, dispute_started=started, dispute_ended=ended,
        agency=active & agency, agency_recovered=recovered, truncated=truncated,
        reward=np.where(active, reward, 0.0), discount=tb.gamma ** state.t.astype(float),
    )
    return new, outcome


def step(params: InvoiceParams, state: WorldState, actions: np.ndarray,
         rng: np.random.Generator) -> tuple[WorldState, StepOutcome]:
    """Advance every invoice by one day under ``actions`` (n,) drawn from ``rng``."""
    return advance(params, state, actions, rng.random((3, len(state))))


# ----------------------------------------------------------------------------- facts, logging


def facts_from_state(params: InvoiceParams, state: WorldState,
                     dates: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The legal facts (``legal_rules.facts.FACTS``) of each invoice on its decision day.

    ``dates`` (datetime64[D] or ``engine.calendar`` day numbers, shape (n,)) defaults to due
    date + ``state.t``.
    Facts derived from the Markov state are exact when reminders of any channel are at least
    7 days apart (the exact DP's own restriction, see ``policies.common.dp``) and fewer than K:
    ``days_since_last_contact`` is K for "K or more" and ``NEVER_DAYS`` when none was sent;
    ``contacts_last_7_days``/``calls_last_7_days`` count only the last reminder (0 or 1);
    ``reminders_sent`` is capped at N; ``written_reminders_sent`` is ``w + final_notice``
    (exact up to the cap N of ``w``). When the last reminder was written (email, letter, final
    notice) it is the last written one, ``k`` days ago; after a call the last written
    reminder (if any) came at least 7 days before that call: ``k + 7``, a lower bound that
    passes every "at least 7 days" rule exactly as the true value does.
    ``days_since_final_notice`` is ``k`` when the last reminder was the final notice and
    ``k + 7`` (the same lower bound) when a later one followed.
    """
    sc = params.scenario
    cal = params.calendar
    if dates is None:
        day = params.due_day + state.t
    else:
        dates = np.asarray(dates)
        if np.issubdtype(dates.dtype, np.datetime64):
            dates = to_days(dates)
        day = dates.astype(np.int64)
    d = cal.index(day)
    sent = state.n > 0
    recent = sent & (state.k < 7)
    written_last = sent & (state.c != PHONE)
    written = state.w + state.final_notice.astype(np.int64)
    codes = np.array([j.code for j in sc.jurisdictions])
    currencies = np.array([j.currency for j in sc.jurisdictions])
    days_overdue = (day - params.due_day).astype(np.int64)
    return {
        "days_overdue": days_overdue,
        "days_since_last_contact": np.where(sent, state.k, NEVER_DAYS).astype(np.int64),
        "contacts_last_7_days": recent.astype(np.int64),
        "calls_last_7_days": (recent & (state.c == PHONE)).astype(np.int64),
        "reminders_sent": state.n.astype(np.int64),
        "written_reminders_sent": written.astype(np.int64),
        "days_since_last_written_reminder": np.where(
            written_last, state.k, np.where(written > 0, state.k + 7, NEVER_DAYS)
        ).astype(np.int64),
        "final_notice_sent": state.final_notice.copy(),
        "days_since_final_notice": np.where(
            ~state.final_notice, NEVER_DAYS,
            np.where(state.c == FINAL_NOTICE, state.k, state.k + 7)).astype(np.int64),
        "disputed": state.disputed.copy(),
        "amount": params.amount.astype(float),
        "currency": currencies[params.jurisdiction],
        "customer_type": np.array(CUSTOMER_TYPES)[params.customer_type],
        "jurisdiction": codes[params.jurisdiction],
        "region": np.full(len(day), "", dtype="<U2"),
        "industry": np.array(params.industries)[params.industry],
        "is_weekend": cal.is_weekend[d],
        "is_bank_holiday": cal.is_holiday[params.jurisdiction, d],
        # Limitation periods are 2+ years; an episode lasts at most the horizon after due.
        "limitation_passed": days_overdue > 2 * 365,
        "opted_out_email": params.opted_out_email.copy(),
        "opted_out_phone": params.opted_out_phone.copy(),
        "opted_out_letter": params.opted_out_letter.copy(),
        "agency_consent": params.agency_consent.copy(),
        "reminder_fee_agreed": params.reminder_fee_agreed.copy(),
        "milestone_reached": days_overdue >= params.milestone_offset,
        # the simulated debtor neither promises nor talks on the phone: neutral values;
        "days_since_conversation": np.full(len(day), NEVER_DAYS, dtype=np.int64),
        # the simulated collector phones at a convenient hour of the debtor's day
        "local_hour": np.full(len(day), CONVENIENT_LOCAL_HOUR),
        # default from the day after the due date: the simulation does not model BGB § 286's
        # reminder/notice timing; the fact only decides whether an interest cap applies,
        # which never changes the mask
        "days_in_default": np.maximum(days_overdue, 0).astype(np.int64),
        "promise_to_pay_pending": np.zeros(len(day), dtype=bool),
    }


def logging_policy_probs(params: InvoiceParams, state: WorldState) -> np.ndarray:
    """Per-day probabilities (n, 6) of the logging policy (the randomised fixed schedule).

    The ``n``-th scheduled action (channel, day) is due when ``t >= day - jitter``; it is
    sent today with probability ``1 / (day + jitter - t + 1)`` (1 from ``day + jitter`` on),
    so the send day is uniform over the window when nothing blocks it. Nothing is sent on a
    weekend or bank holiday, on a disputed invoice, within ``min_gap_days`` of the last
    reminder, or to the agency without ``agency_consent``. A reminder uses another reminder
    channel with probability ``other_channel_probability`` (uniform over the other three).
    Rows sum to 1; finished rows are all WAIT.
    """
    lp = params.scenario.logging_policy
    n_rows = len(state)
    probs = np.zeros((n_rows, N_ACTIONS))
    probs[:, 0] = 1.0
    sched_channel = np.array([ch for ch, _ in lp.schedule] + [0])
    sched_day = np.array([day for _, day in lp.schedule] + [10**6])
    j = np.minimum(state.n, len(lp.schedule))
    channel, day = sched_channel[j], sched_day[j]
    business = params.calendar.is_business[params.jurisdiction, params.due_index + state.t]
    gap_ok = (state.n == 0) | (state.k >= lp.min_gap_days)
    eligible = (~state.done & ~state.disputed & business & gap_ok & (channel > 0)
                & (state.t >= day - lp.jitter_days)
                & ((channel != AGENCY) | params.agency_consent))
    if lp.explore > 0:
        _add_exploration(params, state, probs, channel, day,
                         ~state.done & ~state.disputed & business & gap_ok & ~eligible)
    rows = np.flatnonzero(eligible)  # usually a small share: compute only there
    channel, day, t = channel[rows], day[rows], state.t[rows]
    p_send = 1.0 / (np.maximum(day + lp.jitter_days - t, 0) + 1)
    eps = np.where(channel != AGENCY, lp.other_channel_probability, 0.0)
    sub = np.zeros((len(rows), N_ACTIONS))
    sub[:, 0] = 1.0 - p_send
    sub[np.arange(len(rows)), channel] += p_send * (1 - eps)
    for other in range(1, FINAL_NOTICE + 1):
        sub[:, other] += np.where((channel != AGENCY) & (channel != other), p_send * eps / 3,
                                  0.0)
    # A channel the debtor stopped is replaced by a letter (by an email if letters stopped).
    letter, email, phone = int(Action.LETTER), int(Action.EMAIL), int(Action.PHONE)
    for col, stopped, to in ((email, params.opted_out_email, letter),
                             (phone, params.opted_out_phone, letter),
                             (letter, params.opted_out_letter, email)):
        hit = stopped[rows]
        sub[hit, to] += sub[hit, col]
        sub[hit, col] = 0.0
    probs[rows] = sub
    if lp.epsilon > 0:
        _mix_uniform(params, state, probs, lp.epsilon,
                     ~state.done & ~state.disputed & business & gap_ok)
    return probs


def _mix_uniform(params: InvoiceParams, state: WorldState, probs: np.ndarray,
                 epsilon: float, free: np.ndarray) -> None:
    """``LoggingPolicyConfig.epsilon``, in place: on ``free`` rows, ``(1 - eps) * p + eps *
    uniform`` over wait and the reminder channels usable that day (not stopped by the
    debtor; final notice only after a first reminder; no agency)."""
    rows = np.flatnonzero(free)
    if not len(rows):
        return
    allowed = np.zeros((len(rows), N_ACTIONS), dtype=bool)
    allowed[:, int(Action.WAIT)] = True
    allowed[:, int(Action.EMAIL)] = ~params.opted_out_email[rows]
    allowed[:, int(Action.LETTER)] = ~params.opted_out_letter[rows]
    allowed[:, int(Action.PHONE)] = ~params.opted_out_phone[rows]
    allowed[:, int(Action.FINAL_NOTICE)] = state.n[rows] > 0
    uniform = allowed / allowed.sum(axis=1, keepdims=True)
    probs[rows] = (1.0 - epsilon) * probs[rows] + epsilon * uniform


def _add_exploration(params: InvoiceParams, state: WorldState, probs: np.ndarray,
                     channel: np.ndarray, day: np.ndarray, free: np.ndarray) -> None:
    """The logging policy's exploration (``LoggingPolicyConfig.explore``), in place.

    On a ``free`` day (business day, no dispute, gap kept, before the window of the next
    scheduled reminder ``(channel, day)``) from day 1 on, a reminder goes out with a daily
    probability: ``explore / (window start - 1)`` before the first reminder, ``explore / 7``
    before a later one; its channel is uniform over email, letter, phone (and final notice
    after the first reminder). Depends only on the Markov state, so the probabilities of a
    logged history can be recomputed exactly.
    """
    lp = params.scenario.logging_policy
    first_window = max(lp.schedule[0][1] - lp.jitter_days - 1, 1)
    rows = np.flatnonzero(free & (state.t >= 1) & (channel > 0) & (channel != AGENCY)
                          & (state.t < day - lp.jitter_days))
    if not len(rows):
        return
    later = state.n[rows] > 0
    p = np.where(later, lp.explore / 7.0, lp.explore / first_window)
    p = np.minimum(p, 0.5)
    probs[rows, 0] = 1.0 - p
    n_ch = np.where(later, 4.0, 3.0)
    for col in (Action.EMAIL, Action.LETTER, Action.PHONE):
        probs[rows, int(col)] = p / n_ch
    probs[rows, int(Action.FINAL_NOTICE)] = np.where(later, p / n_ch, 0.0)
    # A channel the debtor stopped is replaced by a letter (by an email if letters stopped).
    letter, email, phone = int(Action.LETTER), int(Action.EMAIL), int(Action.PHONE)
    for col, stopped, to in ((email, params.opted_out_email, letter),
                             (phone, params.opted_out_phone, letter),
                             (letter, params.opted_out_letter, email)):
        hit = rows[stopped[rows]]
        probs[hit, to] += probs[hit, col]
        probs[hit, col] = 0.0
