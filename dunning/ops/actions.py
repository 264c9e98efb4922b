"""Actions reported as done (``dunning record-action``, API ``POST /actions``).

:func:`record_action` checks the action like a recommendation (the legal decision on the
store's facts as of its date, the human review gate: :mod:`dunning.ops.gate`), records it
through the same ingest as the ERP's action export and appends it to the audit log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dunning.ops.audit import AuditLog, AuditRecord
from engine.contract import Action
from engine.errors import InputError

if TYPE_CHECKING:
    from dunning.ops.gate import VetoOverride
    from engine.store import Store

@dataclass
class RecordedAction:
    """Outcome of :func:`record_action`: ``loaded`` False if it was already recorded."""

    invoice_id: str
    channel: str
    action_date: dt.date
    decided_by: str
    loaded: bool
    audit_seq: int | None


def record_action(store: Store, invoice_id: str, channel: str, action_date: dt.date,
                  decided_by: str = "user", complaint: bool = False,
                  anchor: Path | None = None, override: VetoOverride | None = None,
                  ruleset: Any | None = None) -> RecordedAction:
    """Mark that an action was actually taken, so the next day's state is right.

    First the same legal check as a recommendation, on the store's facts as of
    ``action_date`` (:func:`dunning.ops.gate.check_recorded_action`): a vetoed action is
    refused with the rule ids and citations unless a reviewer ``override`` is given (then
    an ``override`` audit record holds who, which rules and, as personal data, why); an
    action that needs human review needs an approved review item. Then
    :func:`engine.ingest.ingest` (the same validation as the ERP's action export: known
    invoice, channel, date), so a bad value is quarantined and reported, and recording the
    same action twice is a no-op. The action is also written to the audit log.
    """
    import tempfile

    import pandas as pd

    from dunning.ops.audit import load_audit_key
    from dunning.ops.gate import check_recorded_action
    from engine.ingest import ingest

    load_audit_key()  # no key: stop before the action is stored without its audit record
    channel = channel.strip().lower()
    try:
        action = Action.from_channel(channel)
    except KeyError:
        action = None
    if action is None or action is Action.WAIT:
        raise InputError(f"--channel {channel!r}: expected one of email, letter, phone, "
                         "final_notice, agency")
    with store.connect() as con:
        known = con.execute("SELECT invoice_date FROM invoices WHERE invoice_id = ?",
                            [invoice_id]).fetchone()
        already = con.execute("SELECT count(*) FROM actions WHERE invoice_id = ? AND "
                              "action_date = ? AND channel = ?",
                              [invoice_id, action_date, channel]).fetchone()[0]
    if known is None:
        raise InputError(f"--invoice {invoice_id!r}: no such invoice in {store.path}")
    if action_date < known[0]:
        raise InputError(f"--date {action_date}: before the invoice date {known[0]} of "
                         f"{invoice_id}; expected a date on or after it")
    if already:  # the same action on the same day is one action, whoever reports it
        return RecordedAction(invoice_id, channel, action_date, decided_by, False, None)
    check = check_recorded_action(store, invoice_id, action, action_date, override, ruleset)
    decision = check.decision
    overridden = override is not None and (not decision.allowed
                                           or not bool(check.state["is_open"]))
    row = {"invoice_id": invoice_id, "action_date": action_date.isoformat(),
           "channel": channel, "decided_by": decided_by, "complaint": complaint}
    with tempfile.TemporaryDirectory(prefix="dunning-action-") as tmp:
        path = Path(tmp) / "actions.csv"
        pd.DataFrame([row]).to_csv(path, index=False)
        report = ingest([path], db=store).tables["actions"]
    if report.quarantined:
        raise InputError(f"action for {invoice_id} on {action_date} was rejected by the "
                         f"actions validation; see {report.quarantine_file}")
    seq = None
    if report.loaded:
        legal = {"status": decision.status, "rules_hash": decision.ruleset_hash,
                 "fired_rules": [{"rule_id": h.rule_id, "effect": h.effect,
                                  "citation": h.citation}
                                 for h in (*decision.fired, *decision.unresolved)]}
        records = []
        with store.connect() as con:
            customer = _customer_of(con, invoice_id)
            if overridden:
                records.append(AuditRecord(
                    "override", {"channel": channel, "action_date": action_date.isoformat(),
                                 "reviewer": override.reviewer, "role": override.role,
                                 "open_on_date": bool(check.state["is_open"]), **legal},
                    as_of=action_date, invoice_id=invoice_id, customer_id=customer,
                    personal={"reason": override.reason.strip()}))
            records.append(AuditRecord(
                "action", {"channel": channel, "action_date": action_date.isoformat(),
                           "decided_by": decided_by, "complaint": complaint,
                           "legal": legal, "veto_overridden": overridden},
                as_of=action_date, invoice_id=invoice_id, customer_id=customer))
            log = AuditLog(con, anchor=anchor or store.path.parent / "audit.anchor")
            seq = log.append(records)[-1]
    return RecordedAction(invoice_id, channel, action_date, decided_by, bool(report.loaded),
                          seq)


def _customer_of(con: Any, invoice_id: str) -> str | None:
    row = con.execute("SELECT customer_id FROM invoices WHERE invoice_id = ?",
                      [invoice_id]).fetchone()
    return row[0] if row else None
