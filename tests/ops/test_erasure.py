"""`dunning forget` reaches rendered letters, quarantine files, past versions and event
notes, and lists exactly what it could not reach."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from typer.testing import CliRunner

from dunning.cli import app
from dunning.ops.erasure import ALWAYS_UNREACHABLE, register_letter_files
from dunning.ops.events import record
from engine.events import Event
from engine.ingest import ingest
from engine.store import Store


def test_forget_reaches_letters_quarantine_versions_and_notes(db, tmp_path) -> None:
    store = Store(db)
    inv = store.table("invoices").iloc[0]
    cust, invoice = str(inv["customer_id"]), str(inv["invoice_id"])
    old_name = store.table("customers").set_index("customer_id").loc[cust, "name"]
    # a renamed customer: the old name lives on in the versions table
    record(store, Event("customer_change", dt.date(2024, 12, 1), customer_id=cust,
                        changes={"name": "Erika O'Brien & Söhne", "email": "erika@example.org",
                                 "address": "Hauptstr. 1;12345 Berlin"},
                        note="new owner Erika"))
    # quarantine: a rejected change with yet another name, and a payment of the customer
    bad = tmp_path / "customers.csv"
    bad.write_text(f"customer_id,name,jurisdiction,customer_type\n{cust},Erika Secret,DE,"
                   "alien\n", encoding="utf-8")
    assert ingest([bad], db=store).quarantined == 1
    # letters: two registered (one later moved away), a PDF, one in an unregistered folder
    reg = tmp_path / "letters"
    reg.mkdir()
    txt, html, pdf, moved = (reg / f"{invoice}_reminder_2024-12-02.{s}"
                             for s in ("txt", "html", "pdf", "md"))
    txt.write_text("Erika O'Brien & Söhne\nHauptstr. 1\n12345 Berlin\nerika@example.org\n"
                   "please pay.\n", encoding="utf-8")
    html.write_text("<p>Dear Erika O&#x27;Brien &amp; Söhne,</p>", encoding="utf-8")
    pdf.write_bytes(b"%PDF-1.4 Erika")
    moved.write_text("x", encoding="utf-8")
    register_letter_files(store, [txt, html, pdf, moved])
    moved.unlink()
    other = tmp_path / "old-letters"
    other.mkdir()
    (other / f"{invoice}_final_notice_2024-11-02.txt").write_text(
        f"Dear {old_name},\n", encoding="utf-8")
    (other / "I99999999_final_notice_2024-11-02.txt").write_text("Dear someone else,\n")

    r = CliRunner().invoke(app, ["forget", "--customer", cust, "--yes", "--db", str(db),
                                 "--letters", str(other), "--letters", str(tmp_path / "no")])
    assert r.exit_code == 0, r.output
    out = "".join(r.output.split())  # rich wraps long lines (and paths) anywhere

    def said(text: str) -> bool:
        return "".join(text.split()) in out

    assert said("letters: 3 redacted, 1 PDF(s) deleted; quarantine files: 1 redacted")
    assert said(f"not reached: letter {moved.resolve()}: registered but no longer there")
    assert said(f"not reached: letter folder {tmp_path / 'no'}: not found")
    assert said(ALWAYS_UNREACHABLE)

    assert not pdf.exists()
    for path in (txt, html, other / f"{invoice}_final_notice_2024-11-02.txt"):
        text = path.read_text(encoding="utf-8")
        assert "Erika" not in text and str(old_name) not in text and "[erased]" in text
        assert "Hauptstr" not in text and "Berlin" not in text and "example.org" not in text
    assert (other / "I99999999_final_notice_2024-11-02.txt").read_text() == \
        "Dear someone else,\n"
    for q in store.quarantine_dir.glob("*.csv"):
        text = q.read_text(encoding="utf-8")
        assert "Erika" not in text and cust in text  # the id (pseudonymous) stays
        assert pd.read_csv(q, dtype=str)["field"].notna().all()
    assert store.versions("customers", cust)["name"].isna().all()
    assert store.events()["note"].isna().all()
    row = store.table("customers").set_index("customer_id").loc[cust]
    assert row[["name", "email", "address"]].isna().all()
    assert store.versions("customers", cust)[["email", "address"]].isna().all().all()
