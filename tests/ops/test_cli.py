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
    # Every recommended letter is written. Letters claiming interest for a period without a
    # rate (the packaged table has none in the synthetic 2023-24) are not recommended for
    # printing: they wait in the review queue (rates.missing_period), each named with its
    # review item, never written with a wrong figure (the positive case with the review
    # decision: tests/ops/test_gate.py); reminders without interest are written.
    in_review = [r for r in rows if r["status"] == "needs_review"
                 and (r["reason"] or {}).get("blocked_claims")]
    assert first.output.count("letter in review R-") == len(in_review)
    for r in in_review:
        assert r["review_id"] and f"letter in review {r['review_id']}" in first.output
        assert "no known rate" in r["reason"]["blocked_claims"][0]
    assert "letter not rendered:" not in first.output
    assert len(list(letters.glob("*.txt"))) == len(sent) > 0
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
        seq, payload = con.execute("SELECT seq, payload FROM ops_audit_log WHERE kind = "
                                   "'decision' ORDER BY seq LIMIT 1").fetchone()
        edited = payload.replace('"p_late":null', '"p_late":0.01')  # no model: p is null
        assert edited != payload
        con.execute("UPDATE ops_audit_log SET payload = ? WHERE seq = ?", [edited, seq])
    result = run("audit", "verify", "--db", str(db), ok=False)
    assert result.exit_code == 1 and f"record {seq}:" in result.output


def _pending_review(db, as_of) -> str:
    run("recommend", "--db", str(db), "--as-of", as_of.isoformat())
    with Store(db).connect() as con:
        return con.execute("SELECT review_id FROM ops_review_queue WHERE status = 'pending' "
                           "ORDER BY review_id LIMIT 1").fetchone()[0]


def test_audit_verify_detects_an_approval_forged_in_the_table(db, as_of):
    rid = _pending_review(db, as_of)
    ok = " ".join(run("audit", "verify", "--db", str(db)).output.split())
    assert "review queue and recommendations match" in ok
    with Store(db).connect() as con:  # a writer of the store, without the audit key
        con.execute("UPDATE ops_review_queue SET status = 'approved', reviewer = 'mallory', "
                    "decided_at = '2024-12-02T09:00:00+00:00' WHERE review_id = ?", [rid])
    result = run("audit", "verify", "--db", str(db), ok=False)
    out = " ".join(result.output.split())
    assert result.exit_code == 1
    assert f"review {rid}" in out and "'mallory'" in out and "status 'pending'" in out, out


def test_audit_verify_detects_an_edited_or_deleted_recommendation(db, as_of):
    run("recommend", "--db", str(db), "--as-of", as_of.isoformat())
    with Store(db).connect() as con:
        inv, other = [r[0] for r in con.execute(
            "SELECT invoice_id FROM ops_recommendations WHERE action = 'email' "
            "ORDER BY invoice_id LIMIT 2").fetchall()]
        con.execute("UPDATE ops_recommendations SET action = 'wait', status = 'wait' "
                    "WHERE invoice_id = ?", [inv])
        con.execute("DELETE FROM ops_recommendations WHERE invoice_id = ?", [other])
    result = run("audit", "verify", "--db", str(db), ok=False)
    out = " ".join(result.output.split())
    assert result.exit_code == 1
    assert f"recommendation {as_of} {inv}: the table row differs" in out, out
    assert "(table: wait, wait; chain: email, recommended)" in out
    assert f"recommendation {as_of} {other}: in the audit chain" in out and "(deleted)" in out


def test_review_decisions_through_the_cli_are_in_the_chain_and_verify(db, as_of):
    rid = _pending_review(db, as_of)
    run("review", "reject", rid, "--db", str(db), "--reason", "customer paid by phone",
        "--reviewer", "bob")
    with Store(db).connect() as con:
        from dunning.ops.audit import AuditLog

        recs = [r for r in AuditLog(con).records(kind="review")
                if r["payload"]["review_id"] == rid]
    assert [r["payload"]["event"] for r in recs] == ["queued", "decided"]
    assert recs[1]["payload"]["decision"] == "rejected" and recs[1]["payload"]["reviewer"] == "bob"
    assert "match" in run("audit", "verify", "--db", str(db)).output


