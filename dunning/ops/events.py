"""Recording what happened after a recommendation, with its audit record.

The validation and storage live in :mod:`engine.events` (kinds, fields, effects); this
module adds the audit trail: every recorded event and every master-data change (by
``dunning record`` or by ``dunning ingest`` of a changed customer or invoice row) is one
record of the chain (kinds ``event`` and ``master_data``). Personal data (the free-text
note, new values of customer fields) goes into the record's personal part, erasable by
``dunning forget``; the chained payload holds ids, dates, amounts and field names.

::

    done = record(store, Event("promise_to_pay", date(2026, 3, 2), invoice_id="I-1",
                               promised_date=date(2026, 3, 16)))
    done.audit_seq
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dunning.ops.audit import AuditLog, AuditRecord
from engine.errors import InputError
from engine.events import Event, Recorded, normalise_event, record_event

if TYPE_CHECKING:
    from engine.ingest import IngestReport
    from engine.store import Store

# customer fields whose values are personal data: only their names enter the chain
PERSONAL_FIELDS = frozenset({"name", "email", "address"})


@dataclass
class RecordedEvent:
    """:class:`engine.events.Recorded` plus the audit record's sequence number."""

    recorded: Recorded
    audit_seq: int | None

    def as_dict(self) -> dict[str, Any]:
        r = self.recorded
        return {"event_id": r.event_id, "kind": r.kind,
                "effective_date": r.effective_date.isoformat(), "customer_id": r.customer_id,
                "invoice_id": r.invoice_id, "recorded": r.loaded, "amount": r.amount,
                "principal": r.principal, "interest_fees": r.interest_fees,
                "changed_fields": list(r.changed_fields), "audit_seq": self.audit_seq,
                "message": r.summary()}


def record(store: Store, event: Event, anchor: Path | None = None) -> RecordedEvent:
    """Validate and store ``event`` (:func:`engine.events.record_event`) and its audit
    record in one transaction (no event without its record, e.g. without an audit key); an
    event recorded before is not audited again (``audit_seq`` None).

    A dispute may be opened only when none is open on its day, resolved only when one is
    (``disputed_now`` of :func:`legal_rules.from_tables.invoice_states`, the fact builder).
    """
    event = normalise_event(event)
    if event.kind in ("dispute_opened", "dispute_resolved"):
        _check_dispute(store, event)
    seqs: list[int] = []

    def with_audit(done: Recorded, insert: Callable[[], None], con: Any) -> None:
        # the event and its audit record commit together: a crash leaves both or neither
        log = AuditLog(con, anchor=anchor or store.path.parent / "audit.anchor")
        seqs.extend(log.append([_audit_record(done, event)], then=lambda _: insert()))

    done = record_event(store, event, transaction=with_audit)
    seq = seqs[0] if seqs else None
    return RecordedEvent(done, seq)


def _audit_record(done: Recorded, event: Event) -> AuditRecord:
    """The ``event`` audit record of ``done``; the note and new master-data values are
    personal data (kept out of the hash chain, erasable)."""
    payload = {"event_id": done.event_id, "event": done.kind,
               "effective_date": done.effective_date.isoformat(), "amount": done.amount,
               "principal": done.principal, "interest_fees": done.interest_fees,
               "promised_date": event.promised_date.isoformat() if event.promised_date
               else None, "channel": (event.channel or "").strip().lower() or None,
               "changed_fields": list(done.changed_fields), "recorded_by": event.recorded_by,
               "recorded_at": done.recorded_at.isoformat() if done.recorded_at else None}
    personal: dict[str, Any] = {}
    if event.note:
        personal["note"] = event.note
    if event.changes:
        personal["new_values"] = {k: v for k, v in event.changes.items()}
    return AuditRecord("event", payload, as_of=done.effective_date, invoice_id=done.invoice_id,
                       customer_id=done.customer_id, personal=personal or None)


def _check_dispute(store: Store, event: Event) -> None:
    from engine.events import event_id_of
    from engine.store import WITH_EVENTS
    from legal_rules.from_tables import invoice_states

    day, invoice = event.effective_date, str(event.invoice_id)
    with store.connect() as con:  # the same event again is a no-op, not an error
        if con.execute("SELECT count(*) FROM events WHERE event_id = ?",
                       [event.event_id or event_id_of(event)]).fetchone()[0]:
            return
    state = invoice_states(store.tables(as_of=day, names=WITH_EVENTS, invoice_ids=[invoice]),
                           day)
    if state.empty:
        return  # unknown invoice or dated before it: record_event says which
    disputed = bool(state["disputed_now"].iloc[0])
    if event.kind == "dispute_opened" and disputed:
        raise InputError(f"dispute_opened: invoice {invoice} is already disputed on {day}")
    if event.kind == "dispute_resolved" and not disputed:
        raise InputError(f"dispute_resolved: invoice {invoice} has no open dispute on {day}")


def audit_master_data(store: Store, report: IngestReport, anchor: Path | None = None,
                      by: str = "ingest") -> list[int]:
    """One ``master_data`` audit record per customer or invoice row an ingest changed
    (table, key, changed field names, effective date); returns their sequence numbers."""
    import datetime as dt

    records = []
    for name in ("customers", "invoices"):
        t = report.tables[name]
        for key, fields in t.changes:
            records.append(AuditRecord(
                "master_data", {"table": name, "key": key, "changed_fields": list(fields),
                                "effective_date": (report.effective or dt.datetime.now(
                                    dt.UTC).date()).isoformat(),
                                "source": [str(f) for f in report.files], "by": by},
                as_of=report.effective,
                invoice_id=key if name == "invoices" else None,
                customer_id=key if name == "customers" else None))
    if not records:
        return []
    with store.connect() as con:
        log = AuditLog(con, anchor=anchor or store.path.parent / "audit.anchor")
        return log.append(records)
