"""Vectorised business calendar: weekday, bank holidays, days to month and quarter end,
signed phase in the month and quarter.

Looked up by (jurisdiction code, day ordinal) for a whole batch of invoices in one array
index, so the environment's per-step calendar costs a few microseconds per thousand rows.
Bank holidays come from the ``holidays`` package (per ISO 3166-1 alpha-2 country).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from engine.features import days_to_month_end, days_to_quarter_end, month_phase, quarter_phase

# Codes used by the observation's jurisdiction one-hot; the last one is "other/unknown".
JURISDICTIONS: tuple[str, ...] = ("DE", "AT", "SE", "FR", "GB", "NL", "PL", "IT", "ES", "US")
OTHER_JURISDICTION = len(JURISDICTIONS)
# engine.features day numbers count from 1900-01-01: day number = ordinal - this
ENGINE_EPOCH_ORDINAL = dt.date(1900, 1, 1).toordinal()


def jurisdiction_codes(values: np.ndarray) -> np.ndarray:
    """Map ISO codes (str array, any case) to int codes; unknown codes map to "other"."""
    lookup = {j: i for i, j in enumerate(JURISDICTIONS)}
    uniq, inv = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    codes = np.array([lookup.get(str(u).upper(), OTHER_JURISDICTION) for u in uniq], np.int16)
    return codes[inv].reshape(np.shape(values))


@dataclass(frozen=True)
class CalendarDay:
    """Calendar facts of one day per row; every array has shape ``(n,)``."""

    weekday: np.ndarray  # 0 = Monday .. 6 = Sunday
    is_weekend: np.ndarray
    is_holiday: np.ndarray  # bank holiday of the row's jurisdiction
    days_to_month_end: np.ndarray  # 0 on the last day of the month
    days_to_quarter_end: np.ndarray  # 0 on the last day of the quarter
    month_phase: np.ndarray  # 0 on the 1st, -1 on the last day (engine.features.month_phase)
    quarter_phase: np.ndarray  # 0 on the quarter's first day, -1 on its last


class BusinessCalendar:
    """Precomputed calendar for ``start .. end`` (inclusive) and every known jurisdiction.

    Days outside the range are looked up by clipping to the range edge for holidays (no
    holiday) and computed exactly for weekday and month/quarter ends.
    """

    def __init__(self, start: dt.date, end: dt.date) -> None:
        import holidays

        if end < start:
            raise ValueError(f"calendar end {end} is before start {start}")
        self.start_ordinal = start.toordinal()
        n_days = end.toordinal() - self.start_ordinal + 1
        days = [start + dt.timedelta(days=i) for i in range(n_days)]
        self._holiday = np.zeros((OTHER_JURISDICTION + 1, n_days), dtype=bool)
        years = range(start.year, end.year + 1)
        for code, country in enumerate(JURISDICTIONS):
            h = holidays.country_holidays(country, years=years)
            self._holiday[code] = [d in h for d in days]
        self._month_quarter = _month_quarter(self.start_ordinal + np.arange(n_days))
        self.n_days = n_days

    def lookup(self, jurisdiction: np.ndarray, ordinal: np.ndarray) -> CalendarDay:
        """Calendar of day ``ordinal`` (proleptic Gregorian ordinals, int array) per row."""
        offset = ordinal - self.start_ordinal
        inside = (offset >= 0) & (offset < self.n_days)
        idx = np.clip(offset, 0, self.n_days - 1)
        weekday = (ordinal - 1) % 7  # date.fromordinal(1) is a Monday
        holiday = self._holiday[jurisdiction, idx] & inside
        month_quarter = ({k: v[idx] for k, v in self._month_quarter.items()} if inside.all()
                         else _month_quarter(ordinal))
        return CalendarDay(weekday=weekday, is_weekend=weekday >= 5, is_holiday=holiday,
                           **month_quarter)


def _month_quarter(ordinal: np.ndarray) -> dict[str, np.ndarray]:
    """The month / quarter fields of :class:`CalendarDay` (int16 each) for ``ordinal``s,
    from the engine's functions so that the hazard model's training rows and the
    simulation see the same calendar."""
    day = np.asarray(ordinal, dtype=np.int64) - ENGINE_EPOCH_ORDINAL
    return {name: fn(day).astype(np.int16) for name, fn in (
        ("days_to_month_end", days_to_month_end), ("days_to_quarter_end", days_to_quarter_end),
        ("month_phase", month_phase), ("quarter_phase", quarter_phase))}


def to_ordinal(dates: np.ndarray) -> np.ndarray:
    """datetime64 / date array -> int64 proleptic Gregorian ordinals."""
    d = np.asarray(dates).astype("datetime64[D]").astype(np.int64)
    return d + dt.date(1970, 1, 1).toordinal()


def from_ordinal(ordinal: np.ndarray) -> np.ndarray:
    """int ordinals -> ``datetime64[D]`` array."""
    return (np.asarray(ordinal) - dt.date(1970, 1, 1).toordinal()).astype("datetime64[D]")
