"""As-of features: point-in-time correctness, no leakage, calendar helpers, missing values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.calendar import (
    count_holidays,
    days_to_month_end,
    days_to_quarter_end,
    from_day,
    to_days,
    weekday,
)
from engine.errors import DunningError
from engine.features import (
    ALL_FEATURES,
    build_invoice_features,
    build_training_frame,
    frame_known_at,
    holiday_table,
    label_classes,
    open_balance,
)


def _truncate(tables: dict, day: pd.Timestamp) -> dict:
    """The tables as they were known at the start of ``day`` (events before it only)."""
    pay, act = tables["payments"], tables["actions"]
    inv = tables["invoices"].copy()
    opened = pd.to_datetime(inv["dispute_opened"])
    inv["dispute_opened"] = opened.where(opened < day)
    resolved = pd.to_datetime(inv["dispute_resolved"])
    inv["dispute_resolved"] = resolved.where(resolved < day)
    return {
        "customers": tables["customers"],
        "invoices": inv[pd.to_datetime(inv["invoice_date"]) <= day],
        "payments": pay[pd.to_datetime(pay["payment_date"]) < day],
        "actions": act[pd.to_datetime(act["action_date"]) < day],
    }


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                  check_dtype=False, check_exact=False, rtol=1e-9)


@pytest.mark.parametrize("date", ["2024-09-15", "2025-03-01"])
def test_future_events_do_not_change_features(tables, date):
    """Dropping every payment, reminder and dispute dated on/after D changes no feature at D."""
    day = pd.Timestamp(date)
    full = build_invoice_features(tables, date)
    cut = build_invoice_features(_truncate(tables, day), date)
    assert len(full) > 50
    _assert_same(full, cut.loc[full.index])


def test_changing_a_future_outcome_keeps_past_rows(tables):
    """Delaying the payments of invoices settled late in the period leaves every training
    row dated before the original payment unchanged (and the invoices' own rows too)."""
    frame = build_training_frame(tables, "2025-06-01", very_late_days=30)
    pay = tables["payments"].copy()
    late = pd.to_datetime(pay["payment_date"]) >= pd.Timestamp("2025-01-01")
    pay.loc[late, "payment_date"] = (pd.to_datetime(pay.loc[late, "payment_date"])
                                     + pd.Timedelta(days=20)).dt.strftime("%Y-%m-%d")
    changed = build_training_frame({**tables, "payments": pay}, "2025-07-01",
                                   very_late_days=30)
    cutoff = (pd.Timestamp("2025-01-01") - pd.Timestamp("1900-01-01")).days
    key = ["invoice_pos", "ref_day"]
    a = pd.DataFrame({"invoice_pos": frame.invoice_pos, "ref_day": frame.ref_day})
    b = pd.DataFrame({"invoice_pos": changed.invoice_pos, "ref_day": changed.ref_day})
    a_rows = a.reset_index().merge(b.reset_index(), on=key, suffixes=("_a", "_b"))
    a_rows = a_rows[a_rows["ref_day"] <= cutoff]
    assert len(a_rows) > 500
    _assert_same(frame.X.iloc[a_rows["index_a"].to_numpy()],
                 changed.X.iloc[a_rows["index_b"].to_numpy()])


def test_training_rows_equal_features_recomputed_as_of_their_date(tables):
    """Every (vectorised) training row equals a fresh as-of computation on truncated data."""
    frame = build_training_frame(tables, "2025-06-01", very_late_days=30)
    rng = np.random.default_rng(0)
    ids = tables["invoices"]["invoice_id"].to_numpy()
    for i in rng.choice(len(frame.X), 12, replace=False):
        ref = from_day(int(frame.ref_day[i]))
        inv_id = ids[frame.invoice_pos[i]]
        fresh = build_invoice_features(_truncate(tables, pd.Timestamp(ref)), ref, [inv_id])
        _assert_same(frame.X.iloc[[i]], fresh)


@pytest.mark.parametrize("very_late_days", [0, 30])
def test_a_later_frame_cut_at_an_earlier_date_equals_that_frame(prepared, very_late_days):
    """``frame_known_at`` (what training builds once and cuts for the held-out split and the
    final fit) gives exactly the rows, order, labels and features of a frame built at the
    earlier date; the seeded day between issue and due is the same at both dates."""
    later = build_training_frame(prepared, "2025-06-01", very_late_days, seed=3,
                                 stable_draw=True)
    for day in ("2024-09-15", "2025-02-01"):
        built = build_training_frame(prepared, day, very_late_days, seed=3, stable_draw=True)
        cut = frame_known_at(prepared, later, day, very_late_days)
        assert len(built.X) > 100 and (built.snapshot == -2).sum() > 10
        for name in ("days_late", "censored", "ref_day", "invoice_day", "snapshot",
                     "invoice_pos"):
            np.testing.assert_array_equal(getattr(cut, name), getattr(built, name), name)
        pd.testing.assert_frame_equal(cut.X, built.X)


def test_history_features_match_a_plain_loop(prepared, tables):
    """hist_n_paid / hist_n_late / hist_mean_days_late / n_reminders against pandas loops."""
    date = pd.Timestamp("2025-02-01")
    X = build_invoice_features(prepared, date)
    inv = tables["invoices"].set_index("invoice_id")
    settle = pd.Series(prepared.settle_day, index=prepared.invoice_id)
    days_late = pd.Series(prepared.days_late, index=prepared.invoice_id)
    d = (date - pd.Timestamp("1900-01-01")).days
    acts = tables["actions"]
    for inv_id in X.index[:25]:
        cust = inv.loc[inv_id, "customer_id"]
        mine = inv.index[inv["customer_id"] == cust]
        paid = [j for j in mine if settle[j] < d]
        dl = days_late[paid]
        assert X.loc[inv_id, "hist_n_paid"] == len(paid)
        assert X.loc[inv_id, "hist_n_late"] == int((dl > 0).sum())
        if paid:
            assert X.loc[inv_id, "hist_mean_days_late"] == pytest.approx(dl.mean())
        else:
            assert np.isnan(X.loc[inv_id, "hist_mean_days_late"])
        sent = acts[(acts["invoice_id"] == inv_id) & (pd.to_datetime(acts["action_date"]) < date)
                    & (acts["channel"] != "agency")]
        assert X.loc[inv_id, "n_reminders"] == len(sent)


def test_columns_and_open_invoices(prepared):
    X = build_invoice_features(prepared, "2025-03-01")
    balance = open_balance(prepared, X.index, "2025-03-01")
    assert set(ALL_FEATURES) <= set(X.columns)
    assert (X["age_days"] >= 0).all()
    assert np.all(balance > 0)
    np.testing.assert_allclose(balance, prepared.amount[
        np.searchsorted(prepared.invoice_id, X.index)] * (1 - X["paid_share"].to_numpy()))


def test_as_of_before_any_data_is_a_clear_error(tables):
    with pytest.raises(DunningError, match="before any data"):
        build_invoice_features(tables, "1999-01-01")


def test_empty_invoices_is_a_clear_error(tables):
    empty = {**tables, "invoices": tables["invoices"].iloc[:0]}
    with pytest.raises(DunningError, match="no invoices"):
        build_invoice_features(empty, "2025-01-01")


def test_missing_customer_fields_become_missing_features(tables):
    cus = tables["customers"].copy()
    cus["segment"] = None
    cus["industry"] = np.nan
    cus["customer_since"] = None
    X = build_invoice_features({**tables, "customers": cus}, "2025-03-01")
    assert X["segment"].isna().all() and X["tenure_days"].isna().all()


def test_calendar_helpers():
    d = to_days(["2024-03-31", "2024-02-10", "2024-12-31", "2026-11-23"])
    assert days_to_month_end(d).tolist() == [0, 19, 0, 7]
    assert days_to_quarter_end(d).tolist() == [0, 50, 0, 38]
    assert weekday(d).tolist() == [6, 5, 1, 0]  # Sunday, Saturday, Tuesday, Monday
    jur = np.array(["DE", "DE", "XX"])
    region = np.array(["", "BY", ""])
    table = holiday_table(zip(jur, region, strict=True), int(d.min()), int(d.max()))
    start, end = to_days(["2024-12-24"] * 3), to_days(["2024-12-27"] * 3)
    # DE: 25 and 26 December; unknown jurisdiction: none
    assert count_holidays(jur, region, start, end, table).tolist() == [2, 2, 0]
    # 6 January (Epiphany) is a holiday in Bavaria only
    epiphany = to_days(["2025-01-06"] * 3)
    table = holiday_table(zip(jur, region, strict=True), int(epiphany[0]), int(epiphany[0]))
    assert count_holidays(jur, region, epiphany, epiphany, table).tolist() == [0, 1, 0]


def test_label_classes_binary_and_three_way():
    dl = np.array([-3, 0, 1, 30, 31])
    assert label_classes(dl, 30).tolist() == [0, 0, 1, 1, 2]
    assert label_classes(dl, 0).tolist() == [0, 0, 1, 1, 1]


def _shift_facts(tables: dict, day: pd.Timestamp) -> dict:
    """Every fact dated on/after ``day`` moved one day later, by its source date: invoices
    (issue, due and milestone date together), payments, actions, dispute dates and customer
    dates."""
    def shift(s: pd.Series, source: pd.Series | None = None) -> pd.Series:
        d = pd.to_datetime(s)
        src = d if source is None else pd.to_datetime(source)
        return d.where(~(src >= day), d + pd.Timedelta(days=1))

    inv = tables["invoices"].copy()
    issued = inv["invoice_date"].copy()
    inv["invoice_date"] = shift(inv["invoice_date"])
    for c in ("due_date", "milestone_date"):  # planned dates, part of the invoice fact
        inv[c] = shift(inv[c], issued)
    for c in ("dispute_opened", "dispute_resolved"):
        inv[c] = shift(inv[c])
    cus = tables["customers"].copy()
    for c in ("customer_since", "paperless_date"):
        cus[c] = shift(cus[c])
    pay, act = tables["payments"].copy(), tables["actions"].copy()
    pay["payment_date"] = shift(pay["payment_date"])
    act["action_date"] = shift(act["action_date"])
    return {"customers": cus, "invoices": inv, "payments": pay, "actions": act}


def test_shifting_every_source_date_by_a_day_leaves_past_features_unchanged(tables):
    """No look-ahead: moving every fact dated on/after D one day later (including a
    customer date column a mapping added, like IBM's PaperlessDate, half of whose dates lie
    in the future of a given invoice) changes no feature of any invoice open at D, nor any
    training row dated before D."""
    cus = tables["customers"].copy()
    rng = np.random.default_rng(0)
    cus["paperless_date"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(
        rng.integers(0, 540, len(cus)), unit="D")
    base = {**tables, "customers": cus}
    for date in ("2024-09-15", "2025-03-01"):
        day = pd.Timestamp(date)
        shifted = _shift_facts(base, day)
        full = build_invoice_features(base, date)
        moved = build_invoice_features(shifted, date)
        # an invoice issued on D itself is open at D and moves to D + 1 with its facts
        before = full.index[pd.to_datetime(base["invoices"].set_index("invoice_id").loc[
            full.index, "invoice_date"]).to_numpy() < day]
        assert len(before) > 50 and full.loc[before, "cust_paperless_date"].notna().any()
        _assert_same(full.loc[before], moved.loc[before])
        a = build_training_frame(base, date, very_late_days=0)
        b = build_training_frame(shifted, date, very_late_days=0)
        assert len(a.X) > 500
        _assert_same(a.X, b.X)
