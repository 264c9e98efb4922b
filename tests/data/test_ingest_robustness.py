"""Ingest robustness: exit codes a scheduler can act on, top reasons on the console, a cut
last line, versioned master data, a damaged or locked store as one line."""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from dunning.cli import app
from dunning.ops.audit import AuditLog
from engine.ingest import TRUNCATED_LAST_LINE, ingest
from engine.store import Store, StoreError

runner = CliRunner()


def flat(text: str) -> str:
    return " ".join(text.split())


def test_a_last_line_cut_short_without_its_line_break_is_quarantined(tmp_path, store,
                                                                      contract_files,
                                                                      samples) -> None:
    ingest(contract_files, db=store)
    cut = samples.write(tmp_path, "payments.csv",
                        "invoice_id,payment_date,amount\nI4,2024-04-10,12.50\nI4,2024-04-11,12")
    report = ingest([cut], db=store)
    t = report.tables["payments"]
    assert (t.loaded, t.quarantined) == (1, 1)
    q = pd.read_csv(t.quarantine_file, dtype=str)
    assert q["line"].tolist() == ["3"] and TRUNCATED_LAST_LINE in q["reason"].iloc[0]
    assert store.table("payments").query("invoice_id == 'I4'")["amount"].tolist() == [12.5]
    whole = samples.write(tmp_path, "payments.csv",
                          "invoice_id,payment_date,amount\nI4,2024-04-11,12.50\n")
    assert ingest([whole], db=store).tables["payments"].loaded == 1


def test_cli_exit_3_with_the_top_reasons_when_rows_are_quarantined(tmp_path,
                                                                    contract_files,
                                                                    samples) -> None:
    db = tmp_path / "s" / "d.duckdb"
    assert runner.invoke(app, ["ingest", *map(str, contract_files), "--db", str(db)]
                         ).exit_code == 0
    pays = samples.write(tmp_path, "payments.csv",
                         "invoice_id,payment_date,amount\nI4,2024-04-10,5\nI9,2024-04-10,5\n"
                         "I8,2024-04-10,5\nI4,2024-04-10,-1\nI4,10.04.2024,5\nI4,2024-04-12,1\n")
    result = runner.invoke(app, ["ingest", str(pays), "--db", str(db)])
    assert result.exit_code == 3, result.output
    out = flat(result.output)
    assert "top reasons" in out
    assert "2 x invoice_id: unknown invoice_id (not in the store nor loaded by this ingest)" \
        in out
    assert "1 x amount: amount must be > 0" in out and "1 x payment_date: not a date" in out
    assert "exit code 3" in out and ".csv" in out


def test_cli_exit_4_when_the_store_has_no_invoices(tmp_path, samples) -> None:
    only = samples.write(tmp_path, "customers.csv", samples.CUSTOMERS)
    result = runner.invoke(app, ["ingest", str(only), "--db", str(tmp_path / "d.duckdb")])
    assert result.exit_code == 4 and "no customers or no invoices" in flat(result.output)


def test_a_changed_master_data_row_is_a_new_version_named_and_audited(tmp_path,
                                                                      contract_files,
                                                                      samples) -> None:
    db = tmp_path / "s" / "d.duckdb"
    runner.invoke(app, ["ingest", *map(str, contract_files), "--db", str(db)])
    moved = samples.write(tmp_path, "customers.csv", samples.CUSTOMERS.replace(
        "C2,Beta AB,startup,SE,b2b,sv", "C2,Beta AB,startup,SE,b2b,en"))
    result = runner.invoke(app, ["ingest", str(moved), "--db", str(db), "--effective",
                                 "2024-03-01"])
    assert result.exit_code == 0, result.output
    assert "customers: 1 row(s) updated, effective 2024-03-01: C2 (language)" \
        in flat(result.output)
    store = Store(db)
    lang = {d: store.tables(as_of=d)["customers"].set_index("customer_id").loc["C2",
                                                                              "language"]
            for d in (dt.date(2024, 2, 29), dt.date(2024, 3, 1))}
    assert lang == {dt.date(2024, 2, 29): "sv", dt.date(2024, 3, 1): "en"}
    v = store.versions("customers", "C2")
    assert v["language"].tolist() == ["sv"] and v["changed_fields"].tolist() == ["language"]
    with store.connect() as con:
        log = AuditLog(con, anchor=db.parent / "audit.anchor")
        (rec,) = log.records(kind="master_data")
        assert log.verify().ok
    assert rec["payload"]["changed_fields"] == ["language"] and rec["customer_id"] == "C2"
    # a change dated before the stored one would rewrite history: quarantined, named
    older = samples.write(tmp_path, "customers.csv", samples.CUSTOMERS.replace(
        "C2,Beta AB,startup,SE,b2b,sv", "C2,Beta AB,corporate,SE,b2b,en"))
    report = ingest([older], db=store, effective=dt.date(2024, 2, 1))
    q = pd.read_csv(report.tables["customers"].quarantine_file, dtype=str)
    assert q["field"].tolist() == ["segment"] and "older than a stored change" in q["reason"][0]


def test_a_changed_invoice_updates_but_another_debtor_is_a_named_conflict(
        tmp_path, store, contract_files, samples) -> None:
    ingest(contract_files, db=store)
    text = samples.INVOICES.replace("I4,C3,2024-04-01,2024-04-15", "I4,C3,2024-04-01,2024-05-15")
    text = text.replace("I2,C1,2024-02-01", "I2,C2,2024-02-01")
    report = ingest([samples.write(tmp_path, "invoices.csv", text)], db=store,
                    effective=dt.date(2024, 4, 20))
    t = report.tables["invoices"]
    assert t.changes == [("I4", ("due_date",))] and t.quarantined == 1
    q = pd.read_csv(t.quarantine_file, dtype=str)
    assert q["field"].tolist() == ["customer_id"]
    assert "different customer_id: it identifies another record" in q["reason"][0]
    due = {d: store.tables(as_of=d)["invoices"].set_index("invoice_id").loc["I4", "due_date"]
           for d in (dt.date(2024, 4, 19), dt.date(2024, 4, 20))}
    assert [x.date().isoformat() for x in due.values()] == ["2024-04-15", "2024-05-15"]


