"""The data contract: the four tables every ERP export is mapped onto, and the action set.

Every part of dunning speaks these names. ``engine.ingest`` validates rows against
:data:`TABLES`; ``simulations.world`` writes files in exactly this layout; the legal
rules, the environments and the policies index actions by :class:`Action`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class Action(IntEnum):
    """One decision per open invoice per day. The integer is the index in masks and policies."""

    WAIT = 0
    EMAIL = 1
    LETTER = 2
    PHONE = 3
    FINAL_NOTICE = 4
    AGENCY = 5

    @property
    def channel(self) -> str:
        """Name used in the ``actions`` table and in rule files (``wait`` is never logged)."""
        return self.name.lower()

    @classmethod
    def from_channel(cls, channel: str) -> Action:
        return cls[channel.strip().upper()]


N_ACTIONS = len(Action)


def is_reminder(actions: Any) -> Any:
    """True where the action is a reminder to the debtor (email .. final notice), not
    wait or an agency handover; an int or an int array in, a bool or bool array out."""
    return (actions >= Action.EMAIL) & (actions <= Action.FINAL_NOTICE)


# Reminders the debtor receives in writing: the company rules count these (minimum gap,
# at most three, a final notice after two); call attempts are counted apart.
WRITTEN_REMINDERS: tuple[Action, ...] = (Action.EMAIL, Action.LETTER, Action.FINAL_NOTICE)


def is_written_reminder(actions: Any) -> Any:
    """True where the action is a written reminder (email, letter, final notice), not a
    call attempt; an int or an int array in, a bool or bool array out."""
    return is_reminder(actions) & (actions != Action.PHONE)
CHANNELS: tuple[str, ...] = tuple(a.channel for a in Action if a is not Action.WAIT)
SEGMENTS: tuple[str, ...] = ("corporate", "family_business", "startup", "construction", "saas")
CUSTOMER_TYPES: tuple[str, ...] = ("b2b", "b2c")


@dataclass(frozen=True)
class Column:
    """One column of a contract table.

    ``dtype`` is one of ``str``, ``date`` (ISO ``YYYY-MM-DD`` unless a mapping says
    otherwise), ``float``, ``bool``, ``int``. ``choices`` restricts a ``str`` column.
    ``references`` is ``"table.column"`` for a foreign key.
    """

    name: str
    dtype: str
    required: bool
    description: str
    choices: tuple[str, ...] | None = None
    references: str | None = None
    unique: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    key: str
    columns: tuple[Column, ...]
    description: str

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")


CUSTOMERS = Table(
    name="customers",
    key="customer_id",
    description="One row per debtor.",
    columns=(
        Column("customer_id", "str", True, "Unique customer id.", unique=True),
        Column("name", "str", False, "Customer name (personal data; erased by `dunning forget`)."),
        Column("segment", "str", False, "Behavioural segment if known.", choices=SEGMENTS),
        Column("industry", "str", False, "Industry, e.g. manufacturing, construction, healthcare, "
               "public_sector, software."),
        Column("jurisdiction", "str", True, "ISO 3166-1 alpha-2 country of the debtor (DE, AT, SE, "
               "FR, GB, NL, PL, IT, ES, US); decides bank holidays and legal rules."),
        Column("region", "str", False, "Subdivision where rules differ, e.g. US state `MA`."),
        Column("customer_type", "str", True, "`b2b` (business) or `b2c` (consumer).",
               choices=CUSTOMER_TYPES),
        Column("language", "str", False,
               "ISO 639-1 language for letters (de, en, sv, fr, nl, ...)."),
        Column("customer_since", "date", False, "Start of the relationship (for tenure)."),
        Column("reminder_fee_agreed", "bool", False, "A reminder fee was agreed in advance (SE)."),
        Column("agency_consent", "bool", False, "Consent to pass claims to an agency "
               "(healthcare professional secrecy)."),
        Column("opted_out_channels", "str", False, "Channels the debtor stopped, `;`-separated."),
        Column("email", "str", False, "E-mail address for reminders (personal data; erased by "
               "`dunning forget`)."),
        Column("address", "str", False, "Postal address for letters, lines separated by `;` "
               "(personal data; erased by `dunning forget`)."),
    ),
)

INVOICES = Table(
    name="invoices",
    key="invoice_id",
    description="One row per invoice (an open item).",
    columns=(
        Column("invoice_id", "str", True, "Unique invoice id.", unique=True),
        Column("customer_id", "str", True, "The debtor.", references="customers.customer_id"),
        Column("invoice_date", "date", True, "Date of issue."),
        Column("due_date", "date", True, "Due date; must be on or after `invoice_date`."),
        Column("amount", "float", True, "Gross amount, > 0, in `currency`."),
        Column("currency", "str", True, "ISO 4217 code, e.g. EUR, SEK, GBP, USD."),
        Column("disputed", "bool", False, "The invoice was disputed at some point."),
        Column("dispute_opened", "date", False, "Date a dispute was raised (known from then on)."),
        Column("dispute_resolved", "date", False, "Date the dispute was resolved, if it was."),
        Column("milestone_date", "date", False, "Project milestone the payment depends on "
               "(construction)."),
        Column("consumer_notice_on_invoice", "str", False, "`yes` if the invoice told a "
               "consumer that they are in default 30 days after due date and receipt without a "
               "reminder (BGB § 286 (3)), `no` if not; empty: unknown, and a German consumer's "
               "default date then fails closed where it depends on it.",
               choices=("yes", "no")),
        Column("due_date_agreed_by_calendar", "str", False, "`yes` if the contract fixed "
               "`due_date` by the calendar (BGB § 286 (2) no. 1: a German debtor is in default "
               "from the day after it, without a reminder), `no` if it is only the payment term "
               "printed on the invoice; empty: unknown, read as `no` (default then begins with "
               "a reminder or after the 30 days of § 286 (3): the later date, the smaller "
               "claim).", choices=("yes", "no")),
    ),
)

PAYMENTS = Table(
    name="payments",
    key="payment_id",
    description="One row per incoming payment; partial payments allowed.",
    columns=(
        Column("payment_id", "str", False, "Unique id; derived from the row when missing.",
               unique=True),
        Column("invoice_id", "str", True, "Invoice paid.", references="invoices.invoice_id"),
        Column("payment_date", "date", True, "Value date of the payment."),
        Column("amount", "float", True, "Amount paid, > 0; the part of an invoice's payments "
               "above its amount is booked against interest and fees, up to the amount itself "
               "(more is quarantined)."),
    ),
)

ACTIONS = Table(
    name="actions",
    key="action_id",
    description="One row per dunning action actually taken (a reminder log).",
    columns=(
        Column("action_id", "str", False, "Unique id; derived from the row when missing.",
               unique=True),
        Column("invoice_id", "str", True, "Invoice reminded.", references="invoices.invoice_id"),
        Column("action_date", "date", True, "Date the action was taken."),
        Column("channel", "str", True, "email, letter, phone, final_notice or agency.",
               choices=CHANNELS),
        Column("decided_by", "str", False, "Who or what decided, e.g. `policy:fixed` or "
               "`user:alice`."),
        Column("propensity", "float", False, "Probability with which the logging policy took "
               "this action, in (0, 1]; enables off-policy evaluation."),
        Column("complaint", "bool", False, "The customer complained in response to this action."),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (CUSTOMERS, INVOICES, PAYMENTS, ACTIONS)}
# Load order that satisfies foreign keys.
TABLE_ORDER: tuple[str, ...] = ("customers", "invoices", "payments", "actions")
