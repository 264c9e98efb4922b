"""Shipped ERP mappings, each on a small synthetic export in that system's layout."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from engine.ingest import ingest
from engine.store import Store

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def run(store: Store, mapping: str, folder: str):
    files = sorted((FIXTURES / folder).iterdir())
    report = ingest(files, db=store, mapping=mapping)
    for t in report.tables.values():
        assert t.rows_in == t.loaded + t.already_present + t.quarantined
    return report, store.tables()


def test_sap_fi_items_and_customer_master(store: Store) -> None:
    report, t = run(store, "sap_fi", "sap_fi")
    # 6 debit invoice items (one with the impossible date 20240231, one document with two
    # installment items), 2 payment documents filtered out; 2 cleared items become payments
    assert (report.tables["invoices"].loaded, report.tables["invoices"].quarantined) == (5, 1)
    assert report.tables["invoices"].skipped == 2
    q = pd.read_csv(report.tables["invoices"].quarantine_file, dtype=str)
    assert q["line"].tolist() == ["7"] and "20240231" in q["reason"].iloc[0]
    inv = t["invoices"].set_index("invoice_id")
    first = inv.loc["1000-0090000001-2024-001"]
    assert first["customer_id"] == "0000100001"  # leading zeros kept
    assert first["company_code"] == "1000"
    # net due date: ZFBDT + ZBD3T, else + ZBD2T, else + ZBD1T
    assert first["due_date"] == pd.Timestamp("2024-02-04")  # 30 days net (ZBD1T only)
    assert inv.loc["1000-0090000002-2024-001", "due_date"] == pd.Timestamp("2024-02-11")  # 14/30
    assert inv.loc["1000-0090000003-2024-001", "due_date"] == pd.Timestamp("2024-03-17")  # 10/20/45
    # two installments of one document are two invoices with their own due dates
    assert inv.loc["1000-0090000005-2024-002", "due_date"] == pd.Timestamp("2024-05-01")
    assert inv.loc["1000-0090000005-2024-001", "due_date"] == pd.Timestamp("2024-03-31")
    pays = t["payments"].set_index("invoice_id")
    assert pays.loc["1000-0090000003-2024-001", "payment_date"] == pd.Timestamp("2024-03-05")
    # SPRAS as the internal one-letter key (D, V) or the two-letter ISO display form (FR)
    assert dict(zip(t["customers"]["customer_id"], t["customers"]["language"], strict=True)) \
        == {"0000100001": "de", "0000100002": "sv", "0000100003": "fr"}


def test_business_central_customer_list_and_ledger_entries(store: Store) -> None:
    report, t = run(store, "business_central", "business_central")
    assert report.quarantined == 0
    inv = t["invoices"].set_index("invoice_id")
    assert sorted(inv.index) == ["103001", "103002", "103003"]  # no payment, no credit memo
    assert inv.loc["103001", "currency"] == "USD"  # empty currency code = LCY
    assert inv.loc["103002", "currency"] == "GBP"
    assert inv.loc["103001", "invoice_date"] == pd.Timestamp("2024-01-15")
    assert t["payments"][["invoice_id", "amount"]].values.tolist() == [["103002", 820.0]]
    cust = t["customers"].set_index("customer_id")
    assert cust.loc["C10000", "jurisdiction"] == "US" and cust.loc["C20000", "jurisdiction"] \
        == "GB"


def test_datev_opos_list_cp1252_decimal_commas(store: Store) -> None:
    report, t = run(store, "datev_opos", "datev")
    assert report.quarantined == 0
    assert report.tables["customers"].merged == 2
    inv = t["invoices"].set_index("invoice_id")
    assert "GS-2024-001" not in inv.index  # credit note: Habenbetrag, no Sollbetrag
    assert report.tables["invoices"].skipped == 1
    assert inv.loc["RE-2024-002", "amount"] == 12400.0 and inv.loc["RE-2024-007", "amount"] \
        == pytest.approx(99.9)
    assert inv.loc["RE-2024-007", "open_balance"] == pytest.approx(59.9)  # partly paid
    assert inv.loc["RE-2024-002", "currency"] == "EUR"
    assert inv.loc["RE-2024-001", "due_date"] == pd.Timestamp("2024-01-19")
    cust = t["customers"].set_index("customer_id")
    assert sorted(cust.index) == ["10001", "10002", "10003"]
    assert set(cust["jurisdiction"]) == {"DE"}
    assert t["actions"].empty and t["payments"].empty  # the list has neither


def test_lexware_open_items_with_partial_payment(store: Store) -> None:
    report, t = run(store, "lexware", "lexware")
    assert report.quarantined == 0
    cust = t["customers"].set_index("customer_id")
    assert cust["jurisdiction"].to_dict() == {"20001": "DE", "20002": "AT", "20003": "CH"}
    pays = t["payments"].set_index("invoice_id")["amount"].to_dict()
    assert pays == {"2024-0101": 595.0, "2024-0102": 1000.0}
    assert t["invoices"].set_index("invoice_id").loc["2024-0102", "amount"] == 2380.0
    again = ingest(sorted((FIXTURES / "lexware").iterdir()), db=store, mapping="lexware")
    assert again.loaded == 0 and again.quarantined == 0
