"""The batched collections simulator every environment front-end shares.

:class:`CollectionsSimulator` holds ``n`` invoices as arrays and advances all of them one
day per :meth:`~CollectionsSimulator.step`: it masks the chosen actions with the legal
rules, asks the :class:`~simulations.env.source.TransitionSource` for the day's outcome,
computes the reward and keeps the company's bookkeeping (reminders, contacts, disputes).
``CollectionsEnv`` (one invoice, gymnasium), ``BatchCollectionsVecEnv`` (SB3 VecEnv with
auto-reset) and the evaluation harness (a fixed invoice set, common random numbers) are
thin layers over it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.calendar import BusinessCalendar, CalendarDay, from_days
from engine.contract import N_ACTIONS, Action, is_reminder, is_written_reminder
from simulations.env.arrays import put_rows, take_rows, where_rows
from simulations.env.layout import LAYOUT
from simulations.env.masks import ActionMask, CategoricalFacts, legal_facts
from simulations.env.observation import add_dynamic_observation, static_observation
from simulations.env.source import TransitionSource
from simulations.env.types import NO_MILESTONE, EnvState, InvoiceBatch, Outcome


@dataclass
class StepResult:
    """One day of ``n`` invoices; every array has shape ``(n,)``."""

    reward: np.ndarray  # float64, money (invoice currency) discounted to the due date
    terminated: np.ndarray  # bool: paid, handed to the agency, or written off at the horizon
    truncated: np.ndarray  # bool: always False (the horizon is a write-off, a true end)
    day: np.ndarray  # int32, the day (days overdue) the action was taken on
    requested: np.ndarray  # int64, action the policy asked for
    executed: np.ndarray  # int64, action taken (WAIT where the mask refused the request)
    refused: np.ndarray  # bool, the legal mask refused the requested action
    outcome: Outcome
    written_off: np.ndarray  # bool, unpaid at the horizon
    active: np.ndarray  # bool, the row was still open before this step


class CollectionsSimulator:
    """``n`` open invoices stepped together, one day per step.

    Args:
        source: where invoices and transitions come from.
        mask: legal mask ``mask(facts, as_of) -> (allowed, vetoed_by)``
            (:class:`~simulations.env.masks.LegalMask` for the packaged rules).
        horizon: days after due at which an unpaid invoice is written off
            (default ``source.horizon``).
    """

    def __init__(self, source: TransitionSource, mask: ActionMask,
                 horizon: int | None = None) -> None:
        self.source = source
        self.mask = mask
        self.horizon = int(source.horizon if horizon is None else horizon)
        start, end = source.date_range()
        self.calendar = BusinessCalendar(start, end + dt.timedelta(days=self.horizon + 31))
        self._place = np.zeros(0, dtype=np.int64)  # calendar place code per row
        self.batch: InvoiceBatch | None = None

    # -- loading -------------------------------------------------------------------------
    def load(self, batch: InvoiceBatch) -> None:
        """Start all rows with the invoices of ``batch`` (day 0, nothing sent)."""
        self.batch = batch
        n = len(batch.amount)
        self.hidden = self.source.initial_hidden(batch)
        self.state = EnvState.initial(n, self.source.initially_disputed(batch, self.hidden))
        self.active = np.ones(n, dtype=bool)
        self._static = np.zeros((n, LAYOUT.dim), dtype=np.float32)
        self._strings = CategoricalFacts(n)
        self._place = np.zeros(n, dtype=np.int64)
        self._fill_static(np.arange(n), batch)
        self.refresh()

    def replace_rows(self, rows: np.ndarray, batch: InvoiceBatch, refresh: bool = True) -> None:
        """Restart rows ``rows`` with the invoices of ``batch`` (auto-reset).

        ``refresh=False`` leaves today's facts and masks stale until :meth:`refresh` (when
        the caller refreshes once after a step anyway)."""
        assert self.batch is not None
        put_rows(self.batch, rows, batch)
        hidden = self.source.initial_hidden(batch)
        if hidden is not None:
            put_rows(self.hidden, rows, hidden)
        fresh = EnvState.initial(len(rows), self.source.initially_disputed(batch, hidden))
        put_rows(self.state, rows, fresh)
        self.active[rows] = True
        self._fill_static(rows, batch)
        if refresh:
            self.refresh()

    @property
    def n(self) -> int:
        return 0 if self.batch is None else len(self.batch.amount)

    def _fill_static(self, rows: np.ndarray, batch: InvoiceBatch) -> None:
        self._static[rows] = static_observation(batch.amount, batch.segment,
                                                batch.jurisdiction, batch.is_b2c,
                                                batch.payment_probs)
        self._strings.set_rows(rows, batch)
        self._place[rows] = self.calendar.places(batch.jurisdiction_iso, batch.region)

    # -- observing -----------------------------------------------------------------------
    def refresh(self) -> None:
        """Calendar, facts and masks of every row's current day."""
        assert self.batch is not None
        day = self.batch.due_day + self.state.day
        self.cal: CalendarDay = self.calendar.lookup(self._place, day)
        self.as_of = from_days(day)
        self.facts = legal_facts(self.batch, self.state, self.cal, self._strings)
        self.masks = self.mask(self.facts, self.as_of)

    def observations(self) -> np.ndarray:
        """``(n, LAYOUT.dim)`` float32 observations of every row's current day."""
        assert self.batch is not None
        st = self.state
        has_ms = self.batch.milestone_day > NO_MILESTONE
        return add_dynamic_observation(
            self._static.copy(), days_overdue=st.day, reminders=st.reminders,
            days_since_contact=st.days_since_contact(), calendar=self.cal,
            disputed=st.disputed, complained=st.complained,
            days_to_milestone=np.where(has_ms, self.batch.milestone_day - st.day, 0),
            final_notice_sent=st.final_notice_day >= 0)

    def action_masks(self) -> np.ndarray:
        """``(n, 6)`` bool, ``True`` = allowed today by the legal rules."""
        return self.masks

    def vetoed_by(self, rows: np.ndarray) -> np.ndarray:
        """``(len(rows), 6)`` index into ``mask.rule_ids`` of the rule that vetoed each
        action today (-1: allowed or no rule named)."""
        rows = np.asarray(rows, dtype=np.int64)
        facts = {k: np.asarray(v)[rows] for k, v in self.facts.items()}
        return self.mask.vetoed_by(facts, self.as_of[rows])

    def vetoes(self, row: int) -> dict[str, str]:
        """Which rule vetoed which action for one row today: ``{channel: rule_id}``."""
        forbidden = [a for a in Action if not self.masks[row, a]]
        if not forbidden:
            return {}
        by = self.vetoed_by(np.array([row]))[0]
        return {a.channel: self.mask.rule_ids[by[a]] if by[a] >= 0 else "unknown"
                for a in forbidden}

    # -- stepping ------------------------------------------------------------------------
    def step(self, actions: np.ndarray, rng: np.random.Generator,
             refresh: bool = True) -> StepResult:
        """Take ``actions`` (n,) on every active row and advance one day.

        An action the legal mask refuses is replaced by WAIT and reported in
        ``refused``: a vetoed action is never taken. Inactive (finished) rows are frozen.
        ``refresh=False``: the caller calls :meth:`refresh` itself (after an auto-reset).
        """
        assert self.batch is not None
        n = self.n
        requested = np.asarray(actions, dtype=np.int64).reshape(n)
        if requested.min(initial=0) < 0 or requested.max(initial=0) >= N_ACTIONS:
            raise ValueError(f"actions must be in 0..{N_ACTIONS - 1}")
        active = self.active.copy()
        allowed = self.masks[np.arange(n), requested]
        refused = ~allowed & active
        executed = np.where(allowed & active, requested, Action.WAIT)
        st = self.state
        hidden, out = self.source.step(self.batch, self.hidden, st, executed, rng)

        agency = executed == Action.AGENCY
        paid = out.paid & ~agency & active
        complaint = out.complaint & active
        reward = np.where(active, out.reward, 0.0)

        day = st.day.copy()
        new = self._book(st, executed, complaint, out.disputed)
        written_off = active & ~paid & ~agency & (new.day >= self.horizon)
        terminated = active & (paid | agency | written_off)

        frozen = ~active
        if frozen.any():
            new = where_rows(frozen, st, new)
            if hidden is not None:
                hidden = where_rows(frozen, self.hidden, hidden)
        self.state, self.hidden = new, hidden
        self.active = active & ~terminated
        if refresh:
            self.refresh()
        return StepResult(reward=reward, terminated=terminated,
                          truncated=np.zeros(n, dtype=bool), day=day, requested=requested,
                          executed=executed, refused=refused, outcome=out,
                          written_off=written_off, active=active)

    def _book(self, st: EnvState, executed: np.ndarray, complaint: np.ndarray,
              disputed: np.ndarray) -> EnvState:
        """Bookkeeping after today's action: counts, last contact, 7-day window."""
        n = len(executed)
        is_rem = is_reminder(executed)
        reminders = st.reminders.copy()
        rows = np.flatnonzero(is_rem)
        reminders[rows, executed[rows] - 1] += 1
        recent = st.recent.copy()
        recent[np.arange(n), st.day % 7] = executed
        return EnvState(
            day=st.day + 1,
            reminders=reminders,
            last_contact_day=np.where(is_rem, st.day, st.last_contact_day),
            last_written_day=np.where(is_written_reminder(executed), st.day,
                                      st.last_written_day),
            final_notice_day=np.where(executed == Action.FINAL_NOTICE, st.day,
                                      st.final_notice_day),
            recent=recent,
            disputed=np.asarray(disputed, dtype=bool).copy(),
            complained=st.complained | complaint,
            last_channel=np.where(is_rem, executed, st.last_channel).astype(np.int8),
        )

    def rows(self, idx: np.ndarray) -> InvoiceBatch:
        """The invoices of rows ``idx``."""
        assert self.batch is not None
        return take_rows(self.batch, idx)

    def hidden_state(self) -> Any:
        """The source's per-row state (e.g. the world's state, read by the oracle)."""
        return self.hidden
