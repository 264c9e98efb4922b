"""Audit log: append-only keyed (HMAC) chain, tamper detection, key handling, migration of an
unkeyed chain, exported anchors; erasure keeps the chain valid."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dunning.ops.audit import (
    AuditKeyError,
    AuditLog,
    AuditRecord,
    _legacy_hash,
    _record_hash,
    write_key_file,
)

DAY = dt.date(2026, 3, 2)


def _decision(i: int, customer: str = "C1", name: str = "Erika Muster") -> AuditRecord:
    return AuditRecord("decision", {"action": "email", "p_on_time": 0.25 + i / 100,
                                    "vetoes": [{"rule_id": "de.no_weekend"}]},
                       as_of=DAY, invoice_id=f"I{i}", customer_id=customer,
                       personal={"name": name})


@pytest.fixture
def log(tmp_path):
    con = duckdb.connect(str(tmp_path / "a.duckdb"))
    yield AuditLog(con, anchor=tmp_path / "audit.anchor")
    con.close()


def test_append_verify_and_read_back(log):
    seqs = log.append([_decision(i) for i in range(5)])
    assert seqs == [1, 2, 3, 4, 5]
    report = log.verify()
    assert report.ok, report.problems
    assert report.n_records == 5
    recs = log.records(invoice_id="I3")
    assert len(recs) == 1 and recs[0]["payload"]["p_on_time"] == pytest.approx(0.28)
    assert recs[0]["personal"] == {"name": "Erika Muster"}


@pytest.mark.parametrize("sql, expected", [
    ("UPDATE ops_audit_log SET payload = replace(payload, 'email', 'agency') WHERE seq = 3",
     "record 3: content does not match"),
    ("DELETE FROM ops_audit_log WHERE seq = 2", "record 3: expected sequence number 2"),
    ("DELETE FROM ops_audit_log WHERE seq = 5", "newest records deleted"),
    ("UPDATE ops_audit_personal SET data = '{\"name\":\"X\"}' WHERE seq = 4",
     "record 4: personal data does not match"),
])
def test_tampering_is_detected(log, sql, expected):
    log.append([_decision(i) for i in range(5)])
    log.con.execute(sql)
    report = log.verify()
    assert not report.ok
    assert any(expected in p for p in report.problems), report.problems


def test_rehashing_an_edited_record_still_breaks_the_next_link(log):
    log.append([_decision(i) for i in range(3)])
    row = dict(zip(("seq", "recorded_at", "kind", "as_of", "invoice_id", "customer_id",
                    "payload", "personal_digest", "prev_hash", "record_hash"),
                   log.con.execute("SELECT * FROM ops_audit_log WHERE seq = 2").fetchone(),
                   strict=True))
    row["payload"] = row["payload"].replace("email", "letter")
    new_hash = _record_hash(row["prev_hash"], row, log.key)  # even with the key
    log.con.execute("UPDATE ops_audit_log SET payload = ?, record_hash = ? WHERE seq = 2",
                    [row["payload"], new_hash])
    assert any("record 3: prev_hash" in p for p in log.verify().problems)


def test_forget_erases_personal_data_and_chain_still_verifies(log):
    log.append([_decision(0, "C1"), _decision(1, "C2", "Sven Svensson"), _decision(2, "C1")])
    assert log.forget_customer("C1") == 2
    report = log.verify()
    assert report.ok, report.problems
    c1 = log.records(customer_id="C1", kind="decision")
    assert all(r["personal"] is None and r["personal_erased"] for r in c1)
    # The rest of the record (what the law requires to keep) is still there.
    assert [r["payload"]["action"] for r in c1] == ["email", "email"]
    assert log.records(customer_id="C2")[0]["personal"] == {"name": "Sven Svensson"}
    dump = " ".join(str(v) for v in log.con.execute("SELECT * FROM ops_audit_log").fetchall())
    assert "Erika" not in dump
    assert log.records(kind="erasure")[0]["payload"]["erased_personal_records"] == 2


def test_payload_must_be_serialisable(log):
    with pytest.raises(TypeError):
        log.append([AuditRecord("decision", {"x": object()})])
    assert len(log) == 0


@settings(max_examples=25, deadline=None)
@given(seq=st.integers(1, 6), column=st.sampled_from(
    ["recorded_at", "kind", "invoice_id", "customer_id", "payload", "personal_digest",
     "prev_hash", "record_hash"]), suffix=st.text(min_size=1, max_size=3))
def test_any_edit_of_any_record_is_detected(tmp_path_factory, seq, column, suffix):
    con = duckdb.connect(str(tmp_path_factory.mktemp("prop") / "a.duckdb"))
    log = AuditLog(con)
    log.append([_decision(i) for i in range(6)])
    if column == "kind":  # the kind column only holds known kinds
        new = "review" if seq % 2 else "action"
        con.execute("UPDATE ops_audit_log SET kind = ? WHERE seq = ?", [new, seq])
    else:
        con.execute(f"UPDATE ops_audit_log SET {column} = coalesce({column}, '') || ? "
                    "WHERE seq = ?", [suffix, seq])
    assert not log.verify().ok
    con.close()


# ----------------------------------------------------------------------------- the key
COLS = ("seq", "recorded_at", "kind", "as_of", "invoice_id", "customer_id", "payload",
        "personal_digest", "prev_hash", "record_hash")


def _rechain(con, link) -> None:
    """Recompute every record's prev_hash and record_hash with ``link(prev, row)`` (what a
    writer of the store does to hide an edit)."""
    prev = "0" * 64
    for values in con.execute("SELECT * FROM ops_audit_log ORDER BY seq").fetchall():
        row = dict(zip(COLS, values, strict=True))
        row["prev_hash"] = prev
        prev = link(prev, row)
        con.execute("UPDATE ops_audit_log SET prev_hash = ?, record_hash = ? WHERE seq = ?",
                    [row["prev_hash"], prev, row["seq"]])


def test_a_write_without_a_key_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("DUNNING_AUDIT_KEY", raising=False)
    con = duckdb.connect(str(tmp_path / "a.duckdb"))
    log = AuditLog(con)
    with pytest.raises(AuditKeyError, match="no audit key: set DUNNING_AUDIT_KEY_FILE"):
        log.append([_decision(0)])
    assert len(log) == 0
    with pytest.raises(AuditKeyError, match="no audit key"):
        log.verify()


def test_key_from_a_private_file_only(tmp_path, monkeypatch):
    monkeypatch.delenv("DUNNING_AUDIT_KEY", raising=False)
    key_file = write_key_file(tmp_path / "keys" / "audit.key")
    assert key_file.stat().st_mode & 0o777 == 0o600
    with pytest.raises(Exception, match="never overwritten"):
        write_key_file(key_file)
    monkeypatch.setenv("DUNNING_AUDIT_KEY_FILE", str(key_file))
    con = duckdb.connect(str(tmp_path / "a.duckdb"))
    AuditLog(con).append([_decision(0)])
    assert AuditLog(con).verify().ok
    key_file.chmod(0o644)
    with pytest.raises(AuditKeyError, match="mode 644"):
        AuditLog(con).verify()
    key_file.chmod(0o600)
    key_file.write_text("short\n")
    with pytest.raises(AuditKeyError, match="5 characters; expected at least 32"):
        AuditLog(con).verify()
    monkeypatch.setenv("DUNNING_AUDIT_KEY_FILE", str(tmp_path / "nope.key"))
    with pytest.raises(AuditKeyError, match="file not found"):
        AuditLog(con).verify()


@pytest.mark.parametrize("forger", ["sha256", "other key"])
def test_rewriting_the_whole_chain_without_the_key_is_detected(log, forger):
    log.append([_decision(i) for i in range(4)])
    log.con.execute("UPDATE ops_audit_log SET payload = replace(payload, 'email', 'agency')")
    other = b"a-key-the-forger-made-up-0123456789abcdef"
    _rechain(log.con, _legacy_hash if forger == "sha256"
             else lambda prev, row: _record_hash(prev, row, other))
    log.anchor.unlink()  # the local anchor is in reach of the forger too
    report = log.verify()
    assert not report.ok
    expected = "unkeyed chain" if forger == "sha256" else "written without the audit key"
    assert any(expected in p for p in report.problems), report.problems
    with pytest.raises(AuditKeyError):  # and nothing is appended onto a forged head
        log.append([_decision(9)])


def test_a_different_key_cannot_append(log, monkeypatch):
    log.append([_decision(0)])
    monkeypatch.setenv("DUNNING_AUDIT_KEY", "another-deployment-key-0123456789abcdef")
    with pytest.raises(AuditKeyError, match="does not verify with the configured audit key"):
        AuditLog(log.con).append([_decision(1)])
    assert len(log) == 1


def test_an_unkeyed_chain_is_migrated_explicitly_and_then_pinned(log):
    log.append([_decision(i) for i in range(3)])
    _rechain(log.con, _legacy_hash)  # what the code before the key wrote
    log.anchor.unlink()
    assert any("dunning audit migrate" in p for p in log.verify().problems)
    with pytest.raises(AuditKeyError, match="audit migrate"):
        log.append([_decision(3)])
    out = log.migrate()
    assert out["legacy_records"] == 3 and out["seq"] == 4
    log.append([_decision(4)])
    report = log.verify()
    assert report.ok, report.problems
    assert report.legacy_records == 3 and report.n_records == 5
    assert log.migrate()["legacy_records"] == 0  # already keyed: nothing to do
    # After the migration the unkeyed records are pinned: a consistent rewrite of them
    # (possible without the key) no longer verifies.
    log.con.execute("UPDATE ops_audit_log SET payload = replace(payload, 'email', 'agency') "
                    "WHERE seq = 2")
    prev = "0" * 64
    for values in log.con.execute("SELECT * FROM ops_audit_log WHERE seq <= 3 ORDER BY seq"
                                  ).fetchall():
        row = dict(zip(COLS, values, strict=True), prev_hash=prev)
        prev = _legacy_hash(prev, row)
        log.con.execute("UPDATE ops_audit_log SET prev_hash = ?, record_hash = ? "
                        "WHERE seq = ?", [row["prev_hash"], prev, row["seq"]])
    problems = log.verify().problems
    assert any("record 4: prev_hash" in p or "unkeyed prefix" in p for p in problems), problems


def test_a_tampered_unkeyed_chain_is_not_migrated(log):
    log.append([_decision(i) for i in range(3)])
    _rechain(log.con, _legacy_hash)
    log.con.execute("UPDATE ops_audit_log SET payload = replace(payload, 'email', 'agency') "
                    "WHERE seq = 2")
    with pytest.raises(AuditKeyError, match="does not verify.*record 2"):
        log.migrate()


def test_exported_anchor_detects_truncation_and_rewrite(log):
    log.append([_decision(i) for i in range(3)])
    anchor = log.export_anchor()
    assert anchor["seq"] == 3 and anchor["count"] == 3 and len(anchor["mac"]) == 64
    log.append([_decision(i) for i in range(3, 6)])
    assert log.check_anchor(anchor) == []  # the chain extends the anchor
    edited = {**anchor, "seq": 2}
    assert "mac does not match" in log.check_anchor(edited)[0]
    # An insider with the key rewrites history from record 2 on: the chain verifies again,
    # but the anchor kept elsewhere does not match.
    log.con.execute("UPDATE ops_audit_log SET payload = replace(payload, 'email', 'agency') "
                    "WHERE seq = 2")
    _rechain(log.con, lambda prev, row: _record_hash(prev, row, log.key))
    log.anchor.unlink()
    assert log.verify().ok
    assert "record 3 differs from the one anchored" in log.check_anchor(anchor)[0]
    log.con.execute("DELETE FROM ops_audit_log WHERE seq >= 3")
    assert "log truncated to 2 records" in log.check_anchor(anchor)[0]
