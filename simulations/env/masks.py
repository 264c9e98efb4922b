"""Legal action masks for the environment: the facts of every invoice-day and the veto.

``LegalMask`` wraps the legal-rules layer's vectorised evaluator
(``legal_rules.vector.VectorEvaluator(load_rules())``); ``AllowAll`` is the mask with no
rules (only when a caller asks for it explicitly, e.g. to measure what the rules cost).
Both are called as ``mask(facts, as_of) -> allowed`` ((n, 6) bool, WAIT always allowed) on
the hot path; ``mask.vetoed_by(facts, as_of)`` gives, for the (few) rows asked about, the
index into ``mask.rule_ids`` of the first rule that vetoed each action (-1: none).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from engine.calendar import CalendarDay
from engine.contract import N_ACTIONS, Action
from legal_rules.facts import CONVENIENT_LOCAL_HOUR, NEVER_DAYS
from simulations.env.types import EnvState, InvoiceBatch


class ActionMask(Protocol):
    rule_ids: tuple[str, ...]
    ruleset_hash: str

    def __call__(self, facts: dict[str, np.ndarray], as_of: np.ndarray) -> np.ndarray: ...

    def vetoed_by(self, facts: dict[str, np.ndarray], as_of: np.ndarray) -> np.ndarray: ...


class AllowAll:
    """Every action allowed (no legal rules). Only for measurements and explicit opt-out."""

    rule_ids: tuple[str, ...] = ()
    ruleset_hash = "none"

    def __call__(self, facts: dict[str, np.ndarray], as_of: np.ndarray) -> np.ndarray:
        return np.ones((len(facts["days_overdue"]), N_ACTIONS), dtype=bool)

    def vetoed_by(self, facts: dict[str, np.ndarray], as_of: np.ndarray) -> np.ndarray:
        return np.full((len(facts["days_overdue"]), N_ACTIONS), -1, dtype=np.int64)


class LegalMask:
    """The legal rules' vectorised evaluator as an environment mask.

    ``ruleset`` defaults to the packaged rules (``legal_rules.loader.load_rules()``).
    """

    def __init__(self, ruleset: Any = None) -> None:
        from legal_rules.loader import load_rules
        from legal_rules.vector import VectorEvaluator

        self.ruleset = load_rules() if ruleset is None else ruleset
        self.evaluator = VectorEvaluator(self.ruleset)
        self.rule_ids: tuple[str, ...] = tuple(r.id for r in self.ruleset.rules)
        self.ruleset_hash: str = str(getattr(self.ruleset, "hash", ""))

    def __call__(self, facts: dict[str, np.ndarray], as_of: np.ndarray) -> np.ndarray:
        return self.evaluator.mask(facts, as_of)

    def fact_classes(self, facts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Rows equal in their other facts and these classes get the same mask
        (``legal_rules.vector.VectorEvaluator.fact_classes``)."""
        return self.evaluator.fact_classes(facts)

    def vetoed_by(self, facts: dict[str, np.ndarray], as_of: np.ndarray) -> np.ndarray:
        decision = self.evaluator.evaluate(facts, as_of)
        out = np.asarray(decision.vetoed_by).copy()
        # A rule that could not be evaluated (missing fact) blocks too: name it.
        for a in range(1, N_ACTIONS):
            unresolved = decision.unresolved & decision.action_matrix[:, a]
            rows = np.flatnonzero((out[:, a] < 0) & unresolved.any(axis=1))
            out[rows, a] = np.argmax(unresolved[rows], axis=1)
        return out


class FixedDateMask:
    """``mask`` with every row decided at one date ``as_of``: ``facts -> (m, 6) bool`` (the
    form the oracle's solver takes), with the mask's ``fact_classes`` when it has them."""

    def __init__(self, mask: ActionMask, as_of: Any) -> None:
        self.mask = mask
        self.as_of = np.datetime64(as_of, "D")
        if hasattr(mask, "fact_classes"):
            self.fact_classes = mask.fact_classes

    def __call__(self, facts: dict[str, np.ndarray]) -> np.ndarray:
        return self.mask(facts, np.full(len(facts["days_overdue"]), self.as_of))


def default_mask() -> ActionMask:
    """The packaged legal rules."""
    return LegalMask()


_CUSTOMER_TYPE = np.array(["b2b", "b2c"])
STRING_FACTS: tuple[str, ...] = ("currency", "customer_type", "jurisdiction", "region",
                                 "industry")


