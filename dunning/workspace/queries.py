"""The workspace's reads of the store, in DuckDB SQL (filtering, sorting and paging included,
so a page of the worklist costs the same at 100 rows and at 100,000).

Tables read: ``ops_recommendations`` (the daily run, ``dunning.ops.recommend``),
``ops_review_queue`` (``dunning.ops.review``), the contract tables ``invoices``,
``customers``, ``payments``, ``actions``, and the audit log (``dunning.ops.audit``).
Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InputError

PAGE_SIZE = 50
_FAR = dt.date(9999, 12, 31)  # "no day yet": everything in the store
MAX_TEXT = 80

# Legal status shown for a stored recommendation status (dunning.ops.recommend.STATUSES).
LEGAL_STATUS = {"recommended": "allowed", "needs_review": "needs review", "wait": "wait",
                "blocked": "vetoed"}
ACTIONS = ("wait", "email", "letter", "phone", "final_notice", "agency")
RISKS = ("at_risk", "ok", "unknown")

# sort key -> SQL expression (whitelist: nothing from the request reaches SQL text)
WORKLIST_SORTS = {
    "customer": "c.name", "invoice": "r.invoice_id", "amount": "i.amount",
    "due": "i.due_date", "overdue": "days_overdue", "risk": "r.p_on_time",
    "action": "r.action", "status": "r.status", "segment": "c.segment",
    "jurisdiction": "c.jurisdiction",
}
REVIEW_SORTS = {"amount": "i.amount", "risk": "r.p_on_time", "age": "q.as_of",
                "customer": "c.name", "created": "q.created_at"}


@dataclass
class WorklistFilter:
    """Filters, sort and page of the worklist (validated; see :meth:`from_params`)."""

    segment: str = ""
    jurisdiction: str = ""
    risk: str = ""
    action: str = ""
    status: str = ""
    text: str = ""
    min_amount: float | None = None
    max_amount: float | None = None
    sort: str = "risk"
    desc: bool = False
    page: int = 1
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_params(cls, params: Any) -> WorklistFilter:
        """From query parameters; a bad value is dropped and named in ``problems``."""
        f = cls()
        get = lambda k: str(params.get(k, "") or "").strip()[:MAX_TEXT]  # noqa: E731
        for name, allowed in (("risk", RISKS), ("action", ACTIONS),
                              ("status", tuple(LEGAL_STATUS))):
            value = get(name)
            if value and value not in allowed:
                f.problems.append(f"{name}: {value!r} is not one of {', '.join(allowed)}")
            elif value:
                setattr(f, name, value)
        f.segment = get("segment")
        f.jurisdiction = get("jurisdiction").upper()
        f.text = get("q")
        for name in ("min_amount", "max_amount"):
            value = get(name)
            if value:
                try:
                    setattr(f, name, float(value))
                except ValueError:
                    f.problems.append(f"{name.replace('_', ' ')}: {value!r} is not a number")
        sort = get("sort") or "risk"
        if sort not in WORKLIST_SORTS:
            f.problems.append(f"sort: {sort!r} is not one of {', '.join(WORKLIST_SORTS)}")
            sort = "risk"
        f.sort = sort
        f.desc = get("dir") == "desc"
        page = get("page") or "1"
        f.page = int(page) if page.isdigit() and int(page) >= 1 else 1
        return f

    def params(self, **override: Any) -> dict[str, str]:
        """The non-empty query parameters of this filter (for links and the CSV export)."""
        out = {"segment": self.segment, "jurisdiction": self.jurisdiction, "risk": self.risk,
               "action": self.action, "status": self.status, "q": self.text,
               "min_amount": "" if self.min_amount is None else f"{self.min_amount:g}",
               "max_amount": "" if self.max_amount is None else f"{self.max_amount:g}",
               "sort": self.sort, "dir": "desc" if self.desc else "asc",
               "page": str(self.page)}
        out.update({k: str(v) for k, v in override.items()})
        return {k: v for k, v in out.items() if v}

    def where(self, threshold: float) -> tuple[list[str], list[Any]]:
        """SQL conditions and their parameters (the day condition excluded)."""
        conds: list[str] = []
        args: list[Any] = []
        for value, col in ((self.segment, "c.segment"), (self.jurisdiction, "c.jurisdiction"),
                           (self.action, "r.action"), (self.status, "r.status")):
            if value:
                conds.append(f"{col} = ?")
                args.append(value)
        if self.risk == "at_risk":
            conds.append("r.p_on_time < ?")
            args.append(threshold)
        elif self.risk == "ok":
            conds.append("r.p_on_time >= ?")
            args.append(threshold)
        elif self.risk == "unknown":
            conds.append("r.p_on_time IS NULL")
        if self.min_amount is not None:
            conds.append("i.amount >= ?")
            args.append(self.min_amount)
        if self.max_amount is not None:
            conds.append("i.amount <= ?")
            args.append(self.max_amount)
        if self.text:
            conds.append("(contains(lower(coalesce(c.name, '')), lower(?)) OR "
                         "contains(lower(r.invoice_id), lower(?)) OR "
                         "contains(lower(r.customer_id), lower(?)))")
            args += [self.text] * 3
        return conds, args


_WORKLIST_FROM = """
FROM ops_recommendations r
JOIN invoices i ON i.invoice_id = r.invoice_id
LEFT JOIN customers c ON c.customer_id = r.customer_id
"""
_WORKLIST_COLUMNS = """
r.invoice_id, r.customer_id, c.name, c.segment, c.jurisdiction, i.amount, i.currency,
i.due_date, r.as_of - i.due_date AS days_overdue, r.p_on_time, r.p_late, r.p_very_late,
r.action, r.policy_action, r.status, r.reason, r.vetoes, r.review_id
"""


def latest_day(con: Any) -> dt.date | None:
    """The latest day with stored recommendations (None before the first run). Reads only:
    a page view never writes (not even the schema)."""
    import duckdb

    try:  # (not information_schema: asking it costs more than this query)
        return con.execute("SELECT max(as_of) FROM ops_recommendations").fetchone()[0]
    except duckdb.CatalogException:
        return None


def worklist(con: Any, day: dt.date, f: WorklistFilter, threshold: float,
             limit: int | None = PAGE_SIZE) -> tuple[int, list[dict[str, Any]]]:
    """``(matching rows, rows of the page)``; ``limit=None``: every matching row (CSV).

    Each row: the columns of ``_WORKLIST_COLUMNS`` plus ``legal`` (shown status),
    ``rule_ids`` (fired for the chosen action), ``vetoed_by`` (rules that vetoed any action),
    ``flags`` (plausibility texts) and ``at_risk`` (P(on time) < ``threshold``).
    """
    conds, args = f.where(threshold)
    where = " AND ".join(["r.as_of = ?", *conds])
    order = f"{WORKLIST_SORTS[f.sort]} {'DESC' if f.desc else 'ASC'} NULLS LAST, r.invoice_id"
    if limit is None:
        cur = con.execute(f"SELECT {_WORKLIST_COLUMNS} {_WORKLIST_FROM} WHERE {where} "
                          f"ORDER BY {order}", [day, *args])
        names = [d[0] for d in cur.description]
        rows = [_decorate(dict(zip(names, v, strict=True)), threshold) for v in cur.fetchall()]
        return len(rows), rows
    # Page over the tables the filter and sort need (most need no join), then read the page's
    # rows by rowid. The count joins only what the filter needs; when that is a join, the
    # page query counts in the same pass (a window) rather than joining twice (profiled at
    # 100,000 rows: 10-15 ms per join on one core).
    count_from = _joins(where)
    overdue = ", r.as_of - i.due_date AS days_overdue" if "days_overdue" in order else ""
    counted = ", count(*) OVER ()" if count_from != _joins("") else ""
    page = con.execute(
        f"SELECT r.rowid{counted}{overdue} {_joins(where + order)} WHERE {where} "
        f"ORDER BY {order} LIMIT ? OFFSET ?", [day, *args, limit, (f.page - 1) * limit]
    ).fetchall()
    if counted and page:
        total = page[0][1]
    else:
        total = con.execute(f"SELECT count(*) {count_from} WHERE {where}",
                            [day, *args]).fetchone()[0]
    if not page:
        return int(total), []
    return int(total), [_decorate(row, threshold) for row in _page_rows(con, [r[0] for r in page])]


def _page_rows(con: Any, rowids: list[int]) -> list[dict[str, Any]]:
    """The worklist columns of the recommendations at ``rowids`` (in that order): each table
    read by key for the page's 50 rows, not joined over the whole day (profiled: the join of
    the three tables for 50 ids scanned all 100,000 rows of each, ~2/3 of a page's time)."""
    cur = con.execute("SELECT rowid, invoice_id, customer_id, as_of, p_on_time, p_late, "
                      "p_very_late, action, policy_action, status, reason, vetoes, review_id "
                      "FROM ops_recommendations WHERE rowid IN (SELECT unnest(?))", [rowids])
    names = [d[0] for d in cur.description]
    recs = {v[0]: dict(zip(names, v, strict=True)) for v in cur.fetchall()}
    invoices = [recs[i]["invoice_id"] for i in rowids]
    inv = {v[0]: v[1:] for v in con.execute(
        "SELECT invoice_id, amount, currency, due_date FROM invoices WHERE invoice_id IN "
        "(SELECT unnest(?))", [invoices]).fetchall()}
    cust = {v[0]: v[1:] for v in con.execute(
        "SELECT customer_id, name, segment, jurisdiction FROM customers WHERE customer_id IN "
        "(SELECT unnest(?))", [sorted({recs[i]["customer_id"] for i in rowids})]).fetchall()}
    out = []
    for i in rowids:
        r = recs[i]
        if r["invoice_id"] not in inv:  # the join's semantics: no invoice row, no worklist row
            continue
        amount, currency, due = inv[r["invoice_id"]]
        name, segment, jurisdiction = cust.get(r["customer_id"], (None, None, None))
        out.append({"invoice_id": r["invoice_id"], "customer_id": r["customer_id"],
                    "name": name, "segment": segment, "jurisdiction": jurisdiction,
                    "amount": amount, "currency": currency, "due_date": due,
                    "days_overdue": (r["as_of"] - due).days if due is not None else None,
                    **{k: r[k] for k in ("p_on_time", "p_late", "p_very_late", "action",
                                         "policy_action", "status", "reason", "vetoes",
                                         "review_id")}})
    return out


def _joins(sql: str) -> str:
    """``FROM`` clause with only the joins that ``sql`` (conditions + order) refers to."""
    out = "FROM ops_recommendations r"
    if re.search(r"\bi\.|days_overdue", sql):
        out += " JOIN invoices i ON i.invoice_id = r.invoice_id"
    if re.search(r"\bc\.", sql):
        out += " LEFT JOIN customers c ON c.customer_id = r.customer_id"
    return out


def _decorate(row: dict[str, Any], threshold: float) -> dict[str, Any]:
    """Decode the JSON columns of one recommendation row into what a page shows."""
    reason = json.loads(row.pop("reason") or "{}")
    vetoes = json.loads(row.pop("vetoes") or "[]")
    row["legal"] = LEGAL_STATUS.get(row["status"], row["status"])
    row["rule_ids"] = [h["rule_id"] for h in reason.get("fired_rules", [])]
    row["blocked_by"] = list(reason.get("blocked_by", []))
    row["vetoed_by"] = sorted({v["rule_id"] for v in vetoes})
    row["flags"] = list(reason.get("implausible", []))
    row["top_factors"] = list(reason.get("top_factors", []))
    p = row.get("p_on_time")
    row["at_risk"] = p is not None and p == p and p < threshold
    return row


def facets(con: Any, day: dt.date) -> dict[str, list[str]]:
    """The segments and jurisdictions of the customers with a recommendation on ``day``
    (the filter's choices)."""
    out = {}
    for name in ("segment", "jurisdiction"):
        out[name] = [r[0] for r in con.execute(
            f"SELECT DISTINCT {name} FROM customers WHERE {name} IS NOT NULL AND customer_id "
            "IN (SELECT customer_id FROM ops_recommendations WHERE as_of = ?) ORDER BY 1",
            [day]).fetchall()]
    return out


