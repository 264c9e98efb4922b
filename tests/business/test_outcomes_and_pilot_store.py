"""Outcomes from a real store, and a whole pilot analysis with a planted effect."""

from __future__ import annotations

import pandas as pd
import pytest

from dunning.business.outcomes import invoice_outcomes, load_tables
from dunning.business.pilot import analyse_pilot
from engine.errors import InputError


def small_tables() -> dict[str, pd.DataFrame]:
    d = pd.Timestamp
    invoices = pd.DataFrame({
        "invoice_id": ["A", "B", "C", "D"], "customer_id": ["x", "x", "y", "y"],
        "invoice_date": [d("2025-01-01")] * 4, "due_date": [d("2025-01-31")] * 4,
        "amount": [100.0, 200.0, 300.0, 400.0],
    })
    payments = pd.DataFrame({
        "invoice_id": ["A", "B", "B", "C"],
        "payment_date": [d("2025-02-10"), d("2025-01-20"), d("2025-03-01"), d("2025-03-20")],
        "amount": [100.0, 50.0, 150.0, 100.0],  # C only partly paid
    })
    actions = pd.DataFrame({
        "invoice_id": ["A", "B", "C", "D"],
        "action_date": [d("2025-02-05"), d("2025-02-14"), d("2025-02-14"), d("2025-03-25")],
        "channel": ["email"] * 4, "complaint": [False, True, False, False],
    })
    return {"invoices": invoices, "payments": payments, "actions": actions}


def test_invoice_outcomes_hand_computed():
    out = invoice_outcomes(small_tables(), as_of=pd.Timestamp("2025-03-31").date())
    out = out.set_index("invoice_id")
    assert out.loc["A", "days_to_pay"] == 40 and out.loc["A", "paid"]
    assert out.loc["B", "days_to_pay"] == 59  # paid in full on 03-01
    assert not out.loc["C", "paid"] and out.loc["C", "days_to_pay"] == 89  # age on as-of
    # A paid 5 days after its reminder; B 15 days after (window 14); C never in full;
    # D's window (03-25 + 14) has not ended on 03-31 -> unknown
    assert out.loc["A", "first_reminder_pay_rate"] == 1.0
    assert out.loc["B", "first_reminder_pay_rate"] == 0.0
    assert out.loc["C", "first_reminder_pay_rate"] == 0.0
    assert pd.isna(out.loc["D", "first_reminder_pay_rate"])
    assert out.loc["B", "complaints"] == 1 and out.loc["A", "n_actions"] == 1
    # A: 100 paid 10 days after due at 3 % a year
    assert out.loc["A", "npv"] == pytest.approx(100 / 1.03 ** (10 / 365))
    assert out.loc["D", "npv"] == 0.0


def test_outcomes_ignore_the_future():
    early = invoice_outcomes(small_tables(), as_of=pd.Timestamp("2025-02-12").date())
    early = early.set_index("invoice_id")
    assert early.loc["A", "paid"] and not early.loc["B", "paid"]
    assert pd.isna(early.loc["B", "first_reminder_pay_rate"])  # reminder not sent yet
    assert early.loc["B", "npv"] == pytest.approx(50 / 1.03 ** (-11 / 365))


def test_planted_effect_is_recovered_from_the_store(planted_store):
    db, assignment, planted = (planted_store[k] for k in ("db", "assignment", "planted_days"))
    result = analyse_pilot(assignment, db, planted_store["start"], ["days_to_pay"])
    c = result["comparisons"][0]
    assert c["significant"]
    assert c["ci_low"] <= -planted <= c["ci_high"]
    assert c["difference"] == pytest.approx(-planted, abs=4)
    assert not result["guard"][-1]["stop"]  # complaints equally likely: no stop


def test_null_arms_from_the_store_are_not_significant(planted_store):
    db, assignment = planted_store["db"], planted_store["assignment"]
    # compare within the current arm only: half of it relabelled "learned"
    current = assignment[assignment["arm"] == "current"].reset_index(drop=True)
    fake = current.assign(arm=["current", "learned"] * (len(current) // 2))
    result = analyse_pilot(fake, db, planted_store["start"], ["days_to_pay"])
    assert not result["comparisons"][0]["significant"]


def test_load_tables_refuses_a_missing_store(tmp_path):
    with pytest.raises(InputError, match="store file not found"):
        load_tables(tmp_path / "nope.duckdb")
    assert not (tmp_path / "nope.duckdb").exists()
