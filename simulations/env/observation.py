"""The one builder of the policy's observation, for training and for serving.

The simulator (:class:`~simulations.env.core.CollectionsSimulator`, training and
evaluation) and the daily recommendation (``dunning.ops.recommend``, production) both build
their observations here, so a policy sees in production exactly what it was trained on.
Columns follow :data:`~simulations.env.layout.LAYOUT`.

The observation has two parts:

- :func:`static_observation`: what does not change while an invoice is open (amount,
  segment, jurisdiction, customer type, payment-model probabilities), computed once per
  invoice by the simulator;
- :func:`add_dynamic_observation`: the day's part (days overdue, reminders, calendar,
  dispute, complaint, milestone, final notice), written into a copy of the static part.
"""

from __future__ import annotations

import numpy as np

from engine.calendar import CalendarDay
from simulations.env.layout import CONTACT_CAP, LAYOUT

_SEG0 = LAYOUT.slice("segment").start
_JUR0 = LAYOUT.slice("jurisdiction").start


def static_observation(amount: np.ndarray, segment: np.ndarray, jurisdiction: np.ndarray,
                       is_b2c: np.ndarray, payment_probs: np.ndarray) -> np.ndarray:
    """``(n, LAYOUT.dim)`` float32 with the static columns filled, the rest 0.

    Args:
        amount: (n,) open amount in invoice currency (the column is ``log10(1 + amount)``).
        segment: (n,) int code into ``layout.SEGMENT_NAMES``.
        jurisdiction: (n,) int code into ``layout.JURISDICTIONS`` (last = other).
        is_b2c: (n,) bool.
        payment_probs: (n, 3) p_on_time, p_late, p_very_late; a NaN row (no payment model)
            becomes 1/3 each, an uninformative prior the policy can read.
    """
    n = len(amount)
    obs = np.zeros((n, LAYOUT.dim), dtype=np.float32)
    rows = np.arange(n)
    obs[:, LAYOUT["log_amount"]] = np.log10(1.0 + np.asarray(amount, dtype=np.float64))
    obs[rows, _SEG0 + np.asarray(segment, dtype=np.int64)] = 1.0
    obs[rows, _JUR0 + np.asarray(jurisdiction, dtype=np.int64)] = 1.0
    obs[:, LAYOUT["is_b2c"]] = is_b2c
    probs = np.asarray(payment_probs, dtype=np.float64)[:, :3]
    obs[:, LAYOUT.slice("payment_probs")] = np.where(np.isnan(probs), 1.0 / 3, probs)
    return obs


def add_dynamic_observation(obs: np.ndarray, *, days_overdue: np.ndarray,
                            reminders: np.ndarray, days_since_contact: np.ndarray,
                            calendar: CalendarDay, disputed: np.ndarray,
                            complained: np.ndarray, days_to_milestone: np.ndarray,
                            final_notice_sent: np.ndarray) -> np.ndarray:
    """Write the day's columns into ``obs`` (n, LAYOUT.dim) in place and return it.

    Args (every array (n,) unless noted):
        days_overdue: days since the due date (0 on the due date).
        reminders: (n, 4) reminders sent: email, letter, phone, final notice.
        days_since_contact: days since the last reminder (``NEVER_DAYS`` or more: none);
            capped at ``CONTACT_CAP``.
        calendar: the calendar of the row's day in the row's jurisdiction.
        disputed: an open dispute today.
        complained: the customer complained about a reminder of this invoice.
        days_to_milestone: days until the project milestone, negative once passed, 0 (or
            NaN) without one.
        final_notice_sent: a final notice was sent.
    """
    obs[:, LAYOUT["days_overdue"]] = days_overdue
    obs[:, LAYOUT.slice("reminders")] = reminders
    obs[:, LAYOUT["days_since_contact"]] = np.minimum(days_since_contact, CONTACT_CAP)
    obs[:, LAYOUT["weekday"]] = calendar.weekday
    obs[:, LAYOUT["is_weekend"]] = calendar.is_weekend
    obs[:, LAYOUT["is_holiday"]] = calendar.is_holiday
    obs[:, LAYOUT["days_to_month_end"]] = calendar.days_to_month_end
    obs[:, LAYOUT["days_to_quarter_end"]] = calendar.days_to_quarter_end
    obs[:, LAYOUT["disputed"]] = disputed
    obs[:, LAYOUT["complained"]] = complained
    to_milestone = np.nan_to_num(np.asarray(days_to_milestone, dtype=np.float64), nan=0.0)
    obs[:, LAYOUT["days_to_milestone"]] = to_milestone
    obs[:, LAYOUT["milestone_pending"]] = to_milestone > 0
    obs[:, LAYOUT["final_notice_sent"]] = final_notice_sent
    return obs
