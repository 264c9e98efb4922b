"""The named facts a rule's ``when`` may test, with their types.

Every producer of facts (the simulation's vectorised mask, the daily recommendation, the
``rules explain`` CLI) must supply these names with these types; the legal-rules loader
rejects a rule that names a fact not listed here. Types are checked strictly before facts
reach durable_rules, and a missing fact makes the action not allowed (fail closed).

Facts describe the invoice as known on the decision date ``D``: every event dated on or before
``D`` counts (an action or payment dated ``D`` included), and a dispute is open from its
opening day through its resolution day. The one builder from the contract tables is
:func:`legal_rules.from_tables.facts_for_invoices` (its docstring gives the full semantics).

``int`` facts are whole days or counts; ``float`` amounts are in the invoice currency;
``str`` facts are upper-case ISO codes (jurisdiction, currency) or lower-case names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from legal_rules.messages import Message

# "Never" for day counters (no contact yet, no final notice yet): large, so that a
# "days since last contact < 7" condition is false without a missing value.
NEVER_DAYS = 10_000
# ``local_hour`` for producers that have no time of day (the simulation: its collector acts
# during the debtor's business hours): 10:00, inside every call-hours rule.
CONVENIENT_LOCAL_HOUR = 10.0


@dataclass(frozen=True)
class Fact:
    """A fact a rule may test. ``default``: the neutral value used when a producer does not
    supply the fact at all (facts added after the producers; ``None``: no default, a
    missing fact fails closed). An explicit ``None`` value is always missing.

    ``personal``: the fact describes the debtor as a person (who they are, where they live,
    what they chose or said), so ``rules explain`` marks it as personal data for a works
    council or data-protection officer. Kept minimal on purpose: for a consumer every fact
    about the invoice is personal data (GDPR art. 4 (1)), which the explanation says too."""

    name: str
    type: str  # "int" | "float" | "bool" | "str" | "date"
    description: str
    default: object = None
    personal: bool = False


FACTS: dict[str, Fact] = {
    f.name: f
    for f in (
        Fact("days_overdue", "int", "Days since the due date on the decision date (< 0: not due)."),
        Fact("days_since_last_contact", "int",
             f"Days since the last reminder of any channel (0: sent on the decision date; "
             f"{NEVER_DAYS} if none)."),
        Fact("contacts_last_7_days", "int",
             "Reminders of any channel on the decision date and the 6 days before."),
        Fact("calls_last_7_days", "int", "Phone calls on the decision date and the 6 days before."),
        Fact("reminders_sent", "int", "Reminders so far (email, letter, phone, final notice)."),
        Fact("written_reminders_sent", "int",
             "Written reminders so far: email, letter and final notice (not call attempts)."),
        Fact("days_since_last_written_reminder", "int",
             "Days since the last written reminder (email, letter or final notice; 0: sent "
             f"on the decision date; {NEVER_DAYS} if none). Call attempts do not count."),
        Fact("final_notice_sent", "bool", "A final notice was sent for this invoice."),
        Fact("days_since_final_notice", "int",
             f"Days since the final notice ({NEVER_DAYS} if none)."),
        Fact("disputed", "bool", "The invoice is under an open dispute on the decision date.",
             personal=True),
        Fact("amount", "float", "Open amount of the invoice."),
        Fact("currency", "str", "ISO 4217 currency code."),
        Fact("customer_type", "str", "b2b or b2c.", personal=True),
        Fact("jurisdiction", "str", "ISO 3166-1 alpha-2 of the debtor.", personal=True),
        Fact("region", "str", "Subdivision code, e.g. MA for Massachusetts ('' if none).",
             personal=True),
        Fact("industry", "str",
             "Debtor's industry (construction, healthcare, public_sector, ...)."),
        Fact("is_weekend", "bool", "The decision date is a Saturday or Sunday."),
        Fact("is_bank_holiday", "bool", "The decision date is a bank holiday of the jurisdiction."),
        Fact("limitation_passed", "bool", "The claim is time-barred on the decision date."),
        Fact("opted_out_email", "bool", "The debtor stopped the email channel.", personal=True),
        Fact("opted_out_phone", "bool", "The debtor stopped the phone channel.", personal=True),
        Fact("opted_out_letter", "bool", "The debtor stopped the letter channel.",
             personal=True),
        Fact("agency_consent", "bool", "Consent to pass the claim to an agency (healthcare).",
             personal=True),
        Fact("reminder_fee_agreed", "bool", "A reminder fee was agreed in advance."),
        Fact("milestone_reached", "bool", "The project milestone the payment depends on is "
             "reached (true when the invoice has none)."),
        Fact("days_since_conversation", "int",
             "Days since the last phone call that reached the debtor (a conversation, "
             f"US Regulation F; 0: today; {NEVER_DAYS} if none).", default=NEVER_DAYS,
             personal=True),
        Fact("days_in_default", "int",
             "Days the debtor has been in default on the decision date, counting the first "
             "day (1: default began today; 0: not in default). German debtors: BGB § 286 "
             "(after a reminder following the due date; 30 days after due date and receipt "
             "of the invoice, for a consumer only if the invoice said so; any debtor from the "
             "day after a due date the contract fixed by the calendar, § 286 (2) no. 1); "
             "elsewhere from the day after the due date. "
             "Missing where it depends on an unknown fact (fails closed)."),
        Fact("local_hour", "float",
             "Time of day at the debtor's location when the action is taken, in hours "
             "(20.5 = 20:30): the action time in the debtor's time zone (US: from the state "
             "in region; a state with several zones gives the least convenient of them). "
             "Missing when the time zone is unknown (fails closed where a rule needs it).",
             personal=True),
        Fact("promise_to_pay_pending", "bool",
             "The debtor promised to pay by a date on or after the decision date (the "
             "latest promise counts).", default=False, personal=True),
    )
}
# Neutral values of the facts that have one (see :class:`Fact`).
FACT_DEFAULTS: dict[str, object] = {n: f.default for n, f in FACTS.items()
                                    if f.default is not None}


def with_defaults(facts: dict[str, object]) -> dict[str, object]:
    """``facts`` plus the neutral default of every defaulted fact it does not name."""
    missing = {n: v for n, v in FACT_DEFAULTS.items() if n not in facts}
    return {**facts, **missing} if missing else facts


def history_contradictions(facts: dict[str, object]) -> list[Message]:
    """What in ``facts`` cannot be one invoice's history: more written reminders than
    reminders, a written reminder more recent than the last contact of any channel, or a
    written reminder counted without a day (or a day without one). Facts that are missing
    or not plain ints are left to the type checks. For hand-written cases (``rules
    explain --facts``); the producers compute these facts from one history."""
    def whole(name: str) -> int | None:
        v = facts.get(name)
        return v if type(v) is int else None

    sent, written = whole("reminders_sent"), whole("written_reminders_sent")
    since, since_written = (whole("days_since_last_contact"),
                            whole("days_since_last_written_reminder"))
    out = []
    if sent is not None and written is not None and written > sent:
        out.append(Message("case.more_written", written=written, sent=sent))
    if since is not None and since_written is not None and since_written < since:
        out.append(Message("case.written_later", since_written=since_written, since=since))
    if written is not None and since_written is not None \
            and (written == 0) != (since_written == NEVER_DAYS):
        out.append(Message("case.written_without_day", written=written,
                           since_written=since_written, never=NEVER_DAYS))
    return out

# --------------------------------------------------------------------------------------------
# Strict value checks, shared by every evaluator so that they agree on what "valid" means.

# Facts restricted to a fixed set of values; anything else counts as a wrong value (fail closed).
FACT_CHOICES: dict[str, tuple[str, ...]] = {"customer_type": ("b2b", "b2c")}
# A fact given as None/NaN: the reason ``fact_problem`` gives (equal to the text "missing").
MISSING = Message("fact.missing")
# Numbers beyond this are rejected: both engines then compare exactly (durable_rules uses doubles).
MAX_MAGNITUDE = 1e15


def fact_problem(name: str, value: object) -> Message | None:
    """Why ``value`` is not a valid value of fact ``name``, or ``None`` if it is valid.

    Rules: ``int`` takes an integer (or a float with an integral value, e.g. 16.0; never a
    bool or a string); ``float`` takes a finite int or float (not a bool); ``bool`` takes only
    ``True``/``False`` (numpy bools too); ``str`` takes only strings; numbers must lie within
    +-:data:`MAX_MAGNITUDE`; ``jurisdiction`` must be two upper-case letters and
    ``customer_type`` one of :data:`FACT_CHOICES`. ``None`` and NaN mean missing (NaN for a
    bool fact is a wrong value).
    """
    kind = FACTS[name].type
    vtype = type(value)
    if vtype is int and kind in ("int", "float"):  # fast path for the common case
        return None if -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE else _range_problem(value)
    if value is None:
        return MISSING
    if kind == "bool":
        if vtype is bool or isinstance(value, np.bool_):
            return None
        return Message("fact.expected_bool", type=vtype.__name__, value=value)
    if kind == "str":
        if isinstance(value, float) and math.isnan(value):
            return MISSING  # pandas' missing text; the vectorised encoder reads it so too
        if not isinstance(value, str):
            return Message("fact.expected_string", type=vtype.__name__, value=value)
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return Message("fact.expected_unicode", value=value)
        if name == "jurisdiction" and not (len(value) == 2 and value.isascii()
                                           and value.isalpha() and value.isupper()):
            return Message("fact.expected_iso", value=value)
        choices = FACT_CHOICES.get(name)
        if choices is not None and value not in choices:
            return Message("fact.expected_choice", choices=", ".join(choices), value=value)
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                     np.floating)):
        return Message("fact.expected_number", type=vtype.__name__, value=value)
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return MISSING
        if not math.isfinite(value):
            return Message("fact.expected_finite", value=value)
        if kind == "int" and not float(value).is_integer():
            return Message("fact.expected_whole", value=value)
    if abs(value) > MAX_MAGNITUDE:  # type: ignore[arg-type]
        return _range_problem(value)
    return None


def _range_problem(value: object) -> Message:
    return Message("fact.expected_range", limit=f"{MAX_MAGNITUDE:.0e}", value=value)


def native_value(name: str, value: object) -> int | float | bool | str:
    """A valid fact value as a plain Python value of the fact's type (for JSON/durable_rules)."""
    kind = FACTS[name].type
    if kind == "int":
        return int(value)  # type: ignore[call-overload]
    if kind == "float":
        return float(value)  # type: ignore[arg-type]
    if kind == "bool":
        return bool(value)
    return str(value)
