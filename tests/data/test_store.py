"""The DuckDB store: schema, dtypes, as-of views, latest date, export."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from engine.contract import TABLES
from engine.ingest import ingest
from engine.store import Store


def test_new_store_has_empty_contract_tables_with_documented_dtypes(store: Store) -> None:
    tables = store.tables()
    assert list(tables) == ["customers", "invoices", "payments", "actions"]
    for name, frame in tables.items():
        assert list(frame.columns) == list(TABLES[name].column_names)
        assert len(frame) == 0
    inv = tables["invoices"]
    assert inv["invoice_date"].dtype == "datetime64[ns]"
    assert inv["amount"].dtype == "float64"
    assert inv["disputed"].dtype == bool
    assert store.latest_date() is None
    assert store.path.exists()


def test_loaded_tables_keep_dtypes_and_values(store: Store, contract_files) -> None:
    ingest(contract_files, db=store)
    t = store.tables()
    assert {k: len(v) for k, v in t.items()} == {
        "customers": 3, "invoices": 4, "payments": 3, "actions": 2}
    inv = t["invoices"].set_index("invoice_id")
    assert inv.loc["I2", "amount"] == pytest.approx(250.5)
    assert inv.loc["I1", "due_date"] == pd.Timestamp("2024-02-09")
    assert bool(inv.loc["I2", "disputed"]) and not bool(inv.loc["I3", "disputed"])
    assert t["payments"]["payment_date"].dtype == "datetime64[ns]"
    assert t["actions"]["complaint"].dtype == bool
    acts = t["actions"].set_index("invoice_id")
    assert acts.loc["I2", "propensity"] == 0.5 and bool(acts.loc["I2", "complaint"])
    assert acts.loc["I1", "action_id"].startswith("a-")  # derived from the row
    assert store.latest_date() == date(2024, 4, 10)


def test_as_of_hides_future_facts(store: Store, contract_files) -> None:
    ingest(contract_files, db=store)
    t = store.tables(as_of=date(2024, 2, 25))
    assert sorted(t["invoices"]["invoice_id"]) == ["I1", "I2"]
    assert t["payments"]["payment_id"].tolist() == ["P1"]
    assert t["actions"]["invoice_id"].tolist() == ["I1"]
    i2 = t["invoices"].set_index("invoice_id").loc["I2"]
    # the dispute of I2 is opened on 2024-03-10: unknown on 2024-02-25
    assert not bool(i2["disputed"]) and pd.isna(i2["dispute_opened"])
    later = store.tables(as_of=date(2024, 3, 10))["invoices"].set_index("invoice_id")
    assert bool(later.loc["I2", "disputed"])
    assert later.loc["I2", "dispute_opened"] == pd.Timestamp("2024-03-10")
    assert len(store.tables(as_of=date(2023, 12, 31))["invoices"]) == 0


def test_undated_dispute_is_known_only_once_the_invoice_is_paid(tmp_path, store: Store) -> None:
    (tmp_path / "customers.csv").write_text("customer_id,jurisdiction,customer_type\nC,US,b2b\n")
    (tmp_path / "invoices.csv").write_text(
        "invoice_id,customer_id,invoice_date,due_date,amount,currency,disputed\n"
        "I,C,2024-01-01,2024-01-31,100,USD,true\n")
    (tmp_path / "payments.csv").write_text(
        "invoice_id,payment_date,amount\nI,2024-02-10,60\nI,2024-03-01,40\n")
    ingest([tmp_path / f for f in ("customers.csv", "invoices.csv", "payments.csv")], db=store)
    assert not store.table("invoices", as_of=date(2024, 2, 28))["disputed"].iloc[0]
    assert store.table("invoices", as_of=date(2024, 3, 1))["disputed"].iloc[0]
    assert store.table("invoices")["disputed"].iloc[0]


def test_connect_lets_other_areas_keep_tables_in_the_same_file(store: Store) -> None:
    with store.connect() as con:
        con.execute("CREATE TABLE ops_audit (logged_at TIMESTAMP, what VARCHAR)")
        con.execute("INSERT INTO ops_audit VALUES (now(), 'x')")
    again = Store(store.path)
    with again.connect() as con:
        assert con.execute("SELECT count(*) FROM ops_audit").fetchone()[0] == 1
    assert again.counts() == {"customers": 0, "invoices": 0, "payments": 0, "actions": 0}


def test_export_parquet_partitions_by_month_and_replaces_atomically(
        tmp_path, store: Store, contract_files) -> None:
    ingest(contract_files, db=store)
    out = tmp_path / "pq"
    counts = store.export_parquet(out)
    assert counts == {"customers": 3, "invoices": 4, "payments": 3, "actions": 2}
    months = sorted(p.name for p in (out / "invoices").iterdir())
    assert months == ["month=2024-01", "month=2024-02", "month=2024-03", "month=2024-04"]
    back = pd.read_parquet(out / "invoices")
    assert sorted(back["invoice_id"]) == ["I1", "I2", "I3", "I4"]
    assert len(pd.read_parquet(out / "customers")) == 3
    (out / "stale.txt").write_text("old")
    store.export_parquet(out)
    assert not (out / "stale.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pq")]


def test_unknown_table_name_is_a_clear_error(store: Store) -> None:
    with pytest.raises(KeyError, match="expected one of customers"):
        store.table("bills")
