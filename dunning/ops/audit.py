"""Append-only, keyed, tamper-evident audit log of every decision (GDPR art. 15, 22).

Each record is one decision or event about one invoice: a recommendation (facts, payment
probabilities, chosen action, vetoes with rule ids, model / policy / rule-set hashes), a
review item queued or decided, a veto override, an action actually taken, a recorded event,
a master-data change or an erasure. Records live in the same DuckDB file as the data (table
``ops_audit_log``) and form an HMAC-SHA256 chain::

    record_hash[i] = HMAC-SHA256(key, record_hash[i-1] + "\\n" + header_json(i) + "\\n"
                                 + payload(i))

The key comes from a file named by ``$DUNNING_AUDIT_KEY_FILE`` (mode 0600) or from
``$DUNNING_AUDIT_KEY``; it is never stored in the database or the code
(:func:`load_audit_key`). Whoever can write the store but does not hold the key can neither
edit, delete, insert or reorder a record nor rewrite the whole chain without
:meth:`AuditLog.verify` noticing. Tables that must agree with the chain (review queue,
recommendations) carry a ``row_digest`` in their audit records; ``dunning.ops.integrity``
checks them.

Chains written before the key existed (plain ``sha256`` links) are migrated explicitly
(:meth:`AuditLog.migrate`, ``dunning audit migrate``): the unkeyed prefix is verified once,
and a keyed ``migration`` record pins its length and head hash, so that from then on the old
records cannot be rewritten either. An unmigrated unkeyed chain fails ``verify``.

Personal data (a debtor's name, free-text reasons) is NOT part of a chained record. It is
stored in ``ops_audit_personal`` together with a random salt, and the chained record holds
only ``personal_digest = sha256(salt + canonical_json(personal))``. Erasure (GDPR art. 17)
deletes the personal row and its salt; the chain still verifies, and the digest no longer
reveals anything (it was salted). Deleting the tail of the log is detected against an anchor:
the local ``audit.anchor`` next to the store (rewritten on every append; a convenience, since
a writer of the store can write it too) and the anchors exported with
:meth:`AuditLog.export_anchor` (``dunning audit anchor``) and kept elsewhere.

Public API for other modules (one append function)::

    append_audit(con, [AuditRecord("event", {...}, as_of=d, invoice_id=i)], anchor=path)
    AuditLog(con, anchor=path).append(records)        # the same
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from engine.errors import InputError
from engine.files import atomic_write_text

GENESIS_HASH = "0" * 64
KINDS = ("decision", "review", "override", "action", "event", "master_data", "erasure", "run",
         "migration", "rules")
KEY_ENV = "DUNNING_AUDIT_KEY"
KEY_FILE_ENV = "DUNNING_AUDIT_KEY_FILE"
MIN_KEY_CHARS = 32
ANCHOR_FORMAT = "dunning.audit_anchor/1"

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


class AuditKeyError(InputError):
    """No audit key, an unusable one, or a chain that does not verify with it."""


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


def row_digest(values: Sequence[Any], memo: dict[str, str] | None = None) -> str:
    """sha256 of one table row (a sequence of column values), 64 hex.

    Each value is written as a type tag plus text, strings length-prefixed (no escaping, and
    unambiguous): ``N`` None, ``B`` bool, ``I`` int, ``F`` float (``float.__repr__``, exact),
    ``D`` date (ISO), ``S<len>:`` str; a string over 64 characters as ``H`` + its sha256
    (``memo`` caches those: the long JSON texts of a day's rows repeat).
    Audit records of tables that must agree with the chain carry this digest of the row as
    it was written, so an edit of the row outside dunning is detected by ``audit verify``.
    """
    parts = []
    for v in values:
        if v is None:
            parts.append("N")
        elif isinstance(v, str):
            if len(v) <= 64:
                parts.append(f"S{len(v)}:{v}")
            elif memo is not None and v in memo:
                parts.append(memo[v])
            else:
                text = "H" + hashlib.sha256(v.encode("utf-8")).hexdigest()
                if memo is not None:
                    memo[v] = text
                parts.append(text)
        elif isinstance(v, bool):
            parts.append(f"B{int(v)}")
        elif isinstance(v, float):
            parts.append("F" + float.__repr__(v))
        elif isinstance(v, int):
            parts.append(f"I{v}")
        elif isinstance(v, dt.date):
            parts.append("D" + v.isoformat())
        elif hasattr(v, "item"):  # numpy scalar
            parts.append(_scalar_text(v.item()))
        else:
            raise TypeError(f"cannot digest a {type(v).__name__} table value")
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()


def _scalar_text(v: Any) -> str:
    if isinstance(v, bool):
        return f"B{int(v)}"
    if isinstance(v, float):
        return "F" + float.__repr__(v)
    return f"I{v}"


# ---------------------------------------------------------------------------- the key
NO_KEY_MESSAGE = (
    f"no audit key: set {KEY_FILE_ENV} to a file holding the key (mode 0600; create one with "
    f"`dunning audit init-key --out FILE`) or set {KEY_ENV}; the audit chain is an HMAC "
    "chain and its key is never kept in the store")


def load_audit_key(required: bool = True) -> bytes | None:
    """The audit key from ``$DUNNING_AUDIT_KEY_FILE`` (preferred) or ``$DUNNING_AUDIT_KEY``.

    The file must not be readable by group or others (like an ssh key) and the key must have
    at least :data:`MIN_KEY_CHARS` characters. Raises :class:`AuditKeyError` with what to do;
    returns None only when no key is configured and ``required`` is False.
    """
    path = os.environ.get(KEY_FILE_ENV, "").strip()
    if path:
        p = Path(path)
        where = f"${KEY_FILE_ENV}={p}"
        if not p.is_file():
            raise AuditKeyError(f"{where}: file not found; create it with `dunning audit "
                                f"init-key --out {p}`")
        mode = p.stat().st_mode & 0o777
        if mode & 0o077:
            raise AuditKeyError(f"{where}: readable or writable by group or others (mode "
                                f"{mode:o}); expected 600 (`chmod 600 {p}`)")
        text = p.read_text(encoding="utf-8").strip()
    else:
        text = os.environ.get(KEY_ENV, "").strip()
        where = f"${KEY_ENV}"
        if not text:
            if required:
                raise AuditKeyError(NO_KEY_MESSAGE)
            return None
    if len(text) < MIN_KEY_CHARS:
        raise AuditKeyError(f"{where}: the audit key has {len(text)} characters; expected at "
                            f"least {MIN_KEY_CHARS} random ones (`dunning audit init-key`)")
    return text.encode("utf-8")


def write_key_file(path: Path) -> Path:
    """Create a new random audit key (256 bits, hex) in ``path`` with mode 0600.

    Refuses to overwrite an existing file: replacing the key makes the existing chain
    unverifiable.
    """
    path = Path(path)
    if path.exists():
        raise InputError(f"--out {path}: exists; an audit key is never overwritten (the chain "
                         "written with it would no longer verify)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    os.chmod(path, 0o600)  # in case the umask widened nothing but the mode was preset
    return path


def _mac(key: bytes, text: str) -> str:
    return hmac.digest(key, text.encode("utf-8"), "sha256").hex()  # one-shot, in C


# ---------------------------------------------------------------------------- records
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
    """Result of :meth:`AuditLog.verify`. ``ok`` is True only if ``problems`` is empty.

    ``review_digests`` maps a review id to ``(seq, payload)`` of its newest audit record that
    carries a ``row_digest`` (for the table checks in ``dunning.ops.integrity``);
    ``legacy_records`` counts the migrated unkeyed prefix.
    """

    n_records: int
    head_hash: str
    problems: list[str] = field(default_factory=list)
    review_digests: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    legacy_records: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _link_text(prev_hash: str, row: dict[str, Any]) -> str:
    """What a record's hash covers: the previous hash, the header fields and the payload.

    The payload is hashed as stored (it is already canonical JSON), not re-encoded.
    """
    as_of = row["as_of"].isoformat() if isinstance(row["as_of"], dt.date) else row["as_of"]
    head = canonical_json([row["seq"], row["recorded_at"], row["kind"], as_of,
                           row["invoice_id"], row["customer_id"], row["personal_digest"]])
    return prev_hash + "\n" + head + "\n" + row["payload"]


def _record_hash(prev_hash: str, row: dict[str, Any], key: bytes) -> str:
    """HMAC-SHA256 of :func:`_link_text` under the audit key (64 hex)."""
    return _mac(key, _link_text(prev_hash, row))


def _legacy_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """The unkeyed sha256 link of chains written before the key (migration only)."""
    return sha256(_link_text(prev_hash, row))


class AuditLog:
    """The audit log in a DuckDB connection (creates its tables on first use).

    Parameters
    ----------
    con:
        An open read-write DuckDB connection (usually ``Store(path).connect()``).
    anchor:
        Optional file outside the database that holds the last ``seq`` and hash, rewritten
        atomically on every append, so that deleting the newest records is detected too.
    key:
        The HMAC key; default :func:`load_audit_key` at the first append or verify (reading
        records needs no key).
    """

    _lock = threading.Lock()  # one appender at a time per process (the chain is sequential)

    def __init__(self, con: duckdb.DuckDBPyConnection, anchor: Path | None = None,
                 key: bytes | None = None) -> None:
        self.con = con
        self.anchor = Path(anchor) if anchor else None
        self._key = key
        self.con.execute(_SCHEMA)

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = load_audit_key(required=True)
        return self._key

    # -- writing --------------------------------------------------------------------------
    def append(self, records: Sequence[AuditRecord],
               then: Callable[[list[int]], None] | None = None) -> list[int]:
        """Append records in order; return their sequence numbers. Atomic: all or none.

        ``then(seqs)``, if given, runs inside the same transaction after the insert (for the
        table change the records describe); if it raises, nothing is written. Raises
        :class:`AuditKeyError` without a key, or when the newest record does not verify with
        this key (a wrong key, an unmigrated unkeyed chain, or a tampered head).
        """
        if not records:
            return []
        import pyarrow as pa

        key = self.key
        with self._lock:
            seq, prev = self._checked_head(key)
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
                row["record_hash"] = prev = _record_hash(prev, row, key)
                rows.append(row)
            columns = {c: [r[c] for r in rows] for c in _COLUMNS}
            seqs = [r["seq"] for r in rows]
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
                if then is not None:
                    then(seqs)
                self.con.execute("COMMIT")
            except Exception:
                self.con.execute("ROLLBACK")
                raise
            self._write_anchor(seq, prev)
            return seqs

    def _head_row(self) -> dict[str, Any] | None:
        row = self.con.execute(f"SELECT {', '.join(_COLUMNS)} FROM ops_audit_log "
                               "ORDER BY seq DESC LIMIT 1").fetchone()
        return dict(zip(_COLUMNS, row, strict=True)) if row else None

    def _checked_head(self, key: bytes) -> tuple[int, str]:
        """``(seq, hash)`` of the newest record after checking it was made with ``key``."""
        head = self._head_row()
        if head is None:
            return 0, GENESIS_HASH
        if _record_hash(head["prev_hash"], head, key) == head["record_hash"]:
            return int(head["seq"]), head["record_hash"]
        if _legacy_hash(head["prev_hash"], head) == head["record_hash"]:
            raise AuditKeyError(
                "the audit log is an unkeyed chain written before the audit key existed; run "
                "`dunning audit migrate` once (it verifies the old chain and pins it under "
                "the key) before new records are appended")
        raise AuditKeyError(
            f"the newest audit record ({head['seq']}) does not verify with the configured "
            f"audit key: a different key than the one the chain was written with "
            f"(${KEY_FILE_ENV} / ${KEY_ENV}), or a tampered log; run `dunning audit verify`")

    def _write_anchor(self, seq: int, head_hash: str) -> None:
        if self.anchor is None:
            return
        atomic_write_text(self.anchor, json.dumps({"seq": seq, "record_hash": head_hash}) + "\n")

    def migrate(self) -> dict[str, Any]:
        """Pin an unkeyed (sha256) chain under the key: verify it, append a ``migration`` record.

        Returns ``{"legacy_records": n, "legacy_head": hash, "seq": seq of the migration
        record}``; ``legacy_records`` is 0 and nothing is written if the chain is empty or
        already keyed. Raises :class:`AuditKeyError` if the unkeyed chain does not verify
        (tampered history is not blessed).
        """
        key = self.key
        head = self._head_row()
        if head is None or _record_hash(head["prev_hash"], head, key) == head["record_hash"]:
            return {"legacy_records": 0, "legacy_head": None, "seq": None}
        prev, expected, problems = GENESIS_HASH, 1, []
        for values in self.con.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM ops_audit_log ORDER BY seq").fetchall():
            row = dict(zip(_COLUMNS, values, strict=True))
            if row["seq"] != expected or row["prev_hash"] != prev \
                    or _legacy_hash(prev, row) != row["record_hash"]:
                problems.append(f"record {row['seq']}")
            prev, expected = row["record_hash"], row["seq"] + 1
        problems += self._verify_personal()
        if problems:
            raise AuditKeyError(f"the unkeyed audit chain does not verify ({len(problems)} "
                                f"problem(s), first: {problems[0]}); it is not migrated. "
                                "`dunning audit verify` lists them")
        n = expected - 1
        rec = AuditRecord("migration", {"legacy_records": n, "legacy_head": prev,
                                        "scheme": "hmac-sha256"})
        with self._lock:
            self._key = key
            seq = self._append_after_legacy(rec, n, prev, key)
        return {"legacy_records": n, "legacy_head": prev, "seq": seq}

    def _append_after_legacy(self, rec: AuditRecord, n: int, prev: str, key: bytes) -> int:
        row = {"seq": n + 1,
               "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
               "kind": rec.kind, "as_of": None, "invoice_id": None, "customer_id": None,
               "payload": canonical_json(rec.payload), "personal_digest": "",
               "prev_hash": prev}
        row["record_hash"] = _record_hash(prev, row, key)
        self.con.execute(f"INSERT INTO ops_audit_log ({', '.join(_COLUMNS)}) VALUES "
                         f"({', '.join('?' * len(_COLUMNS))})", [row[c] for c in _COLUMNS])
        self._write_anchor(n + 1, row["record_hash"])
        return n + 1

    def forget_customer(self, customer_id: str) -> int:
        """Erase the personal data of one customer's records; return how many were erased.

        The chained records keep only a salted digest, so the chain still verifies. The
        erasure itself is recorded (without the erased data).
        """
        self.key  # noqa: B018 - fail before erasing anything when no key is configured
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
        """Recompute the keyed chain; report every broken link, gap, edit, anchor mismatch.

        An unkeyed (sha256) prefix is accepted only when a keyed ``migration`` record right
        after it pins its length and head hash (:meth:`migrate`).
        """
        key = self.key
        problems: list[str] = []
        reviews: dict[str, tuple[int, dict[str, Any]]] = {}
        prev, expected_seq, n = GENESIS_HASH, 1, 0
        legacy = 0  # length of the unkeyed prefix (no keyed record seen yet)
        keyed_seen = False
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
                if _record_hash(row["prev_hash"], row, key) == row["record_hash"]:
                    if not keyed_seen and legacy:
                        problems += _check_migration(row, legacy, prev)
                    keyed_seen = True
                elif not keyed_seen and _legacy_hash(row["prev_hash"], row) \
                        == row["record_hash"]:
                    legacy = seq
                else:
                    problems.append(f"record {seq}: content does not match its keyed hash "
                                    "(edited, or written without the audit key)")
                if row["kind"] == "review":
                    payload = json.loads(row["payload"])
                    if payload.get("row_digest") and payload.get("review_id"):
                        reviews[payload["review_id"]] = (seq, payload)
                prev, expected_seq = row["record_hash"], seq + 1
        if legacy and not keyed_seen:
            problems.append(f"records 1..{legacy}: an unkeyed chain written before the audit "
                            "key; anyone who can write the store can rewrite it. Run "
                            "`dunning audit migrate` once to pin it under the key")
        problems += self._verify_personal()
        problems += self._verify_anchor(expected_seq - 1, prev)
        return VerifyReport(n_records=n, head_hash=prev, problems=problems,
                            review_digests=reviews, legacy_records=legacy)

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

    # -- exported anchors -----------------------------------------------------------------
    def export_anchor(self) -> dict[str, Any]:
        """The head of the chain for safekeeping outside this machine (``audit anchor``).

        ``{"format", "seq", "record_hash", "count", "exported_at", "mac"}``; ``mac`` is an
        HMAC of the other fields under the audit key, so an edited anchor is detected too.
        """
        key = self.key
        seq, head = self._checked_head(key) if len(self) else (0, GENESIS_HASH)
        body = {"format": ANCHOR_FORMAT, "seq": seq, "record_hash": head, "count": len(self),
                "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        return {**body, "mac": _mac(key, canonical_json(body))}

    def check_anchor(self, anchor: dict[str, Any], where: str = "anchor") -> list[str]:
        """Problems if the chain no longer extends ``anchor`` (truncated or rewritten).

        Use together with :meth:`verify` (which checks that every later record links on).
        """
        try:
            body = {k: anchor[k] for k in ("format", "seq", "record_hash", "count",
                                           "exported_at")}
            mac = anchor["mac"]
        except (KeyError, TypeError):
            return [f"{where}: not a dunning audit anchor; expected the JSON written by "
                    "`dunning audit anchor`"]
        if body["format"] != ANCHOR_FORMAT:
            return [f"{where}: format {body['format']!r}; expected {ANCHOR_FORMAT!r}"]
        if not hmac.compare_digest(str(mac), _mac(self.key, canonical_json(body))):
            return [f"{where}: its mac does not match under the configured audit key (edited "
                    "anchor, or another key)"]
        seq = int(body["seq"])
        if seq == 0:
            return []
        row = self.con.execute("SELECT record_hash FROM ops_audit_log WHERE seq = ?",
                               [seq]).fetchone()
        if row is None:
            return [f"{where}: the chain had {seq} records at {body['exported_at']}; record "
                    f"{seq} is gone (log truncated to {self.head()[0]} records)"]
        if row[0] != body["record_hash"]:
            return [f"{where}: record {seq} differs from the one anchored at "
                    f"{body['exported_at']} (log rewritten)"]
        return []


def _check_migration(row: dict[str, Any], legacy: int, legacy_head: str) -> list[str]:
    """The first keyed record after an unkeyed prefix must be the migration record pinning it."""
    if row["kind"] == "migration":
        p = json.loads(row["payload"])
        if p.get("legacy_records") == legacy and p.get("legacy_head") == legacy_head:
            return []
        return [f"record {row['seq']}: migration record pins {p.get('legacy_records')} unkeyed "
                f"records with another head; the unkeyed prefix 1..{legacy} was rewritten"]
    return [f"records 1..{legacy}: unkeyed records before keyed record {row['seq']} without a "
            "migration record pinning them (inserted without the audit key)"]


def append_audit(con: duckdb.DuckDBPyConnection, records: AuditRecord | Sequence[AuditRecord],
                 anchor: Path | None = None,
                 then: Callable[[list[int]], None] | None = None) -> list[int]:
    """The one function to add records to the audit chain (decisions, reviews, overrides,
    recorded events, master-data changes). Returns the sequence numbers.

    ``anchor``: the local anchor file (usually ``<store folder>/audit.anchor``); ``then``: a
    table change run in the same transaction (see :meth:`AuditLog.append`). Raises
    :class:`AuditKeyError` when no audit key is configured.
    """
    if isinstance(records, AuditRecord):
        records = [records]
    return AuditLog(con, anchor=anchor).append(records, then=then)


def default_anchor(store_path: Path) -> Path:
    """The local anchor file next to a store (tail deletion; not a security boundary)."""
    return Path(store_path).parent / "audit.anchor"


def forget_customer(store: Any, customer_id: str) -> dict[str, Any]:
    """Erase one customer's personal data (GDPR art. 17) across the store.

    Erased: the customer's ``name`` in the ``customers`` table and the personal fields of
    their audit records (free-text reasons). Kept, as the law requires (accounting and
    tax retention, proof of lawful processing): the pseudonymous customer id, invoices,
    payments and the chained audit records, which still verify. Raises
    :class:`engine.errors.InputError` for an unknown customer id.
    """
    with store.connect() as con:
        found = con.execute("SELECT count(*) FROM customers WHERE customer_id = ?",
                            [customer_id]).fetchone()[0]
        if not found:
            raise InputError(f"--customer {customer_id!r}: no such customer in {store.path}")
        log = AuditLog(con, anchor=default_anchor(store.path))
        log.key  # noqa: B018 - no key: fail before erasing anything
        con.execute("UPDATE customers SET name = NULL WHERE customer_id = ?", [customer_id])
        erased = log.forget_customer(customer_id)
        report = log.verify()
    return {"customer_rows": int(found), "audit_personal_records": erased,
            "audit_ok": report.ok}
