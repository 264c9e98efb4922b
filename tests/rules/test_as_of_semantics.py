"""The decision-date semantics of the one facts builder (legal_rules.from_tables): events dated
on or before D count; a dispute blocks from its opening day through its resolution day."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import pytest

from engine.contract import Action
from legal_rules.facts import NEVER_DAYS
from legal_rules.from_tables import (
    facts_for_invoices,
    invoice_states,
    limitation_flags,
    limitation_periods,
)
from legal_rules.loader import RuleFileError

D = date(2026, 3, 3)  # a Tuesday, no holiday in DE


def _day(offset: int) -> str:
    return (D + timedelta(days=offset)).isoformat()


def world(actions=(), payments=(), dispute=(None, None)) -> dict[str, pd.DataFrame]:
    """One DE b2b invoice, 40 days overdue on D; ``actions``/``payments``: (day offset, ...)."""
    customers = pd.DataFrame({
        "customer_id": ["c1"], "name": ["A"], "segment": ["corporate"], "industry": ["software"],
        "jurisdiction": ["DE"], "region": [None], "customer_type": ["b2b"], "language": ["de"],
        "customer_since": ["2020-01-01"], "reminder_fee_agreed": [False],
        "agency_consent": [True], "opted_out_channels": [""]})
    opened, resolved = dispute
    invoices = pd.DataFrame({
        "invoice_id": ["i1"], "customer_id": ["c1"], "invoice_date": [_day(-70)],
        "due_date": [_day(-40)], "amount": [1000.0], "currency": ["EUR"],
        "disputed": [opened is not None],
        "dispute_opened": [None if opened is None else _day(opened)],
        "dispute_resolved": [None if resolved is None else _day(resolved)],
        "milestone_date": [None]})
    acts = pd.DataFrame({
        "action_id": [f"a{k}" for k in range(len(actions))],
        "invoice_id": ["i1"] * len(actions),
        "action_date": [_day(o) for o, _ in actions],
        "channel": [c for _, c in actions], "decided_by": ["user"] * len(actions),
        "propensity": [1.0] * len(actions), "complaint": [False] * len(actions)})
    pays = pd.DataFrame({
        "payment_id": [f"p{k}" for k in range(len(payments))],
        "invoice_id": ["i1"] * len(payments),
        "payment_date": [_day(o) for o, _ in payments], "amount": [a for _, a in payments]})
    return {"customers": customers, "invoices": invoices, "payments": pays, "actions": acts}


def one(tables: dict[str, pd.DataFrame], day: date = D) -> dict:
    f = facts_for_invoices(tables, day)
    assert f["invoice_id"].tolist() == ["i1"]
    return {k: (v[0].item() if hasattr(v[0], "item") else v[0]) for k, v in f.items()}


def test_action_on_the_decision_day_counts_and_the_min_gap_vetoes_a_second(vector, ruleset):
    f = one(world(actions=[(0, "email")]))
    assert f["days_since_last_contact"] == 0
    assert f["contacts_last_7_days"] == 1 and f["reminders_sent"] == 1
    facts = facts_for_invoices(world(actions=[(0, "email")]), D)
    batch = vector.evaluate(facts, D)
    assert not batch.allowed[0, Action.EMAIL] and not batch.allowed[0, Action.LETTER]
    assert "practice.min_gap" in {r.id for k, r in enumerate(ruleset.rules) if batch.fired[0, k]}
    # without the action of D the same invoice may be reminded: the action made the difference
    assert facts_for_invoices(world(), D)["days_since_last_contact"][0] == NEVER_DAYS
    assert vector.evaluate(facts_for_invoices(world(), D), D).allowed[0, Action.EMAIL]


def test_an_action_after_the_decision_day_is_not_known():
    f = one(world(actions=[(1, "email")]))
    assert f["days_since_last_contact"] == NEVER_DAYS and f["reminders_sent"] == 0


def test_final_notice_and_calls_on_the_decision_day():
    f = one(world(actions=[(0, "final_notice"), (-2, "phone"), (0, "phone")]))
    assert f["final_notice_sent"] and f["days_since_final_notice"] == 0
    assert f["calls_last_7_days"] == 2 and f["contacts_last_7_days"] == 3


def test_last_seven_days_is_the_decision_day_and_the_six_before():
    f = one(world(actions=[(-6, "email"), (-7, "letter"), (-20, "phone")]))
    assert f["contacts_last_7_days"] == 1
    assert f["calls_last_7_days"] == 0
    assert f["days_since_last_contact"] == 6 and f["reminders_sent"] == 3


def test_payment_on_the_decision_day_reduces_the_open_amount():
    assert one(world(payments=[(0, 400.0)]))["amount"] == 600.0
    assert one(world(payments=[(1, 400.0)]))["amount"] == 1000.0  # tomorrow's: not known
    state = invoice_states(world(payments=[(-3, 600.0), (0, 400.0)]), D)
    assert state["open_amount"].tolist() == [0.0] and not state["is_open"].iloc[0]
    state = invoice_states(world(payments=[(-3, 600.0), (1, 400.0)]), D)
    assert state["is_open"].tolist() == [True]


@pytest.mark.parametrize("opened, resolved, disputed", [
    (0, None, True),     # opened on D: blocks on D
    (1, None, False),    # opened tomorrow: not known yet
    (-5, 0, True),       # resolved on D: still blocks on D ...
    (-5, -1, False),     # ... dunning resumes the day after the resolution
    (-5, 1, True),       # resolved tomorrow: open today
    (0, 0, True),        # opened and resolved on D
])
def test_dispute_blocks_from_opening_through_resolution_day(opened, resolved, disputed):
    assert one(world(dispute=(opened, resolved)))["disputed"] is disputed


def test_dispute_resolved_on_d_blocks_on_d_and_not_on_the_next_day(vector):
    tables = world(dispute=(-5, 0))
    on_d = facts_for_invoices(tables, D)
    next_day = facts_for_invoices(tables, D + timedelta(days=1))
    assert on_d["disputed"].tolist() == [True] and next_day["disputed"].tolist() == [False]
    assert not vector.evaluate(on_d, D).allowed[0, Action.EMAIL]
    assert vector.evaluate(next_day, D + timedelta(days=1)).allowed[0, Action.EMAIL]


def test_agency_handover_on_the_decision_day_closes_the_invoice_for_dunning():
    state = invoice_states(world(actions=[(0, "agency")]), D)
    assert state["handed_to_agency"].tolist() == [True] and not state["is_open"].iloc[0]
    assert state["reminders_sent"].tolist() == [0]  # an agency handover is not a reminder
    state = invoice_states(world(actions=[(1, "agency")]), D)
    assert state["is_open"].tolist() == [True]


def test_invoice_dated_on_the_decision_day_is_known():
    tables = world()
    tables["invoices"].loc[0, "invoice_date"] = D.isoformat()
    assert facts_for_invoices(tables, D)["invoice_id"].tolist() == ["i1"]
    assert facts_for_invoices(tables, D - timedelta(days=1))["invoice_id"].tolist() == []


def test_a_given_state_frame_is_used_as_is():
    tables = world(actions=[(0, "email")])
    state = invoice_states(tables, D)
    a = facts_for_invoices(tables, D)
    b = facts_for_invoices({}, D, state=state)  # tables are not read again
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].tolist() == b[k].tolist(), k


# --------------------------------------------------------------------------- limitation data
def test_packaged_limitation_periods_have_citations():
    periods = limitation_periods()
    assert {"DE", "AT", "SE", "FR", "GB", "NL", "IT", "ES"} <= set(periods)
    assert "US" not in periods  # varies by state: unknown, rules needing it fail closed
    assert all(p.citation.strip() for p in periods.values())
    assert periods["DE"].starts == "end_of_year" and periods["SE"].years("b2b") == 10


def test_limitation_is_vectorised_per_row():
    due = pd.Series(pd.to_datetime(["2022-03-01", "2023-01-15", "2023-01-15", "2020-02-29",
                                    None, "2020-01-01"]))
    out = limitation_flags(due, ["de", "FR", "FR", "SE", "DE", "US"],
                           ["B2B", "b2c", "b2b", "b2c", "b2b", "b2b"], date(2026, 1, 1))
    assert out.tolist() == [True, True, False, True, None, None]


def test_bad_limitation_file_names_entry_and_field(tmp_path):
    path = tmp_path / "limitation.json"
    path.write_text(json.dumps({"periods": [
        {"jurisdiction": "DE", "b2b_years": 3, "b2c_years": 3, "starts": "due_date",
         "citation": "BGB"},
        {"jurisdiction": "fr", "b2b_years": 0, "b2c_years": 2, "starts": "when",
         "citation": ""}]}))
    with pytest.raises(RuleFileError) as err:
        limitation_periods(path)
    text = str(err.value)
    for field in ("periods[1].jurisdiction", "periods[1].b2b_years", "periods[1].starts",
                  "periods[1].citation"):
        assert field in text
    assert "periods[0]" not in text
