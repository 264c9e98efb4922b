"""Call attempts counted apart from written reminders (issue #23): the company's gap and
count rules count email, letter and final notice; calls have their own rule (one contact a
day), so a US consumer may get the calls Regulation F allows without a company veto."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
import pytest

from engine.contract import Action
from legal_rules.facts import NEVER_DAYS, history_contradictions
from legal_rules.from_tables import facts_for_invoices

DAY = date(2026, 3, 4)  # a Wednesday; no US federal holiday in the week before
US_B2C = {"jurisdiction": "US", "customer_type": "b2c", "currency": "USD"}


def both(durable, vector, row: dict[str, Any], action: Action) -> tuple[Any, bool]:
    """The durable_rules decision of ``action`` and whether the numpy mask agrees."""
    d = durable.decide(row, action, DAY)
    m = vector.mask({k: [v] for k, v in row.items()}, DAY)[0]
    assert bool(m[action]) == d.allowed, (action, row)
    return d, d.allowed


def test_second_to_seventh_call_in_seven_days_allowed_eighth_vetoed(durable, vector, facts):
    # one written reminder 14 days ago, then a call attempt on each of the last k-1 days
    for k in range(2, 8):
        row = facts(**US_B2C, calls_last_7_days=k - 1, contacts_last_7_days=k - 1,
                    days_since_last_contact=1, reminders_sent=k, written_reminders_sent=1,
                    days_since_last_written_reminder=14)
        d, allowed = both(durable, vector, row, Action.PHONE)
        assert allowed, (k, d.vetoed_by)
    # the 8th within 7 days: 7 already (one of them today): Regulation F vetoes it
    row = facts(**US_B2C, calls_last_7_days=7, contacts_last_7_days=7,
                days_since_last_contact=0, reminders_sent=8, written_reminders_sent=1,
                days_since_last_written_reminder=14)
    d, allowed = both(durable, vector, row, Action.PHONE)
    assert not allowed and "us.regf_call_frequency" in d.vetoed_by
    # with six calls and none today, the seventh is allowed even after 3 written reminders
    row = facts(**US_B2C, calls_last_7_days=6, contacts_last_7_days=6, days_since_last_contact=1,
                reminders_sent=9, written_reminders_sent=3, days_since_last_written_reminder=20)
    assert both(durable, vector, row, Action.PHONE)[1]
    assert "practice.max_reminders" in both(durable, vector, row, Action.EMAIL)[0].vetoed_by


def test_written_reminder_gap_ignores_calls(durable, vector, facts):
    after_call = facts(days_since_last_contact=3, calls_last_7_days=1, contacts_last_7_days=1,
                       reminders_sent=2, written_reminders_sent=1,
                       days_since_last_written_reminder=14)
    for action in (Action.EMAIL, Action.LETTER):
        assert both(durable, vector, after_call, action)[1]
    after_written = facts(days_since_last_contact=3, contacts_last_7_days=1,
                          reminders_sent=2, written_reminders_sent=2,
                          days_since_last_written_reminder=3)
    d, allowed = both(durable, vector, after_written, Action.LETTER)
    assert not allowed and d.vetoed_by == ("practice.min_gap",)
    # a call 3 days after a written reminder is fine (no 7-day gap for calls)
    assert both(durable, vector, after_written, Action.PHONE)[1]


def test_final_notice_needs_two_written_reminders_not_calls(durable, vector, facts):
    calls_only = facts(reminders_sent=4, written_reminders_sent=0,
                       days_since_last_written_reminder=NEVER_DAYS, days_since_last_contact=9)
    d, allowed = both(durable, vector, calls_only, Action.FINAL_NOTICE)
    assert not allowed and "practice.final_notice_after_reminders" in d.vetoed_by
    written = facts(reminders_sent=4, written_reminders_sent=2,
                    days_since_last_written_reminder=9, days_since_last_contact=9)
    assert both(durable, vector, written, Action.FINAL_NOTICE)[1]


def _us_tables(actions: list[tuple[int, str]]) -> dict[str, pd.DataFrame]:
    """One US consumer invoice, overdue since 2026-02-01, with ``actions`` as (days before
    DAY, channel)."""
    customers = pd.DataFrame({
        "customer_id": ["c1"], "name": ["A"], "segment": ["startup"], "industry": ["retail"],
        "jurisdiction": ["US"], "region": ["NY"], "customer_type": ["b2c"], "language": ["en"],
        "customer_since": ["2020-01-01"], "reminder_fee_agreed": [False],
        "agency_consent": [False], "opted_out_channels": [""]})
    invoices = pd.DataFrame({
        "invoice_id": ["i1"], "customer_id": ["c1"], "invoice_date": ["2026-01-02"],
        "due_date": ["2026-02-01"], "amount": [900.0], "currency": ["USD"],
        "disputed": [False]})
    payments = pd.DataFrame({"payment_id": pd.Series([], dtype=str),
                             "invoice_id": pd.Series([], dtype=str),
                             "payment_date": pd.Series([], dtype=str),
                             "amount": pd.Series([], dtype=float)})
    acts = pd.DataFrame({
        "action_id": [f"a{i}" for i in range(len(actions))],
        "invoice_id": ["i1"] * len(actions),
        "action_date": [(DAY - timedelta(days=ago)).isoformat() for ago, _ in actions],
        "channel": [ch for _, ch in actions], "decided_by": ["user:x"] * len(actions),
        "propensity": [1.0] * len(actions), "complaint": [False] * len(actions)})
    return {"customers": customers, "invoices": invoices, "payments": payments,
            "actions": acts}


def _row(tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    f = facts_for_invoices(tables, DAY)
    row = {k: (v[0].item() if hasattr(v[0], "item") else v[0]) for k, v in f.items()}
    row.pop("invoice_id")
    return row


def test_store_history_gives_the_call_and_written_facts(durable, vector):
    # an email 20 days ago, a letter 10 days ago, then a call on each of the last 6 days
    history = [(20, "email"), (10, "letter")] + [(ago, "phone") for ago in range(1, 7)]
    row = _row(_us_tables(history))
    assert (row["reminders_sent"], row["written_reminders_sent"]) == (8, 2)
    assert row["days_since_last_written_reminder"] == 10
    assert (row["days_since_last_contact"], row["calls_last_7_days"]) == (1, 6)
    assert history_contradictions(row) == []
    assert both(durable, vector, row, Action.PHONE)[1]  # the 7th call in 7 days
    assert both(durable, vector, row, Action.EMAIL)[1]  # written, 1 day after a call
    # the same day: a second contact is vetoed (company), an 8th call also by Regulation F
    row = _row(_us_tables(history + [(0, "phone")]))
    d, allowed = both(durable, vector, row, Action.PHONE)
    assert not allowed and set(d.vetoed_by) == {"practice.one_contact_a_day",
                                                "us.regf_call_frequency"}
    # a letter 3 days after the letter: the written gap vetoes it, calls between or not
    row = _row(_us_tables([(20, "email"), (3, "letter"), (1, "phone")]))
    d, allowed = both(durable, vector, row, Action.LETTER)
    assert not allowed and d.vetoed_by == ("practice.min_gap",)


@pytest.mark.parametrize(("change", "needle"), [
    ({"written_reminders_sent": 3, "reminders_sent": 2}, "more than reminders_sent"),
    ({"days_since_last_written_reminder": 2, "days_since_last_contact": 5}, "less than"),
    ({"written_reminders_sent": 0}, "10000 means none"),
])
def test_history_contradictions(facts, change, needle):
    assert history_contradictions(facts()) == []
    (problem,) = history_contradictions(facts(**change))
    assert needle in problem


def test_explain_refuses_a_history_that_does_not_add_up(tmp_path):
    import json

    from typer.testing import CliRunner

    from dunning.cli import app

    path = tmp_path / "case.json"
    case = {**US_B2C, "action": "phone", "reminders_sent": 0,
            "days_since_last_contact": NEVER_DAYS}
    path.write_text(json.dumps(case), "utf-8")
    res = CliRunner().invoke(app, ["rules", "explain", "--facts", str(path), "--date",
                                   DAY.isoformat(), "--neutral"])
    assert res.exit_code == 2
    assert "written_reminders_sent is 1, more than reminders_sent 0" in res.output
    path.write_text(json.dumps({**case, "written_reminders_sent": 0,
                                "days_since_last_written_reminder": NEVER_DAYS}), "utf-8")
    res = CliRunner().invoke(app, ["rules", "explain", "--facts", str(path), "--date",
                                   DAY.isoformat(), "--neutral", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    out = out[0] if isinstance(out, list) else out
    assert out["status"] == "allowed"
