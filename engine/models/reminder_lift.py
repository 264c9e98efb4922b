"""Reminder lift: a shrunk, factorised correction of the hazard trees' reminder effect.

Why the hazard model needs it: how much a reminder lifts the payment hazard depends on the
customer group, its channel, the day after due it was sent, how many reminders came before
and how long ago it was sent. Boosted trees assemble that from splits on those inputs, and
where the history is thin they get it wrong in two ways that matter for *when* to remind
(measured on the default company's history): they flatten the send-day effect of a rare
combination (corporates' early calls: raw 7-day pay rate 13 % for calls on day 0-4 against
38 % on day 5-10, the trees 4.2x vs 5.8x the unreminded hazard), and they cannot carry the
reminder-number effect learned on common sequences (an email after an early reminder) to
rare ones (a second call): a second call was valued exactly like a first. A learned
environment with those errors values early and repeated calls too highly. (With the lift the
schedule search finds the later first call; PPO trained on it still calls early, and the
RL policy's timing rules, searched in this environment, move it: docs/rl.md.)

The lift is a multiplicative table on the trees' hazard for days within
:data:`WINDOW_DAYS` of a reminder, one per group, a product of four main effects::

    lift = channel[c] * send_day[b] * number[r] * since[s]  (* milestone[m])

and, when the fit is given the invoices' project milestones, a fifth: whether the milestone
was reached on the day the reminder was sent, and if not, whether it is reached by the day
of the row (:data:`MILESTONE_LEVELS`). A craftsman pays when the project is done; a
reminder sent before that has nothing to act on, and one factor per segment cannot tell
these apart (measured on the default company: the learned
lift of a first reminder before the milestone 2.1-6.1x the hazard of waiting, the truth
1.0; benchmarks/results/handover_reminder_lift_default.json).

fitted by iterative proportional fitting (a Poisson log-linear model with the trees'
prediction as offset) of the payments observed on the training rows against the payments
the trees predict there. Each level is shrunk toward 1 by ``smoothing`` pseudo-payments, so a
level the history barely saw keeps the trees' value. Main effects without interactions are
what carries evidence from common to rare combinations: the number effect of a second
reminder is learned from all channels together and applies to a second call too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.features import REMINDER_CHANNELS

WINDOW_DAYS = 21  # days after a reminder in which the lift applies (older: factor 1)
CHANNEL_LEVELS = 5  # last_channel 0..4 (0 = none, unused)
# left-closed bucket edges of the day after due a reminder was sent: finer in the first days
# after due, where timing is decided (the default; a lift saved without its grid has it)
SEND_DAY_EDGES = np.array([0, 2, 4, 6, 8, 10, 14, 21, 30, 45, 60, 90])
# an option (HazardModel(reminder_lift_send_day_edges=...)): 2 days wide in the first two
# weeks, 3 days to day 45 (the complaint model's grid there), so that a customer group's best
# days to be reminded, a window of 4 days or more anywhere from day 3 to 40 in the scenario
# family (simulations.world.family), is not averaged with the days around it
FINE_SEND_DAY_EDGES = np.array([0, 2, 4, 6, 8, 10, 12, 14, 17, 20, 23, 26, 29, 32, 35, 38, 41,
                                45, 60, 90])
NUMBER_EDGES = np.array([1, 2, 3, 4])  # 1st, 2nd, 3rd, 4th or later reminder
SINCE_EDGES = np.array([0, 1, 2, 3, 5, 8, 14])  # days since the reminder, < WINDOW_DAYS
# milestone level of a day after a reminder: the invoice has no milestone (or it is
# unknown); the reminder was sent before it and the day is still before it; sent before it
# and the day is on or after it; sent on or after it
MILESTONE_NONE, MILESTONE_BEFORE, MILESTONE_SINCE_REACHED, MILESTONE_REACHED = 0, 1, 2, 3
MILESTONE_LEVELS = 4
_ITERATIONS = 25
_FACTOR_BOUNDS = (0.05, 20.0)


def _bucket(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 1)


def milestone_level(send_day: np.ndarray, day: np.ndarray, due_to_milestone: np.ndarray
                    ) -> np.ndarray:
    """(m,) milestone level (``MILESTONE_*``) of day ``day`` after due, the last reminder
    sent ``send_day`` days after due, on an invoice whose milestone is ``due_to_milestone``
    days after due (NaN = none)."""
    ms = np.asarray(due_to_milestone, dtype=np.float64)
    sent_after = np.asarray(send_day, dtype=np.float64) >= ms
    reached = np.asarray(day, dtype=np.float64) >= ms
    level = np.select([np.isnan(ms), sent_after, reached],
                      [MILESTONE_NONE, MILESTONE_REACHED, MILESTONE_SINCE_REACHED],
                      MILESTONE_BEFORE)
    return level.astype(np.int64)


def reminders_sent(dynamic: Mapping[str, np.ndarray]) -> np.ndarray:
    """(m,) reminders sent so far, all channels, of the dynamic inputs ``n_<channel>``."""
    return np.sum([np.asarray(dynamic[f"n_{c}"], dtype=np.float64)
                   for c in REMINDER_CHANNELS], axis=0)


def _levels(dynamic: Mapping[str, np.ndarray], send_day_edges: np.ndarray,
            milestone: np.ndarray | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(in_window (m,) bool, [channel, send-day, number, since(, milestone)] level codes
    (m,) each)``, send days bucketed by ``send_day_edges``; the milestone level only when
    ``milestone`` (days from due to each row's milestone, NaN = none) is given."""
    since = np.asarray(dynamic["days_since_last_reminder"], dtype=np.float64)
    channel = np.asarray(dynamic["last_channel"], dtype=np.int64)
    number = reminders_sent(dynamic)
    window = (since < WINDOW_DAYS) & (channel > 0) & (number > 0)
    codes = [np.clip(channel, 0, CHANNEL_LEVELS - 1),
             _bucket(np.asarray(dynamic["last_reminder_overdue"]), send_day_edges),
             _bucket(number, NUMBER_EDGES), _bucket(since, SINCE_EDGES)]
    if milestone is not None:
        codes.append(milestone_level(dynamic["last_reminder_overdue"],
                                     dynamic["days_overdue"], milestone))
    return window, codes


