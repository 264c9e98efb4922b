"""Baseline scheduling policies: never remind, and a fixed reminder schedule."""

from policies.baselines.schedule import (
    DEFAULT_SCHEDULE,
    FixedSchedulePolicy,
    NeverPolicy,
    Schedule,
    ScheduleStep,
    SegmentSchedulePolicy,
)

__all__ = ["DEFAULT_SCHEDULE", "FixedSchedulePolicy", "NeverPolicy", "Schedule", "ScheduleStep",
           "SegmentSchedulePolicy"]
