"""Events after a recommendation (`dunning record`, `POST /events`): each one changes the
next day's recommendation as documented in docs/operations.md, and is audited."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dunning.cli import app
from dunning.ops.audit import AuditLog
from dunning.ops.events import record
from dunning.ops.recommend import Recommender
from engine.errors import InputError
from engine.events import Event
from engine.ingest import ingest
from engine.store import WITH_EVENTS, Store
from legal_rules.from_tables import facts_for_invoices, invoice_states

D = dt.date(2024, 3, 18)  # a Monday; the invoices fell due 14 days before: first reminder
CUSTOMERS = """customer_id,name,segment,jurisdiction,region,customer_type,language,agency_consent
C1,Alpha GmbH,corporate,DE,,b2b,de,true
C2,Bob Smith,corporate,US,NY,b2c,en,true
"""
INVOICES = """invoice_id,customer_id,invoice_date,due_date,amount,currency
I1,C1,2024-02-03,2024-03-04,1000.00,EUR
I2,C1,2024-02-03,2024-03-04,1000.00,EUR
I3,C1,2024-02-03,2024-03-04,500.00,EUR
I4,C2,2024-02-03,2024-03-04,300.00,USD
"""


@pytest.fixture
def store(tmp_path: Path) -> Store:
    files = []
    for name, text in (("customers", CUSTOMERS), ("invoices", INVOICES)):
        path = tmp_path / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        files.append(path)
    st = Store(tmp_path / "db" / "dunning.duckdb")
    assert ingest(files, db=st).quarantined == 0
    return st


def actions(store: Store, day: dt.date) -> dict[str, str]:
    """The daily run's action per open invoice on ``day``."""
    frame = Recommender(store).run(day).frame
    return dict(zip(frame["invoice_id"], frame["action"], strict=True))


def state(store: Store, day: dt.date):  # noqa: ANN201
    return invoice_states(store.tables(as_of=day, names=WITH_EVENTS), day).set_index(
        "invoice_id")


def test_without_events_every_invoice_gets_its_first_reminder(store) -> None:
    assert actions(store, D) == {"I1": "email", "I2": "email", "I3": "email", "I4": "email"}


def test_a_dispute_stops_reminders_until_it_is_resolved(store) -> None:
    record(store, Event("dispute_opened", D - dt.timedelta(days=1), invoice_id="I1"))
    got = actions(store, D)
    assert got["I1"] == "wait" and got["I2"] == "email"
    rec = Recommender(store).run(D).frame.set_index("invoice_id").loc["I1"]
    assert "practice.no_reminder_disputed" in {v["rule_id"] for v in rec["vetoes"]}
    # resolved on Tuesday: it still blocks that day, dunning resumes on Wednesday
    record(store, Event("dispute_resolved", D + dt.timedelta(days=1), invoice_id="I1"))
    assert actions(store, D + dt.timedelta(days=1))["I1"] == "wait"
    assert actions(store, D + dt.timedelta(days=2))["I1"] == "email"
    # a second dispute: the events, not the invoice's single dispute columns, decide
    record(store, Event("dispute_opened", D + dt.timedelta(days=3), invoice_id="I1"))
    assert bool(state(store, D + dt.timedelta(days=3)).loc["I1", "disputed_now"])
    with pytest.raises(InputError, match="already disputed"):
        record(store, Event("dispute_opened", D + dt.timedelta(days=4), invoice_id="I1"))


def test_a_promise_to_pay_pauses_reminders_until_its_date_then_they_resume(store) -> None:
    promised = D + dt.timedelta(days=3)  # Thursday
    record(store, Event("promise_to_pay", D - dt.timedelta(days=1), invoice_id="I1",
                        promised_date=promised, amount=1000.0))
    assert actions(store, D)["I1"] == "wait"
    assert actions(store, promised)["I1"] == "wait"
    rec = Recommender(store).run(promised).frame.set_index("invoice_id").loc["I1"]
    assert "practice.promise_to_pay" in {v["rule_id"] for v in rec["vetoes"]}
    assert actions(store, promised + dt.timedelta(days=1))["I1"] == "email"  # Friday
    # the promise is known from the day it was given, not before (as-of correct)
    assert not state(store, D - dt.timedelta(days=2)).loc["I1", "promise_to_pay_pending"]


