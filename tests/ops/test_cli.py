"""The ops commands end to end: recommend, review, record-action, audit, forget."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dunning.cli import app
from dunning.ops.creditor import EXAMPLE_PROFILE
from engine.store import Store

runner = CliRunner()


def run(*args: str, ok: bool = True):
    result = runner.invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_recommend_writes_output_and_letters_and_is_idempotent(db, tmp_path, as_of):
    shutil.copy(EXAMPLE_PROFILE, db.parent / "creditor.yaml")
    out = tmp_path / "rec.json"
    letters = tmp_path / "letters"
    first = run("recommend", "--db", str(db), "--as-of", as_of.isoformat(), "--out", str(out),
                "--letters", str(letters))
    rows = json.loads(out.read_text())
    assert rows and {r["as_of"] for r in rows} == {as_of.isoformat()}
    sent = [r for r in rows if r["action"] in ("email", "letter", "final_notice")
            and r["status"] == "recommended"]
    # Every letter is written, or named as not rendered: the synthetic data runs in 2023-24
    # and the packaged rate table has no rate there, so letters claiming interest are refused
    # (fail closed), never written with a wrong figure; reminders without interest are written.
    refused = first.output.count("letter not rendered:")
    assert len(list(letters.glob("*.txt"))) + refused == len(sent) > 0
    assert len(list(letters.glob("*.txt"))) > 0
    for txt in letters.glob("*.txt"):  # a written letter is not also reported as refused
        assert f"invoice {txt.stem.split('_')[0]}:" not in first.output
    assert "Nordlicht Maschinenbau GmbH" in next(letters.glob("*.html")).read_text()
    assert "recorded" in first.output
    second = run("recommend", "--db", str(db), "--as-of", as_of.isoformat(), "--out",
                 str(tmp_path / "rec2.json"))
    assert "nothing new recorded" in second.output
    assert json.loads((tmp_path / "rec2.json").read_text()) == rows


def test_record_action_review_audit_and_forget(db, as_of):
    run("recommend", "--db", str(db), "--as-of", as_of.isoformat())
    with Store(db).connect() as con:
        inv, cust = con.execute("SELECT invoice_id, customer_id FROM ops_recommendations "
                                "WHERE action = 'email' ORDER BY invoice_id LIMIT 1").fetchone()
    r = run("record-action", "--db", str(db), "--invoice", inv, "--channel", "email",
            "--date", as_of.isoformat(), "--by", "user:alice")
    assert "recorded" in r.output
    assert "already recorded" in run("record-action", "--db", str(db), "--invoice", inv,
                                     "--channel", "email", "--date", as_of.isoformat()).output
    shown = run("audit", "show", "--db", str(db), "--invoice", inv).output
    assert "decision" in shown and "email" in shown and "rules" in shown

    # A review decision through the CLI records who and why.
    from dunning.ops.audit import AuditLog
    from dunning.ops.review import ReviewItem, ReviewQueue

    with Store(db).connect() as con:
        rid = ReviewQueue(con, AuditLog(con, anchor=db.parent / "audit.anchor")).submit(
            [ReviewItem(as_of, inv, cust, "agency", ["gdpr.art22_agency_review"])])[0]
    assert rid in run("review", "list", "--db", str(db)).output
    run("review", "approve", rid, "--db", str(db), "--reason", "called twice, no answer",
        "--reviewer", "alice")
    assert "already approved" in run("review", "reject", rid, "--db", str(db), "--reason",
                                     "x", ok=False).output
    assert "called twice" in run("audit", "show", "--db", str(db), "--invoice", inv).output
    assert "ok" in run("audit", "verify", "--db", str(db)).output

    # Forget: name and free text gone, chain still verifies.
    out = run("forget", "--db", str(db), "--customer", cust, "--yes").output
    assert "audit verify`: ok" in " ".join(out.split())
    with Store(db).connect() as con:
        assert con.execute("SELECT name FROM customers WHERE customer_id = ?",
                           [cust]).fetchone()[0] is None
    shown = run("audit", "show", "--db", str(db), "--invoice", inv).output
    assert "called twice" not in shown and "[erased]" in shown
    assert "ok" in run("audit", "verify", "--db", str(db)).output


def test_audit_verify_fails_after_tampering(db, as_of):
    run("recommend", "--db", str(db), "--as-of", as_of.isoformat())
    with Store(db).connect() as con:
        payload = con.execute("SELECT payload FROM ops_audit_log WHERE seq = 2").fetchone()[0]
        edited = payload.replace('"p_late":null', '"p_late":0.01')  # no model: p is null
        assert edited != payload
        con.execute("UPDATE ops_audit_log SET payload = ? WHERE seq = 2", [edited])
    result = run("audit", "verify", "--db", str(db), ok=False)
    assert result.exit_code == 1 and "record 2" in result.output


@pytest.mark.parametrize("args, message", [
    (["recommend", "--as-of", "2024-02-30"], "--as-of '2024-02-30': expected a date"),
    (["record-action", "--invoice", "NOPE", "--channel", "email", "--date", "2024-12-02"],
     "no such invoice"),
    (["record-action", "--invoice", "I00000001", "--channel", "fax", "--date", "2024-12-02"],
     "expected one of email"),
    (["review", "approve", "R-0000000000", "--reason", "x"], "not found"),
    (["forget", "--customer", "NOPE", "--yes"], "no such customer"),
    (["recommend", "--as-of", "2024-12-02", "--policy", "/nonexistent/policy"],
     "not a directory"),
    (["recommend", "--as-of", "2024-12-02", "--model", "/nonexistent/model"], "not found"),
    (["recommend", "--as-of", "2024-12-02", "--out", "x.xlsx"], "expected .csv, .json"),
    (["recommend", "--as-of", "2024-12-02", "--letter-format", "docx"], "expected txt, html"),
    (["recommend", "--as-of", "2024-12-02", "--letters", "letters"],
     "creditor file not found"),
])
def test_user_errors_exit_2_without_traceback(db, args, message):
    dunning = str(Path(sys.executable).parent / "dunning")
    proc = subprocess.run([dunning, *args, "--db", str(db)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr
