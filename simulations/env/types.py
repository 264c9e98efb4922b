"""Plain data of the environment: invoices, bookkeeping state, step outcomes, costs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.contract import N_ACTIONS, Action
from legal_rules.facts import NEVER_DAYS

# Reminder channels counted in the observation, in Action order (EMAIL..FINAL_NOTICE).
REMINDER_ACTIONS: tuple[Action, ...] = (
    Action.EMAIL, Action.LETTER, Action.PHONE, Action.FINAL_NOTICE,
)
NO_MILESTONE = -NEVER_DAYS  # milestone_day of an invoice without a project milestone


@dataclass
class InvoiceBatch:
    """Static facts of ``n`` invoices (every array has shape ``(n,)`` unless noted).

    ``params`` is the transition source's own per-invoice data (e.g. the world's true
    parameters), a struct of arrays with the same rows, or ``None``.
    """

    amount: np.ndarray  # float64, open amount in invoice currency
    segment: np.ndarray  # int16 code into layout.SEGMENT_NAMES (5 = unknown)
    jurisdiction: np.ndarray  # int16 code into layout.JURISDICTIONS (10 = other)
    jurisdiction_iso: np.ndarray  # str, ISO alpha-2 (for the legal facts and the calendar)
    is_b2c: np.ndarray  # bool
    due_day: np.ndarray  # int64, engine.calendar day number (days since 1900-01-01) of due
    invoice_day: np.ndarray  # int64, engine.calendar day number of the invoice date
    milestone_day: np.ndarray  # int32, days after due of the milestone (NO_MILESTONE: none)
    payment_probs: np.ndarray  # float32 (n, 3): p_on_time, p_late, p_very_late
    industry: np.ndarray  # str
    currency: np.ndarray  # str
    region: np.ndarray  # str ('' if none): subdivision, for the legal facts and holidays
    opted_out: np.ndarray  # bool (n, 3): email, phone, letter
    agency_consent: np.ndarray  # bool
    reminder_fee_agreed: np.ndarray  # bool
    params: Any = None
    # (n, k) float: the hazard model's static inputs of each invoice as of its due date (what
    # the company knew then; read by the planner), or None when no hazard model is at hand
    hazard_static: np.ndarray | None = None


@dataclass
class EnvState:
    """What the company knows about each invoice on day ``day`` (shape ``(n,)``)."""

    day: np.ndarray  # int32 days overdue
    reminders: np.ndarray  # int16 (n, 4): email, letter, phone, final notice
    last_contact_day: np.ndarray  # int32 day of the last reminder (-NEVER_DAYS: none)
    last_written_day: np.ndarray  # int32 day of the last email/letter/final notice (same)
    final_notice_day: np.ndarray  # int32 (-NEVER_DAYS: none)
    recent: np.ndarray  # int8 (n, 7): action of day d in slot d % 7 (last 7 days)
    disputed: np.ndarray  # bool, open dispute today
    complained: np.ndarray  # bool, the customer complained about a reminder
    last_channel: np.ndarray  # int8 Action of the last reminder (0 = none)

    @classmethod
    def initial(cls, n: int, disputed: np.ndarray | None = None) -> EnvState:
        return cls(
            day=np.zeros(n, np.int32),
            reminders=np.zeros((n, len(REMINDER_ACTIONS)), np.int16),
            last_contact_day=np.full(n, -NEVER_DAYS, np.int32),
            last_written_day=np.full(n, -NEVER_DAYS, np.int32),
            final_notice_day=np.full(n, -NEVER_DAYS, np.int32),
            recent=np.zeros((n, 7), np.int8),
            disputed=np.zeros(n, bool) if disputed is None else disputed.astype(bool),
            complained=np.zeros(n, bool),
            last_channel=np.zeros(n, np.int8),
        )

    def days_since_contact(self) -> np.ndarray:
        return self._since(self.last_contact_day)

    def days_since_written(self) -> np.ndarray:
        """Days since the last written reminder (NEVER_DAYS: none)."""
        return self._since(self.last_written_day)

    def written_sent(self) -> np.ndarray:
        """Written reminders so far (email, letter, final notice; not calls)."""
        r = self.reminders.astype(np.int64)
        return r.sum(axis=1) - r[:, int(Action.PHONE) - 1]

    def _since(self, last_day: np.ndarray) -> np.ndarray:
        return np.where(last_day < 0, NEVER_DAYS, self.day - last_day)


@dataclass
class Outcome:
    """What happened on one day, per row (shape ``(n,)``).

    ``reward`` is the day's money discounted to the due date: the amount if paid, the
    expected net agency recovery on handover, minus the action's cost and the complaint
    cost. The source computes it so the ground truth's reward is used exactly.
    """

    paid: np.ndarray  # bool, the invoice was paid in full today
    complaint: np.ndarray  # bool, the customer complained about today's reminder
    disputed: np.ndarray  # bool, a dispute is open tomorrow
    reward: np.ndarray  # float64


@dataclass(frozen=True)
class CostModel:
    """Money side of the reward, from the scenario file (all in invoice currency).

    ``annual_discount_rate`` discounts collections to the due date:
    ``value = amount * (1 + r) ** (-day / 365)``. ``agency_fee_share`` is the agency's share
    of what it recovers; the agency recovers with ``agency_recovery_prob`` after
    ``agency_delay_days``.
    """

    annual_discount_rate: float = 0.08
    action_cost: tuple[float, ...] = (0.0, 0.5, 2.0, 8.0, 10.0, 0.0)  # indexed by Action
    complaint_cost: float = 50.0
    agency_fee_share: float = 0.25
    agency_recovery_prob: float = 0.6
    agency_delay_days: int = 60
    extras: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_scenario(cls, scenario: Any) -> CostModel:
        """The costs of a ``simulations.world`` scenario (its ``costs`` section)."""
        c = scenario.costs
        return cls(
            annual_discount_rate=float(c.annual_discount_rate),
            action_cost=tuple(float(x) for x in c.action),
            complaint_cost=float(c.complaint),
            agency_fee_share=float(c.agency_fee_share),
            agency_recovery_prob=float(c.agency_recovery_probability),
            agency_delay_days=int(c.agency_delay_days),
        )

    def discount(self, day: np.ndarray) -> np.ndarray:
        return (1.0 + self.annual_discount_rate) ** (-np.asarray(day, np.float64) / 365.0)

    def action_costs(self, actions: np.ndarray) -> np.ndarray:
        return np.asarray(self.action_cost, np.float64)[actions]

    def reward(self, amount: np.ndarray, day: np.ndarray, actions: np.ndarray,
               paid: np.ndarray, complaint: np.ndarray) -> np.ndarray:
        """A day's reward discounted to the due date (same formula as the ground truth)."""
        share = self.agency_recovery_prob * (1.0 - self.agency_fee_share)
        agency_share = share * (1.0 + self.annual_discount_rate) ** (-self.agency_delay_days
                                                                       / 365.0)
        money = (np.where(paid, amount, 0.0)
                 + np.where(actions == Action.AGENCY, amount * agency_share, 0.0)
                 - self.action_costs(actions) - np.where(complaint, self.complaint_cost, 0.0))
        return money * self.discount(day)


assert len(CostModel().action_cost) == N_ACTIONS
