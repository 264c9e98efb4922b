"""The one place that decides whether an action may be rendered, exported or recorded as done.

Two checks, used by every path that acts on an invoice (the letter endpoint and
:func:`dunning.ops.letters.letters_for`, the ERP export, ``dunning record-action``)::

    legal_decisions(store, {invoice: action}, day)   facts of the store as of ``day`` (the one
        builder: legal_rules.from_tables via dunning.ops.recommend) -> durable_rules decision
    review_gate(con, invoice, action, day)           an action that needs human review
        (a ``require_human_review`` rule fired) needs an APPROVED review item: the latest
        item for (invoice, action) raised on or before ``day``; pending, rejected or none
        -> :class:`ReviewRequired` naming the item and its status
    check_recorded_action(store, invoice, action, day, override)
        both, for an action reported as done: a vetoed or blocked action is refused with
        the rule ids and citations (:class:`ActionVetoed`), unless a reviewer overrides the
        veto with a reason (:class:`VetoOverride`, written to the audit trail)

A review is never overridden: it is approved (``dunning review approve``, API
``POST /review/{id}/approve``), which is the human decision GDPR art. 22 asks for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.contract import Action
from engine.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from engine.store import Store
    from legal_rules.decision import Decision

REVIEWER_ROLE = "reviewer"


class ReviewRequired(InputError):
    """The action needs an approved human review and has none (API: 409)."""

    def __init__(self, message: str, invoice_id: str, action: str,
                 review_id: str | None, status: str | None) -> None:
        super().__init__(message)
        self.invoice_id, self.action = invoice_id, action
        self.review_id, self.status = review_id, status


class ActionVetoed(InputError):
    """A legal rule vetoes the action (or cannot be evaluated: fail closed)."""

    def __init__(self, message: str, decision: Decision | None) -> None:
        super().__init__(message)
        self.decision = decision


@dataclass(frozen=True)
class VetoOverride:
    """A reviewer's decision to record an action despite a veto.

    ``reviewer`` is the authenticated name (API token name), ``reason`` non-blank free text
    (personal data in the audit trail, erasable).
    """

    reviewer: str
    role: str
    reason: str

    def __post_init__(self) -> None:
        if self.role != REVIEWER_ROLE:
            raise InputError(f"overriding a veto needs the {REVIEWER_ROLE!r} role; "
                             f"{self.reviewer!r} has role {self.role!r}")
        if not self.reviewer.strip():
            raise InputError("veto override: the reviewer's name is empty")
        if not self.reason.strip():
            raise InputError("veto override: --reason is empty; expected why the veto is "
                             "overridden (it is recorded in the audit trail)")


@dataclass(frozen=True)
class LegalCheck:
    """The decision of one invoice's action on a day, with its facts and state row."""

    invoice_id: str
    action: Action
    day: dt.date
    facts: dict[str, Any]
    decision: Decision
    state: pd.Series


# --------------------------------------------------------------------------- legal decision
def legal_decisions(store: Store, actions: Mapping[str, Action], day: dt.date,
                    ruleset: Any | None = None, open_only: bool = True) -> list[LegalCheck]:
    """The durable_rules decision of each ``{invoice_id: action}`` on ``day``.

    Facts come from the store as of ``day`` through the one fact builder
    (:func:`dunning.ops.recommend.invoice_state` / :func:`~dunning.ops.recommend.legal_facts`
    = ``legal_rules.from_tables``). ``open_only``: an invoice not open on ``day`` is an
    error (no letter for it); otherwise every invoice dated on or before ``day`` has facts
    and ``state["is_open"]`` tells. Sorted by invoice id.
    """
    from dunning.ops.recommend import compiled_rules, invoice_state, legal_facts
    from engine.store import WITH_EVENTS
    from legal_rules.from_tables import invoice_states

    if not actions:
        return []
    tables = store.tables(as_of=day, names=WITH_EVENTS)  # recorded events decide too
    state = invoice_state(tables, day) if open_only else invoice_states(tables, day)
    state = state[state["invoice_id"].isin(list(actions))].reset_index(drop=True)
    missing = sorted(set(actions) - set(state["invoice_id"]))
    if missing:
        what = "not open" if open_only else "not dated on or before that day"
        raise InputError(f"invoice {missing[0]}: {what} on {day}; no letter or action for it")
    facts = legal_facts(state, day)
    evaluator = compiled_rules(ruleset, store.path)[2]
    out = []
    for i, row in state.iterrows():
        row_facts = {k: (v[i].item() if hasattr(v[i], "item") else v[i])
                     for k, v in facts.items()}
        action = Action(int(actions[row["invoice_id"]]))
        out.append(LegalCheck(row["invoice_id"], action, day, row_facts,
                              evaluator.decide(row_facts, action, day), row))
    return out