@pytest.mark.parametrize("content", [b"\x00garbage" * 3000, b"customer_id,name\nC1,x\n"])
def test_a_damaged_store_is_one_clear_line(tmp_path, content, contract_files) -> None:
    db = tmp_path / "bad.duckdb"
    db.write_bytes(content)
    with pytest.raises(StoreError, match="not a readable DuckDB store"):
        Store(db)
    result = runner.invoke(app, ["ingest", *map(str, contract_files), "--db", str(db)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "not a readable DuckDB store" in flat(result.output)
    result = runner.invoke(app, ["recommend", "--db", str(db), "--as-of", "2024-03-01"])
    assert result.exit_code == 2 and "not a readable DuckDB store" in flat(result.output)


def test_a_store_locked_by_another_process_is_one_clear_line(tmp_path, contract_files) -> None:
    db = tmp_path / "s" / "d.duckdb"
    Store(db)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); sys.stdin.read()", str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = runner.invoke(app, ["ingest", *map(str, contract_files), "--db", str(db)])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert "locked by another process" in flat(result.output)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


HOLDER = """
import sys, time
from engine.store import Store, configure_lock, store_lock
configure_lock(label="nightly-test-job")
store = Store(sys.argv[1])
with store.connect():
    print("ready", flush=True)
    if sys.argv[2] == "until-someone-waits":
        while not store_lock(store.path).others_waiting():
            time.sleep(0.01)
    else:
        sys.stdin.read()
"""


def _hold(db, mode: str) -> subprocess.Popen:  # noqa: ANN001
    """A process holding the store through dunning's own lock (``Store.connect``)."""
    import os
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), mode],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": root})
    assert holder.stdout.readline().strip() == "ready"
    return holder


def test_a_cli_job_waits_for_the_store_and_says_who_holds_it(tmp_path,
                                                             contract_files) -> None:
    db = tmp_path / "s" / "d.duckdb"
    Store(db)
    holder = _hold(db, "until-someone-waits")  # lets go once the ingest below waits
    try:
        result = runner.invoke(app, ["ingest", *map(str, contract_files), "--db", str(db)])
    finally:
        holder.wait(timeout=30)
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "waiting for the store: held by nightly-test-job, pid " \
        f"{holder.pid}" in out and "Traceback" not in out
    assert Store(db).counts()["invoices"] == 4


def test_a_cli_job_that_waits_too_long_names_the_holder_and_exits_2(tmp_path, contract_files,
                                                                   monkeypatch) -> None:
    from engine.store import StoreBusy, store_lock

    db = tmp_path / "s" / "d.duckdb"
    Store(db)
    holder = _hold(db, "until-stdin-closes")
    monkeypatch.setenv("DUNNING_STORE_WAIT", "0.3")
    try:
        result = runner.invoke(app, ["ingest", *map(str, contract_files), "--db", str(db)])
        assert result.exit_code == 2 and "Traceback" not in result.output
        out = flat(result.output)
        assert f"in use by nightly-test-job, pid {holder.pid}" in out
        assert "DUNNING_STORE_WAIT" in out and "Conflicting lock" not in out
        with pytest.raises(StoreBusy, match="nightly-test-job") as busy:  # a bounded wait
            store_lock(db).acquire(wait_s=0.1)
        assert busy.value.retry_after_s > 0 and busy.value.waited_s >= 0.1
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with Store(db).connect(read_only=True) as con:  # free again, read-only opens too
        assert con.execute("SELECT count(*) FROM invoices").fetchone()[0] == 0


def _try_lock(db: str, out) -> None:  # noqa: ANN001 - a multiprocessing queue
    from engine.store import StoreBusy, store_lock

    try:
        store_lock(db).acquire(wait_s=0.2)
        out.put("got it")
    except StoreBusy as exc:
        out.put(f"busy: {exc.holder}")


def test_a_forked_child_does_not_inherit_the_parents_lease(tmp_path) -> None:
    import multiprocessing

    from engine.store import configure_lock, store_lock

    db = tmp_path / "s" / "d.duckdb"
    Store(db)
    ctx = multiprocessing.get_context("fork")
    configure_lock(label="the parent")
    try:
        for held, expected in ((True, "busy: the parent, pid"), (False, "got it")):
            out = ctx.Queue()
            with store_lock(db).lease() if held else contextlib.nullcontext():
                child = ctx.Process(target=_try_lock, args=(str(db), out))
                child.start()
                child.join(timeout=30)
            assert out.get(timeout=5).startswith(expected)
    finally:
        configure_lock(label="")


def test_top_reasons_count_rows_with_the_same_problem_together(store, tmp_path,
                                                              samples) -> None:
    rows = "customer_id,jurisdiction,customer_type\n" + "".join(
        f"X{i},X{i % 10},b2b\n" for i in range(12)) + "Y,DE,alien\nZ,DE,b2b\n"
    report = ingest([samples.write(tmp_path, "customers.csv", rows)], db=store)
    top = report.tables["customers"].top_reasons
    assert top[0] == ("jurisdiction: expected an ISO 3166-1 alpha-2 country code "
                      "(e.g. DE, GB, US)", 12)
    assert top[1][1] == 1 and top[1][0].startswith("customer_type: expected one of")
