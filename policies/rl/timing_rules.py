"""Per-segment timing rules applied to a policy's masks: what a saved RL policy carries.

A :class:`TimingRules` holds, per segment name, the earliest first reminder and the shortest
gap between reminders (:class:`TimingRule`); :meth:`TimingRules.apply` turns a policy's
masks ``(n, 6)`` into ones where a held row may only WAIT. Serving a policy needs only this
module; the search that finds the rules (``policies.rl.timing``) needs the simulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from engine.contract import Action
from engine.errors import InputError
from simulations.env.layout import LAYOUT, SEGMENT_NAMES


@dataclass(frozen=True)
class TimingRule:
    """One segment's rule, in days: 0 leaves that part of the timing to the policy."""

    first_reminder_day: int = 0  # no reminder while days overdue < this and none sent yet
    min_days_between: int = 0  # no reminder while days since the last one < this

    def __post_init__(self) -> None:
        for name in ("first_reminder_day", "min_days_between"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a whole number of days >= 0, got {value!r}")

    @property
    def is_noop(self) -> bool:
        return self.first_reminder_day == 0 and self.min_days_between == 0


@dataclass(frozen=True)
class TimingRules:
    """Timing rules per segment name (segments not listed are left to the policy)."""

    rules: Mapping[str, TimingRule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.rules) - set(SEGMENT_NAMES))
        if unknown:
            raise ValueError(f"unknown segment(s) {unknown}; expected some of "
                             f"{list(SEGMENT_NAMES)}")

    def _per_code(self, name: str) -> np.ndarray:
        """(n_segments,) value of one rule field by segment code."""
        return np.array([getattr(self.rules.get(s, TimingRule()), name)
                         for s in SEGMENT_NAMES], dtype=np.float64)

    def held(self, observations: np.ndarray) -> np.ndarray:
        """(n,) bool: rows a rule holds back today (only WAIT allowed)."""
        obs = np.asarray(observations)
        seg = LAYOUT.segment_codes(obs)
        sent = LAYOUT.reminders_sent(obs)
        first = self._per_code("first_reminder_day")[seg]
        gap = self._per_code("min_days_between")[seg]
        too_early = (sent == 0) & (obs[:, LAYOUT["days_overdue"]] < first)
        too_soon = (sent > 0) & (obs[:, LAYOUT["days_since_contact"]] < gap)
        return too_early | too_soon

    def with_min_gap(self, days: int) -> TimingRules:
        """These rules with every segment's shortest gap between reminders raised to at least
        ``days`` (``days`` <= 0: unchanged)."""
        if days <= 0:
            return self
        own = {s: self.rules.get(s, TimingRule()) for s in SEGMENT_NAMES}
        return TimingRules({s: replace(r, min_days_between=max(days, r.min_days_between))
                            for s, r in own.items()})

    def apply(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """A copy of ``masks`` (n, 6) with WAIT the only choice on held rows."""
        out = np.array(masks, dtype=bool, copy=True)
        held = self.held(observations)
        out[held] = False
        out[held, int(Action.WAIT)] = True
        return out

    def describe(self) -> str:
        """One line a person reads, e.g. ``"corporate: first reminder from day 6, >= 10 days
        apart"`` (``"none"`` without rules)."""
        parts = []
        for seg, rule in sorted(self.rules.items()):
            said = ([f"first reminder from day {rule.first_reminder_day}"]
                    if rule.first_reminder_day else [])
            said += [f">= {rule.min_days_between} days apart"] if rule.min_days_between else []
            if said:
                parts.append(f"{seg}: {', '.join(said)}")
        return "; ".join(parts) or "none"

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {seg: asdict(rule) for seg, rule in sorted(self.rules.items())
                if not rule.is_noop}

    @classmethod
    def from_dict(cls, data: Any, where: str = "timing rules") -> TimingRules:
        """Parse ``{segment: {"first_reminder_day": int, "min_days_between": int}}``."""
        if not isinstance(data, dict):
            raise InputError(f"{where}: expected a mapping segment -> rule, got "
                             f"{type(data).__name__}")
        try:
            return cls({str(seg): TimingRule(**rule) for seg, rule in data.items()})
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: {exc}") from None
