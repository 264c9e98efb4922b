"""Events after a recommendation: what a clerk records, validated, stored append-only.

::

    from engine.events import Event, record_event

    done = record_event(store, Event("payment", date(2026, 3, 2), invoice_id="I-1",
                                     amount=1093.50))
    done.principal, done.interest_fees      # 1000.0, 93.5 (the part above the principal)

Every event is one row of the store's ``events`` table (append-only; columns
:data:`engine.store.EVENT_COLUMNS`) with the day it takes effect (``effective_date``) and
the moment it was recorded (``recorded_at``, UTC). ``Store.tables(as_of)`` and
``Store.events(as_of)`` cut on the effective date, so a decision for day ``D`` sees every
event effective on or before ``D``. Kinds (:data:`KINDS`) and what else they write:

- ``payment``: also a row of ``payments`` (``payment_id`` = the event id). The part above
  the open principal (invoice amount minus payments, credit notes and write-offs) is booked
  against interest and fees (``interest_fees``), up to the invoice amount
  (:data:`engine.ingest.MAX_SURPLUS_SHARE`); more is refused as a likely wrong amount.
- ``credit_note``, ``write_off``: lower the open amount (a write-off without an amount
  writes off everything open); neither may exceed the open amount.
- ``dispute_opened`` / ``dispute_resolved``: a dispute blocks reminders from its opening
  day through its resolution day (as the invoice's dispute columns do). Whether one is
  open is a legal fact: ``dunning.ops.events.record`` checks it with the one fact builder
  (``legal_rules.from_tables``) before calling :func:`record_event`.
- ``promise_to_pay`` (``promised_date``, optional ``amount``): reminders pause through
  the promised date; the latest promise counts.
- ``contact_attempt`` / ``conversation``: a phone call that did not / did reach the debtor
  (US Regulation F counts both as calls and bars calls for 7 days after a conversation).
- ``opt_out`` (``channel``) and ``customer_change`` (``changes``: field -> new value): a
  new version of the customer's master data through :func:`engine.ingest.ingest` (same
  validation, history kept, effective from ``effective_date``).

Recording the same event twice (same id; by default derived from its content) is a no-op.
Bad input raises :class:`engine.errors.InputError` naming the option and what was expected.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import InputError

if TYPE_CHECKING:
    from engine.store import Store

KINDS: tuple[str, ...] = (
    "payment", "credit_note", "write_off", "dispute_opened", "dispute_resolved",
    "promise_to_pay", "contact_attempt", "conversation", "opt_out", "customer_change",
)
INVOICE_KINDS = frozenset(KINDS) - {"opt_out", "customer_change"}
AMOUNT_REQUIRED = frozenset({"payment", "credit_note"})
CALL_KINDS = ("contact_attempt", "conversation")
OPT_OUT_CHANNELS = ("email", "letter", "phone")
OPEN_EPSILON = 0.005  # half a cent: at or below it an invoice is settled


@dataclass
class Event:
    """One event as a clerk reports it (see the module docstring for each kind).

    ``effective_date``: the day it happened / takes effect. ``amount`` in the invoice's
    currency. ``changes`` (``customer_change``): customer column -> new value as text.
    ``note``: free text, personal data (kept out of the audit chain, erased by forget).
    """

    kind: str
    effective_date: date
    invoice_id: str | None = None
    customer_id: str | None = None
    amount: float | None = None
    promised_date: date | None = None
    channel: str | None = None
    changes: dict[str, str] = field(default_factory=dict)
    event_id: str | None = None
    recorded_by: str = "user"
    note: str | None = None


@dataclass
class Recorded:
    """What :func:`record_event` stored. ``loaded`` is False if it was already recorded."""

    event_id: str
    kind: str
    effective_date: date
    customer_id: str
    invoice_id: str | None
    loaded: bool
    amount: float | None = None
    principal: float | None = None
    interest_fees: float | None = None
    changed_fields: tuple[str, ...] = ()
    recorded_at: datetime | None = None

    def summary(self) -> str:
        """One line for the console."""
        what = f"{self.kind} {self.event_id} for " + (
            f"invoice {self.invoice_id}" if self.invoice_id else f"customer {self.customer_id}")
        what += f", effective {self.effective_date}"
        if self.kind == "payment" and self.principal is not None:
            what += f": {self.principal:.2f} principal"
            if self.interest_fees:
                what += f" + {self.interest_fees:.2f} interest and fees"
        elif self.amount is not None:
            what += f": {self.amount:.2f}"
        if self.changed_fields:
            what += f"; changed: {', '.join(self.changed_fields)}"
        return ("recorded " if self.loaded else "already recorded ") + what


def record_event(store: Store, event: Event, now: datetime | None = None,
                 transaction: Callable[[Recorded, Callable[[], None], Any], None] | None = None
                 ) -> Recorded:
    """Validate ``event`` against the store and append it (see the module docstring).

    ``transaction(recorded, insert, con)``, if given, owns the write: it must call
    ``insert()`` (the event's rows, no transaction of its own) inside a transaction it opens
    and commits on ``con``, so that what it writes beside the event (an audit record)
    commits with it or not at all. It is not called for an event recorded before
    (``loaded`` False).
    """
    ev = normalise_event(event)
    with store.connect() as con:
        inv = _invoice(con, ev) if ev.invoice_id is not None else None
        if inv is not None:
            if ev.customer_id is not None and ev.customer_id != inv["customer_id"]:
                raise InputError(f"--customer {ev.customer_id!r}: invoice {ev.invoice_id} "
                                 f"belongs to customer {inv['customer_id']}")
            ev.customer_id = inv["customer_id"]
        elif not con.execute("SELECT count(*) FROM customers WHERE customer_id = ?",
                             [ev.customer_id]).fetchone()[0]:
            raise InputError(f"--customer {ev.customer_id!r}: no such customer in "
                             f"{store.path}")
        event_id = ev.event_id or event_id_of(ev)
        if con.execute("SELECT count(*) FROM events WHERE event_id = ?",
                       [event_id]).fetchone()[0]:
            return Recorded(event_id, ev.kind, ev.effective_date, str(ev.customer_id),
                            ev.invoice_id, False, ev.amount)
        booked: dict[str, Any] = {}
        if inv is not None:
            booked = _check_invoice_event(con, ev, inv)
    changed: tuple[str, ...] = ()
    if ev.kind in ("opt_out", "customer_change"):
        changed = _change_customer(store, ev)
    at = (now or datetime.now(UTC)).replace(tzinfo=None)
    row = {"event_id": event_id, "kind": ev.kind, "effective_date": ev.effective_date,
           "recorded_at": at, "customer_id": ev.customer_id, "invoice_id": ev.invoice_id,
           "amount": booked.get("amount", ev.amount), "principal": booked.get("principal"),
           "interest_fees": booked.get("interest_fees"), "promised_date": ev.promised_date,
           "channel": ev.channel, "changed_fields": ";".join(changed) or None,
           "recorded_by": ev.recorded_by, "note": ev.note}
    done = Recorded(event_id, ev.kind, ev.effective_date, str(ev.customer_id), ev.invoice_id,
                    True, row["amount"], row["principal"], row["interest_fees"], changed, at)
    with store.connect() as con:
        if transaction is not None:
            transaction(done, lambda: _insert_event(con, row), con)
            return done
        con.execute("BEGIN TRANSACTION")
        try:
            _insert_event(con, row)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return done


def _insert_event(con: Any, row: dict[str, Any]) -> None:
    """The event's row (and a payment's ``payments`` row), inside the caller's transaction."""
    con.execute(f"INSERT INTO events ({', '.join(row)}) VALUES "
                f"({', '.join('?' * len(row))})", list(row.values()))
    if row["kind"] == "payment":
        con.execute("INSERT INTO payments (payment_id, invoice_id, payment_date, amount) "
                    "VALUES (?, ?, ?, ?)",
                    [row["event_id"], row["invoice_id"], row["effective_date"], row["amount"]])