# ------------------------------------------------------------------------------ customer
def customer(con: Any, customer_id: str, day: dt.date | None,
             threshold: float) -> dict[str, Any]:
    """Everything the customer page shows; :class:`InputError` for an unknown id.

    ``buckets``: expected amounts per currency, ``{currency: {on_time, late, very_late,
    total, share_on_time, at_risk}}`` = sum over open invoices of amount x probability.
    """
    cur = con.execute("SELECT * FROM customers WHERE customer_id = ?", [customer_id])
    found = cur.fetchone()
    if found is None:
        raise InputError(f"customer {customer_id!r} not found")
    info = dict(zip([d[0] for d in cur.description], found, strict=True))
    open_rows: list[dict[str, Any]] = []
    if day is not None:
        cur = con.execute(f"SELECT {_WORKLIST_COLUMNS} {_WORKLIST_FROM} WHERE r.as_of = ? AND "
                          "r.customer_id = ? ORDER BY i.due_date, r.invoice_id",
                          [day, customer_id])
        names = [d[0] for d in cur.description]
        open_rows = [_decorate(dict(zip(names, v, strict=True)), threshold)
                     for v in cur.fetchall()]
    open_ids = {r["invoice_id"] for r in open_rows}
    past = _past_invoices(con, customer_id, open_ids, day or _FAR)
    return {"info": info, "open": open_rows, "past": past,
            "buckets": _buckets(open_rows, threshold),
            "history": history_summary(past),
            "timeline": timeline(con, customer_id, day or _FAR)}


