"""The fast paths of scoring give exactly what the general paths give (same rows, same
values, bit for bit): id lookups, one as-of day for every row, per-value text cleaning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.features import _codes, _per_value, features_at, lookup


def _by_dict(keys: list, queries: list) -> list[int]:
    """The definition: first position of each query's text among the keys' texts, else -1."""
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(str(k), i)
    return [first.get(str(q), -1) if q is not None else -1 for q in queries]


@pytest.mark.parametrize(("keys", "queries"), [
    (["a", "b", "a", "c"], ["c", "a", "x", "b", "a", None]),  # duplicate key: first wins
    ([1, 2, 3], ["2", 3, "4"]),  # compared as text
    (["I1", "I2"], []),
    ([], ["I1"]),
])
def test_lookup_is_the_first_position_by_text(keys, queries):
    want = _by_dict(keys, queries)
    assert lookup(np.asarray(keys, dtype=object), np.asarray(queries, dtype=object)
                  ).tolist() == want
    # pandas text columns (Arrow-backed) are taken without a detour through Python strings
    assert lookup(pd.Series(keys, dtype=object).astype(str),
                  pd.Series(queries, dtype=object).astype(str)).tolist() == want


def test_prepared_rows_of_matches_lookup(prepared):
    ids = list(prepared.invoice_id[::-7]) + ["no such invoice"]
    np.testing.assert_array_equal(prepared.rows_of(ids), lookup(prepared.invoice_id, ids))
    assert prepared.rows_of(ids)[-1] == -1


def test_one_as_of_day_for_all_rows_equals_the_per_row_path(prepared):
    """Scoring every invoice at one day takes the per-customer searches and place codes
    (more rows than customers); chunks smaller than the customer count take the per-row
    ones. Same frame, exactly."""
    p = prepared
    n_cust = len(p.cust_start_set)
    rows = np.arange(len(p.invoice_id))
    assert len(rows) > n_cust  # the fast path is taken
    day = int(np.median(p.invoice_day))
    fast = features_at(p, rows, day)
    step = n_cust // 2
    slow = pd.concat([features_at(p, rows[i:i + step], day) for i in range(0, len(rows), step)])
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    # the index is taken from the Arrow ids: the one pandas makes of the Python strings
    pd.testing.assert_index_equal(fast.index, pd.Index(p.invoice_id, name="invoice_id"),
                                  exact=True)


@pytest.mark.parametrize("values", [
    [" eur", "EUR", "", None, "  ", "usd", "EUR"],
    ["true", "False", " YES", None, "1", "0"],
])
def test_text_cleaning_per_distinct_value_equals_row_by_row(values):
    typed = pd.Series(values * 50).astype(str)  # Arrow text: cleaned per distinct value
    plain = typed.astype(object)  # object: cleaned row by row
    assert typed.dtype != object and plain.dtype == object
    codes_t, cats_t = _codes(typed)
    codes_p, cats_p = _codes(plain)
    np.testing.assert_array_equal(codes_t, codes_p)
    assert list(cats_t) == list(cats_p)

    def flag(c: pd.Series) -> pd.Series:
        return c.astype(str).str.strip().str.lower().isin(["true", "1", "yes"])

    np.testing.assert_array_equal(_per_value(typed, flag), _per_value(plain, flag))
