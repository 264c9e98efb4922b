"""Per-segment reminder schedules tuned by cross-entropy search in a (learned) environment."""

from policies.tuned.search import TunedSchedulePolicy, TuningConfig, tune_schedules

__all__ = ["TunedSchedulePolicy", "TuningConfig", "tune_schedules"]
