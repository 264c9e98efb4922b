"""Column mappings: the IBM file, mapping-file validation, value codes, derived columns."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from engine.errors import InputError
from engine.ingest import ingest
from engine.mapping import BUILTIN_DIR, Mapping
from engine.store import Store

IBM = Path("/work/shared/data/ibm_accounts_receivable.csv")
needs_ibm = pytest.mark.skipif(not IBM.exists(), reason="shared IBM data not available")


@needs_ibm
def test_ibm_mapping_loads_every_invoice_customer_and_settlement(store: Store) -> None:
    report = ingest([IBM], db=store, mapping="ibm_ar")
    raw = pd.read_csv(IBM, dtype=str)
    assert report.quarantined == 0
    assert report.tables["invoices"].loaded == len(raw) == 2466
    assert report.tables["customers"].loaded == raw["customerID"].nunique() == 100
    settled = int(raw["SettledDate"].fillna("").ne("").sum())
    assert report.tables["payments"].loaded == settled
    t = store.tables()
    inv = t["invoices"].set_index("invoice_id")
    first = raw.iloc[1]  # 0007900770: disputed, electronic bill
    row = inv.loc[first["invoiceNumber"]]
    assert row["amount"] == pytest.approx(float(first["InvoiceAmount"]))
    assert row["invoice_date"] == pd.to_datetime(first["InvoiceDate"], format="%m/%d/%Y")
    assert bool(row["disputed"]) == (first["Disputed"] == "Yes")
    assert bool(row["paperless_bill"]) == (first["PaperlessBill"] == "Electronic")
    assert inv["disputed"].sum() == (raw["Disputed"] == "Yes").sum()
    assert inv["paperless_bill"].sum() == (raw["PaperlessBill"] == "Electronic").sum()
    assert set(inv["currency"]) == {"USD"}
    cust = t["customers"]
    assert set(cust["jurisdiction"]) == {"US"} and set(cust["customer_type"]) == {"b2b"}
    assert set(cust["country_code"]) == set(raw["countryCode"])
    assert store.extra_columns("invoices") == {"paperless_bill": "bool"}
    pays = t["payments"].merge(t["invoices"], on="invoice_id", suffixes=("", "_inv"))
    assert (pays["amount"] == pays["amount_inv"]).all()
    again = ingest([IBM], db=store, mapping="ibm_ar")
    assert again.loaded == 0 and again.already_present == 100 + 2466 + settled


def test_mapping_recodes_values_dates_templates_and_filters(tmp_path, store: Store) -> None:
    (tmp_path / "export.csv").write_text(
        "Kunde;Land;Beleg;Jahr;Datum;Tage;Betrag;Strittig;Bezahlt\n"
        "K1;DE;100;2024;15.01.2024;30;1.234,50;Ja;20.02.2024\n"
        "K1;DE;101;2024;01.02.2024;14;99,00;Nein;\n", encoding="cp1252")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("""
read: {delimiter: ";", decimal: ",", thousands: ".", encoding: cp1252}
date_format: "%d.%m.%Y"
tables:
  customers:
    unique: true
    columns:
      customer_id: Kunde
      jurisdiction: Land
      customer_type: {const: b2b}
  invoices:
    columns:
      invoice_id: {template: "{Jahr}-{Beleg}"}
      customer_id: Kunde
      invoice_date: Datum
      due_date: {column: Datum, plus_days: Tage}
      amount: Betrag
      currency: {const: EUR}
      disputed: {column: Strittig, values: {Ja: true, Nein: false}}
  payments:
    when: {column: Bezahlt, present: true}
    columns:
      invoice_id: {template: "{Jahr}-{Beleg}"}
      payment_date: Bezahlt
      amount: Betrag
""")
    report = ingest([tmp_path / "export.csv"], db=store, mapping=mapping)
    assert report.quarantined == 0
    assert report.tables["customers"].merged == 1 and report.tables["payments"].skipped == 1
    inv = store.table("invoices").set_index("invoice_id")
    assert inv.loc["2024-100", "amount"] == 1234.5
    assert inv.loc["2024-100", "due_date"] == pd.Timestamp("2024-02-14")
    assert inv.loc["2024-101", "due_date"] == pd.Timestamp("2024-02-15")
    assert bool(inv.loc["2024-100", "disputed"]) and not bool(inv.loc["2024-101", "disputed"])
    assert store.table("payments")["payment_date"].tolist() == [pd.Timestamp("2024-02-20")]


def test_row_token_ids_and_numeric_filters(tmp_path, store: Store) -> None:
    """An export without invoice numbers gets ids from the row position ({_row}); a numeric
    ``when`` leaves out rows with a negative days-to-pay and rows where it is no number."""
    (tmp_path / "ledger.csv").write_text(
        "Kunde;Datum;Tage;Betrag\n"
        "K1;15.01.2024;30;1.234,50\n"
        "K1;01.02.2024;-3;99,00\n"       # row 2: a negative term, filtered out
        "K2;03.02.2024;14;10,00\n"
        "K2;05.02.2024;n/a;20,00\n"      # row 4: not a number, filtered out
        "K2;07.02.2024;0,5;30,00\n")     # row 5: a decimal comma, kept
    mapping = tmp_path / "m.yaml"
    mapping.write_text("""