# --------------------------------------------------------------------------- validation
def normalise_event(event: Event) -> Event:
    """A copy with trimmed texts and the kind's canonical name (``promise-to-pay`` ->
    ``promise_to_pay``); raises InputError for what needs no store to check."""
    import math

    kind = event.kind.strip().lower().replace("-", "_")
    if kind not in KINDS:
        raise InputError(f"event kind {event.kind!r}: expected one of {', '.join(KINDS)}")
    ev = Event(**{**event.__dict__, "kind": kind, "changes": dict(event.changes)})
    ev.invoice_id = (ev.invoice_id or "").strip() or None
    ev.customer_id = (ev.customer_id or "").strip() or None
    ev.channel = (ev.channel or "").strip().lower() or None
    if not isinstance(ev.effective_date, date):
        raise InputError(f"--date {ev.effective_date!r}: expected a date YYYY-MM-DD")
    today = datetime.now(UTC).date()
    if (ev.effective_date - today).days > 1:  # a day of slack for time zones
        raise InputError(f"--date {ev.effective_date}: in the future (today is {today}, "
                         "UTC); record an event when it has happened (a promise's date is "
                         "--promised-date)")
    if kind in INVOICE_KINDS and ev.invoice_id is None:
        raise InputError(f"{kind}: give --invoice ID")
    if kind not in INVOICE_KINDS and ev.invoice_id is None and ev.customer_id is None:
        raise InputError(f"{kind}: give --customer ID (or --invoice ID of one of its invoices)")
    if ev.amount is not None:
        if not isinstance(ev.amount, int | float) or isinstance(ev.amount, bool) \
                or not math.isfinite(ev.amount) or ev.amount <= 0:
            raise InputError(f"--amount {ev.amount!r}: expected a number > 0 (in the "
                             "invoice currency)")
        ev.amount = round(float(ev.amount), 2)
    if kind in AMOUNT_REQUIRED and ev.amount is None:
        raise InputError(f"{kind}: give --amount (> 0, in the invoice currency)")
    if kind == "promise_to_pay":
        if ev.promised_date is None:
            raise InputError("promise_to_pay: give --promised-date YYYY-MM-DD")
        if ev.promised_date < ev.effective_date:
            raise InputError(f"--promised-date {ev.promised_date}: before the day of the "
                             f"promise {ev.effective_date}")
    elif ev.promised_date is not None:
        raise InputError(f"--promised-date: only for promise_to_pay, not {kind}")
    if kind in CALL_KINDS:
        if ev.channel not in (None, "phone"):
            raise InputError(f"--channel {ev.channel!r}: {kind} is a phone call; expected "
                             "phone")
        ev.channel = "phone"
    elif kind == "opt_out":
        if ev.channel not in OPT_OUT_CHANNELS:
            raise InputError(f"--channel {ev.channel!r}: expected one of "
                             f"{', '.join(OPT_OUT_CHANNELS)}")
    elif ev.channel is not None:
        raise InputError(f"--channel: only for opt_out, contact_attempt and conversation, "
                         f"not {kind}")
    if kind == "customer_change":
        if not ev.changes:
            raise InputError("customer_change: give at least one --set FIELD=VALUE")
    elif ev.changes:
        raise InputError(f"--set: only for customer_change, not {kind}")
    return ev


