"""Human review queue for actions with significant effect (GDPR art. 22).

An action that a legal rule marks ``require_human_review`` (agency handover, credit-bureau
report, legal action) is never executed automatically: the daily run puts it here, and a
person approves or rejects it with a reason. Queuing an item and every decision are written
to the audit log (who, when, why) together with a ``row_digest`` of the table row as it was
written, in the same transaction as the row, so that ``dunning audit verify`` detects a row
edited outside dunning (e.g. a status flipped to ``approved`` under an invented reviewer).
An approved item is then executed outside dunning and reported back with
``dunning record-action`` or the ERP's action export.

Table ``ops_review_queue`` (one row per invoice, action and day the item was raised)::

    review_id      str   ``R-`` + 10 hex digits, derived from (as_of, invoice_id, action)
    as_of          date  day of the recommendation that raised it
    invoice_id     str
    customer_id    str
    action         str   channel name (``agency``, ``final_notice``, ...)
    rule_ids       str   JSON list of the rules that require the review
    explanation    str   JSON: probabilities, top factors, vetoes, caps (no personal data)
    status         str   ``pending`` | ``approved`` | ``rejected``
    created_at     str   ISO timestamp (UTC)
    decided_at     str   ISO timestamp (UTC) of the decision, NULL while pending
    reviewer       str   who decided
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from dunning.ops.audit import AuditLog, AuditRecord, canonical_json, row_digest
from engine.errors import InputError

STATUSES = ("pending", "approved", "rejected")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ops_review_queue (
    review_id VARCHAR PRIMARY KEY,
    as_of DATE NOT NULL,
    invoice_id VARCHAR NOT NULL,
    customer_id VARCHAR,
    action VARCHAR NOT NULL,
    rule_ids VARCHAR NOT NULL,
    explanation VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    created_at VARCHAR NOT NULL,
    decided_at VARCHAR,
    reviewer VARCHAR
);
"""
_COLUMNS = ("review_id", "as_of", "invoice_id", "customer_id", "action", "rule_ids",
            "explanation", "status", "created_at", "decided_at", "reviewer")
# What the audit record's row_digest covers: everything but the wall-clock timestamps (so the
# same inputs give the same audit payloads); decided_at is in the decision's payload itself.
DIGEST_COLUMNS = tuple(c for c in _COLUMNS if c not in ("created_at", "decided_at"))