def test_overpayment_closes_the_invoice_and_books_the_rest_as_interest_and_fees(
        store) -> None:
    done = record(store, Event("payment", D - dt.timedelta(days=1), invoice_id="I1",
                               amount=1052.50))
    r = done.recorded
    assert (r.principal, r.interest_fees, r.loaded) == (1000.0, 52.5, True)
    assert "I1" not in actions(store, D)
    s = state(store, D)
    assert s.loc["I1", "open_amount"] == 0 and s.loc["I1", "interest_fees_paid"] == 52.5
    assert store.table("payments").set_index("payment_id").loc[r.event_id, "amount"] == 1052.5
    # recording it again is one payment, not two
    assert not record(store, Event("payment", D - dt.timedelta(days=1), invoice_id="I1",
                                   amount=1052.50)).recorded.loaded
    with pytest.raises(InputError, match="more than twice its amount"):
        record(store, Event("payment", D, invoice_id="I2", amount=2000.01))


def test_partial_payment_credit_note_and_write_off_lower_the_open_amount(store) -> None:
    record(store, Event("payment", D - dt.timedelta(days=3), invoice_id="I2", amount=300))
    record(store, Event("credit_note", D - dt.timedelta(days=2), invoice_id="I2",
                        amount=200))
    assert state(store, D).loc["I2", "open_amount"] == 500
    with pytest.raises(InputError, match="more than the open amount"):
        record(store, Event("credit_note", D, invoice_id="I2", amount=600))
    done = record(store, Event("write_off", D - dt.timedelta(days=1), invoice_id="I2"))
    assert done.recorded.amount == 500  # everything open
    assert state(store, D).loc["I2", "open_amount"] == 0
    assert "I2" not in actions(store, D)
    assert state(store, D - dt.timedelta(days=2)).loc["I2", "open_amount"] == 500


def test_a_conversation_feeds_the_us_call_rule_and_attempts_count_as_calls(store) -> None:
    record(store, Event("contact_attempt", D - dt.timedelta(days=2), invoice_id="I4"))
    record(store, Event("contact_attempt", D - dt.timedelta(days=2), invoice_id="I4",
                        event_id="second-call"))
    s = state(store, D).loc["I4"]
    assert s["calls_last_7_days"] == 2 and s["days_since_conversation"] >= 10_000
    record(store, Event("conversation", D - dt.timedelta(days=1), invoice_id="I4"))
    facts = facts_for_invoices(store.tables(as_of=D, names=WITH_EVENTS), D)
    i = list(facts["invoice_id"]).index("I4")
    assert facts["days_since_conversation"][i] == 1 and facts["calls_last_7_days"][i] == 3
    from dunning.ops.recommend import compiled_rules
    from engine.contract import Action

    _, vector, durable = compiled_rules()
    batch = vector.evaluate(facts, D)
    assert not batch.allowed[i, Action.PHONE]
    decision = durable.decide({k: v[i] for k, v in facts.items()}, Action.PHONE, D)
    assert "us.regf_after_conversation" in {h.rule_id for h in decision.fired}
    # 7 days after the conversation the rule no longer bars a call
    later = D + dt.timedelta(days=6)
    f2 = facts_for_invoices(store.tables(as_of=later, names=WITH_EVENTS), later)
    assert f2["days_since_conversation"][list(f2["invoice_id"]).index("I4")] == 7


def test_a_call_logged_as_action_and_as_event_counts_once(store, plant_actions,
                                                          tmp_path) -> None:
    # the ERP's action export (a Sunday call: what happened, not what dunning would allow)
    plant_actions(store.path, [("I4", "phone", D - dt.timedelta(days=1))], tmp_path)
    record(store, Event("conversation", D - dt.timedelta(days=1), invoice_id="I4"))
    assert state(store, D).loc["I4", "calls_last_7_days"] == 1