class CategoricalFacts:
    """The string facts of every row as ``pandas.Categorical`` with a growing vocabulary.

    The legal evaluator skips its per-call string encoding for categoricals; rows only
    change when invoices are (re)loaded, so the codes are computed once per invoice.
    """

    def __init__(self, n: int) -> None:
        self.vocab: dict[str, dict[str, int]] = {name: {} for name in STRING_FACTS}
        self.codes = {name: np.zeros(n, dtype=np.int64) for name in STRING_FACTS}
        self._cache: dict[str, Any] | None = None
        self._dtypes: dict[str, Any] = {}

    def set_rows(self, rows: np.ndarray, batch: InvoiceBatch) -> None:
        values = {
            "currency": batch.currency,
            "customer_type": _CUSTOMER_TYPE[batch.is_b2c.astype(np.int64)],
            "jurisdiction": batch.jurisdiction_iso,
            "region": batch.region,
            "industry": batch.industry,
        }
        for name, arr in values.items():
            uniq, inv = np.unique(np.asarray(arr, dtype=str), return_inverse=True)
            vocab = self.vocab[name]
            for u in (str(u) for u in uniq if str(u) not in vocab):
                vocab[u] = len(vocab)
                self._dtypes.pop(name, None)  # vocabulary grew: new dtype
            lut = np.array([vocab[str(u)] for u in uniq], dtype=np.int64)
            self.codes[name][rows] = lut[inv.reshape(-1)]
        self._cache = None

    def facts(self) -> dict[str, Any]:
        import pandas as pd

        if self._cache is None:
            for name in STRING_FACTS:
                if name not in self._dtypes:
                    self._dtypes[name] = pd.CategoricalDtype(list(self.vocab[name]))
            self._cache = {
                name: pd.Categorical.from_codes(self.codes[name], dtype=self._dtypes[name],
                                                validate=False)
                for name in STRING_FACTS
            }
        return self._cache


def legal_facts(batch: InvoiceBatch, state: EnvState, cal: CalendarDay,
                strings: CategoricalFacts | None = None) -> dict[str, Any]:
    """Every fact of ``legal_rules.facts.FACTS`` for each row on its current day.

    String facts are numpy str arrays, or the categoricals of ``strings`` when given.
    """
    day = state.day
    # "last 7 days" is the decision day and the 6 days before (legal_rules.facts); nothing
    # is taken yet today, and today's slot still holds the action of 7 days ago: not counted
    window = state.recent.copy()
    window[np.arange(len(day)), day % 7] = Action.WAIT
    recent_contacts = (window != Action.WAIT) & (window != Action.AGENCY)
    fn_sent = state.final_notice_day >= 0
    facts: dict[str, Any] = {
        "days_overdue": day.astype(np.int64),
        "days_since_last_contact": state.days_since_contact().astype(np.int64),
        "contacts_last_7_days": recent_contacts.sum(axis=1).astype(np.int64),
        "calls_last_7_days": (window == Action.PHONE).sum(axis=1).astype(np.int64),
        "reminders_sent": state.reminders.sum(axis=1).astype(np.int64),
        "written_reminders_sent": state.written_sent(),
        "days_since_last_written_reminder": state.days_since_written().astype(np.int64),
        "final_notice_sent": fn_sent,
        "days_since_final_notice": np.where(fn_sent, day - state.final_notice_day,
                                            NEVER_DAYS).astype(np.int64),
        **(strings.facts() if strings is not None else {}),
        "disputed": state.disputed,
        "amount": batch.amount.astype(np.float64),
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
        # the simulated debtor neither promises nor talks on the phone: neutral values;
        "days_since_conversation": np.full(len(day), NEVER_DAYS, dtype=np.int64),
        # the simulated collector phones at a convenient hour of the debtor's day
        "local_hour": np.full(len(day), CONVENIENT_LOCAL_HOUR),
        # default from the day after the due date: the simulation does not model BGB § 286's
        # reminder/notice timing; the fact only decides whether an interest cap applies,
        # which never changes the mask
        "days_in_default": np.maximum(day, 0).astype(np.int64),
        "promise_to_pay_pending": np.zeros(len(day), dtype=bool),
    }
    if strings is None:
        facts.update({
            "currency": batch.currency,
            "customer_type": _CUSTOMER_TYPE[batch.is_b2c.astype(np.int64)],
            "jurisdiction": batch.jurisdiction_iso,
            "region": batch.region,
            "industry": batch.industry,
        })
    return facts
