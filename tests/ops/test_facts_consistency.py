"""One builder of legal facts: the daily recommendation and `dunning rules explain --invoice`
give the same facts for the same store and date, including on the boundary (events of D)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from dunning.cli import app
from dunning.commands.rules import _facts_from_store  # what `rules explain --invoice` uses
from dunning.ops.actions import record_action
from dunning.ops.audit import AuditLog
from dunning.ops.recommend import Recommender, invoice_state, legal_facts
from engine.store import Store
from legal_rules.facts import FACTS
from legal_rules.from_tables import facts_for_invoices

AS_OF = dt.date(2024, 12, 2)  # a Monday (conftest.AS_OF)


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def _pay_on(db, invoice_id: str, day: dt.date, amount: float, tmp_path) -> None:
    """A payment dated ``day`` through the real ingest."""
    from engine.ingest import ingest

    path = tmp_path / "payments.csv"
    pd.DataFrame([{"invoice_id": invoice_id, "payment_date": day.isoformat(),
                   "amount": amount}]).to_csv(path, index=False)
    assert ingest([path], db=db).tables["payments"].loaded == 1


def _boundary_store(db, tmp_path, plant_actions) -> dict[str, str]:
    """Events dated AS_OF itself on some open invoices; returns {what: invoice_id}."""
    store = Store(db)
    tables = store.tables(as_of=AS_OF)
    state = invoice_state(tables, AS_OF)
    overdue = state[(state["days_overdue"] > 20) & ~state["disputed_now"]]["invoice_id"]
    picks = dict(zip(("email_today", "paid_part_today", "paid_full_today", "agency_today"),
                     overdue.tolist()[:4], strict=True))
    record_action(store, picks["email_today"], "email", AS_OF)
    # an agency handover reported by the ERP (record_action would ask for an approved review)
    plant_actions(db, [(picks["agency_today"], "agency", AS_OF)], tmp_path)
    amounts = state.set_index("invoice_id")["open_amount"]
    _pay_on(db, picks["paid_part_today"], AS_OF, round(amounts[picks["paid_part_today"]] / 2, 2),
            tmp_path)
    _pay_on(db, picks["paid_full_today"], AS_OF, float(amounts[picks["paid_full_today"]]),
            tmp_path)
    return picks


def test_recommend_facts_equal_the_legal_rules_builder(db, tmp_path, plant_actions):
    _boundary_store(db, tmp_path, plant_actions)
    for day in (AS_OF, AS_OF + dt.timedelta(days=5),  # a Saturday
                dt.date(2024, 12, 25), dt.date(2024, 6, 3)):
        tables = Store(db).tables(as_of=day)
        state = invoice_state(tables, day)
        rec = legal_facts(state, day)
        ref = facts_for_invoices(tables, day)
        assert set(rec) == set(FACTS) and len(state) > 10
        pos = {i: k for k, i in enumerate(ref["invoice_id"].tolist())}
        rows = [pos[i] for i in state["invoice_id"]]
        for name in FACTS:
            got = [_plain(v) for v in rec[name]]
            want = [_plain(ref[name][k]) for k in rows]
            assert got == want, (day, name)
        # the open invoices are those with an open amount that are not with an agency
        open_ref = {i for i, a in zip(ref["invoice_id"], ref["amount"], strict=True)
                    if a > 0.005}
        assert set(state["invoice_id"]) <= open_ref


def test_audited_facts_equal_rules_explain_facts_with_events_on_the_day(db, tmp_path,
                                                                      plant_actions):
    picks = _boundary_store(db, tmp_path, plant_actions)
    result = Recommender(Store(db)).run(AS_OF)
    frame = result.frame.set_index("invoice_id")
    with Store(db).connect() as con:
        audited = {r["invoice_id"]: r["payload"]["facts"]
                   for r in AuditLog(con).records(kind="decision")}
    for inv in [picks["email_today"], picks["paid_part_today"], *sorted(audited)[:25]]:
        from_cli = _facts_from_store(db, inv, AS_OF)
        from_cli.pop("invoice_id")
        assert from_cli == audited[inv], inv
    # an email already sent today: no second reminder, the min gap vetoes it
    row = frame.loc[picks["email_today"]]
    assert row["action"] == "wait"
    assert "practice.min_gap" in {v["rule_id"] for v in row["vetoes"]}
    assert audited[picks["email_today"]]["days_since_last_contact"] == 0
    # a payment dated today counts; paid in full or with the agency today: not dunned
    assert audited[picks["paid_part_today"]]["amount"] < Store(db).tables(as_of=AS_OF)[
        "invoices"].set_index("invoice_id").at[picks["paid_part_today"], "amount"]
    assert picks["paid_full_today"] not in frame.index
    assert picks["agency_today"] not in frame.index
    # and `rules explain --invoice` shows the same veto for the invoice emailed today
    res = CliRunner().invoke(app, ["rules", "explain", "--invoice", picks["email_today"],
                                   "--action", "email", "--date", AS_OF.isoformat(),
                                   "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["status"] == "vetoed"
    assert "practice.min_gap" in {h["rule_id"] for h in out["fired"]}
