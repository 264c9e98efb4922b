"""Plausibility checks in the daily run: an implausible recommendation goes to human review
with its reasons instead of being acted on; a normal one does not; re-running records
nothing twice."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from dunning.ops.audit import AuditLog
from dunning.ops.recommend import Recommender
from dunning.ops.review import ReviewQueue
from engine.ingest import ingest
from engine.store import Store

AS_OF = dt.date(2024, 12, 2)  # same day as conftest.AS_OF (a Monday)
PLANTED, NORMAL = "I90000001", "I90000002"


def _store_with_planted_invoices(folder, make_tables):
    """The ops tables plus two invoices of one customer, both 14 days overdue on AS_OF (an
    email is due): one 1000 x the customer's usual amount, one at its usual amount."""
    tables = make_tables()
    inv = tables["invoices"]
    cust = inv["customer_id"].value_counts().index[0]
    usual = float(inv.loc[inv["customer_id"] == cust, "amount"].median())
    row = inv[inv["customer_id"] == cust].iloc[0].to_dict()
    due = AS_OF - dt.timedelta(days=14)
    planted = []
    for inv_id, amount in ((PLANTED, round(usual * 1000, 2)), (NORMAL, round(usual, 2))):
        planted.append({**row, "invoice_id": inv_id, "amount": amount, "disputed": False,
                        "dispute_opened": None,
                        "invoice_date": (due - dt.timedelta(days=30)).isoformat(),
                        "due_date": due.isoformat()})
    tables["invoices"] = pd.concat([inv, pd.DataFrame(planted)], ignore_index=True)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
        files.append(folder / f"{name}.csv")
    db = folder / "store" / "dunning.duckdb"
    assert ingest(files, db=db).quarantined == 0
    return Store(db)


def test_implausible_recommendation_goes_to_review_with_its_reason(tmp_path, make_ops_tables):
    store = _store_with_planted_invoices(tmp_path, make_ops_tables)
    result = Recommender(store).run(AS_OF)
    rows = result.frame.set_index("invoice_id")
    planted, normal = rows.loc[PLANTED], rows.loc[NORMAL]
    # Both would be reminded by the schedule; only the planted one is held back.
    assert planted["policy_action"] != "wait" and normal["policy_action"] != "wait"
    assert planted["status"] == "needs_review"
    assert any(t.startswith("unusual_amount:") for t in planted["reason"]["implausible"])
    assert planted["review_id"] in result.review_ids
    assert normal["status"] == "recommended" and not isinstance(normal["review_id"], str)
    assert "implausible" not in normal["reason"]
    with store.connect() as con:
        log = AuditLog(con)
        item = ReviewQueue(con, log).get(planted["review_id"])
        assert item["status"] == "pending"
        assert "plausibility.unusual_amount" in item["rule_ids"]
        assert any(t.startswith("unusual_amount:")
                   for t in item["explanation"]["reason"]["implausible"])
        record = log.records(invoice_id=PLANTED, kind="decision")[-1]["payload"]
        assert record["status"] == "needs_review"
        assert record["reason"]["implausible"] == planted["reason"]["implausible"]
        n_items = con.execute("SELECT count(*) FROM ops_review_queue").fetchone()[0]
        n_audit = con.execute("SELECT count(*) FROM ops_audit_log").fetchone()[0]
    again = Recommender(store).run(AS_OF)
    assert again.n_new == 0 and again.review_ids == []
    assert again.frame.set_index("invoice_id").at[PLANTED, "status"] == "needs_review"
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM ops_review_queue").fetchone()[0] == n_items
        assert con.execute("SELECT count(*) FROM ops_audit_log").fetchone()[0] == n_audit
        assert AuditLog(con).verify().ok
