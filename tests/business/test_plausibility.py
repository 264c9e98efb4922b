"""Plausibility checks: each flag fires on its case and only there."""

from __future__ import annotations

import pandas as pd
import pytest

from dunning.business.plausibility import FLAGS, PlausibilityConfig, check_recommendations
from engine.contract import Action
from engine.errors import InputError

HISTORY = pd.DataFrame({"customer_id": ["A"] * 4 + ["B"] * 2,
                        "amount": [100.0, 120.0, 80.0, 110.0, 5.0, 5_000.0]})


def rec(**overrides) -> dict:
    base = {"invoice_id": "I1", "customer_id": "A", "amount": 100.0,
            "invoice_date": "2025-01-01", "due_date": "2025-01-31", "as_of": "2025-02-14",
            "p_on_time": 0.4, "p_on_time_prev": 0.45, "action": "email"}
    return base | overrides


CASES = [
    ({}, set()),
    ({"amount": 1_500.0}, {"unusual_amount"}),
    ({"amount": 5.0}, {"unusual_amount"}),
    ({"customer_id": "B", "amount": 60_000.0}, set()),  # B has too little history to judge
    ({"amount": 0.0}, {"bad_amount", "unusual_amount"}),
    ({"due_date": "2024-12-01", "as_of": "2025-01-10"}, {"due_before_invoice"}),
    ({"as_of": "2024-12-20", "action": "wait"}, {"as_of_before_invoice"}),
    ({"as_of": "2025-01-20"}, {"reminder_before_due"}),
    ({"as_of": "2025-01-20", "action": Action.WAIT}, set()),
    ({"p_on_time": 1.3, "p_on_time_prev": None}, {"bad_probability"}),
    ({"p_on_time": 0.9, "p_on_time_prev": 0.3}, {"risk_jump"}),
    ({"p_on_time": 0.05, "p_on_time_prev": 0.44}, set()),  # 0.39: below the 0.4 threshold
    ({"action": "agency", "amount": 90.0}, {"agency_small_amount"}),
    ({"action": int(Action.FINAL_NOTICE), "p_on_time": 0.85, "p_on_time_prev": 0.8},
     {"escalation_likely_payer"}),
]


@pytest.mark.parametrize(("overrides", "expected"), CASES)
def test_each_flag_fires_on_its_case_only(overrides, expected):
    out = check_recommendations(pd.DataFrame([rec(**overrides)]), history=HISTORY)
    fired = {code for code in FLAGS if out[code].iloc[0]}
    assert fired == expected
    assert out["flagged"].iloc[0] == bool(expected)
    reasons = out["reasons"].iloc[0]
    assert all(code in reasons for code in expected)
    assert (reasons == "") == (not expected)


def test_rows_are_kept_in_order_with_their_index():
    recs = pd.DataFrame([rec(invoice_id=f"I{i}", amount=100.0 * (1 + 20 * (i % 2)))
                         for i in range(6)], index=range(10, 16))
    out = check_recommendations(recs, history=HISTORY)
    assert list(out.index) == list(recs.index)
    assert list(out["invoice_id"]) == list(recs["invoice_id"])
    assert list(out["flagged"]) == [False, True] * 3


def test_without_history_the_amount_range_is_not_judged():
    out = check_recommendations(pd.DataFrame([rec(amount=1e6)]))
    assert not out["flagged"].iloc[0]


def test_thresholds_are_configurable():
    row = pd.DataFrame([rec(p_on_time=0.7, p_on_time_prev=0.45)])
    assert not check_recommendations(row)["risk_jump"].iloc[0]
    strict = PlausibilityConfig(max_risk_jump=0.2)
    assert check_recommendations(row, config=strict)["risk_jump"].iloc[0]


def test_bad_input_is_named():
    with pytest.raises(InputError, match="p_on_time"):
        check_recommendations(pd.DataFrame([rec()]).drop(columns="p_on_time"))
    with pytest.raises(InputError, match="field action is 'fax'"):
        check_recommendations(pd.DataFrame([rec(action="fax")]))
