"""The range of decision dates the operations side accepts (CLI, API, daily run).

A date far in the past (``0001-01-01``) overflows the date arithmetic of the features and
the calendar; a date far in the future would be stored as the "latest" run and then served
as the default. Both are user errors: the accepted range is ``AS_OF_MIN`` .. today (UTC) +
``AS_OF_MAX_DAYS_AHEAD`` days; the API makes it configurable (``ApiConfig``).
"""

from __future__ import annotations

import datetime as dt

from engine.errors import InputError

AS_OF_MIN = dt.date(2000, 1, 1)
AS_OF_MAX_DAYS_AHEAD = 366


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def as_of_problem(day: dt.date, where: str, earliest: dt.date = AS_OF_MIN,
                  days_ahead: int = AS_OF_MAX_DAYS_AHEAD,
                  today: dt.date | None = None) -> str | None:
    """A sentence naming ``where``, the date and the accepted range, or None if it is inside."""
    latest = (today or today_utc()) + dt.timedelta(days=days_ahead)
    if earliest <= day <= latest:
        return None
    return (f"{where}: {day.isoformat()} is outside the accepted range; expected a date from "
            f"{earliest.isoformat()} to {latest.isoformat()} (today + {days_ahead} days)")


def check_as_of(day: dt.date, where: str, earliest: dt.date = AS_OF_MIN,
                days_ahead: int = AS_OF_MAX_DAYS_AHEAD) -> dt.date:
    """``day`` if inside the accepted range, else :class:`InputError` (exit code 2 in the CLI)."""
    problem = as_of_problem(day, where, earliest, days_ahead)
    if problem:
        raise InputError(problem)
    return day
