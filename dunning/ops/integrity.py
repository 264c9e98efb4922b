"""``dunning audit verify``: the keyed chain, and the tables that must agree with it.

The chain alone proves that its records are authentic (:meth:`AuditLog.verify`); this
module also checks that the operational tables still say what the chain recorded:

- review queue: every row must equal (``row_digest``) the newest audit record of its review
  id (queued or decided), and every review id in the chain must still have its row. A row
  flipped to ``approved`` under an invented reviewer directly in the table is reported by
  review id, with what the table says and what the chain says.
- recommendations: every row must equal the ``row_digest`` of the decision (or override)
  record it points to (``audit_seq``; same invoice and day), and every decision record must
  still have its row.
  Rows recorded before the digest existed (migrated chains) are compared on action and status.

A writer of the store without the audit key can change a table but cannot write a matching
keyed record, so an edit is detected. What the check cannot see: a change made through
dunning itself by someone holding the key and a role (that is recorded, not hidden).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from dunning.ops.audit import AuditLog, VerifyReport, row_digest
from dunning.ops.recommend import DIGEST_COLUMNS, stored_digest_rows
from dunning.ops.review import table_rows

# A recommendation row points (audit_seq) at the record that wrote it last: the daily run's
# decision, or a reviewer's override that changed the row (it then carries the new row's
# digest, from dunning.ops.recommend.recommendation_digests, and re-points audit_seq in the
# same transaction: AuditLog.append(records, then=...)).
ROW_RECORD_KINDS = ("decision", "override")
MAX_PROBLEMS_PER_TABLE = 1000  # enough to act on; a wholesale edit is reported as a count


def verify_store(con: duckdb.DuckDBPyConnection, anchor: Path | None = None,
                 exported: dict[str, Any] | None = None,
                 exported_where: str = "anchor") -> VerifyReport:
    """The chain (:meth:`AuditLog.verify`), the review queue and recommendation tables against
    it, and optionally an exported anchor (``audit anchor``). Raises ``AuditKeyError``
    without a key."""
    log = AuditLog(con, anchor=anchor)
    report = log.verify()
    report.problems += _review_problems(con, report)
    report.problems += _recommendation_problems(con)
    if exported is not None:
        report.problems += log.check_anchor(exported, exported_where)
    return report


def _review_problems(con: duckdb.DuckDBPyConnection, report: VerifyReport) -> list[str]:
    problems: list[str] = []
    chain = dict(report.review_digests)
    for row in table_rows(con):
        rid = row["review_id"]
        seq_payload = chain.pop(rid, None)
        table_says = (f"table: status {row['status']!r}, reviewer {row['reviewer']!r}, "
                      f"decided_at {row['decided_at']!r}")
        if seq_payload is None:
            problems.append(f"review {rid} (invoice {row['invoice_id']}, {row['action']}): "
                            f"not in the audit chain ({table_says}); written outside dunning")
            continue
        seq, payload = seq_payload
        if payload["row_digest"] != row["digest"] or (
                payload.get("event") == "decided"
                and payload.get("decided_at") != row["decided_at"]):
            problems.append(
                f"review {rid} (invoice {row['invoice_id']}, {row['action']}): the table row "
                f"differs from audit record {seq} ({table_says}; chain: status "
                f"{payload.get('status')!r}, reviewer {payload.get('reviewer')!r}); edited "
                "outside dunning")
    for rid, (seq, _payload) in sorted(chain.items()):
        problems.append(f"review {rid}: in the audit chain (record {seq}) but its row is "
                        "missing from the review queue table (deleted)")
    return _capped(problems, "review queue")


def _recommendation_problems(con: duckdb.DuckDBPyConnection) -> list[str]:
    problems: list[str] = []
    n = len(DIGEST_COLUMNS)
    i_inv, i_as_of = DIGEST_COLUMNS.index("invoice_id"), DIGEST_COLUMNS.index("as_of")
    i_action, i_status = DIGEST_COLUMNS.index("action"), DIGEST_COLUMNS.index("status")
    memo: dict[str, str] = {}  # digests of the long JSON texts that many rows share
    cur = stored_digest_rows(con)
    while chunk := cur.fetchmany(50_000):
        for values in chunk:
            row, (seq, kind, inv, as_of, digest, action, status) = values[:n], values[n:]
            where = f"recommendation {row[i_as_of]} {row[i_inv]}"
            if kind not in ROW_RECORD_KINDS or inv != row[i_inv] or as_of != row[i_as_of]:
                problems.append(f"{where}: audit_seq {seq} does not point to its decision or "
                                "override record in the audit chain; written or edited "
                                "outside dunning")
            elif digest is not None:
                if digest != row_digest(row, memo):
                    problems.append(f"{where}: the table row differs from decision record "
                                    f"{seq} (table: {row[i_action]}, {row[i_status]}; chain: "
                                    f"{action}, {status}); edited outside dunning")
            elif (action, status) != (row[i_action], row[i_status]):  # migrated, pre-digest
                problems.append(f"{where}: action/status {row[i_action]}/{row[i_status]} "
                                f"differ from decision record {seq} ({action}/{status})")
    missing = con.execute(
        "SELECT l.seq, l.as_of, l.invoice_id FROM ops_audit_log l WHERE l.kind = 'decision' "
        "AND json_extract_string(l.payload, '$.row_digest') IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM ops_recommendations r WHERE r.as_of = l.as_of "
        "AND r.invoice_id = l.invoice_id) ORDER BY l.seq").fetchall()
    problems += [f"recommendation {as_of} {inv}: in the audit chain (record {seq}) but its "
                 "row is missing from the recommendations table (deleted)"
                 for seq, as_of, inv in missing]
    return _capped(problems, "recommendations")


def _capped(problems: list[str], table: str) -> list[str]:
    if len(problems) <= MAX_PROBLEMS_PER_TABLE:
        return problems
    return problems[:MAX_PROBLEMS_PER_TABLE] + [
        f"{table}: {len(problems) - MAX_PROBLEMS_PER_TABLE} more problems not listed"]


def read_anchor_file(path: Path) -> dict[str, Any]:
    """An exported anchor (JSON) from ``path``; InputError naming the file when unreadable."""
    from engine.errors import InputError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"--anchor {path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"--anchor {path}: not a JSON anchor ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"--anchor {path}: expected a JSON object from `dunning audit anchor`")
    return data


def migrate_store(con: duckdb.DuckDBPyConnection, anchor: Path | None = None) -> dict[str, Any]:
    """``dunning audit migrate``: pin an unkeyed chain (:meth:`AuditLog.migrate`) and record
    every review-queue row that has no digest in the chain yet (the rows as they are now).

    Recommendation rows of the unkeyed period keep being checked on action and status.
    """
    from dunning.ops.audit import AuditRecord

    log = AuditLog(con, anchor=anchor)
    out = log.migrate()
    out["review_rows"] = 0
    if not out["legacy_records"]:
        return out
    known = log.verify().review_digests
    records = []
    for row in table_rows(con):
        if row["review_id"] in known:
            continue
        records.append(AuditRecord(
            "review", {"review_id": row["review_id"], "event": "migrated",
                       "status": row["status"], "reviewer": row["reviewer"],
                       "action": row["action"], "decided_at": row["decided_at"],
                       "row_digest": row["digest"]},
            as_of=row["as_of"], invoice_id=row["invoice_id"], customer_id=row["customer_id"]))
    log.append(records)
    out["review_rows"] = len(records)
    return out