def _past_invoices(con: Any, customer_id: str, open_ids: set[str],
                   day: dt.date) -> list[dict[str, Any]]:
    """The customer's invoices issued by ``day`` and not open on it, newest first, with
    payment (as known on ``day``), days late and the probabilities of their latest stored
    recommendation up to ``day`` (if any)."""
    cur = con.execute("""
        SELECT i.invoice_id, i.invoice_date, i.due_date, i.amount, i.currency, i.disputed,
               p.paid_on, p.paid, p.paid_on - i.due_date AS days_late,
               rec.p_on_time, rec.p_late, rec.p_very_late
        FROM invoices i
        LEFT JOIN (SELECT pay.invoice_id, max(pay.payment_date) AS paid_on,
                          sum(pay.amount) AS paid
                   FROM payments pay JOIN invoices own ON own.invoice_id = pay.invoice_id
                   WHERE own.customer_id = ? AND pay.payment_date <= ?
                   GROUP BY pay.invoice_id) p ON p.invoice_id = i.invoice_id
        LEFT JOIN (SELECT invoice_id, arg_max(p_on_time, as_of) AS p_on_time,
                          arg_max(p_late, as_of) AS p_late,
                          arg_max(p_very_late, as_of) AS p_very_late
                   FROM ops_recommendations WHERE customer_id = ? AND as_of <= ?
                   GROUP BY invoice_id) rec ON rec.invoice_id = i.invoice_id
        WHERE i.customer_id = ? AND i.invoice_date <= ?
        ORDER BY i.due_date DESC, i.invoice_id""",
                      [customer_id, day, customer_id, day, customer_id, day])
    names = [d[0] for d in cur.description]
    return [row for row in (dict(zip(names, v, strict=True)) for v in cur.fetchall())
            if row["invoice_id"] not in open_ids]


