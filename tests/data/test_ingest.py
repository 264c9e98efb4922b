"""Ingestion of contract-layout files: validation, quarantine, idempotency, atomicity."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from engine.errors import InputError
from engine.ingest import ingest, read_table_file, table_of_file
from engine.store import Store


def quarantine(report, table: str) -> pd.DataFrame:
    path = report.tables[table].quarantine_file
    assert path is not None and path.exists()
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def assert_balanced(report) -> None:
    for t in report.tables.values():
        assert t.rows_in == t.loaded + t.already_present + t.quarantined, t


def test_clean_files_load_completely(store: Store, contract_files) -> None:
    report = ingest(contract_files, db=store)
    assert [report.tables[t].loaded for t in report.tables] == [3, 4, 3, 2]
    assert report.quarantined == 0 and report.quarantine_files == []
    assert_balanced(report)


def test_reingest_is_idempotent_and_reported_as_already_present(store, contract_files) -> None:
    ingest(contract_files, db=store)
    before = store.tables()
    again = ingest(contract_files, db=store)
    assert again.loaded == 0 and again.quarantined == 0
    assert again.already_present == 12
    after = store.tables()
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name])


def test_same_id_with_other_values_is_a_conflict(tmp_path, store, contract_files,
                                                 samples) -> None:
    ingest(contract_files, db=store)
    changed = samples.write(tmp_path, "invoices.csv",
                            samples.INVOICES.replace("1000.00", "1200.00"))
    report = ingest([changed], db=store)
    q = quarantine(report, "invoices")
    # I1 is paid: its amount is a fact other facts rest on, so the change is a conflict
    # that names the field (a credit note is the way to lower it)
    assert q["line"].tolist() == ["2"] and q["field"].tolist() == ["amount"]
    assert "conflict" in q["reason"].iloc[0] and "different amount" in q["reason"].iloc[0]
    assert q["amount"].iloc[0] == "1200.00"
    assert report.tables["invoices"].already_present == 3
    assert store.table("invoices").set_index("invoice_id").loc["I1", "amount"] == 1000.0


BAD_INVOICES = """invoice_id,customer_id,invoice_date,due_date,amount,currency,disputed
J1,C1,2024-01-10,2024-02-09,100,EUR,false
J2,C1,10.01.2024,2024-02-09,100,EUR,false
J3,C1,2024-01-10,2024-01-09,100,EUR,false
J4,C1,2024-01-10,2024-02-09,-5,EUR,false
J5,C1,2024-01-10,2024-02-09,abc,EUR,false
J6,C1,2024-01-10,2024-02-09,100,EURO,false
J7,C9,2024-01-10,2024-02-09,100,EUR,false
J8,C1,2024-01-10,2024-02-09,100,EUR,maybe
,C1,2024-01-10,2024-02-09,100,EUR,false
J1,C1,2024-01-10,2024-02-09,100,EUR,false
J10,C1,2024-01-10,2024-02-09,100,usd,no
"""


def test_every_bad_row_is_quarantined_with_line_field_and_reason(tmp_path, store, samples) -> None:
    files = [samples.write(tmp_path, "customers.csv", samples.CUSTOMERS),
             samples.write(tmp_path, "invoices.csv", BAD_INVOICES)]
    report = ingest(files, db=store)
    assert_balanced(report)
    inv = report.tables["invoices"]
    assert (inv.rows_in, inv.loaded, inv.quarantined) == (11, 2, 9)
    q = quarantine(report, "invoices").set_index("line")
    expected = {
        "3": ("invoice_date", "not a date in format %Y-%m-%d; found '10.01.2024'"),
        "4": ("due_date", "due_date is before invoice_date"),
        "5": ("amount", "amount must be > 0"),
        "6": ("amount", "not a number; found 'abc'"),
        "7": ("currency", "ISO 4217"),
        "8": ("customer_id", "unknown customer_id"),
        "9": ("disputed", "not a boolean"),
        "10": ("invoice_id", "missing required value"),
        "11": ("invoice_id", "duplicate row: same invoice_id as"),
    }
    assert sorted(q.index, key=int) == sorted(expected, key=int)
    for line, (field, reason) in expected.items():
        assert q.loc[line, "field"] == field
        assert reason in q.loc[line, "reason"], (line, q.loc[line, "reason"])
        assert q.loc[line, "source_file"] == str(files[1])
    # the original values are kept as the user wrote them
    assert q.loc["6", "amount"] == "abc" and q.loc["7", "currency"] == "EURO"
    assert sorted(store.table("invoices")["invoice_id"]) == ["J1", "J10"]
    assert store.table("invoices").set_index("invoice_id").loc["J10", "currency"] == "USD"


def test_payments_above_the_amount_are_interest_and_fees_up_to_twice_the_amount(
        tmp_path, store, contract_files, samples) -> None:
    ingest(contract_files, db=store)  # I1 (1000) is fully paid by P1 + P2
    pay = samples.write(tmp_path, "payments.csv",
                "invoice_id,payment_date,amount\nI4,2024-04-10,50\nI4,2024-04-11,30\n"
                "I4,2024-04-12,12.50\nI1,2024-04-01,1\nI2,2024-01-01,10\nI9,2024-05-01,5\n"
                "I4,2024-04-13,80\n")
    report = ingest([pay], db=store)
    assert_balanced(report)
    pays = report.tables["payments"]
    # what the final notice demanded (80 + 12.50 interest and fees) is accepted, as is a
    # late 1.00 of interest on the paid I1; 80 more on I4 would pay it 2.2 times
    assert (pays.loaded, pays.overpaid, pays.interest_fees) == (4, 2, 13.5)
    q = quarantine(report, "payments").set_index("line")
    assert sorted(q.index, key=int) == ["6", "7", "8"]
    assert "before the invoice_date" in q.loc["6", "reason"]
    assert "unknown invoice_id" in q.loc["7", "reason"]
    assert "exceed twice its amount" in q.loc["8", "reason"]
    assert store.table("payments").query("invoice_id == 'I4'")["amount"].sum() == 92.5


def test_reingest_with_a_bad_row_in_the_middle_stays_idempotent(tmp_path, store,
                                                                 samples) -> None:
    # regression: rows after a rejected row were once compared with the wrong stored row
    samples.write(tmp_path, "customers.csv", samples.CUSTOMERS)
    lines = samples.INVOICES.splitlines()
    bad = lines[0] + "\n" + lines[1] + "\nBAD,C1,2024-01-10,2024-01-01,5,EUR,false,\n" + \
        "\n".join(lines[2:]) + "\n"
    files = [tmp_path / "customers.csv", samples.write(tmp_path, "invoices.csv", bad)]
    first = ingest(files, db=store)
    assert first.tables["invoices"].loaded == 4 and first.tables["invoices"].quarantined == 1
    again = ingest(files, db=store)
    assert again.tables["invoices"].already_present == 4
    assert again.tables["invoices"].quarantined == 1 and again.loaded == 0


def test_derived_payment_ids_are_stable_and_distinguish_equal_rows(tmp_path, store,
                                                                 contract_files, samples) -> None:
    ingest(contract_files, db=store)
    pay = samples.write(tmp_path, "payments.csv",
                "invoice_id,payment_date,amount\nI4,2024-04-10,20\nI4,2024-04-10,20\n")
    first = ingest([pay], db=store)
    assert first.tables["payments"].loaded == 2
    ids = store.table("payments").query("invoice_id == 'I4'")["payment_id"].tolist()
    assert len(set(ids)) == 2 and all(i.startswith("p-") for i in ids)
    second = ingest([pay], db=store)
    assert second.tables["payments"].already_present == 2 and second.loaded == 0


def test_choices_jurisdiction_and_channels_are_checked(tmp_path, store, samples) -> None:
    cust = samples.write(tmp_path, "customers.csv",
                 "customer_id,segment,jurisdiction,customer_type,opted_out_channels\n"
                 "A,Corporate,de,B2B,email; letter\n"
                 "B,bakery,DE,b2b,\n"
                 "C,corporate,XX,b2b,\n"
                 "D,corporate,DE,business,\n"
                 "E,corporate,DE,b2b,fax\n")
    report = ingest([cust], db=store)
    q = quarantine(report, "customers").set_index("line")
    assert q["field"].to_dict() == {"3": "segment", "4": "jurisdiction", "5": "customer_type",
                                    "6": "opted_out_channels"}
    a = store.table("customers").iloc[0]
    assert (a["segment"], a["jurisdiction"], a["customer_type"], a["opted_out_channels"]) == (
        "corporate", "DE", "b2b", "email;letter")


def test_actions_check_channel_and_propensity(tmp_path, store, contract_files, samples) -> None:
    ingest(contract_files, db=store)
    acts = samples.write(tmp_path, "actions.csv",
                 "invoice_id,action_date,channel,propensity\n"
                 "I3,2024-04-05,phone,0.2\nI3,2024-04-06,fax,0.2\n"
                 "I3,2024-04-07,email,0\nI3,2024-04-08,email,1.5\nI3,2024-03-01,email,\n")
    report = ingest([acts], db=store)
    q = quarantine(report, "actions").set_index("line")
    assert q["field"].to_dict() == {"3": "channel", "4": "propensity", "5": "propensity",
                                    "6": "action_date"}
    assert report.tables["actions"].loaded == 1


def test_multiple_errors_of_one_row_are_all_reported(tmp_path, store, samples) -> None:
    samples.write(tmp_path, "customers.csv", samples.CUSTOMERS)
    inv = samples.write(tmp_path, "invoices.csv",
                "invoice_id,customer_id,invoice_date,due_date,amount,currency\n"
                "X,C1,2024-13-01,2024-01-01,-1,EU\n")
    report = ingest([tmp_path / "customers.csv", inv], db=store)
    q = quarantine(report, "invoices")
    assert sorted(q["field"].iloc[0].split(";")) == ["amount", "currency", "invoice_date"]
    assert q["reason"].iloc[0].count(" | ") == 2


def test_a_failed_ingest_leaves_the_store_unchanged(tmp_path, store, contract_files,
                                                    samples) -> None:
    broken = samples.write(tmp_path, "payments.csv", "invoice_id;payment_date\nI1;2024-01-01\n")
    with pytest.raises(InputError, match="missing required column"):
        ingest([*contract_files[:2], broken], db=store)
    assert store.counts() == {"customers": 0, "invoices": 0, "payments": 0, "actions": 0}
    assert not store.quarantine_dir.exists() or not list(store.quarantine_dir.iterdir())


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"\x00\x01\x02PK\x03\x04binary", "binary data"),
    (b"\xff\xfe\xfa garbage \xc3\x28", "not valid utf-8"),
    (b"customer_id,name\nC1,x\n", "missing required column\\(s\\) jurisdiction, customer_type"),
    (b"   \n\n", "empty file"),
])
def test_not_a_table_is_a_clear_input_error(tmp_path, store, content: bytes, message) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as exc:
        ingest([path], db=store)
    assert str(path) in str(exc.value)


def test_header_only_file_is_an_error_but_not_a_crash(tmp_path, store, samples) -> None:
    path = samples.write(tmp_path, "customers.csv", "customer_id,jurisdiction,customer_type\n")
    with pytest.raises(InputError, match="no data rows"):
        ingest([path], db=store)


def test_unknown_file_name_needs_a_mapping(tmp_path, store, samples) -> None:
    path = samples.write(tmp_path, "export.csv", samples.CUSTOMERS)
    with pytest.raises(InputError, match="cannot tell which table"):
        ingest([path], db=store)
    assert table_of_file(Path("acme_invoices.parquet")) == "invoices"
    assert table_of_file(Path("2024-payments.csv")) == "payments"
    assert table_of_file(Path("invoice_lines.csv")) is None


def test_ragged_rows_are_quarantined_not_dropped(tmp_path, store, samples) -> None:
    path = samples.write(tmp_path, "customers.csv",
                 "customer_id,jurisdiction,customer_type\nA,DE,b2b\nB,DE,b2b,extra,more\n"
                 "C,DE\n\nD,SE,b2c\n")
    report = ingest([path], db=store)
    assert_balanced(report)
    q = quarantine(report, "customers").set_index("line")
    assert "row has 5 fields, header has 3" in q.loc["3", "reason"]
    assert q.loc["3", "__extra_fields__"] == "extra,more"
    assert "row has 2 fields" in q.loc["4", "reason"]
    assert "missing required value" in q.loc["5", "reason"]  # the blank line
    assert sorted(store.table("customers")["customer_id"]) == ["A", "D"]


def test_parquet_input_with_native_types(tmp_path, store, contract_files) -> None:
    ingest(contract_files[:1], db=store)
    frame = pd.DataFrame({
        "invoice_id": ["Q1", "Q2"], "customer_id": ["C1", "C2"],
        "invoice_date": pd.to_datetime(["2024-05-01", "2024-05-02"]),
        "due_date": pd.to_datetime(["2024-05-31", "2024-04-01"]),
        "amount": [10.5, 20.0], "currency": ["EUR", "SEK"], "disputed": [False, True],
    })
    path = tmp_path / "invoices.parquet"
    frame.to_parquet(path)
    report = ingest([path], db=store)
    assert report.tables["invoices"].loaded == 1
    q = quarantine(report, "invoices")
    assert q["line"].tolist() == ["2"] and q["field"].tolist() == ["due_date"]
    assert read_table_file(path).shape == (2, 7)


def test_unknown_columns_are_reported_as_ignored(tmp_path, store, samples) -> None:
    path = samples.write(tmp_path, "customers.csv",
                 "customer_id,jurisdiction,customer_type,vat_id\nA,DE,b2b,DE123\n")
    report = ingest([path], db=store)
    assert any("vat_id" in w for w in report.warnings)


def test_an_error_during_loading_rolls_everything_back(tmp_path, store, monkeypatch) -> None:
    import engine.ingest as ingest_module

    real_insert = ingest_module._insert

    def failing_insert(con, name, rows, columns):  # fault injection after earlier inserts
        if name == "payments":
            raise RuntimeError("disk full")
        return real_insert(con, name, rows, columns)

    monkeypatch.setattr(ingest_module, "_insert", failing_insert)
    ibm = Path("/work/shared/data/ibm_accounts_receivable.csv")
    if not ibm.exists():
        pytest.skip("shared IBM data not available")
    with pytest.raises(RuntimeError, match="disk full"):
        ingest([ibm], db=store, mapping="ibm_ar")
    assert store.counts() == {"customers": 0, "invoices": 0, "payments": 0, "actions": 0}
    assert store.extra_columns("invoices") == {}  # the ALTER TABLE was rolled back too
    assert "paperless_bill" not in store.table("invoices").columns
    assert not store.quarantine_dir.exists() or not list(store.quarantine_dir.iterdir())


def test_a_stored_value_against_a_missing_one_is_a_conflict(tmp_path, store,
                                                            contract_files, samples) -> None:
    ingest(contract_files, db=store)
    acts = samples.write(tmp_path, "actions.csv",
                         "invoice_id,action_date,channel,decided_by,propensity,complaint\n"
                         "I1,2024-02-16,email,policy:fixed,,false\n")
    report = ingest([acts], db=store)
    # the derived id differs only if the hashed fields differ; here they are equal, so the
    # row meets its stored twin and the missing propensity makes it a conflict
    assert report.tables["actions"].quarantined == 1
    assert "conflict" in quarantine(report, "actions")["reason"].iloc[0]


def test_follow_on_errors_name_the_quarantined_parent_row(tmp_path, store) -> None:
    """A row whose customer (or invoice) was quarantined in the same ingest names that row
    as the cause; a reference to an id that exists nowhere stays plain "unknown"."""
    (tmp_path / "customers.csv").write_text(
        "customer_id,jurisdiction,customer_type\nC1,DE,b2b\nC2,DE,bzb\n")
    (tmp_path / "invoices.csv").write_text(
        "invoice_id,customer_id,invoice_date,due_date,amount,currency\n"
        "I1,C1,2024-01-01,2024-01-31,100,EUR\nI2,C2,2024-01-01,2024-01-31,100,EUR\n"
        "I3,C9,2024-01-01,2024-01-31,100,EUR\n")
    (tmp_path / "payments.csv").write_text(
        "invoice_id,payment_date,amount\nI2,2024-02-01,100\nI1,2024-02-01,100\n")
    report = ingest([tmp_path / f"{t}.csv" for t in ("customers", "invoices", "payments")],
                    db=store)
    assert (report.tables["customers"].quarantined, report.tables["invoices"].quarantined,
            report.tables["payments"].quarantined) == (1, 2, 1)
    invoices = pd.read_csv(report.tables["invoices"].quarantine_file).set_index("invoice_id")
    assert "its customers row (customers.csv line 3) was quarantined" in \
        invoices.loc["I2", "reason"]
    assert invoices.loc["I3", "reason"].startswith("unknown customer_id")
    payments = pd.read_csv(report.tables["payments"].quarantine_file)
    assert "its invoices row (invoices.csv line 3) was quarantined" in payments["reason"][0]
    assert store.counts()["payments"] == 1