def review_digest(row: dict[str, Any]) -> str:
    """:func:`row_digest` of a review-queue row (a dict by column) over DIGEST_COLUMNS."""
    return row_digest([row[c] for c in DIGEST_COLUMNS])


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the review queue table if it does not exist."""
    con.execute(_SCHEMA)


def review_id(as_of: dt.date, invoice_id: str, action: str) -> str:
    """Deterministic id, so that re-running a day raises the same item, not a second one."""
    key = f"{as_of.isoformat()}|{invoice_id}|{action}"
    return "R-" + hashlib.sha256(key.encode()).hexdigest()[:10]


@dataclass
class ReviewItem:
    """One action waiting for a human decision."""

    as_of: dt.date
    invoice_id: str
    customer_id: str
    action: str
    rule_ids: list[str]
    explanation: dict[str, Any] = field(default_factory=dict)

    @property
    def review_id(self) -> str:
        return review_id(self.as_of, self.invoice_id, self.action)


class ReviewQueue:
    """The review queue table plus the audit log its decisions are written to."""

    def __init__(self, con: duckdb.DuckDBPyConnection, audit: AuditLog) -> None:
        self.con = con
        self.audit = audit
        self.con.execute(_SCHEMA)

    def open_items(self) -> set[tuple[str, str]]:
        """``(invoice_id, action)`` pairs that are pending, or approved and not yet executed.

        Executed means the contract ``actions`` table (fed by ``record-action`` and the ERP's
        action export) has that channel for the invoice on or after the review's day.
        """
        sql = "SELECT invoice_id, action FROM ops_review_queue WHERE status = 'pending'"
        if _has_table(self.con, "actions"):
            sql += (" UNION SELECT q.invoice_id, q.action FROM ops_review_queue q "
                    "WHERE q.status = 'approved' AND NOT EXISTS (SELECT 1 FROM actions a "
                    "WHERE a.invoice_id = q.invoice_id AND a.channel = q.action "
                    "AND a.action_date >= q.as_of)")
        else:
            sql += (" UNION SELECT invoice_id, action FROM ops_review_queue "
                    "WHERE status = 'approved'")
        return {(inv, act) for inv, act in self.con.execute(sql).fetchall()}

    def submit(self, items: Sequence[ReviewItem]) -> list[str]:
        """Queue items; skip an item whose invoice and action is already open. Return new ids."""
        import pandas as pd

        if not items:
            return []
        open_now = self.open_items()
        known = {r[0] for r in
                 self.con.execute("SELECT review_id FROM ops_review_queue").fetchall()}
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        rows = []
        for it in items:
            if it.review_id in known or (it.invoice_id, it.action) in open_now:
                continue
            open_now.add((it.invoice_id, it.action))
            rows.append((it.review_id, it.as_of, it.invoice_id, it.customer_id, it.action,
                         json.dumps(it.rule_ids), canonical_json(it.explanation), "pending",
                         now, None, None))
        if rows:
            frame = pd.DataFrame(rows, columns=list(_COLUMNS))

            def insert(_seqs: list[int]) -> None:
                self.con.register("_review_rows", frame)
                self.con.execute("INSERT INTO ops_review_queue SELECT review_id, "
                                 "CAST(as_of AS DATE), invoice_id, customer_id, action, "
                                 "rule_ids, explanation, status, created_at, "
                                 "CAST(decided_at AS VARCHAR), CAST(reviewer AS VARCHAR) "
                                 "FROM _review_rows")
                self.con.unregister("_review_rows")

            self.audit.append([_queued_record(r) for r in rows], then=insert)
        return [r[0] for r in rows]

    def list(self, status: str | None = "pending", limit: int = 1000) -> list[dict[str, Any]]:
        """Items with this status (all if None), oldest first."""
        if status is not None and status not in STATUSES:
            raise InputError(f"review status {status!r} is not one of {', '.join(STATUSES)}")
        sql = f"SELECT {', '.join(_COLUMNS)} FROM ops_review_queue"
        args: list[Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            args.append(status)
        sql += f" ORDER BY as_of, review_id LIMIT {int(limit)}"
        return [self._row(r) for r in self.con.execute(sql, args).fetchall()]

    def get(self, rid: str) -> dict[str, Any]:
        """One item with its decision history from the audit log; InputError if unknown."""
        row = self.con.execute(f"SELECT {', '.join(_COLUMNS)} FROM ops_review_queue "
                               "WHERE review_id = ?", [rid]).fetchone()
        if row is None:
            raise InputError(f"review item {rid!r} not found; `dunning review list` shows the "
                             "pending ones")
        item = self._row(row)
        item["decisions"] = [r for r in self.audit.records(invoice_id=item["invoice_id"],
                                                           kind="review")
                             if r["payload"].get("review_id") == rid
                             and "decision" in r["payload"]]
        return item

    def decide(self, rid: str, approve: bool, reviewer: str, reason: str) -> dict[str, Any]:
        """Approve or reject a pending item; the decision goes to the audit log."""
        reviewer, reason = reviewer.strip(), reason.strip()
        if not reviewer:
            raise InputError("review decision: --reviewer is empty; expected who decides")
        if not reason:
            raise InputError("review decision: --reason is empty; expected why (it is recorded "
                             "in the audit log, GDPR art. 22(3))")
        item = self.get(rid)
        if item["status"] != "pending":
            raise InputError(f"review item {rid} is already {item['status']} by "
                             f"{item['reviewer']} at {item['decided_at']}; expected a pending "
                             "item")
        status = "approved" if approve else "rejected"
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        row = self.con.execute(f"SELECT {', '.join(_COLUMNS)} FROM ops_review_queue "
                               "WHERE review_id = ?", [rid]).fetchone()
        new = dict(zip(_COLUMNS, row, strict=True))
        new.update(status=status, decided_at=now, reviewer=reviewer)

        def update(_seqs: list[int]) -> None:
            changed = self.con.execute(
                "UPDATE ops_review_queue SET status = ?, decided_at = ?, reviewer = ? "
                "WHERE review_id = ? AND status = 'pending'",
                [status, now, reviewer, rid]).fetchone()[0]
            if changed != 1:  # decided by someone else meanwhile: record nothing
                raise InputError(f"review item {rid} was decided meanwhile; expected a "
                                 "pending item")

        self.audit.append([AuditRecord(
            "review",
            {"review_id": rid, "event": "decided", "decision": status, "status": status,
             "reviewer": reviewer, "action": item["action"], "rule_ids": item["rule_ids"],
             "decided_at": now, "row_digest": review_digest(new)},
            as_of=dt.date.fromisoformat(item["as_of"]), invoice_id=item["invoice_id"],
            customer_id=item["customer_id"], personal={"reason": reason})], then=update)
        item.update(status=status, decided_at=now, reviewer=reviewer)
        return item

    @staticmethod
    def _row(values: Sequence[Any]) -> dict[str, Any]:
        item = dict(zip(_COLUMNS, values, strict=True))
        item["as_of"] = item["as_of"].isoformat()
        item["rule_ids"] = json.loads(item["rule_ids"])
        item["explanation"] = json.loads(item["explanation"])
        return item


def _queued_record(values: Sequence[Any]) -> AuditRecord:
    """The audit record of a newly queued item (a row in :data:`_COLUMNS` order)."""
    row = dict(zip(_COLUMNS, values, strict=True))
    return AuditRecord("review", {"review_id": row["review_id"], "event": "queued",
                                  "status": row["status"], "reviewer": row["reviewer"],
                                  "action": row["action"], "rule_ids": json.loads(row["rule_ids"]),
                                  "row_digest": review_digest(row)},
                       as_of=row["as_of"], invoice_id=row["invoice_id"],
                       customer_id=row["customer_id"])


def table_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every review-queue row as stored, with its :func:`row_digest` under ``"digest"``."""
    con.execute(_SCHEMA)
    out = []
    for values in con.execute(f"SELECT {', '.join(_COLUMNS)} FROM ops_review_queue "
                              "ORDER BY review_id").fetchall():
        row = dict(zip(_COLUMNS, values, strict=True))
        row["digest"] = review_digest(row)
        out.append(row)
    return out


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                            [name]).fetchone()[0])