def veto_text(decision: Decision) -> str:
    """``rule (citation); ...`` of every veto and unresolved rule of ``decision``."""
    hits = [h for h in decision.fired if h.effect == "veto"] + list(decision.unresolved)
    parts = []
    for h in hits:
        why = f"{h.rule_id} ({h.citation})"
        if h in decision.unresolved:
            why += f" cannot be evaluated: {h.reason}"
        parts.append(why)
    return "; ".join(parts) or "an unresolved rule"


# --------------------------------------------------------------------------- review gate
def latest_review(con: Any, invoice_id: str, action: str, day: dt.date) -> dict[str, Any] | None:
    """The newest review item for ``(invoice_id, action)`` raised on or before ``day``."""
    from dunning.ops.review import ensure_schema

    ensure_schema(con)
    import json

    row = con.execute(
        "SELECT review_id, as_of, status, reviewer, decided_at, rule_ids FROM ops_review_queue "
        "WHERE invoice_id = ? AND action = ? AND as_of <= ? "
        "ORDER BY as_of DESC, created_at DESC, review_id DESC LIMIT 1",
        [invoice_id, action, day]).fetchone()
    if row is None:
        return None
    item = dict(zip(("review_id", "as_of", "status", "reviewer", "decided_at", "rule_ids"),
                    row, strict=True))
    item["rule_ids"] = json.loads(item["rule_ids"])
    return item


def review_gate(con: Any, invoice_id: str, action: Action | str, day: dt.date,
                required: bool = True) -> dict[str, Any] | None:
    """The approved review item that allows ``action`` on ``invoice_id`` on ``day``.

    ``required=False`` (the legal decision asks for no review): returns None. Otherwise the
    latest item for the invoice and action raised on or before ``day`` must be approved;
    raises :class:`ReviewRequired` naming the item and its status (pending, rejected) or
    saying there is none.
    """
    if not required:
        return None
    channel = action.channel if isinstance(action, Action) else str(action)
    item = latest_review(con, invoice_id, channel, day)
    if item is not None and item["status"] == "approved":
        return item
    if item is None:
        msg = (f"invoice {invoice_id}: {channel} needs an approved human review (GDPR art. "
               f"22) and there is no review item for it on or before {day}; it is raised by "
               "`dunning recommend` (or `dunning record-action`) and decided with "
               "`dunning review approve`")
        raise ReviewRequired(msg, invoice_id, channel, None, None)
    by = f" by {item['reviewer']}" if item["reviewer"] else ""
    msg = (f"invoice {invoice_id}: {channel} needs an approved human review; review "
           f"{item['review_id']} (raised {item['as_of']}) is {item['status']}{by}"
           + ("; decide it with `dunning review approve`" if item["status"] == "pending"
              else "; nothing is sent, exported or recorded"))
    raise ReviewRequired(msg, invoice_id, channel, item["review_id"], item["status"])