def _invoice(con: Any, ev: Event) -> dict[str, Any]:
    row = con.execute("SELECT customer_id, invoice_date, amount FROM invoices "
                      "WHERE invoice_id = ?", [ev.invoice_id]).fetchone()
    if row is None:
        raise InputError(f"--invoice {ev.invoice_id!r}: no such invoice in the store")
    out = {"customer_id": row[0], "invoice_date": row[1], "amount": float(row[2])}
    if ev.effective_date < out["invoice_date"]:
        raise InputError(f"--date {ev.effective_date}: before the invoice date "
                         f"{out['invoice_date']} of {ev.invoice_id}")
    return out


def _check_invoice_event(con: Any, ev: Event, inv: dict[str, Any]) -> dict[str, Any]:
    """Kind-specific checks against the invoice's balance; the booking (amounts)."""
    from engine.ingest import MAX_SURPLUS_SHARE

    bal = balance(con, str(ev.invoice_id), ev.effective_date)
    open_amount = max(inv["amount"] - bal["paid"] - bal["credited"] - bal["written_off"], 0.0)
    if ev.kind == "payment":
        amount = float(ev.amount or 0.0)
        bound = inv["amount"] * (1 + MAX_SURPLUS_SHARE)
        if bal["paid"] + amount > bound + OPEN_EPSILON:
            raise InputError(
                f"--amount {amount:.2f}: payments of {ev.invoice_id} would reach "
                f"{bal['paid'] + amount:.2f}, more than twice its amount {inv['amount']:.2f}; "
                "the part above the amount is booked against interest and fees only up to "
                "the amount itself (a wrong amount or another invoice?)")
        principal = round(min(amount, open_amount), 2)
        return {"amount": amount, "principal": principal,
                "interest_fees": round(amount - principal, 2)}
    if ev.kind in ("credit_note", "write_off"):
        if open_amount <= OPEN_EPSILON:
            raise InputError(f"{ev.kind}: invoice {ev.invoice_id} has nothing open on "
                             f"{ev.effective_date}")
        amount = round(open_amount, 2) if ev.amount is None else float(ev.amount)
        if amount > open_amount + OPEN_EPSILON:
            raise InputError(f"--amount {amount:.2f}: more than the open amount "
                             f"{open_amount:.2f} of {ev.invoice_id} on {ev.effective_date}")
        return {"amount": amount}
    return {}


