"""The engine's one calendar: day numbers (and their range), region-aware holidays, the
vectorised business calendar."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from engine.calendar import (
    LAST_DATE,
    NEVER,
    BusinessCalendar,
    day_number,
    from_day,
    from_days,
    holiday_days,
    to_day,
    to_days,
    weekday,
)
from engine.errors import InputError
from engine.features import prepare_tables


def test_day_numbers_count_from_1900_and_round_trip():
    assert to_day("1900-01-01") == 0 and weekday(np.array([0])).tolist() == [0]  # a Monday
    days = to_days(["2024-02-29", None, dt.date(2025, 12, 31), np.datetime64("2000-01-01")])
    assert days[1] == NEVER
    assert [from_day(d) for d in days[[0, 2, 3]]] == [dt.date(2024, 2, 29),
                                                      dt.date(2025, 12, 31), dt.date(2000, 1, 1)]
    np.testing.assert_array_equal(to_days(from_days(days[[0, 2]])), days[[0, 2]])
    assert day_number(dt.date(2024, 2, 29)) == days[0]
    assert day_number(dt.date(1850, 1, 1)) < 0  # comparisons only (rule validity windows)
    assert to_days(np.array(["2024-01-01", "NaT"], dtype="datetime64[D]"))[1] == NEVER


@pytest.mark.parametrize("bad", ["1899-12-31", "1025-03-01", str(LAST_DATE + dt.timedelta(1))])
def test_a_date_outside_the_range_is_a_clear_error_not_a_corrupt_key(bad):
    with pytest.raises(InputError, match=rf"date {bad} is outside"):
        to_days(["2024-01-01", bad])
    customers = pd.DataFrame({"customer_id": ["C1"], "jurisdiction": ["DE"],
                              "customer_type": ["b2b"]})
    invoices = pd.DataFrame({"invoice_id": ["I1"], "customer_id": ["C1"], "amount": [10.0],
                             "invoice_date": [bad], "due_date": ["2024-02-01"],
                             "currency": ["EUR"]})
    payments = pd.DataFrame({"invoice_id": pd.Series([], dtype=str), "payment_date": [],
                             "amount": pd.Series([], dtype=float)})
    with pytest.raises(InputError, match="outside"):
        prepare_tables({"customers": customers, "invoices": invoices, "payments": payments})


def test_holidays_know_regions_fall_back_to_national_and_refuse_unknown_countries():
    epiphany = day_number(dt.date(2025, 1, 6))
    bavaria = holiday_days("de", "by", 2025, 2025)
    national = holiday_days("DE", "", 2025, 2025)
    assert epiphany in bavaria and epiphany not in national
    np.testing.assert_array_equal(holiday_days("DE", "ZZ", 2025, 2025), national)
    assert holiday_days("XX", "", 2025, 2025) is None
    assert holiday_days("DE", None, 2025, 2025) is national  # cached per key


def test_business_calendar_looks_up_places_and_is_exact_outside_its_range():
    cal = BusinessCalendar(dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    places = cal.places(np.array(["DE", "DE", "de", "XX"]), np.array(["BY", "", "by", None]))
    assert places[0] == places[2] and len(set(places.tolist())) == 3
    day = to_days(["2025-01-06"] * 4)
    assert cal.lookup(places, day).is_holiday.tolist() == [True, False, True, False]
    outside = cal.lookup(places[:1], to_days(["2026-01-06"]))
    assert not outside.is_holiday[0] and outside.weekday.tolist() == [1]  # a Tuesday
