"""Audit log: append-only hash chain, tamper detection, erasure keeps the chain valid."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dunning.ops.audit import AuditLog, AuditRecord

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
    from dunning.ops.audit import _record_hash

    log.append([_decision(i) for i in range(3)])
    row = dict(zip(("seq", "recorded_at", "kind", "as_of", "invoice_id", "customer_id",
                    "payload", "personal_digest", "prev_hash", "record_hash"),
                   log.con.execute("SELECT * FROM ops_audit_log WHERE seq = 2").fetchone(),
                   strict=True))
    row["payload"] = row["payload"].replace("email", "letter")
    new_hash = _record_hash(row["prev_hash"], row)
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