@dataclass
class ReminderLift:
    """Per-group reminder factors (see module doc).

    ``factors``: four arrays, (n_groups, levels) each, for channel, send-day bucket,
    reminder-number bucket and days-since bucket, and a fifth, (n_groups,
    :data:`MILESTONE_LEVELS`), when fitted with milestones; 1.0 = the trees' own value.
    ``group`` 0 = unknown, 1 + the group feature's category code (as in
    :class:`engine.models.calendar_lift.CalendarLift`). ``send_day_edges`` the send-day
    buckets' left edges (days after due) the factors were fitted on.
    """

    group_feature: str | None
    factors: list[np.ndarray]
    send_day_edges: np.ndarray = field(
        default_factory=lambda: SEND_DAY_EDGES.astype(np.float64))

    @classmethod
    def fit(cls, group: np.ndarray, dynamic: Mapping[str, np.ndarray], event: np.ndarray,
            weight: np.ndarray, predicted: np.ndarray, n_groups: int, smoothing: float,
            group_feature: str | None, milestone: np.ndarray | None = None,
            send_day_edges: np.ndarray | None = None,
            number_non_increasing: bool = False) -> ReminderLift:
        """From training rows (m,): ``group`` codes < ``n_groups``, the dynamic inputs,
        ``event`` 0/1 paid that day, ``weight`` row weights and ``predicted`` the trees'
        hazard; ``smoothing`` pseudo-payments per level; ``milestone`` (m,) days from due to
        the row's project milestone (NaN = none) adds the milestone factor;
        ``send_day_edges`` the send-day buckets (default :data:`SEND_DAY_EDGES`);
        ``number_non_increasing``: each group's reminder-number factor is made
        non-increasing (a later reminder never lifts more than an earlier one of the same
        channel, send day and age), a level above an earlier one lowered to it."""
        edges = SEND_DAY_EDGES if send_day_edges is None else np.asarray(send_day_edges)
        window, codes = _levels(dynamic, edges, milestone)
        sizes = (CHANNEL_LEVELS, len(edges), len(NUMBER_EDGES), len(SINCE_EDGES),
                 *((MILESTONE_LEVELS,) if milestone is not None else ()))
        factors = [np.ones((n_groups, s)) for s in sizes]
        paid = np.asarray(event, dtype=np.float64) * weight
        expected = np.asarray(predicted, dtype=np.float64) * weight
        for g in range(n_groups):
            rows = window & (group == g)
            if paid[rows].sum() == 0:
                continue
            level = [c[rows] for c in codes]
            obs = [np.bincount(lv, weights=paid[rows], minlength=s) for lv, s in
                   zip(level, sizes, strict=True)]
            for _ in range(_ITERATIONS):
                for j, size in enumerate(sizes):
                    rest = expected[rows] * np.prod(
                        [factors[i][g, level[i]] for i in range(len(sizes)) if i != j], axis=0)
                    exp = np.bincount(level[j], weights=rest, minlength=size)
                    factors[j][g] = np.clip((obs[j] + smoothing) / (exp + smoothing),
                                            *_FACTOR_BOUNDS)
                    if j == 2 and number_non_increasing:
                        factors[j][g] = np.minimum.accumulate(factors[j][g])
        return cls(group_feature, factors, np.array(edges, dtype=np.float64))

    @property
    def uses_milestone(self) -> bool:
        """Whether the lift has the milestone factor (and :meth:`factor` needs milestones)."""
        return len(self.factors) > 4

    def factor(self, group: np.ndarray, dynamic: Mapping[str, np.ndarray],
               milestone: np.ndarray | None = None) -> np.ndarray:
        """(m,) multiplier of the trees' hazard on the days of ``dynamic`` (1 outside the
        window of a reminder; unseen group codes count as unknown, group 0); ``milestone``
        (m,) days from due to each row's milestone (NaN = none), needed when
        :attr:`uses_milestone`."""
        if self.uses_milestone and milestone is None:
            raise ValueError("this reminder lift has a milestone factor: pass each row's "
                             "days from due to its milestone (NaN = none)")
        window, codes = _levels(dynamic, self.send_day_edges,
                                milestone if self.uses_milestone else None)
        g = np.where((group >= 0) & (group < len(self.factors[0])), group, 0)
        out = np.prod([f[g, c] for f, c in zip(self.factors, codes, strict=True)], axis=0)
        return np.where(window, out, 1.0)

    def to_dict(self) -> dict[str, Any]:
        out = {"group_feature": self.group_feature,
               "factors": [f.tolist() for f in self.factors]}
        if not np.array_equal(self.send_day_edges, SEND_DAY_EDGES):  # else: the same hash
            out["send_day_edges"] = self.send_day_edges.tolist()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReminderLift:
        """Back from :meth:`to_dict` (a lift saved without its grid has the default one);
        a grid that does not match the send-day factors fails."""
        factors = [np.asarray(f, dtype=np.float64) for f in d["factors"]]
        edges = np.asarray(d.get("send_day_edges", SEND_DAY_EDGES), dtype=np.float64)
        if factors[1].shape[1] != len(edges):
            raise ValueError(f"reminder lift: {factors[1].shape[1]} send-day factors for "
                             f"{len(edges)} send-day buckets")
        return cls(d["group_feature"], factors, edges)
