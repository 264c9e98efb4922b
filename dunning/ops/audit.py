"""Append-only, tamper-evident audit log of every decision (GDPR art. 15, 22; accountability).

Each record is one decision or event about one invoice: a recommendation (facts, payment
probabilities, chosen action, vetoes with rule ids, model / policy / rule-set hashes), a
reviewer's decision, an action actually taken, or an erasure. Records live in the same
DuckDB file as the data (table ``ops_audit_log``) and form a hash chain::

    record_hash[i] = sha256(record_hash[i-1] + "\\n" + header_json(i) + "\\n" + payload(i))

so that editing, deleting or reordering any record breaks :meth:`AuditLog.verify`.

Personal data (a debtor's name, free-text reasons) is NOT part of a chained record. It is
stored in ``ops_audit_personal`` together with a random salt, and the chained record holds
only ``personal_digest = sha256(salt + canonical_json(personal))``. Erasure (GDPR art. 17) deletes
the personal row and its salt; the chain still verifies, and the digest no longer reveals
anything (it was salted). Deleting the tail of the log is detected against an optional
anchor file that holds the last ``(seq, hash)`` outside the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

GENESIS_HASH = "0" * 64
KINDS = ("decision", "review", "action", "erasure", "run", "event", "master_data")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ops_audit_log (
    seq BIGINT PRIMARY KEY,
    recorded_at VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    as_of DATE,
    invoice_id VARCHAR,
    customer_id VARCHAR,
    payload VARCHAR NOT NULL,
    personal_digest VARCHAR NOT NULL,
    prev_hash VARCHAR NOT NULL,
    record_hash VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS ops_audit_personal (
    seq BIGINT PRIMARY KEY,
    customer_id VARCHAR,
    salt VARCHAR NOT NULL,
    data VARCHAR NOT NULL
);
"""
_COLUMNS = ("seq", "recorded_at", "kind", "as_of", "invoice_id", "customer_id", "payload",
            "personal_digest", "prev_hash", "record_hash")