def _buckets(rows: list[dict[str, Any]], threshold: float) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["p_on_time"] is None or r["p_on_time"] != r["p_on_time"]:
            continue
        b = out.setdefault(r["currency"], {"on_time": 0.0, "late": 0.0, "very_late": 0.0,
                                           "total": 0.0})
        b["on_time"] += r["amount"] * r["p_on_time"]
        b["late"] += r["amount"] * (r["p_late"] or 0.0)
        b["very_late"] += r["amount"] * (r["p_very_late"] or 0.0)
        b["total"] += r["amount"]
    for b in out.values():
        b["share_on_time"] = b["on_time"] / b["total"] if b["total"] else None
        b["at_risk"] = b["share_on_time"] is not None and b["share_on_time"] < threshold
    return out


def history_summary(past: list[dict[str, Any]], last: int = 5) -> str:
    """The payment history in plain words, e.g. ``3 of the last 5 invoices were paid late,
    12 days on average``; ``no payment history`` when nothing was paid yet."""
    paid = sorted((r for r in past if r["paid_on"] is not None and r["days_late"] is not None),
                  key=lambda r: r["paid_on"], reverse=True)[:last]
    if not paid:
        return "no payment history"
    late = [r["days_late"] for r in paid if r["days_late"] > 0]
    n = len(paid)
    if n == 1:
        return ("the only paid invoice was paid late, "
                f"{late[0]} days") if late else "the only paid invoice was paid on time"
    if not late:
        return f"none of the last {n} invoices was paid late"
    return (f"{len(late)} of the last {n} invoices were paid late, "
            f"{sum(late) / len(late):.0f} days on average")


def payment_points(past: list[dict[str, Any]]) -> list[tuple[dt.date, int]]:
    """(payment date, days late) of every paid invoice, oldest first (for the chart)."""
    return sorted((r["paid_on"], int(r["days_late"])) for r in past
                  if r["paid_on"] is not None and r["days_late"] is not None)


def timeline(con: Any, customer_id: str, until: dt.date,
             limit: int = 200) -> list[dict[str, Any]]:
    """Reminders (and letters, calls, notices, agency), complaints, disputes, payments and
    review decisions of a customer dated on or before ``until`` (the worklist's day: the page
    shows what was known then), newest first: ``{day, kind, invoice_id, text}``."""
    events: list[dict[str, Any]] = []
    for when, inv, channel, complaint, by in con.execute(
            "SELECT a.action_date, a.invoice_id, a.channel, a.complaint, a.decided_by "
            "FROM actions a JOIN invoices i ON i.invoice_id = a.invoice_id "
            "WHERE i.customer_id = ? AND a.action_date <= ?", [customer_id, until]).fetchall():
        kind = "letter" if channel in ("letter", "final_notice") else "reminder"
        text = channel.replace("_", " ") + (f" (by {by})" if by else "")
        events.append({"day": when, "kind": kind, "invoice_id": inv, "text": text})
        if complaint:
            events.append({"day": when, "kind": "complaint", "invoice_id": inv,
                           "text": f"complaint after the {channel.replace('_', ' ')}"})
    cols = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() "
                                      "WHERE table_name = 'invoices'").fetchall()}
    resolved = "dispute_resolved" if "dispute_resolved" in cols else "NULL"
    for inv, opened, closed in con.execute(
            f"SELECT invoice_id, dispute_opened, {resolved} FROM invoices WHERE customer_id = ? "
            "AND dispute_opened <= ?", [customer_id, until]).fetchall():
        events.append({"day": opened, "kind": "dispute", "invoice_id": inv,
                       "text": "dispute opened"})
        if closed is not None and closed <= until:
            events.append({"day": closed, "kind": "dispute", "invoice_id": inv,
                           "text": "dispute resolved"})
    recorded = _has_table(con, "events")
    for inv, when, amount, currency in con.execute(
            "SELECT p.invoice_id, p.payment_date, p.amount, i.currency FROM payments p "
            "JOIN invoices i ON i.invoice_id = p.invoice_id WHERE i.customer_id = ? "
            "AND p.payment_date <= ?" + (" AND p.payment_id NOT IN (SELECT event_id FROM "
                                         "events WHERE kind = 'payment')" if recorded else ""),
            [customer_id, until]).fetchall():
        events.append({"day": when, "kind": "payment", "invoice_id": inv,
                       "text": f"paid {amount:,.2f} {currency}"})
    if recorded:
        events += _recorded_events(con, customer_id, until)
    if _has_table(con, "ops_audit_log"):
        for as_of, inv, payload in con.execute(
                "SELECT as_of, invoice_id, payload FROM ops_audit_log WHERE customer_id = ? "
                "AND kind = 'review'", [customer_id]).fetchall():
            p = json.loads(payload)
            events.append({"day": as_of, "kind": "review", "invoice_id": inv,
                           "text": f"{p.get('action', '?')} {p.get('decision', '?')} by "
                                   f"{p.get('reviewer', '?')}"})
    events.sort(key=lambda e: (e["day"], e["kind"]), reverse=True)
    return events[:limit]