def test_an_opt_out_removes_the_channel_from_its_effective_date(store) -> None:
    done = record(store, Event("opt_out", D, customer_id="C1", channel="email"))
    assert done.recorded.changed_fields == ("opted_out_channels",)
    got = actions(store, D)
    assert got["I1"] != "email" and got["I4"] == "email"
    before = state(store, D - dt.timedelta(days=1)).loc["I1", "opted_out_channels"]
    assert before != before or before in ("", None)  # missing before the opt-out
    with pytest.raises(InputError, match="already stopped"):
        record(store, Event("opt_out", D, invoice_id="I1", channel="email"))


def test_a_customer_change_is_a_new_version_and_both_are_audited(store) -> None:
    record(store, Event("customer_change", D, customer_id="C1",
                        changes={"language": "en", "name": "Alpha AG"}, note="called in"))
    now = store.table("customers").set_index("customer_id").loc["C1"]
    old = store.tables(as_of=D - dt.timedelta(days=1))["customers"].set_index(
        "customer_id").loc["C1"]
    assert (now["language"], now["name"]) == ("en", "Alpha AG")
    assert (old["language"], old["name"]) == ("de", "Alpha GmbH")
    with store.connect() as con:
        log = AuditLog(con, anchor=store.path.parent / "audit.anchor")
        recs = log.records(kind="event")
        assert log.verify().ok
    assert recs[-1]["payload"]["changed_fields"] == ["name", "language"]  # contract order
    assert "Alpha AG" not in str(recs[-1]["payload"])  # personal values stay out of the chain
    assert recs[-1]["personal"]["new_values"]["name"] == "Alpha AG"
    with pytest.raises(InputError, match="customers has no field 'shoe_size'"):
        record(store, Event("customer_change", D, customer_id="C1",
                            changes={"shoe_size": "42"}))
    with pytest.raises(InputError, match="customer_type"):
        record(store, Event("customer_change", D, customer_id="C1",
                            changes={"customer_type": "consumer"}))


@pytest.mark.parametrize(("event", "message"), [
    (Event("payment", D, invoice_id="NOPE", amount=5), "no such invoice"),
    (Event("payment", D, invoice_id="I1", amount=-5), "expected a number > 0"),
    (Event("payment", D, invoice_id="I1"), "give --amount"),
    (Event("payment", dt.date(2024, 1, 1), invoice_id="I1", amount=5), "before the invoice"),
    (Event("promise_to_pay", D, invoice_id="I1", promised_date=D - dt.timedelta(days=1)),
     "before the day of the promise"),
    (Event("dispute_resolved", D, invoice_id="I1"), "no open dispute"),
    (Event("payment", dt.date.today() + dt.timedelta(days=30), invoice_id="I1", amount=5),
     "in the future"),
    (Event("opt_out", D, customer_id="C9", channel="email"), "no such customer"),
    (Event("opt_out", D, customer_id="C1", channel="fax"), "expected one of email"),
    (Event("refund", D, invoice_id="I1"), "expected one of payment"),
    (Event("payment", D, invoice_id="I1", customer_id="C2", amount=5), "belongs to customer"),
])
def test_bad_events_are_refused_with_a_clear_message(store, event, message) -> None:
    with pytest.raises(InputError, match=message):
        record(store, event)
    assert store.events().empty


def test_cli_record_prints_the_booking_and_refuses_bad_input(store) -> None:
    runner = CliRunner()
    db = str(store.path)
    r = runner.invoke(app, ["record", "payment", "--invoice", "I3", "--amount", "540",
                            "--date", "2024-03-15", "--db", db])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())  # rich wraps long lines
    assert "500.00 principal + 40.00 interest and fees" in out
    r = runner.invoke(app, ["record", "promise-to-pay", "--invoice", "I1", "--date",
                            "2024-03-15", "--promised-date", "2024-03-10", "--db", db])
    assert r.exit_code == 2 and "before the day of the promise" in " ".join(r.output.split())
    assert "Traceback" not in r.output
    r = runner.invoke(app, ["record", "customer-change", "--customer", "C1", "--set",
                            "language", "--db", db])
    assert r.exit_code == 2 and "expected FIELD=VALUE" in " ".join(r.output.split())