def canonical_json(obj: Any) -> str:
    """One byte-exact JSON text per value: sorted keys, no spaces, dates as ISO strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, dt.date | dt.datetime):
        return obj.isoformat()
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__} into the audit log")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class AuditRecord:
    """One event to append. ``payload`` must not hold personal data; put that in ``personal``."""

    kind: str
    payload: dict[str, Any]
    as_of: dt.date | None = None
    invoice_id: str | None = None
    customer_id: str | None = None
    personal: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"audit record kind {self.kind!r} not in {KINDS}")


@dataclass
class VerifyReport:
    """Result of :meth:`AuditLog.verify`. ``ok`` is True only if ``problems`` is empty."""

    n_records: int
    head_hash: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _record_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """sha256 over the previous hash, the record's header fields and its payload text.

    The payload is hashed as stored (it is already canonical JSON), not re-encoded.
    """
    as_of = row["as_of"].isoformat() if isinstance(row["as_of"], dt.date) else row["as_of"]
    head = canonical_json([row["seq"], row["recorded_at"], row["kind"], as_of,
                           row["invoice_id"], row["customer_id"], row["personal_digest"]])
    return sha256(prev_hash + "\n" + head + "\n" + row["payload"])


class AuditLog:
    """The audit log in a DuckDB connection (creates its tables on first use).

    Parameters
    ----------
    con:
        An open read-write DuckDB connection (usually ``Store(path).connect()``).
    anchor:
        Optional file outside the database that holds the last ``seq`` and hash, rewritten
        atomically on every append, so that deleting the newest records is detected too.
    """

    _lock = threading.Lock()  # one appender at a time per process (the chain is sequential)

    def __init__(self, con: duckdb.DuckDBPyConnection, anchor: Path | None = None) -> None:
        self.con = con
        self.anchor = Path(anchor) if anchor else None
        self.con.execute(_SCHEMA)

    # -- writing --------------------------------------------------------------------------
    def append(self, records: Sequence[AuditRecord]) -> list[int]:
        """Append records in order; return their sequence numbers. Atomic: all or none."""
        if not records:
            return []
        import pyarrow as pa

        with self._lock:
            seq, prev = self.head()
            now = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
            rows, personal = [], []
            for rec in records:
                seq += 1
                digest = ""
                if rec.personal:
                    salt = secrets.token_hex(16)
                    data = canonical_json(rec.personal)
                    digest = sha256(salt + data)
                    personal.append((seq, rec.customer_id, salt, data))
                row = {
                    "seq": seq, "recorded_at": now, "kind": rec.kind,
                    "as_of": rec.as_of.isoformat() if rec.as_of else None,
                    "invoice_id": rec.invoice_id, "customer_id": rec.customer_id,
                    "payload": canonical_json(rec.payload), "personal_digest": digest,
                }
                row["prev_hash"] = prev
                row["record_hash"] = prev = _record_hash(prev, row)
                rows.append(row)
            columns = {c: [r[c] for r in rows] for c in _COLUMNS}
            self.con.execute("BEGIN TRANSACTION")
            try:
                self.con.register("_audit_rows", pa.table(columns))
                self.con.execute(
                    "INSERT INTO ops_audit_log SELECT seq, recorded_at, kind, "
                    "CAST(as_of AS DATE), invoice_id, customer_id, payload, personal_digest, "
                    "prev_hash, record_hash FROM _audit_rows")
                self.con.unregister("_audit_rows")
                if personal:
                    pcols = dict(zip(("seq", "customer_id", "salt", "data"),
                                     (list(c) for c in zip(*personal, strict=True)),
                                     strict=True))
                    self.con.register("_audit_personal", pa.table(pcols))
                    self.con.execute(
                        "INSERT INTO ops_audit_personal SELECT * FROM _audit_personal")
                    self.con.unregister("_audit_personal")
                self.con.execute("COMMIT")
            except Exception:
                self.con.execute("ROLLBACK")
                raise
            self._write_anchor(seq, prev)
            return [r["seq"] for r in rows]

    def _write_anchor(self, seq: int, head_hash: str) -> None:
        if self.anchor is None:
            return
        self.anchor.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.anchor.with_name(self.anchor.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"seq": seq, "record_hash": head_hash}) + "\n")
        tmp.replace(self.anchor)

    def forget_customer(self, customer_id: str) -> int:
        """Erase the personal data of one customer's records; return how many were erased.

        The chained records keep only a salted digest, so the chain still verifies. The
        erasure itself is recorded (without the erased data).
        """
        with self._lock:
            n = self.con.execute("SELECT count(*) FROM ops_audit_personal "
                                 "WHERE customer_id = ?", [customer_id]).fetchone()[0]
            self.con.execute("DELETE FROM ops_audit_personal WHERE customer_id = ?",
                             [customer_id])
        self.append([AuditRecord("erasure", {"erased_personal_records": int(n),
                                             "basis": "GDPR art. 17"},
                                 customer_id=customer_id)])
        return int(n)

    # -- reading --------------------------------------------------------------------------
    def head(self) -> tuple[int, str]:
        """``(seq, record_hash)`` of the newest record, ``(0, GENESIS_HASH)`` when empty."""
        row = self.con.execute(
            "SELECT seq, record_hash FROM ops_audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), row[1]) if row else (0, GENESIS_HASH)

    def __len__(self) -> int:
        return int(self.con.execute("SELECT count(*) FROM ops_audit_log").fetchone()[0])

    def records(self, invoice_id: str | None = None, customer_id: str | None = None,
                kind: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Records in chain order, payload decoded, with personal data where not erased."""
        where, args = [], []
        for col, val in (("l.invoice_id", invoice_id), ("l.customer_id", customer_id),
                         ("l.kind", kind)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        sql = ("SELECT l.seq, l.recorded_at, l.kind, l.as_of, l.invoice_id, l.customer_id, "
               "l.payload, l.personal_digest, p.data FROM ops_audit_log l "
               "LEFT JOIN ops_audit_personal p ON p.seq = l.seq")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY l.seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        out = []
        for seq, at, kind_, as_of, inv, cust, payload, digest, pdata in \
                self.con.execute(sql, args).fetchall():
            out.append({
                "seq": seq, "recorded_at": at, "kind": kind_,
                "as_of": as_of.isoformat() if as_of else None,
                "invoice_id": inv, "customer_id": cust, "payload": json.loads(payload),
                "personal": json.loads(pdata) if pdata else None,
                "personal_erased": bool(digest) and pdata is None,
            })
        return out

    def verify(self, batch: int = 50_000) -> VerifyReport:
        """Recompute the chain; report every broken link, gap, altered personal row, anchor."""
        problems: list[str] = []
        prev, expected_seq, n = GENESIS_HASH, 1, 0
        cur = self.con.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM ops_audit_log ORDER BY seq")
        while chunk := cur.fetchmany(batch):
            for values in chunk:
                row = dict(zip(_COLUMNS, values, strict=True))
                n += 1
                seq = row["seq"]
                if seq != expected_seq:
                    problems.append(f"record {seq}: expected sequence number {expected_seq} "
                                    "(a record was deleted or inserted)")
                if row["prev_hash"] != prev:
                    problems.append(f"record {seq}: prev_hash does not match record "
                                    f"{seq - 1} (chain broken)")
                if _record_hash(row["prev_hash"], row) != row["record_hash"]:
                    problems.append(f"record {seq}: content does not match its hash (edited)")
                prev, expected_seq = row["record_hash"], seq + 1
        problems += self._verify_personal()
        problems += self._verify_anchor(expected_seq - 1, prev)
        return VerifyReport(n_records=n, head_hash=prev, problems=problems)

    def _verify_personal(self) -> list[str]:
        rows = self.con.execute(
            "SELECT p.seq, p.salt, p.data, l.personal_digest FROM ops_audit_personal p "
            "LEFT JOIN ops_audit_log l ON l.seq = p.seq").fetchall()
        return [f"record {seq}: personal data does not match its digest (edited)"
                for seq, salt, data, digest in rows if sha256(salt + data) != digest]

    def _verify_anchor(self, last_seq: int, last_hash: str) -> list[str]:
        if self.anchor is None or not self.anchor.exists():
            return []
        anchor = json.loads(self.anchor.read_text())
        if anchor["seq"] > last_seq:
            return [f"anchor {self.anchor} expects {anchor['seq']} records, the log has "
                    f"{last_seq} (newest records deleted)"]
        if anchor["seq"] == last_seq and anchor["record_hash"] != last_hash:
            return [f"anchor {self.anchor}: newest record hash differs (log rewritten)"]
        return []



def forget_customer(store: Any, customer_id: str) -> dict[str, Any]:
    """Erase one customer's personal data (GDPR art. 17) across the store.

    Erased: the customer's ``name`` in the ``customers`` table and the personal fields of
    their audit records (free-text reasons). Kept, as the law requires (accounting and
    tax retention, proof of lawful processing): the pseudonymous customer id, invoices,
    payments, actions and the chained audit records, which still verify. Raises
    :class:`engine.errors.InputError` for an unknown customer id.
    """
    from engine.errors import InputError

    with store.connect() as con:
        found = con.execute("SELECT count(*) FROM customers WHERE customer_id = ?",
                            [customer_id]).fetchone()[0]
        if not found:
            raise InputError(f"--customer {customer_id!r}: no such customer in {store.path}")
        con.execute("UPDATE customers SET name = NULL WHERE customer_id = ?", [customer_id])
        log = AuditLog(con, anchor=store.path.parent / "audit.anchor")
        erased = log.forget_customer(customer_id)
        report = log.verify()
    return {"customer_rows": int(found), "audit_personal_records": erased,
            "audit_ok": report.ok}