def _recorded_events(con: Any, customer_id: str, until: dt.date) -> list[dict[str, Any]]:
    """What clerks recorded (``dunning record``, ``POST /events``, the customer page's form):
    every event of the customer, also those effective after ``until`` (recorded since the
    worklist's day, e.g. before tonight's run: ``after`` is then True), as timeline entries."""
    out = []
    for kind, when, inv, amount, promised, channel, by, currency in con.execute(
            "SELECT e.kind, e.effective_date, e.invoice_id, e.amount, e.promised_date, "
            "e.channel, e.recorded_by, i.currency FROM events e LEFT JOIN invoices i ON "
            "i.invoice_id = e.invoice_id WHERE e.customer_id = ?", [customer_id]).fetchall():
        text = kind.replace("_", " ")
        if kind == "payment":
            text = f"paid {amount:,.2f} {currency or ''}".rstrip()
        elif kind == "promise_to_pay":
            text += f" by {promised}" + (f": {amount:,.2f} {currency or ''}" if amount else "")
        elif kind == "opt_out":
            text += f" of {channel}"
        elif amount is not None:
            text += f": {amount:,.2f} {currency or ''}"
        text += f" (recorded by {by})" if by else ""
        group = {"payment": "payment", "dispute_opened": "dispute",
                 "dispute_resolved": "dispute"}.get(kind, kind)
        out.append({"day": when, "kind": group, "invoice_id": inv or "", "text": text,
                    "after": when > until})
    return out


def _has_table(con: Any, name: str) -> bool:
    # (duckdb_tables(): a third of information_schema's cost, asked on every page)
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                            [name]).fetchone()[0])


# ------------------------------------------------------------------------------ review
def review_items(con: Any, status: str, sort: str, desc: bool,
                 limit: int = 500) -> list[dict[str, Any]]:
    """Review items of ``status`` (or all) with amount, currency, customer name and the
    P(on time) of the recommendation that raised them, sorted by a :data:`REVIEW_SORTS` key."""
    if not _has_table(con, "ops_review_queue") or not _has_table(con, "ops_recommendations"):
        return []
    where, args = "", []
    if status != "all":
        where, args = "WHERE q.status = ?", [status]
    order = f"{REVIEW_SORTS[sort]} {'DESC' if desc else 'ASC'} NULLS LAST, q.review_id"
    cur = con.execute(f"""
        SELECT q.review_id, q.as_of, q.invoice_id, q.customer_id, q.action, q.rule_ids,
               q.status, q.created_at, q.decided_at, q.reviewer, c.name, i.amount, i.currency,
               r.p_on_time, q.explanation
        FROM ops_review_queue q
        LEFT JOIN invoices i ON i.invoice_id = q.invoice_id
        LEFT JOIN customers c ON c.customer_id = q.customer_id
        LEFT JOIN ops_recommendations r ON r.as_of = q.as_of AND r.invoice_id = q.invoice_id
        {where} ORDER BY {order} LIMIT ?""", [*args, limit])
    names = [d[0] for d in cur.description]
    out = []
    for values in cur.fetchall():
        row = dict(zip(names, values, strict=True))
        row["rule_ids"] = json.loads(row["rule_ids"])
        explanation = json.loads(row.pop("explanation"))
        row["flags"] = list(explanation.get("reason", {}).get("implausible", []))
        out.append(row)
    return out
