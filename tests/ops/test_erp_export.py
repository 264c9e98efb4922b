"""ERP export of a day's recommendations: per layout, the file reads back through the same
mapping the ERP's export is ingested with, and its invoice references match the store."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import pytest
from typer.testing import CliRunner

from dunning.business.erp_export import LAYOUTS, REC_EXPORT_COLUMNS, export_recommendations
from dunning.cli import app
from dunning.ops.recommend import Recommender
from engine.errors import InputError
from engine.ingest import ingest, read_table_file
from engine.mapping import Mapping, ReadOptions
from engine.store import Store

AS_OF = dt.date(2024, 12, 2)  # same day as conftest.AS_OF (a Monday)


@pytest.fixture(scope="module")
def sap_shaped_db(tmp_path_factory, make_ops_tables):
    """The ops tables with SAP-shaped invoice ids (company code - document - year - item), so every
    layout can carry its reference; recommendations of AS_OF stored."""
    tables = make_ops_tables(n_customers=30, n_invoices=300)
    inv = tables["invoices"]
    new_ids = {old: f"1000-{90000000 + i:010d}-{inv['invoice_date'].iat[i][:4]}-001"
               for i, old in enumerate(inv["invoice_id"])}
    inv["invoice_id"] = inv["invoice_id"].map(new_ids)
    tables["payments"]["invoice_id"] = tables["payments"]["invoice_id"].map(new_ids)
    folder = tmp_path_factory.mktemp("erp-export")
    files = []
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
        files.append(folder / f"{name}.csv")
    db = folder / "store" / "dunning.duckdb"
    assert ingest(files, db=db).quarantined == 0
    assert Recommender(Store(db)).run(AS_OF).n_new > 0
    return db


def _store_side(db) -> pd.DataFrame:
    with Store(db).connect() as con:
        return con.execute(
            "SELECT r.invoice_id, r.action, i.amount, i.due_date, i.customer_id "
            "FROM ops_recommendations r JOIN invoices i USING (invoice_id) WHERE r.as_of = ? "
            "ORDER BY r.invoice_id", [AS_OF]).df()


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_export_round_trips_through_the_layouts_mapping(sap_shaped_db, tmp_path, layout):
    out = tmp_path / f"{layout}.csv"
    done = export_recommendations(sap_shaped_db, out, AS_OF, layout)
    expected = _store_side(sap_shaped_db)
    assert done.rows == len(expected) > 0
    assert not list(tmp_path.glob(".*tmp*"))  # atomic: no temp file left behind
    mapping = None if LAYOUTS[layout] is None else Mapping.load(LAYOUTS[layout])
    raw = read_table_file(out, ReadOptions() if mapping is None else mapping.read)
    assert set(REC_EXPORT_COLUMNS) <= set(raw.columns)
    if mapping is None:
        mapped = raw
        assert {"invoice_id", "customer_id", "due_date", "amount"} <= set(raw.columns)
    else:
        tm = mapping.tables["invoices"]
        assert tm.source_columns() - set(raw.columns) == set()  # the ERP's own columns
        # the file is the ERP's invoice list: read it with the invoices part of the mapping
        only_invoices = dataclasses.replace(mapping, tables={"invoices": tm})
        mapped = only_invoices.apply(tm, raw, out).frame
        assert len(mapped) == len(raw)  # the mapping's row filter keeps every row
    assert mapped["invoice_id"].astype(str).tolist() == expected["invoice_id"].tolist()
    assert mapped["customer_id"].astype(str).tolist() == expected["customer_id"].tolist()
    amounts = pd.to_numeric(mapped["amount"].astype(str).str.replace(",", "."))
    assert amounts.round(2).tolist() == expected["amount"].round(2).tolist()
    assert raw["dunning_action"].astype(str).tolist() == expected["action"].tolist()


def test_ids_without_the_layouts_shape_are_refused(db, tmp_path):
    Recommender(Store(db)).run(AS_OF)  # ids like I00000130: not SAP's BUKRS-BELNR-GJAHR
    with pytest.raises(InputError, match="BUKRS"):
        export_recommendations(db, tmp_path / "sap.csv", AS_OF, "sap_fi")
    assert not (tmp_path / "sap.csv").exists()
    with pytest.raises(InputError, match="--layout"):
        export_recommendations(db, tmp_path / "x.csv", AS_OF, "oracle_erp")


def test_cli_export_recommendations(sap_shaped_db, tmp_path):
    out = tmp_path / "bc.csv"
    r = CliRunner().invoke(app, ["export", "--db", str(sap_shaped_db), "--recommendations",
                                 str(out), "--layout", "business_central"])
    assert r.exit_code == 0, r.output
    assert f"of {AS_OF}" in r.output and "Document No." in out.read_text().splitlines()[0]
    r = CliRunner().invoke(app, ["export", "--db", str(sap_shaped_db)])
    assert r.exit_code == 2 and "exactly one of" in r.output
