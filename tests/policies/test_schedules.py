"""Never / fixed / per-segment schedules on hand-made observations and masks."""

from __future__ import annotations

import numpy as np
import pytest

from engine.contract import Action
from engine.errors import InputError
from policies.baselines import (
    DEFAULT_SCHEDULE,
    FixedSchedulePolicy,
    NeverPolicy,
    ScheduleStep,
    SegmentSchedulePolicy,
)
from policies.baselines.schedule import parse_schedule
from simulations.env.layout import LAYOUT, SEGMENT_NAMES


def _obs(days, reminders_sent, segment="corporate"):
    obs = np.zeros((len(days), LAYOUT.dim), dtype=np.float32)
    obs[:, LAYOUT["days_overdue"]] = days
    obs[:, LAYOUT.slice("reminders").start] = reminders_sent  # counted as emails
    obs[:, LAYOUT.slice("segment").start + SEGMENT_NAMES.index(segment)] = 1
    return obs


def test_never_always_waits():
    obs = _obs([0, 14, 30], [0, 0, 1])
    assert NeverPolicy().act(obs, np.ones((3, 6), bool)).tolist() == [0, 0, 0]


def test_fixed_sends_each_step_on_its_day():
    pol = FixedSchedulePolicy()
    obs = _obs([13, 14, 20, 30, 30, 45, 60], [0, 0, 1, 1, 2, 2, 3])
    acts = pol.act(obs, np.ones((7, 6), bool))
    assert acts.tolist() == [Action.WAIT, Action.EMAIL, Action.WAIT, Action.LETTER,
                             Action.WAIT, Action.FINAL_NOTICE, Action.WAIT]


def test_masked_step_is_sent_on_the_next_allowed_day():
    pol = FixedSchedulePolicy()
    weekend = np.ones((1, 6), bool)
    weekend[0, 1:] = False
    assert pol.act(_obs([14], [0]), weekend).tolist() == [Action.WAIT]
    # two days later, allowed again, the email still has not gone out: send it now
    assert pol.act(_obs([16], [0]), np.ones((1, 6), bool)).tolist() == [Action.EMAIL]


def test_segment_schedules_differ_by_segment():
    pol = SegmentSchedulePolicy({"corporate": (ScheduleStep(5, "phone"),)})
    masks = np.ones((2, 6), bool)
    corp = pol.act(_obs([5], [0], "corporate"), masks[:1])
    saas = pol.act(_obs([5], [0], "saas"), masks[:1])
    assert corp.tolist() == [Action.PHONE] and saas.tolist() == [Action.WAIT]
    assert pol.schedules["saas"] == DEFAULT_SCHEDULE


def test_schedule_parsing_and_errors():
    assert parse_schedule("7,21") == (ScheduleStep(7, "email"), ScheduleStep(21, "letter"))
    assert parse_schedule("10:phone") == (ScheduleStep(10, "phone"),)
    with pytest.raises(InputError, match="channel 'fax'"):
        parse_schedule("10:fax")
    with pytest.raises(InputError, match="expected DAY"):
        parse_schedule("soon:email")
    with pytest.raises(InputError, match="unknown segment"):
        SegmentSchedulePolicy({"retail": DEFAULT_SCHEDULE})