def test_a_dispute_from_the_invoice_columns_ends_with_a_resolution_event(tmp_path) -> None:
    inv = ("invoice_id,customer_id,invoice_date,due_date,amount,currency,disputed,"
           "dispute_opened\nI5,C1,2024-02-03,2024-03-04,700.00,EUR,true,2024-03-10\n")
    files = []
    for name, text in (("customers", CUSTOMERS), ("invoices", inv)):
        path = tmp_path / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        files.append(path)
    st = Store(tmp_path / "db" / "d.duckdb")
    assert ingest(files, db=st).quarantined == 0
    assert actions(st, D)["I5"] == "wait"  # disputed per the ERP's columns
    record(st, Event("dispute_resolved", D, invoice_id="I5"))
    assert actions(st, D + dt.timedelta(days=1))["I5"] == "email"


def test_tables_of_a_few_invoices_equal_the_rows_of_the_whole_store(store) -> None:
    record(store, Event("promise_to_pay", D, invoice_id="I4", promised_date=D))
    whole = store.tables(as_of=D, names=WITH_EVENTS)
    few = store.tables(as_of=D, names=WITH_EVENTS, invoice_ids=["I4", "I2"])
    assert few["invoices"]["invoice_id"].tolist() == ["I2", "I4"]
    assert sorted(few["customers"]["customer_id"]) == ["C1", "C2"]
    assert few["events"]["invoice_id"].tolist() == ["I4"]
    s_few = invoice_states(few, D).set_index("invoice_id")
    s_all = invoice_states(whole, D).set_index("invoice_id").loc[["I2", "I4"]]
    assert s_few["promise_to_pay_pending"].tolist() == s_all["promise_to_pay_pending"].tolist()


def test_known_at_reads_the_store_as_it_was_known_then(store) -> None:
    from engine.events import record_event

    morning = dt.datetime(2024, 3, 18, 9, 0)
    record_event(store, Event("payment", D - dt.timedelta(days=1), invoice_id="I1",
                              amount=400), now=morning)
    # back-dated: the language changed on the 13th, but that was recorded only now (2026)
    record(store, Event("customer_change", D - dt.timedelta(days=5), customer_id="C1",
                        changes={"language": "en"}))
    lang = {k: store.tables(as_of=D, known_at=k)["customers"].set_index(
        "customer_id").loc["C1", "language"] for k in (morning, None)}
    assert lang == {morning: "de", None: "en"}
    before = store.tables(as_of=D, names=WITH_EVENTS, known_at=morning - dt.timedelta(1))
    after = store.tables(as_of=D, names=WITH_EVENTS, known_at=morning)
    assert before["payments"].empty and before["events"].empty
    assert after["payments"]["amount"].tolist() == [400.0]
    assert after["events"]["kind"].tolist() == ["payment"]
    assert state(store, D).loc["I1", "open_amount"] == 600


def test_an_event_is_stored_with_its_audit_record_or_not_at_all(store, monkeypatch) -> None:
    """The event and its audit record commit in one transaction: when the audit append
    fails (here: no audit key), the event is not stored either, and recording it again
    once the key is back stores both."""
    from dunning.ops.audit import AuditKeyError

    promise = Event("promise_to_pay", D, invoice_id="I1", promised_date=D + dt.timedelta(days=9))
    monkeypatch.delenv("DUNNING_AUDIT_KEY")
    with pytest.raises(AuditKeyError):
        record(store, promise)
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    monkeypatch.undo()
    done = record(store, promise)
    assert done.recorded.loaded and done.audit_seq is not None
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 1
        log = AuditLog(con)
        assert [r["payload"]["event_id"] for r in log.records(kind="event")] == [
            done.recorded.event_id]