read: {delimiter: ";", decimal: ",", thousands: "."}
date_format: "%d.%m.%Y"
tables:
  customers:
    unique: true
    columns: {customer_id: Kunde, jurisdiction: {const: DE}, customer_type: {const: b2b}}
  invoices:
    when: [{column: Tage, ge: 0}, {column: Betrag, lt: 10000}]
    columns:
      invoice_id: {template: "L-{_row}"}
      customer_id: Kunde
      invoice_date: Datum
      due_date: Datum
      amount: Betrag
      currency: {const: EUR}
""")
    report = ingest([tmp_path / "ledger.csv"], db=store, mapping=mapping)
    assert report.quarantined == 0
    assert report.tables["invoices"].skipped == 2
    inv = store.table("invoices").set_index("invoice_id")
    assert sorted(inv.index) == ["L-1", "L-3", "L-5"]  # ids keep the file's row positions
    assert inv.loc["L-5", "amount"] == 30.0
    again = ingest([tmp_path / "ledger.csv"], db=store, mapping=mapping)
    assert again.tables["invoices"].loaded == 0  # the same file gives the same ids


@pytest.mark.parametrize("text, key", [
    ("tables: {bills: {columns: {}}}", "tables.bills"),
    ("tables: {invoices: {columns: {invoice_id: a}}}", "tables.invoices.columns"),
    ("tables: {customers: {columns: {customer_id: a, jurisdiction: b, customer_type: c, "
     "colour: d}}}", "tables.customers.columns.colour"),
    ("tables: {customers: {colums: {}}}", "tables.customers.colums"),
    ("tables: {customers: {columns: {customer_id: a, jurisdiction: {const: DE, column: x}, "
     "customer_type: c}}}", "tables.customers.columns.jurisdiction"),
    ("tables: {customers: {columns: {customer_id: a, jurisdiction: b, customer_type: c}, "
     "extras: {vat: {column: v, dtype: money}}}}", "tables.customers.extras.vat.dtype"),
    ("tables: {customers: {columns: {customer_id: a, jurisdiction: b, customer_type: c}, "
     "extras: {name: {column: v, dtype: str}}}}", "tables.customers.extras.name"),
    ("tables: {customers: {when: {column: x}, columns: {customer_id: a, jurisdiction: b, "
     "customer_type: c}}}", "tables.customers.when"),
    ("tables: {customers: {when: {column: x, gt: ten}, columns: {customer_id: a, "
     "jurisdiction: b, customer_type: c}}}", "tables.customers.when.gt"),
    ("tables: {customers: {when: {column: x, gt: 1, lt: 5}, columns: {customer_id: a, "
     "jurisdiction: b, customer_type: c}}}", "tables.customers.when"),
    ("read: {separator: ';'}\ntables: {}", "read.separator"),
    ("[1, 2", ""),
    ("read: {delimiter: ';;'}\ntables: {}", "read.delimiter"),
    ("read: {skip_rows: -1}\ntables: {}", "read.skip_rows"),
    ("date_format: DD.MM.YYYY\ntables: {}", "date_format"),
])
def test_bad_mapping_files_name_file_and_key(tmp_path, text: str, key: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as exc:
        Mapping.load(path)
    assert str(path) in str(exc.value)
    assert key in str(exc.value)


def test_missing_source_column_names_file_mapping_and_column(tmp_path, store: Store) -> None:
    (tmp_path / "x.csv").write_text("customerID,InvoiceDate\nA,1/1/2024\n")
    with pytest.raises(InputError,
                       match=r"x\.csv: line 1: missing column\(s\) .*DueDate \(for invoices\)"):
        ingest([tmp_path / "x.csv"], db=store, mapping="ibm_ar")
    assert store.counts()["customers"] == 0


def test_unknown_mapping_name_lists_the_shipped_ones(store: Store) -> None:
    with pytest.raises(InputError, match="ibm_ar"):
        ingest(["whatever.csv"], db=store, mapping="no_such_mapping")


def test_every_shipped_mapping_is_valid() -> None:
    shipped = sorted(BUILTIN_DIR.glob("*.yaml"))
    assert shipped
    for path in shipped:
        assert Mapping.load(path).tables


@needs_ibm
def test_ibm_disputes_are_not_leaked_before_settlement(store: Store) -> None:
    ingest([IBM], db=store, mapping="ibm_ar")
    as_of = date(2013, 1, 1)
    view = store.tables(as_of=as_of)
    inv, pay = view["invoices"], view["payments"]
    settled = set(pay["invoice_id"])
    assert not inv.loc[~inv["invoice_id"].isin(settled), "disputed"].any()
    full = store.table("invoices").set_index("invoice_id")["disputed"]
    known = inv.set_index("invoice_id")
    assert (known.loc[known.index.isin(settled), "disputed"]
            == full.loc[known.index[known.index.isin(settled)]]).all()
