"""Facts from the contract tables (as of a date), and `rules explain --invoice` on a store."""

from __future__ import annotations

import json
from datetime import UTC, date

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dunning.cli import app
from engine.contract import Action
from legal_rules.facts import FACTS, NEVER_DAYS
from legal_rules.from_tables import facts_for_invoices

AS_OF = date(2026, 3, 2)


def tables() -> dict[str, pd.DataFrame]:
    customers = pd.DataFrame({
        "customer_id": ["c1", "c2", "c3"],
        "name": ["A", "B", "C"],
        "segment": ["corporate", "startup", "construction"],
        "industry": ["Software", None, "construction"],
        "jurisdiction": ["de", "US", "XX"],
        "region": [None, "MA", None],
        "customer_type": ["b2b", "b2c", "b2b"],
        "language": ["de", "en", "en"],
        "customer_since": ["2020-01-01"] * 3,
        "reminder_fee_agreed": [True, None, False],
        "agency_consent": [None, True, False],
        "opted_out_channels": ["", "phone; email", None],
    })
    invoices = pd.DataFrame({
        "invoice_id": ["i1", "i2", "i3", "i4"],
        "customer_id": ["c1", "c2", "c3", "c1"],
        "invoice_date": ["2026-01-01", "2026-01-15", "2026-02-01", "2026-03-05"],
        "due_date": ["2026-01-31", "2026-02-14", "2026-03-10", "2026-04-05"],
        "amount": [1000.0, 200.0, 5000.0, 50.0],
        "currency": ["eur", "USD", "EUR", "EUR"],
        "disputed": [False, True, True, False],
        "dispute_opened": [None, "2026-02-20", "2026-02-10"] + [None],
        "dispute_resolved": [None, None, "2026-02-25", None],
        "milestone_date": [None, None, "2026-04-01", None],
    })
    payments = pd.DataFrame({"payment_id": ["p1", "p2"], "invoice_id": ["i1", "i1"],
                             "payment_date": ["2026-02-10", "2026-03-20"],
                             "amount": [300.0, 700.0]})
    actions = pd.DataFrame({
        "action_id": [f"a{i}" for i in range(6)],
        "invoice_id": ["i1", "i1", "i1", "i2", "i2", "i1"],
        "action_date": ["2026-02-07", "2026-02-20", "2026-02-26", "2026-02-27", "2026-03-01",
                        "2026-03-15"],
        "channel": ["email", "letter", "final_notice", "phone", "phone", "agency"],
        "decided_by": ["policy:fixed"] * 6, "propensity": [1.0] * 6, "complaint": [False] * 6,
    })
    return {"customers": customers, "invoices": invoices, "payments": payments,
            "actions": actions}


def test_facts_per_invoice_as_of():
    f = facts_for_invoices(tables(), AS_OF)
    assert set(FACTS) <= set(f)
    assert f["invoice_id"].tolist() == ["i1", "i2", "i3"]  # i4 not issued yet on AS_OF
    assert f["days_overdue"].tolist() == [30, 16, -8]
    assert f["amount"].tolist() == [700.0, 200.0, 5000.0]  # payment of 03-20 not known yet
    assert f["reminders_sent"].tolist() == [3, 2, 0]
    assert f["days_since_last_contact"].tolist() == [4, 1, NEVER_DAYS]
    assert f["contacts_last_7_days"].tolist() == [1, 2, 0]
    assert f["calls_last_7_days"].tolist() == [0, 2, 0]
    assert f["final_notice_sent"].tolist() == [True, False, False]
    assert f["days_since_final_notice"].tolist() == [4, NEVER_DAYS, NEVER_DAYS]
    assert f["disputed"].tolist() == [False, True, False]  # i3's dispute was resolved
    assert f["jurisdiction"].tolist() == ["DE", "US", "XX"]
    assert f["currency"].tolist() == ["EUR", "USD", "EUR"]
    assert f["region"].tolist() == ["", "MA", ""]
    assert f["industry"].tolist() == ["software", None, "construction"]  # none on file: missing
    assert f["opted_out_email"].tolist() == [False, True, False]
    assert f["opted_out_phone"].tolist() == [False, True, False]
    assert f["agency_consent"].tolist() == [None, True, False]  # missing stays missing
    assert f["reminder_fee_agreed"].tolist() == [True, None, False]
    assert f["milestone_reached"].tolist() == [True, True, False]
    # US: the period varies by state, XX: unknown; neither is in legal_rules/limitation.json,
    # so the fact is missing and a rule that needs it fails closed
    assert f["limitation_passed"].tolist() == [False, None, None]
    assert f["is_weekend"].tolist() == [False] * 3