def test_audit_anchor_export_and_verify_against_it(db, as_of, tmp_path):
    run("recommend", "--db", str(db), "--as-of", as_of.isoformat())
    anchor = tmp_path / "elsewhere" / "anchor.json"
    assert "written to" in run("audit", "anchor", "--db", str(db), "--out", str(anchor)).output
    saved = json.loads(anchor.read_text())
    assert saved["count"] == saved["seq"] > 0
    assert "extends" in " ".join(run("audit", "verify", "--db", str(db), "--anchor",
                                     str(anchor)).output.split())
    with Store(db).connect() as con:  # cut the newest records and the local anchor with them
        con.execute("DELETE FROM ops_audit_log WHERE seq > ?", [saved["seq"] - 5])
    (db.parent / "audit.anchor").unlink()
    result = run("audit", "verify", "--db", str(db), "--anchor", str(anchor), ok=False)
    assert result.exit_code == 1 and "log truncated" in " ".join(result.output.split())
    assert "not found" in run("audit", "verify", "--db", str(db), "--anchor",
                              str(tmp_path / "nope.json"), ok=False).output


def test_cli_without_an_audit_key_or_with_a_bad_date_exits_2(db, monkeypatch):
    for day in ("0001-01-01", "2099-01-01"):
        result = run("recommend", "--db", str(db), "--as-of", day, ok=False)
        assert result.exit_code == 2 and "outside the accepted range" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
    monkeypatch.delenv("DUNNING_AUDIT_KEY")
    result = run("recommend", "--db", str(db), "--as-of", "2024-12-02", ok=False)
    assert result.exit_code == 2 and "no audit key" in result.output
    result = run("record-action", "--db", str(db), "--invoice", "I00000001", "--channel",
                 "email", "--date", "2024-12-02", ok=False)
    assert result.exit_code == 2 and "no audit key" in result.output
    with Store(db).connect() as con:  # nothing stored without its audit record
        assert con.execute("SELECT count(*) FROM actions WHERE invoice_id = 'I00000001' AND "
                           "action_date = DATE '2024-12-02'").fetchone()[0] == 0
    key_file = db.parent / "k" / "audit.key"
    out = run("audit", "init-key", "--out", str(key_file)).output
    assert f"export DUNNING_AUDIT_KEY_FILE={key_file}" in out
    assert key_file.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("DUNNING_AUDIT_KEY_FILE", str(key_file))
    assert run("recommend", "--db", str(db), "--as-of", "2024-12-02").exit_code == 0
    assert "match" in run("audit", "verify", "--db", str(db)).output


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


def test_audit_migrate_pins_a_store_written_before_the_key(db, as_of):
    from dunning.ops.audit import _legacy_hash

    run("recommend", "--db", str(db), "--as-of", as_of.isoformat())
    cols = ("seq", "recorded_at", "kind", "as_of", "invoice_id", "customer_id", "payload",
            "personal_digest", "prev_hash", "record_hash")
    with Store(db).connect() as con:  # make it look like a store of the unkeyed version
        con.execute("UPDATE ops_audit_log SET payload = "
                    "regexp_replace(payload, ',\"row_digest\":\"[0-9a-f]+\"', '')")
        prev = "0" * 64
        for values in con.execute("SELECT * FROM ops_audit_log ORDER BY seq").fetchall():
            row = dict(zip(cols, values, strict=True), prev_hash=prev)
            prev = _legacy_hash(prev, row)
            con.execute("UPDATE ops_audit_log SET prev_hash = ?, record_hash = ? WHERE seq = ?",
                        [row["prev_hash"], prev, row["seq"]])
        n_reviews = con.execute("SELECT count(*) FROM ops_review_queue").fetchone()[0]
    (db.parent / "audit.anchor").unlink()
    result = run("audit", "verify", "--db", str(db), ok=False)
    assert result.exit_code == 1 and "dunning audit migrate" in " ".join(result.output.split())
    out = " ".join(run("audit", "migrate", "--db", str(db)).output.split())
    assert "unkeyed records verified and pinned" in out and f"{n_reviews} review-queue" in out
    assert "migrated unkeyed records pinned" in " ".join(
        run("audit", "verify", "--db", str(db)).output.split())
    assert "nothing to migrate" in run("audit", "migrate", "--db", str(db)).output
    with Store(db).connect() as con:  # edits after the migration are still found
        rid = con.execute("SELECT review_id FROM ops_review_queue LIMIT 1").fetchone()[0]
        con.execute("UPDATE ops_review_queue SET status = 'approved', reviewer = 'x' "
                    "WHERE review_id = ?", [rid])
        inv = con.execute("SELECT invoice_id FROM ops_recommendations WHERE action = 'email' "
                          "LIMIT 1").fetchone()[0]
        con.execute("UPDATE ops_recommendations SET action = 'agency' WHERE invoice_id = ?",
                    [inv])
    out = " ".join(run("audit", "verify", "--db", str(db), ok=False).output.split())
    assert f"review {rid}" in out and f"{inv}: action/status agency/recommended differ" in out
