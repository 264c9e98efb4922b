"""Reminder schedules: "send channel c on day d after due", per segment or for everyone.

A schedule is stateless given the observation: the number of reminders sent so far says
which step is next, and the step is sent on its day or, if the legal mask forbids it that
day (weekend, bank holiday, dispute, minimum gap), on the next day it is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.contract import Action
from engine.errors import InputError
from simulations.env.layout import LAYOUT, SEGMENT_NAMES
from simulations.policy import Policy


@dataclass(frozen=True)
class ScheduleStep:
    """Send ``channel`` (an :class:`Action` name, e.g. ``"email"``) on ``day`` after due."""

    day: int
    channel: str

    def __post_init__(self) -> None:
        try:
            action = Action.from_channel(self.channel)
        except KeyError:
            raise InputError(f"schedule step {self.day}: channel {self.channel!r} is not one of "
                             "email, letter, phone, final_notice, agency") from None
        if action is Action.WAIT:
            raise InputError(f"schedule step {self.day}: 'wait' is not a reminder channel")
        if self.day < 0:
            raise InputError(f"schedule step {self.channel}: day {self.day} must be >= 0")

    @property
    def action(self) -> Action:
        return Action.from_channel(self.channel)


Schedule = tuple[ScheduleStep, ...]

DEFAULT_SCHEDULE: Schedule = (
    ScheduleStep(14, "email"), ScheduleStep(30, "letter"), ScheduleStep(45, "final_notice"),
)


def parse_schedule(text: str) -> Schedule:
    """``"14:email,30:letter,45:final_notice"`` (or days only, ``"14,30,45"``, which uses
    email, letter, final notice, ...) -> a schedule."""
    default_channels = ("email", "letter", "final_notice", "phone")
    steps = []
    for i, part in enumerate(p.strip() for p in text.split(",") if p.strip()):
        day_s, _, channel = part.partition(":")
        try:
            day = int(day_s)
        except ValueError:
            raise InputError(f"schedule {text!r}: step {i + 1} {part!r}: expected DAY or "
                             "DAY:CHANNEL, e.g. 14:email") from None
        steps.append(ScheduleStep(day, channel or default_channels[min(i, 3)]))
    return tuple(sorted(steps, key=lambda s: s.day))


class NeverPolicy(Policy):
    """Never remind (always WAIT)."""

    name = "never"

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return np.zeros(len(observations), dtype=np.int64)


class SegmentSchedulePolicy(Policy):
    """A reminder schedule per segment (``"unknown"`` and missing segments use ``default``).

    Args:
        schedules: segment name -> schedule (steps sorted by day).
        default: schedule of segments not in ``schedules``.
    """

    name = "segment_schedule"

    def __init__(self, schedules: Mapping[str, Sequence[ScheduleStep]],
                 default: Sequence[ScheduleStep] = DEFAULT_SCHEDULE) -> None:
        unknown = set(schedules) - set(SEGMENT_NAMES)
        if unknown:
            raise InputError(f"schedule for unknown segment {sorted(unknown)[0]!r}; expected "
                             f"one of {', '.join(SEGMENT_NAMES)}")
        self.schedules: dict[str, Schedule] = {
            s: tuple(sorted(schedules.get(s, default), key=lambda st: st.day))
            for s in SEGMENT_NAMES
        }
        k = max(1, max(len(v) for v in self.schedules.values()))
        # (segments, steps) arrays; a padded step never fires (day = inf).
        self._days = np.full((len(SEGMENT_NAMES), k), np.iinfo(np.int32).max, dtype=np.int64)
        self._actions = np.zeros((len(SEGMENT_NAMES), k), dtype=np.int64)
        for i, s in enumerate(SEGMENT_NAMES):
            for j, step in enumerate(self.schedules[s]):
                self._days[i, j] = step.day
                self._actions[i, j] = int(step.action)

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        n = len(observations)
        seg = LAYOUT.segment_codes(observations)
        sent = LAYOUT.reminders_sent(observations).astype(np.int64)
        step = np.minimum(sent, self._days.shape[1] - 1)
        due_day = np.where(sent < self._days.shape[1], self._days[seg, step],
                           np.iinfo(np.int32).max)
        action = self._actions[seg, step]
        day = observations[:, LAYOUT["days_overdue"]]
        send = (day >= due_day) & masks[np.arange(n), action]
        return np.where(send, action, Action.WAIT).astype(np.int64)

    def to_dict(self) -> dict[str, list[dict[str, object]]]:
        return {s: [{"day": st.day, "channel": st.channel} for st in sched]
                for s, sched in self.schedules.items()}


class FixedSchedulePolicy(SegmentSchedulePolicy):
    """The classic schedule for everyone: by default email day 14, letter day 30, final
    notice day 45 after due; a step vetoed on its day is sent on the next allowed day."""

    name = "fixed"

    def __init__(self, schedule: Sequence[ScheduleStep] = DEFAULT_SCHEDULE) -> None:
        super().__init__({}, default=schedule)
        self.schedule: Schedule = tuple(schedule)