def test_holidays_and_weekend():
    f = facts_for_invoices(tables(), date(2026, 12, 25))
    # i4 (issued 2026-03-05) is known from then on; XX has no holiday calendar
    assert f["is_bank_holiday"].tolist() == [True, True, None, True]
    f = facts_for_invoices(tables(), date(2026, 3, 7))
    assert f["is_weekend"].all()
    assert f["is_bank_holiday"].tolist() == [False, False, None, False]


def test_facts_feed_both_evaluators(durable, vector):
    f = facts_for_invoices(tables(), AS_OF)
    allowed = vector.mask(f, AS_OF)
    for i in range(3):
        row = {k: (v[i].item() if isinstance(v[i], np.generic) else v[i]) for k, v in f.items()}
        d = durable.decide_all(row, AS_OF)
        assert [d[a].allowed for a in Action] == allowed[i].tolist()
    assert not allowed[1, Action.PHONE]  # MA: 2 calls in 7 days
    assert not allowed[2, 1:].any()  # unknown jurisdiction XX: fail closed


def test_explain_invoice_from_store(tmp_path):
    from engine.store import Store

    db = tmp_path / "dunning.duckdb"
    store = Store(db)
    data = tables()
    for col in ("reminder_fee_agreed", "agency_consent"):  # not nullable in the store
        data["customers"][col] = data["customers"][col].fillna(False).astype(bool)
    with store.connect() as con:
        for name in ("customers", "invoices", "payments", "actions"):
            frame = data[name]  # noqa: F841 - read by DuckDB's replacement scan
            cols = ", ".join(frame.columns)
            con.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM frame")
    res = CliRunner().invoke(app, ["rules", "explain", "--invoice", "i2", "--action", "phone",
                                   "--date", "2026-03-02", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["status"] == "vetoed"
    assert {h["rule_id"] for h in out["fired"]} >= {"us.ma_call_frequency",
                                                     "practice.no_reminder_disputed"}
    res = CliRunner().invoke(app, ["rules", "explain", "--invoice", "nope", "--db", str(db)])
    assert res.exit_code == 2 and "no such invoice" in res.output


def test_local_hour_comes_from_the_action_time_and_the_debtors_time_zone(durable):
    """US consumers: the call-hours rule decides on the local time of the planned call at
    the consumer (state in ``region``); an unknown state blocks the call (fail closed); a
    state with two zones gives the less convenient one."""
    from datetime import datetime, time

    from legal_rules.from_tables import DEFAULT_ACTION_TIME, local_hour, time_zones

    t = tables()
    facts = facts_for_invoices(t, AS_OF)
    hours = dict(zip(facts["invoice_id"], facts["local_hour"], strict=True))
    # default action time 17:00 UTC on Monday 2 March 2026 (EST, UTC-5): 12:00 in Boston
    assert DEFAULT_ACTION_TIME == time(17, 0, tzinfo=UTC)
    assert hours["i2"] == 12.0 and hours["i1"] == 18.0  # MA; Berlin (CET, UTC+1)
    assert hours["i3"] is None  # XX: no known time zone
    early = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)  # 7:30 in Boston
    f = facts_for_invoices(t, AS_OF, action_time=early)
    assert dict(zip(f["invoice_id"], f["local_hour"], strict=True))["i2"] == 7.5
    # a summer evening: 01:05 UTC on 1 July is 21:05 EDT (too late) and 19:05 MDT
    late = datetime(2026, 7, 2, 1, 5, tzinfo=UTC)
    assert local_hour(late, time_zones("US", "NY")) == pytest.approx(21 + 5 / 60)
    assert local_hour(late, time_zones("US", "CO")) == pytest.approx(19 + 5 / 60)
    # Texas spans Central and Mountain time: 13:30 UTC in March is 7:30 CST / 6:30 MST
    tx = local_hour(datetime(2026, 3, 2, 13, 30, tzinfo=UTC), time_zones("US", "TX"))
    assert tx == 6.5  # the less convenient of the two
    assert time_zones("US", "") == () and time_zones("US", None) == ()
    base = {k: (v[1].item() if hasattr(v[1], "item") else v[1]) for k, v in f.items()
            if k != "invoice_id"}
    base.update(disputed=False, opted_out_phone=False, days_since_last_contact=14,
                reminders_sent=1, contacts_last_7_days=0)
    d = durable.decide(base, Action.PHONE, AS_OF)  # 7:30 in Boston
    assert "us.regf_call_hours" in d.vetoed_by
    ok = durable.decide({**base, "local_hour": 12.0}, Action.PHONE, AS_OF)
    assert "us.regf_call_hours" not in ok.blocked_by
    unknown = durable.decide({**base, "local_hour": None}, Action.PHONE, AS_OF)
    assert not unknown.allowed and "us.regf_call_hours" in unknown.blocked_by
    assert "input.missing_fact" in unknown.blocked_by


def test_explain_derives_local_hour_from_action_time(tmp_path):
    case = {"jurisdiction": "US", "region": "NY", "customer_type": "b2c", "action": "phone",
            "due_date": "2026-02-01", "action_time": "2026-03-02T07:15-05:00"}
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case))
    out = CliRunner().invoke(app, ["rules", "explain", "--facts", str(path), "--neutral",
                                   "--date", "2026-03-02", "--technical"])
    assert out.exit_code == 0, out.output
    assert "local_hour=7.25" in out.output.replace(" ", "")
    assert "us.regf_call_hours" in out.output and "VETOED" in out.output.upper()
    path.write_text(json.dumps({**case, "local_hour": 12.0}))
    out = CliRunner().invoke(app, ["rules", "explain", "--facts", str(path), "--neutral",
                                   "--date", "2026-03-02"])
    assert out.exit_code == 2 and "local_hour is 12.0" in out.output
    path.write_text(json.dumps({**case, "action_time": "2026-03-02T07:15"}))
    out = CliRunner().invoke(app, ["rules", "explain", "--facts", str(path), "--neutral",
                                   "--date", "2026-03-02"])
    assert out.exit_code == 2 and "UTC offset" in out.output


@pytest.mark.parametrize(("jur", "ctype", "overdue", "since_invoice", "reminded", "notice",
                          "expected"), [
    # German consumer, BGB § 286: default the day after a reminder following the due date
    ("DE", "b2c", 40, 70, 10, False, 10),
    ("DE", "b2c", 40, 70, 0, False, 0),     # reminded today: default begins tomorrow
    ("DE", "b2c", 40, 70, -1, False, 0),    # no reminder, no notice: not in default
    # ... or 30 days after due date and receipt, only if the invoice said so (§ 286 (3))
    ("DE", "b2c", 40, 70, -1, True, 10),
    ("DE", "b2c", 40, 70, 5, True, 10),     # the earlier of the two
    ("DE", "b2c", 25, 55, -1, True, 0),     # the 30 days are not over yet
    ("DE", "b2c", 40, 35, -1, True, 5),     # receipt after the due date counts from receipt
    # notice unknown: known where it does not matter, else unknown (fails closed)
    ("DE", "b2c", 40, 70, 15, None, 15),    # the reminder came first
    ("DE", "b2c", 20, 50, -1, None, 0),     # neither has happened yet
    ("DE", "b2c", 40, 70, 5, None, None),   # with the notice default began 5 days earlier
    ("DE", "b2c", 40, 70, -1, None, None),
    # German business without a date agreed by the calendar: a reminder after the due date
    # or the 30 days of § 286 (3) (no notice needed), whichever is first
    ("DE", "b2b", 40, 70, -1, None, 10),
    ("DE", "b2b", 40, 70, 25, None, 25),
    ("DE", "b2b", 20, 50, -1, None, 0),
    ("DE", "b2b", -3, 27, -1, None, 0),
    # elsewhere: the day after the due date
    ("FR", "b2c", 40, 70, -1, None, 40),
    ("AT", "b2b", 12, 42, 3, False, 12),
])
def test_default_days_follow_bgb_286(jur, ctype, overdue, since_invoice, reminded, notice,
                                     expected):
    from legal_rules.from_tables import default_days

    got = default_days(np.array([jur], dtype=object), np.array([ctype], dtype=object),
                       np.array([overdue]), np.array([since_invoice]), np.array([reminded]),
                       np.array([notice], dtype=object))[0]
    assert got == expected


@pytest.mark.parametrize(("ctype", "overdue", "reminded", "agreed", "expected"), [
    ("b2b", 40, -1, True, 40),   # § 286 (2) no. 1: from the day after the agreed date
    ("b2b", 40, -1, False, 10),  # only printed on the invoice: the 30 days of § 286 (3)
    ("b2b", 40, -1, None, 10),   # unknown: read as not agreed (the smaller claim)
    ("b2b", 20, -1, True, 20),
    ("b2b", -3, -1, True, 0),    # not due yet
    ("b2c", 20, -1, True, 20),   # (2) no. 1 holds for consumers too, no notice needed
    ("b2c", 20, -1, False, 0),
])
def test_default_from_a_due_date_agreed_by_the_calendar(ctype, overdue, reminded, agreed,
                                                        expected):
    from legal_rules.from_tables import default_days

    got = default_days(np.array(["DE"], dtype=object), np.array([ctype], dtype=object),
                       np.array([overdue]), np.array([overdue + 30]), np.array([reminded]),
                       np.array([False], dtype=object), np.array([agreed], dtype=object))[0]
    assert got == expected
    # elsewhere the agreement changes nothing: the day after the due date
    assert default_days(np.array(["FR"], dtype=object), np.array([ctype], dtype=object),
                        np.array([overdue]), np.array([overdue + 30]), np.array([reminded]),
                        np.array([False], dtype=object),
                        np.array([agreed], dtype=object))[0] == max(overdue, 0)


