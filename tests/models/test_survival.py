"""Kaplan-Meier from the hazard model's invoice-day rows (the model card's survival check)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.models.training import empirical_survival


def _rows(last: list[int], paid: list[bool], skip: dict[int, set[int]] | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """Rows (days overdue, paid that day) of invoices at risk on days 0..last[i], paid on
    their last day when ``paid[i]``, without the days ``skip[i]`` (an open dispute)."""
    skip = skip or {}
    d, ev = [], []
    for i, (n, p) in enumerate(zip(last, paid, strict=True)):
        for day in range(n + 1):
            if day not in skip.get(i, set()):
                d.append(day)
                ev.append(float(p and day == n))
    return np.array(d), np.array(ev)


def test_rows_give_the_classic_kaplan_meier():
    # 4 invoices: paid on day 1 and 3, censored on day 2 and 5
    d, ev = _rows([1, 3, 2, 5], [True, True, False, False])
    s = empirical_survival(d, ev, 6)
    # day 1: 4 at risk, 1 paid; day 3: 2 at risk (one censored on day 2), 1 paid
    assert s[:2].tolist() == [1.0, 1.0]
    assert s[2] == pytest.approx(0.75)
    assert s[4] == pytest.approx(0.75 * 0.5)
    assert s[6] == pytest.approx(s[4])


def test_a_day_left_out_of_the_rows_is_out_of_the_risk_set():
    # the censored invoice 2 is disputed on day 1: only 3 invoices at risk that day
    d, ev = _rows([1, 3, 2, 5], [True, True, False, False], skip={2: {1}})
    s = empirical_survival(d, ev, 6)
    assert s[2] == pytest.approx(1 - 1 / 3)
