"""Legal action masks for the environment: the facts of every invoice-day and the veto.

``LegalMask`` wraps the legal-rules layer's vectorised evaluator
(``legal_rules.VectorEvaluator(load_rules()).evaluate(facts, as_of)``); ``AllowAll`` is the
mask with no rules (used only when a caller asks for it explicitly, e.g. to measure what the
rules cost). Both are called as ``mask(facts, as_of) -> (allowed (n, 6) bool, vetoed_by)``
where ``vetoed_by`` is an ``(n, 6)`` int array of the first vetoing rule's index into
``mask.rule_ids`` (``-1``: not vetoed) or ``None`` when the mask has no rules.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from engine.contract import N_ACTIONS, Action
from legal_rules.facts import NEVER_DAYS
from simulations.env.calendar import CalendarDay
from simulations.env.types import EnvState, InvoiceBatch


class ActionMask(Protocol):
    rule_ids: tuple[str, ...]

    def __call__(
        self, facts: dict[str, np.ndarray], as_of: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]: ...


class AllowAll:
    """Every action allowed (no legal rules). Only for measurements and explicit opt-out."""

    rule_ids: tuple[str, ...] = ()
    ruleset_hash = "none"

    def __call__(
        self, facts: dict[str, np.ndarray], as_of: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        n = len(facts["days_overdue"])
        return np.ones((n, N_ACTIONS), dtype=bool), None


class LegalMask:
    """The legal rules' vectorised evaluator as an environment mask.

    ``ruleset`` defaults to the packaged rules (``legal_rules.load_rules()``).
    """

    def __init__(self, ruleset: Any = None) -> None:
        from legal_rules import VectorEvaluator, load_rules

        self.ruleset = load_rules() if ruleset is None else ruleset
        self.evaluator = VectorEvaluator(self.ruleset)
        self.rule_ids: tuple[str, ...] = tuple(r.id for r in self.ruleset.rules)
        self.ruleset_hash: str = str(getattr(self.ruleset, "hash", ""))

    def __call__(
        self, facts: dict[str, np.ndarray], as_of: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        decision = self.evaluator.evaluate(facts, as_of)
        allowed = np.asarray(decision.allowed, dtype=bool).copy()
        allowed[:, Action.WAIT] = True  # waiting is always lawful
        vetoed = getattr(decision, "vetoed_by", None)
        return allowed, None if vetoed is None else np.asarray(vetoed)


def default_mask() -> ActionMask:
    """The packaged legal rules."""
    return LegalMask()


_CUSTOMER_TYPE = np.array(["b2b", "b2c"])


def legal_facts(batch: InvoiceBatch, state: EnvState, cal: CalendarDay) -> dict[str, np.ndarray]:
    """Every fact of ``legal_rules.facts.FACTS`` for each row on its current day."""
    day = state.day
    recent_contacts = (state.recent != Action.WAIT) & (state.recent != Action.AGENCY)
    fn_sent = state.final_notice_day >= 0
    return {
        "days_overdue": day.astype(np.int64),
        "days_since_last_contact": state.days_since_contact().astype(np.int64),
        "contacts_last_7_days": recent_contacts.sum(axis=1).astype(np.int64),
        "calls_last_7_days": (state.recent == Action.PHONE).sum(axis=1).astype(np.int64),
        "reminders_sent": state.reminders.sum(axis=1).astype(np.int64),
        "final_notice_sent": fn_sent,
        "days_since_final_notice": np.where(fn_sent, day - state.final_notice_day,
                                            NEVER_DAYS).astype(np.int64),
        "disputed": state.disputed,
        "amount": batch.amount.astype(np.float64),
        "currency": batch.currency,
        "customer_type": _CUSTOMER_TYPE[batch.is_b2c.astype(np.int64)],
        "jurisdiction": batch.jurisdiction_iso,
        "region": batch.region,
        "industry": batch.industry,
        "is_weekend": cal.is_weekend,
        "is_bank_holiday": cal.is_holiday,
        # Claims are time-barred after years; an episode lasts at most months.
        "limitation_passed": np.zeros(len(day), dtype=bool),
        "opted_out_email": batch.opted_out[:, 0],
        "opted_out_phone": batch.opted_out[:, 1],
        "opted_out_letter": batch.opted_out[:, 2],
        "agency_consent": batch.agency_consent,
        "reminder_fee_agreed": batch.reminder_fee_agreed,
        "milestone_reached": day >= batch.milestone_day,
    }
