"""Business-day calendar per jurisdiction and the segments' calendar multipliers.

Days are the engine's day numbers (:mod:`engine.calendar`: days since 1900-01-01). A
:class:`WorldCalendar` covers ``[first_day, first_day + n_days)``; index ``d = day -
first_day``. Bank holidays come from the engine's one holiday source
(:func:`engine.calendar.holiday_days`, national: the world's customers have no region).
"""

from __future__ import annotations

import numpy as np

from engine.calendar import from_day, from_days, holiday_days, weekday
from simulations.world.scenario import Scenario


class WorldCalendar:
    """Weekends, bank holidays and the per-segment payment calendar over a day range.

    Attributes (``J`` jurisdictions in scenario order, ``S`` segments, ``D`` days):

    - ``is_weekend``: (D,) bool
    - ``is_holiday``: (J, D) bool, bank holiday of the jurisdiction (weekends excluded)
    - ``is_business``: (J, D) bool
    - ``pay_multiplier``: (S, J, D) float64. 0 on a non-business day; on a business day the
      segment's calendar factor (month-end / mid-month / quarter-end peak, times its weekday
      factor) summed over the
      day itself and the non-business days right before it: a payment that would have
      landed on a weekend or holiday slips to the next business day.
    """

    def __init__(self, scenario: Scenario, first_day: int, n_days: int) -> None:
        self.first_day = int(first_day)
        self.n_days = int(n_days)
        days = np.arange(self.first_day, self.first_day + self.n_days)
        dates = from_days(days)
        wday = weekday(days)  # Monday = 0
        self.is_weekend = wday >= 5
        first_year, last_year = from_day(days[0]).year, from_day(days[-1]).year
        n_jur = len(scenario.jurisdictions)
        self.is_holiday = np.zeros((n_jur, self.n_days), dtype=bool)
        for j, jur in enumerate(scenario.jurisdictions):
            hol = holiday_days(jur.code, "", first_year, last_year)
            if hol is None:
                raise ValueError(f"jurisdiction {jur.code!r}: no bank-holiday calendar known")
            idx = hol - self.first_day
            self.is_holiday[j, idx[(idx >= 0) & (idx < self.n_days)]] = True
        self.is_holiday &= ~self.is_weekend
        self.is_business = ~self.is_weekend & ~self.is_holiday

        month = dates.astype("datetime64[M]")
        next_month = (month + 1).astype("datetime64[D]")
        days_to_month_end = (next_month - dates).astype(np.int64)  # 1 on the last day
        days_from_month_start = (dates - month.astype("datetime64[D]")).astype(np.int64)
        month_no = month.astype(np.int64) % 12  # 0 = January
        quarter_end_month = month_no % 3 == 2
        quarter_start_month = month_no % 3 == 0
        # Start-ups: cash arrives at month end (last 3 days and first 2 days of a month).
        month_peak = (days_to_month_end <= 3) | (days_from_month_start < 2)
        mid_month_peak = (days_from_month_start >= 12) & (days_from_month_start < 17)
        # SaaS: pays in the days after the quarter end (last 2 days, first 10 of the next).
        quarter_peak = ((quarter_end_month & (days_to_month_end <= 2))
                        | (quarter_start_month & (days_from_month_start < 10)))

        raw = np.ones((len(scenario.segments), self.n_days))
        for s, seg in enumerate(scenario.segments):
            if seg.calendar == "month_end":
                raw[s] = np.where(month_peak, seg.calendar_peak, seg.calendar_off_peak)
            elif seg.calendar == "mid_month":
                raw[s] = np.where(mid_month_peak, seg.calendar_peak, seg.calendar_off_peak)
            elif seg.calendar == "quarter_end":
                raw[s] = np.where(quarter_peak, seg.calendar_peak, seg.calendar_off_peak)
        for s, seg in enumerate(scenario.segments):
            factors = np.array(seg.weekday_factors + (1.0, 1.0))  # weekend: carried over
            raw[s] *= factors[wday]
        self.pay_multiplier = np.zeros((len(scenario.segments), n_jur, self.n_days))
        for j in range(n_jur):
            business = self.is_business[j]
            carried = np.zeros(len(scenario.segments))
            for d in range(self.n_days):  # runs once per calendar; D is a few thousand
                carried = carried + raw[:, d]
                if business[d]:
                    self.pay_multiplier[:, j, d] = carried
                    carried = 0.0 * carried

    def index(self, day: np.ndarray) -> np.ndarray:
        """Calendar index of epoch days; raises if a day is outside the covered range."""
        d = np.asarray(day, dtype=np.int64) - self.first_day
        if d.size and (d.min() < 0 or d.max() >= self.n_days):
            raise ValueError(f"day outside the calendar range [{self.first_day}, "
                             f"{self.first_day + self.n_days}) (engine day numbers)")
        return d