def balance(con: Any, invoice_id: str, day: date) -> dict[str, float]:
    """Sums up to ``day`` for one invoice: ``paid``, ``credited`` and ``written_off``."""
    paid = con.execute("SELECT coalesce(sum(amount), 0) FROM payments WHERE invoice_id = ? "
                       "AND payment_date <= ?", [invoice_id, day]).fetchone()[0]
    sums = dict(con.execute(
        "SELECT kind, sum(amount) FROM events WHERE invoice_id = ? AND effective_date <= ? "
        "AND kind IN ('credit_note', 'write_off') GROUP BY kind", [invoice_id, day]).fetchall())
    return {"paid": float(paid), "credited": float(sums.get("credit_note") or 0.0),
            "written_off": float(sums.get("write_off") or 0.0)}


def event_id_of(ev: Event) -> str:
    """The id an event gets without ``--id``: a hash of its content (kind, ids, dates,
    amount, channel, changes), so recording the same report twice stores it once."""
    basis = json.dumps([ev.kind, ev.invoice_id, ev.customer_id, ev.effective_date.isoformat(),
                        ev.amount, ev.promised_date.isoformat() if ev.promised_date else None,
                        ev.channel, sorted(ev.changes.items())], sort_keys=True)
    return "E-" + hashlib.sha256(basis.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- master data
def _change_customer(store: Store, ev: Event) -> tuple[str, ...]:
    """Write the new customer version through ingest (its validation and history)."""
    import pandas as pd

    from engine.contract import CUSTOMERS
    from engine.ingest import ingest

    cur = store.table("customers")
    cur = cur[cur["customer_id"] == ev.customer_id]
    if cur.empty:
        raise InputError(f"--customer {ev.customer_id!r}: no such customer")
    current = cur.iloc[0]
    if ev.kind == "opt_out":
        have = [c for c in str(current["opted_out_channels"] or "").split(";")
                if c and c != "nan"]
        if ev.channel in have:
            raise InputError(f"opt_out: customer {ev.customer_id} already stopped the "
                             f"{ev.channel} channel")
        changes = {"opted_out_channels": ";".join([*have, str(ev.channel)])}
    else:
        changes = {k.strip(): v for k, v in ev.changes.items()}
        known = [c for c in CUSTOMERS.column_names if c != "customer_id"]
        for k in changes:
            if k not in known:
                raise InputError(f"--set {k}=...: customers has no field {k!r}; expected "
                                 f"one of {', '.join(known)}")
    row: dict[str, Any] = {"customer_id": ev.customer_id}
    for col in ("jurisdiction", "customer_type"):
        row[col] = current[col]
    row.update(changes)
    with tempfile.TemporaryDirectory(prefix="dunning-event-") as tmp:
        path = Path(tmp) / "customers.csv"
        pd.DataFrame([row]).to_csv(path, index=False)
        report = ingest([path], db=store, effective=ev.effective_date).tables["customers"]
    if report.quarantined:
        reasons = "; ".join(r for r, _ in report.top_reasons)
        raise InputError(f"{ev.kind} for customer {ev.customer_id} rejected: {reasons}")
    if not report.updated:
        raise InputError(f"{ev.kind}: customer {ev.customer_id} already has these values")
    return report.changes[0][1]
