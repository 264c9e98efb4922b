"""CLI command of the events area: ``dunning record KIND`` (what happened after a
recommendation: payments, credit notes, write-offs, disputes, promises to pay, calls,
opt-outs, customer master-data changes). Semantics: ``engine.events``."""

from __future__ import annotations

from pathlib import Path

import typer

from dunning.commands.common import console, user_errors
from engine.config import DEFAULT_DB
from engine.errors import InputError

KIND_HELP = ("payment, credit-note, write-off, dispute-opened, dispute-resolved, "
             "promise-to-pay, contact-attempt (a call that did not reach the debtor), "
             "conversation (a call that did), opt-out, customer-change")


@user_errors
def record_cmd(
    kind: str = typer.Argument(..., help=KIND_HELP),
    invoice: str = typer.Option(None, "--invoice", help="Invoice id (all kinds but opt-out "
                                "and customer-change, where it names the customer)."),
    customer: str = typer.Option(None, "--customer", help="Customer id (opt-out, "
                                 "customer-change)."),
    date: str = typer.Option(None, "--date", help="Day it happened / takes effect, "
                             "YYYY-MM-DD (default: today UTC)."),
    amount: float = typer.Option(None, "--amount", help="Amount in the invoice currency "
                                 "(payment, credit-note; write-off: default all that is "
                                 "open; promise-to-pay: optional)."),
    promised_date: str = typer.Option(None, "--promised-date", help="promise-to-pay: the "
                                      "day the debtor promised to pay by."),
    channel: str = typer.Option(None, "--channel", help="opt-out: email, letter or phone."),
    set_: list[str] = typer.Option(None, "--set", help="customer-change: FIELD=VALUE "
                                   "(repeat), e.g. --set language=de."),
    event_id: str = typer.Option(None, "--id", help="Your id of the event (default: derived "
                                 "from its content; the same id twice is recorded once)."),
    note: str = typer.Option(None, "--note", help="Free text (personal data: kept out of the "
                             "audit chain, erased by `dunning forget`)."),
    by: str = typer.Option(None, "--by", help="Who records it (default: user:$USER)."),
    db: Path = typer.Option(DEFAULT_DB, "--db", help="The DuckDB store file."),
) -> None:
    """Record an event after a recommendation; the next recommendation sees it."""
    import getpass

    from dunning.commands.common import decision_date, open_store
    from dunning.ops.events import record
    from engine.events import Event

    changes: dict[str, str] = {}
    for item in set_ or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {item!r}: expected FIELD=VALUE")
        changes[key.strip()] = value.strip()
    event = Event(kind=kind, effective_date=decision_date(date, "--date"), invoice_id=invoice,
                  customer_id=customer, amount=amount,
                  promised_date=None if promised_date is None
                  else decision_date(promised_date, "--promised-date"),
                  channel=channel, changes=changes, event_id=event_id,
                  recorded_by=by or f"user:{getpass.getuser()}", note=note)
    done = record(open_store(db), event)
    seq = f" (audit record {done.audit_seq})" if done.audit_seq else ""
    console.print(done.recorded.summary() + seq, highlight=False)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dunning app."""
    app.command("record")(record_cmd)