def test_agreed_due_date_from_the_store_and_in_explain(tmp_path):
    """A German business invoice 29 days overdue, no reminder: in default only if the
    contract fixed the date; the store column and the explain case key say so."""
    t = tables()
    t["actions"] = t["actions"][t["actions"]["invoice_id"] != "i1"]
    day = date(2026, 3, 1)  # i1 due 2026-01-31: 29 days overdue
    for flag, expected in (("yes", 29), ("no", 0), (None, 0)):
        t["invoices"]["due_date_agreed_by_calendar"] = [flag, None, None, None]
        f = facts_for_invoices(t, day)
        assert dict(zip(f["invoice_id"], f["days_in_default"], strict=True))["i1"] == expected
    case = {"jurisdiction": "DE", "customer_type": "b2b", "action": "letter",
            "due_date": "2026-01-31", "invoice_date": "2026-01-01"}
    path = tmp_path / "case.json"
    for agreed, expected in ((True, 29), (False, None)):
        path.write_text(json.dumps(dict(case, due_date_agreed_by_calendar=agreed)), "utf-8")
        res = CliRunner().invoke(app, ["rules", "explain", "--facts", str(path), "--date",
                                       day.isoformat(), "--neutral", "--json"])
        assert res.exit_code == 0, res.output
        out = json.loads(res.output)
        out = out[0] if isinstance(out, list) else out
        # not agreed and no word on reminders: not derived (the neutral value fills it)
        assert out["facts_derived_from_date"].get("days_in_default") == expected
    path.write_text(json.dumps(dict(case, due_date_agreed_by_calendar="yes")), "utf-8")
    res = CliRunner().invoke(app, ["rules", "explain", "--facts", str(path), "--date",
                                   day.isoformat(), "--neutral"])
    assert res.exit_code == 2 and "due_date_agreed_by_calendar: expected true or false" \
        in res.output


def test_days_in_default_from_the_store_and_in_explain(tmp_path):
    """The store's actions give the first reminder after the due date (one before it does not
    count); explain derives the fact from first_reminder_date and the notice flag and refuses
    a contradicting value."""
    t = tables()
    t["customers"].loc[0, "customer_type"] = "b2c"  # c1: a German consumer
    t["invoices"]["consumer_notice_on_invoice"] = ["no", None, None, None]
    facts = facts_for_invoices(t, AS_OF)
    got = dict(zip(facts["invoice_id"], facts["days_in_default"], strict=True))
    state_actions = t["actions"][t["actions"]["invoice_id"] == "i1"]
    after_due = pd.to_datetime(state_actions["action_date"]) > pd.Timestamp("2026-01-31")
    first = pd.to_datetime(state_actions.loc[after_due, "action_date"]).min()
    expected = (pd.Timestamp(AS_OF) - first).days if pd.notna(first) else 0
    assert got["i1"] == expected
    assert got["i2"] == (AS_OF - date(2026, 2, 14)).days  # US: the day after due
    case = {"jurisdiction": "DE", "customer_type": "b2c", "action": "letter",
            "due_date": "2026-01-31", "first_reminder_date": "2026-02-20",
            "consumer_notice_on_invoice": False}
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case))
    out = CliRunner().invoke(app, ["rules", "explain", "--facts", str(path), "--neutral",
                                   "--date", "2026-03-02", "--technical"])
    assert out.exit_code == 0 and "days_in_default=10" in out.output, out.output
    assert "de.interest_b2c" in out.output
    path.write_text(json.dumps({**case, "days_in_default": 30}))
    out = CliRunner().invoke(app, ["rules", "explain", "--facts", str(path), "--neutral",
                                   "--date", "2026-03-02"])
    assert out.exit_code == 2 and "days_in_default is 30" in out.output
    # no reminder and no notice: not in default, so no interest cap at all
    path.write_text(json.dumps({**case, "first_reminder_date": None}))
    out = CliRunner().invoke(app, ["rules", "explain", "--facts", str(path), "--neutral",
                                   "--date", "2026-03-02", "--technical"])
    assert out.exit_code == 0 and "days_in_default=0" in out.output
    assert "max_interest_rate" not in out.output
