"""The one calendar of the engine: day numbers, month/quarter helpers, bank holidays.

Day convention
--------------
A *day* is an ``int64`` number of days since **1900-01-01** (day 0, a Monday). Every layer
uses it: the features, the payment and hazard models, the ground-truth world, the
collections environment, the oracle and the legal evaluators. Why 1900 and not the Unix
epoch or ``date.toordinal()``:

- business dates (invoices, payments, customers' ``customer_since``) are all after 1900, so
  their day numbers are non-negative and fit in :data:`DAY_BITS` = 17 bits (up to
  :data:`LAST_DATE`, 2258-11-10);
  the features pack ``group << DAY_BITS | day`` into one sortable ``int64`` key and
  ``np.searchsorted`` on it, which needs ``0 <= day <= NEVER``;
- :data:`NEVER` (the largest 17-bit number) sorts after every real day, so "not settled /
  no event" needs no separate mask;
- the Unix epoch would make any pre-1970 date (a customer since 1965) negative and break
  the keys; ``date.toordinal()`` numbers (~739,000) would not fit 17 bits.

:func:`to_days` and :func:`to_day` check that range: a date before 1900-01-01 or after
:data:`LAST_DATE` (hostile or mistyped data, e.g. year 1025 for 2025) raises
:class:`~engine.errors.InputError` naming the date, instead of silently corrupting the
packed keys. :func:`day_number` is the unchecked signed form for pure comparisons of any
``datetime.date`` (the legal rules' validity windows may start before 1900).

Holidays
--------
:func:`holiday_days` is the one bank-holiday source (the ``holidays`` package): per country
(ISO 3166-1 alpha-2) and optional subdivision (``region``, e.g. ``BY`` for Bavaria, ``CA``
for California), cached per ``(country, region, first year, last year)``. An unknown region
falls back to the national calendar; an unknown country gives ``None`` and each consumer
says what that means (the legal facts: unknown, fail closed; the features and the
environment: no holidays, as before). Weekends are *not* removed: a holiday on a Sunday is a
holiday; the world's payment calendar removes them itself.

:class:`BusinessCalendar` is the vectorised per-place lookup the environment and the daily
recommendation use: weekday, weekend, holiday and month/quarter fields of ``(place, day)``
for a whole batch in one array index.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from engine.errors import InputError

EPOCH = np.datetime64("1900-01-01", "D")  # day 0 (a Monday)
EPOCH_DATE = dt.date(1900, 1, 1)
DAY_BITS = 17  # 2**17 days ~ 358 years after 1900
NEVER = 2**DAY_BITS - 1  # "not settled / no event" day number; sorts after every real day
LAST_DATE = EPOCH_DATE + dt.timedelta(days=NEVER - 1)  # the last representable date
_EPOCH_ORDINAL = EPOCH_DATE.toordinal()


# ---------------------------------------------------------------------------- day numbers
def _checked(days: np.ndarray, dates: np.ndarray) -> np.ndarray:
    bad = (days < 0) | (days >= NEVER)
    if bad.any():
        first = np.asarray(dates)[np.flatnonzero(bad)[0]]
        raise InputError(f"date {str(first)[:10]} is outside the dates the engine handles "
                         f"({EPOCH_DATE} .. {LAST_DATE}); check the year")
    return days


def to_days(values: object) -> np.ndarray:
    """Dates (strings, ``date``s, ``datetime64``, NaT/None) -> (n,) int64 day numbers;
    missing -> :data:`NEVER`. Raises :class:`InputError` for a date outside
    ``1900-01-01 .. LAST_DATE``."""
    if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.datetime64):
        arr = values.astype("datetime64[D]")  # fast path: no parsing
    else:
        try:
            ts = pd.to_datetime(pd.Series(values), errors="raise")
        except pd.errors.OutOfBoundsDatetime as exc:
            raise InputError(f"{exc}: outside the dates the engine handles ({EPOCH_DATE} .. "
                             f"{LAST_DATE}); check the year") from None
        if isinstance(ts.dtype, pd.DatetimeTZDtype):
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        # in the parsed unit (forcing ns would silently wrap a year like 1025 into 2194)
        arr = ts.to_numpy().astype("datetime64[D]")
    missing = np.isnat(arr)
    out = (arr - EPOCH).astype(np.int64)
    out[missing] = NEVER
    if not missing.all():
        _checked(np.where(missing, 0, out), arr)
    return out


def to_day(date: object) -> int:
    """One date -> day number (checked like :func:`to_days`)."""
    return int(to_days([date])[0])


def day_number(date: dt.date) -> int:
    """Signed day number of any ``datetime.date`` (negative before 1900), unchecked: for
    comparisons only (e.g. rule validity windows), never for packed keys."""
    return date.toordinal() - _EPOCH_ORDINAL


def from_day(day: int) -> dt.date:
    """Day number -> ``datetime.date``."""
    return EPOCH_DATE + dt.timedelta(days=int(day))


def from_days(days: np.ndarray) -> np.ndarray:
    """(n,) day numbers -> (n,) ``datetime64[D]``."""
    return EPOCH + np.asarray(days, dtype=np.int64).astype("timedelta64[D]")


# ---------------------------------------------------------------------------- month, quarter
def weekday(day: np.ndarray) -> np.ndarray:
    """(n,) Monday=0 .. Sunday=6."""
    return np.asarray(day).astype(np.int64) % 7  # 1900-01-01 was a Monday


def month_of(day: np.ndarray) -> np.ndarray:
    """(n,) calendar month 1..12."""
    return from_days(day).astype("datetime64[M]").astype(np.int64) % 12 + 1


def days_to_month_end(day: np.ndarray) -> np.ndarray:
    """(n,) days from ``day`` to the last day of its month (0 on the last day)."""
    d = from_days(day)
    next_month = d.astype("datetime64[M]") + 1
    return (next_month.astype("datetime64[D]") - d).astype(np.int64) - 1


def days_to_quarter_end(day: np.ndarray) -> np.ndarray:
    """(n,) days from ``day`` to the last day of its calendar quarter (0 on the last day)."""
    d = from_days(day)
    month = d.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    next_quarter = np.datetime64("1970-01", "M") + ((month // 3 + 1) * 3).astype(
        "timedelta64[M]")
    return (next_quarter.astype("datetime64[D]") - d).astype(np.int64) - 1


def _signed_phase(day: np.ndarray, period_start: np.ndarray, days_to_end: np.ndarray
                  ) -> np.ndarray:
    since_start = (from_days(day) - period_start.astype("datetime64[D]")).astype(np.int64)
    return np.where(days_to_end < since_start, -(days_to_end + 1), since_start)


def month_phase(day: np.ndarray) -> np.ndarray:
    """(n,) signed days to the nearest month boundary: 0 on the 1st, 1 on the 2nd, ..., -1
    on the last day, -2 on the day before. Payment peaks that straddle the turn of the month
    (salary and cash runs) are one interval of it, which one tree split can isolate."""
    day = np.asarray(day, dtype=np.int64)
    start = from_days(day).astype("datetime64[M]")
    return _signed_phase(day, start, days_to_month_end(day))


def quarter_phase(day: np.ndarray) -> np.ndarray:
    """(n,) signed days to the nearest calendar-quarter boundary (0 = first day of the
    quarter, -1 = its last day), as :func:`month_phase`."""
    day = np.asarray(day, dtype=np.int64)
    month = from_days(day).astype("datetime64[M]").astype(np.int64)
    start = np.datetime64("1970-01", "M") + ((month // 3) * 3).astype("timedelta64[M]")
    return _signed_phase(day, start, days_to_quarter_end(day))


# ---------------------------------------------------------------------------- holidays
def _norm(code: object) -> str:
    """A country or region code as the holiday source keys it: stripped, upper case;
    missing (None, NaN, NA) -> ''."""
    if code is None or (not isinstance(code, str) and pd.isna(code)):
        return ""
    return str(code).strip().upper()


def holiday_days(country: object, region: object, first_year: int, last_year: int
                 ) -> np.ndarray | None:
    """Sorted (k,) int64 day numbers of the bank holidays of ``country`` (ISO alpha-2, any
    case) in subdivision ``region`` ('' or None: national) for the years
    ``first_year .. last_year``; an unknown region gives the national calendar, an unknown
    country ``None``. The result is shared (cached): do not modify it."""
    return _holiday_days(_norm(country), _norm(region), int(first_year), int(last_year))


@lru_cache(maxsize=256)
def regions_of(country: str) -> frozenset[str]:
    """Upper-case subdivision (region) codes the holiday source knows for ``country``
    (ISO alpha-2); empty for a country without subdivisions or an unknown one."""
    import holidays

    try:
        cal = holidays.country_holidays(_norm(country))
    except (NotImplementedError, KeyError, AttributeError):
        return frozenset()
    return frozenset(str(s).upper() for s in getattr(cal, "subdivisions", ()))


@lru_cache(maxsize=256)
def _holiday_days(country: str, region: str, first_year: int, last_year: int
                  ) -> np.ndarray | None:
    import holidays

    years = range(first_year, last_year + 1)
    for subdiv in ((region, None) if region else (None,)):
        try:
            cal = holidays.country_holidays(country, subdiv=subdiv, years=years)
        except (NotImplementedError, KeyError, TypeError, AttributeError):
            continue  # an unknown region: try the national calendar; unknown country: None
        days = np.array(sorted(day_number(d) for d in cal.keys()), dtype=np.int64)
        days.setflags(write=False)
        return days
    return None


def holiday_table(places: Iterable[tuple[object, object]], first_day: int, last_day: int
                  ) -> dict[tuple[str, str], np.ndarray | None]:
    """Holiday day numbers (:func:`holiday_days`) per distinct ``(country, region)`` of
    ``places``, for the years spanned by days ``first_day .. last_day`` (clipped to the
    representable range), keyed by the normalised (upper-case) codes."""
    y0 = from_day(min(max(first_day, 0), NEVER - 1)).year
    y1 = from_day(min(max(last_day, 0), NEVER - 1)).year
    out: dict[tuple[str, str], np.ndarray | None] = {}
    for country, region in places:
        key = (_norm(country), _norm(region))
        if key not in out:
            out[key] = _holiday_days(*key, y0, y1)
    return out


def count_holidays(country: np.ndarray, region: np.ndarray, start: np.ndarray,
                   end: np.ndarray, table: dict[tuple[str, str], np.ndarray | None]
                   ) -> np.ndarray:
    """(n,) float64 number of bank holidays in ``[start, end]`` (day numbers, inclusive) at
    each row's ``(country, region)``; rows whose place is not in ``table`` or has an
    unknown country count 0. ``table`` from :func:`holiday_table`."""
    return count_holidays_at(*place_codes(country, region), start, end, table)


def count_holidays_at(place: np.ndarray, places: list[tuple[str, str]], start: np.ndarray,
                      end: np.ndarray, table: dict[tuple[str, str], np.ndarray | None]
                      ) -> np.ndarray:
    """:func:`count_holidays` with the places already coded by :func:`place_codes`
    (``place`` (n,) int64 into ``places``): code a few thousand customers once, then index
    by customer, instead of hashing a million per-row place strings."""
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    out = np.zeros(len(start), dtype=np.float64)
    for k, key in enumerate(places):
        days = table.get(key)
        if days is None or not days.size:
            continue
        sel = place == k
        out[sel] = (np.searchsorted(days, end[sel], side="right")
                    - np.searchsorted(days, start[sel], side="left"))
    return out


def place_codes(country: np.ndarray, region: np.ndarray
                ) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """(n,) int64 code of each row's normalised ``(country, region)`` and the list of the
    distinct normalised places. :func:`_norm` runs on the distinct raw values only (a few
    per ledger), not per row: millions of rows in well under a second."""
    c_codes, c_uniq = pd.factorize(np.asarray(country, dtype=object), use_na_sentinel=False)
    r_codes, r_uniq = pd.factorize(np.asarray(region, dtype=object), use_na_sentinel=False)
    c_norm = [_norm(v) for v in c_uniq]
    r_norm = [_norm(v) for v in r_uniq]
    # distinct raw pairs first, then the distinct normalised places ("de" and "DE " alike)
    pair = c_codes.astype(np.int64) * max(len(r_uniq), 1) + r_codes
    pairs, pair_code = np.unique(pair, return_inverse=True)
    places = [(c_norm[p // max(len(r_uniq), 1)], r_norm[p % max(len(r_uniq), 1)])
              for p in pairs.tolist()]
    place_code, uniq = pd.factorize(pd.Index([f"{c}\x1f{r}" for c, r in places]))
    keys = [tuple(str(u).split("\x1f")) for u in uniq]
    return place_code[pair_code].astype(np.int64), keys  # type: ignore[return-value]


# ---------------------------------------------------------------------------- batch lookup
@dataclass(frozen=True)
class CalendarDay:
    """Calendar facts of one day per row; every array has shape ``(n,)``."""

    weekday: np.ndarray  # 0 = Monday .. 6 = Sunday
    is_weekend: np.ndarray
    is_holiday: np.ndarray  # bank holiday of the row's country and region
    days_to_month_end: np.ndarray  # 0 on the last day of the month
    days_to_quarter_end: np.ndarray  # 0 on the last day of the quarter
    month_phase: np.ndarray  # 0 on the 1st, -1 on the last day (:func:`month_phase`)
    quarter_phase: np.ndarray  # 0 on the quarter's first day, -1 on its last


class BusinessCalendar:
    """Precomputed calendar for ``start .. end`` (inclusive) per *place* (country, region).

    Places get int codes from :meth:`places` (registered on first use, their holidays
    computed once); :meth:`lookup` then takes ``(place code, day)`` arrays. Days outside the
    range have no holiday; weekday and month/quarter fields are exact for any day.
    """

    def __init__(self, start: dt.date, end: dt.date,
                 places: Iterable[tuple[object, object]] = ()) -> None:
        if end < start:
            raise ValueError(f"calendar end {end} is before start {start}")
        self.first_day = day_number(start)
        self.n_days = (end - start).days + 1
        self._years = (start.year, end.year)
        self._codes: dict[tuple[str, str], int] = {}
        self._holiday = np.zeros((0, self.n_days), dtype=bool)
        self._month_quarter = _month_quarter(self.first_day + np.arange(self.n_days))
        for country, region in places:
            self.place(country, region)

    def place(self, country: object, region: object = "") -> int:
        """Code of one place (registered on first use)."""
        key = (_norm(country), _norm(region))
        code = self._codes.get(key)
        if code is None:
            row = np.zeros((1, self.n_days), dtype=bool)
            days = _holiday_days(*key, *self._years)
            if days is not None:
                idx = days - self.first_day
                row[0, idx[(idx >= 0) & (idx < self.n_days)]] = True
            self._holiday = np.concatenate([self._holiday, row])
            code = self._codes[key] = len(self._codes)
        return code

    def places(self, country: np.ndarray, region: np.ndarray | None = None) -> np.ndarray:
        """(n,) int64 place codes of ``(country, region)`` per row (region None: national)."""
        country = np.asarray(country)
        if not len(country):
            return np.zeros(0, dtype=np.int64)
        region = np.full(len(country), "") if region is None else np.asarray(region)
        inv, uniq = place_codes(country, region)  # then one place() per distinct pair
        lut = np.array([self.place(*key) for key in uniq], dtype=np.int64)
        return lut[inv]

    def lookup(self, place: np.ndarray, day: np.ndarray) -> CalendarDay:
        """Calendar of day numbers ``day`` (n,) at place codes ``place`` (n,)."""
        day = np.asarray(day, dtype=np.int64)
        offset = day - self.first_day
        inside = (offset >= 0) & (offset < self.n_days)
        idx = np.clip(offset, 0, self.n_days - 1)
        wd = weekday(day)
        holiday = self._holiday[place, idx] & inside
        month_quarter = ({k: v[idx] for k, v in self._month_quarter.items()} if inside.all()
                         else _month_quarter(day))
        return CalendarDay(weekday=wd, is_weekend=wd >= 5, is_holiday=holiday,
                           **month_quarter)


def _month_quarter(day: np.ndarray) -> dict[str, np.ndarray]:
    """The month / quarter fields of :class:`CalendarDay` (int16 each) for ``day``s."""
    day = np.asarray(day, dtype=np.int64)
    return {name: fn(day).astype(np.int16) for name, fn in (
        ("days_to_month_end", days_to_month_end), ("days_to_quarter_end", days_to_quarter_end),
        ("month_phase", month_phase), ("quarter_phase", quarter_phase))}