# --------------------------------------------------------------------------- recorded action
def check_recorded_action(store: Store, invoice_id: str, action: Action, day: dt.date,
                          override: VetoOverride | None = None,
                          ruleset: Any | None = None) -> LegalCheck:
    """The same legal check as a recommendation, for an action reported as done on ``day``.

    Refuses (:class:`ActionVetoed`, one line with rule ids and citations) an action that a
    rule vetoes or cannot decide on the store's facts as of ``day``, and one on an invoice
    that is not open that day (paid, or already with an agency), unless ``override`` (a
    reviewer, with a reason) is given. An action that needs human review needs an approved
    review item (:func:`review_gate`; an override does not replace it); when there is none
    yet, a pending item is raised so that a reviewer can decide it.
    """
    check = legal_decisions(store, {invoice_id: action}, day, ruleset, open_only=False)[0]
    decision = check.decision
    problems = []
    if not bool(check.state["is_open"]):
        why = ("handed to an agency" if bool(check.state["handed_to_agency"])
               else "fully paid")
        problems.append(f"the invoice is not open on {day} ({why})")
    if not decision.allowed:
        problems.append(f"{decision.status} by {veto_text(decision)}")
    if problems and override is None:
        raise ActionVetoed(f"invoice {invoice_id}: {action.channel} on {day} is refused: "
                           f"{'; '.join(problems)}. A reviewer may override with "
                           "--override-veto --reason TEXT --reviewer NAME", decision)
    if decision.needs_review:
        with store.connect() as con:
            try:
                review_gate(con, invoice_id, action, day)
            except ReviewRequired as exc:
                if exc.review_id is None:
                    rid = _raise_review(con, store, check)
                    raise ReviewRequired(
                        f"invoice {invoice_id}: {action.channel} needs an approved human "
                        f"review (GDPR art. 22); review {rid} is raised (pending): approve "
                        f"it with `dunning review approve {rid}`, then record again",
                        invoice_id, action.channel, rid, "pending") from None
                raise
    return check


def _raise_review(con: Any, store: Store, check: LegalCheck) -> str:
    """Queue a pending review item for a reported action that has none; its id."""
    from dunning.ops.audit import AuditLog
    from dunning.ops.review import ReviewItem, ReviewQueue, review_id

    rules = [h.rule_id for h in check.decision.fired if h.effect == "require_human_review"]
    item = ReviewItem(check.day, check.invoice_id, str(check.state["customer_id"]),
                      check.action.channel, rules,
                      {"raised_by": "record-action", "fired_rules": [
                          {"rule_id": h.rule_id, "effect": h.effect, "citation": h.citation}
                          for h in check.decision.fired]})
    queue = ReviewQueue(con, AuditLog(con, anchor=store.path.parent / "audit.anchor"))
    if queue.submit([item]):
        return review_id(check.day, check.invoice_id, check.action.channel)
    # an item for this invoice and action is already open (raised after ``day``): that one
    return str(con.execute("SELECT review_id FROM ops_review_queue WHERE invoice_id = ? AND "
                           "action = ? AND status IN ('pending', 'approved') "
                           "ORDER BY as_of DESC LIMIT 1",
                           [check.invoice_id, check.action.channel]).fetchone()[0])


def authenticate_reviewer(tokens: Mapping[str, Any], token: str | None, name: str) -> Any:
    """The principal of ``token`` among the API's ``tokens`` if it is a reviewer named
    ``name``; :class:`InputError` otherwise (compared in constant time, all tokens)."""
    return authenticate(tokens, token, name, REVIEWER_ROLE, "--override-veto", "a veto")


def authenticate(tokens: Mapping[str, Any], token: str | None, name: str, role: str,
                 option: str, what: str) -> Any:
    """The principal of ``token`` (``$DUNNING_TOKEN``) among the API's ``tokens`` if its role
    is ``role`` and its name ``name``; :class:`InputError` naming ``option`` otherwise.
    ``what``: what the role may do, for the message (e.g. ``"a veto"``)."""
    import hmac

    if not token:
        raise InputError(f"{option} needs a{'n' if role[0] in 'aeiou' else ''} {role}'s API "
                         "token in $DUNNING_TOKEN (checked against --tokens FILE or "
                         "$DUNNING_API_TOKENS)")
    found = None
    for known, who in tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            found = who
    if found is None:
        raise InputError(f"{option}: $DUNNING_TOKEN is not a known API token")
    if found.role != role:
        verb = "override" if role == REVIEWER_ROLE else "approve"
        raise InputError(f"{option}: the token's role is {found.role!r}; only the "
                         f"{role!r} role may {verb} {what}")
    if found.name != name:
        raise InputError(f"--{'reviewer' if role == REVIEWER_ROLE else 'by'} {name!r}: the "
                         f"token belongs to {found.name!r}; expected the {role}'s own name")
    return found
