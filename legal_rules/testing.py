"""Run the inline test cases of rule files (``tests:`` of each rule).

A case gives facts over :data:`NEUTRAL_FACTS` (an unremarkable overdue invoice; the
jurisdiction, customer type and currency default to the rule's own), an optional action
(default: the rule's first) and date (default: 2026-03-02, or the rule's ``valid_from`` if
later), and expects the rule to fire or not. ``decision`` (allowed / vetoed / needs_review /
blocked) and ``cap_value`` check the whole decision. Each case is run through BOTH
evaluators (durable_rules and numpy); a disagreement is a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from engine.contract import Action
from legal_rules.durable_eval import DurableEvaluator
from legal_rules.facts import NEVER_DAYS
from legal_rules.model import Rule, RuleSet, TestCase
from legal_rules.vector import VectorEvaluator

DEFAULT_TEST_DATE = date(2026, 3, 2)  # a Monday
NEUTRAL_FACTS: dict[str, Any] = {
    "days_overdue": 20,
    "days_since_last_contact": 14,
    "contacts_last_7_days": 0,
    "calls_last_7_days": 0,
    "reminders_sent": 1,
    # the one reminder so far was written, 14 days ago (no call attempt)
    "written_reminders_sent": 1,
    "days_since_last_written_reminder": 14,
    "final_notice_sent": False,
    "days_since_final_notice": NEVER_DAYS,
    "disputed": False,
    "amount": 500.0,
    "currency": "EUR",
    "customer_type": "b2b",
    "jurisdiction": "DE",
    "region": "",
    "industry": "manufacturing",
    "is_weekend": False,
    "is_bank_holiday": False,
    "limitation_passed": False,
    "opted_out_email": False,
    "opted_out_phone": False,
    "opted_out_letter": False,
    "agency_consent": False,
    "reminder_fee_agreed": False,
    "milestone_reached": True,
    "days_since_conversation": NEVER_DAYS,
    "local_hour": 12.0,
    "days_in_default": 20,
    "promise_to_pay_pending": False,
}
CURRENCY = {"SE": "SEK", "GB": "GBP", "PL": "PLN", "US": "USD"}


def neutral_facts(jurisdiction: str, customer_type: str) -> dict[str, Any]:
    """:data:`NEUTRAL_FACTS` for a debtor of ``jurisdiction`` and ``customer_type`` (its
    currency from :data:`CURRENCY`, EUR otherwise): the values ``rules explain --neutral``
    fills in for facts not given, the same ones the inline test cases start from."""
    facts = dict(NEUTRAL_FACTS, jurisdiction=jurisdiction, customer_type=customer_type)
    facts["currency"] = CURRENCY.get(jurisdiction, "EUR")
    return facts


def case_facts(rule: Rule, case: TestCase) -> dict[str, Any]:
    """The full fact dict of a case (``None`` values removed: those facts are missing)."""
    facts = dict(NEUTRAL_FACTS)
    if len(rule.jurisdiction) == 2 and rule.jurisdiction != "EU":
        facts["jurisdiction"] = rule.jurisdiction
        facts["currency"] = CURRENCY.get(rule.jurisdiction, "EUR")
    if rule.scope != "both":
        facts["customer_type"] = rule.scope
    facts.update(case.facts)
    return {k: v for k, v in facts.items() if v is not None}


def case_date(rule: Rule, case: TestCase) -> date:
    return case.as_of or max(DEFAULT_TEST_DATE, rule.valid_from)


@dataclass(frozen=True)
class CaseResult:
    rule: Rule
    case: TestCase
    passed: bool
    messages: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.case.name or f"{self.case.expect} ({self.case.source})"


def run_case(rule: Rule, case: TestCase, durable: DurableEvaluator,
             vector: VectorEvaluator) -> CaseResult:
    ruleset = durable.ruleset
    facts, day = case_facts(rule, case), case_date(rule, case)
    action = Action.from_channel(case.action) if case.action else rule.applies_to[0]
    decision = durable.decide(facts, action, day, explain=True)
    index = ruleset.index(rule.id)
    fired = rule.id in {h.rule_id for h in decision.fired}
    messages = []
    if fired != (case.expect == "fires"):
        why = dict(decision.not_fired).get(rule.id) or next(
            (h.reason for h in decision.unresolved if h.rule_id == rule.id), "it fired")
        messages.append(f"expected the rule to {'fire' if case.expect == 'fires' else 'not fire'}"
                        f" for {action.channel}; {why}")
    if case.decision and decision.status != case.decision:
        by = ", ".join([*decision.vetoed_by, *(h.rule_id for h in decision.unresolved)])
        messages.append(f"expected decision {case.decision}, got {decision.status}"
                        + (f" (by {by})" if by else ""))
    if case.has_cap_value:
        values = [c.value for c in decision.caps if c.rule_id == rule.id]
        expected = case.cap_value
        if not values or not _same(values[0], expected):
            messages.append(f"expected cap value {expected!r}, got "
                            f"{values[0] if values else 'no cap'!r}")
    batch = vector.evaluate({k: np.array([v], dtype=object) for k, v in facts.items()}, day)
    if bool(batch.fired[0, index]) != fired or bool(batch.allowed[0, action]) != decision.allowed:
        messages.append("durable_rules and numpy evaluators disagree on this case")
    return CaseResult(rule, case, not messages, tuple(messages))


def _same(value: float | None, expected: Any) -> bool:
    if value is None or expected is None:
        return value is None and expected is None
    return abs(float(value) - float(expected)) < 1e-9


def run_rule_tests(ruleset: RuleSet) -> list[CaseResult]:
    """Run every inline case of every rule; one :class:`CaseResult` per case, in rule order."""
    durable, vector = DurableEvaluator(ruleset), VectorEvaluator(ruleset)
    return [run_case(rule, case, durable, vector) for rule in ruleset.rules for case in rule.tests]


# --- random fact vectors for differential testing (tests and benchmark) -----------------------

_JURISDICTIONS = ("DE", "AT", "SE", "FR", "GB", "NL", "PL", "IT", "ES", "US", "BE", "NO", "DK")
WRONG_VALUES: dict[str, tuple[Any, ...]] = {
    "int": ("16", 1.5, True, float("nan"), float("inf"), [], "", 2e15),
    "float": ("16", True, float("nan"), -float("inf"), None, 5e15),
    "bool": (1, 0, "true", None, 1.0, float("nan")),
    "str": (1, 2.5, True, None, float("nan"), "de", "", "DEU", "B2B", "\ud800"),
}


# Strings of the right type that no vocabulary knows (legal_rules.known); "BY" is a German
# region, unknown for a US debtor; "NO" a country no packaged rule covers.
UNKNOWN_VALUES: dict[str, tuple[str, ...]] = {
    "jurisdiction": ("NO", "UK", "XX"),
    "region": ("ZZ", "BY"),
    "industry": ("mining", "Healthcare", ""),
    "currency": ("XYZ", "eur"),
    "customer_type": ("B2C", "consumer"),
}


def edge_values(ruleset: RuleSet) -> dict[str, list[Any]]:
    """Per fact, valid values at and next to every threshold the rules test (plus extremes)."""
    from legal_rules.facts import FACTS

    out: dict[str, set[Any]] = {name: set() for name in FACTS}
    for rule in ruleset.rules:
        for cond in rule.when.comparisons():
            values = cond.value if isinstance(cond.value, tuple) else (cond.value,)
            kind = FACTS[cond.fact].type
            for v in values:
                if kind == "int":
                    out[cond.fact].update({v - 1, v, v + 1})
                elif kind == "float":
                    out[cond.fact].update({v - 0.01, v, v + 0.01})
                else:
                    out[cond.fact].add(v)
    for name, fact in FACTS.items():
        if fact.type == "int":
            out[name].update({-30, 0, 1, 7, 14, 30, 60, NEVER_DAYS})
        elif fact.type == "float":
            out[name].update({0.0, 99.5, 1_000.0, 50_000.0})
        elif fact.type == "bool":
            out[name].update({True, False})
    out["jurisdiction"].update(_JURISDICTIONS)
    out["customer_type"].update({"b2b", "b2c"})
    out["currency"].update({"EUR", "SEK", "GBP", "PLN", "USD"})
    out["region"].update({"", "MA", "NY"})
    out["industry"].update({"construction", "healthcare", "public_sector", "software"})
    return {k: sorted(v, key=repr) for k, v in out.items()}


def edge_dates(ruleset: RuleSet) -> list[date]:
    """Every validity boundary of rules and rates, the day before/after, plus the test date."""
    from datetime import timedelta

    days = {DEFAULT_TEST_DATE}
    for item in (*ruleset.rules, *ruleset.rates):
        for d in (item.valid_from, item.valid_to):
            if d is not None and date(1900, 1, 2) <= d <= date(2200, 1, 1):
                days.update({d - timedelta(days=1), d, d + timedelta(days=1)})
    return sorted(days)


def random_fact_rows(ruleset: RuleSet, n: int, seed: int, p_missing: float = 0.03,
                     p_wrong: float = 0.03, p_unknown: float = 0.01,
                     ) -> tuple[list[dict[str, Any]], list[date]]:
    """``n`` random fact dicts and dates: edge values, some facts missing (``p_missing``), of a
    wrong type (``p_wrong``) or, for string facts, a value no vocabulary knows (``p_unknown``,
    :data:`UNKNOWN_VALUES`)."""
    from legal_rules.facts import FACTS

    rng = np.random.default_rng(seed)
    edges, days = edge_values(ruleset), edge_dates(ruleset)
    rows: list[dict[str, Any]] = []
    for _ in range(n):
        row: dict[str, Any] = {}
        for name, fact in FACTS.items():
            u = rng.random()
            if u < p_missing:
                continue
            if u < p_missing + p_wrong:
                wrong = WRONG_VALUES[fact.type]
                row[name] = wrong[rng.integers(len(wrong))]
            elif name in UNKNOWN_VALUES and u < p_missing + p_wrong + p_unknown:
                unknown = UNKNOWN_VALUES[name]
                row[name] = unknown[rng.integers(len(unknown))]
            elif fact.type == "int" and rng.random() < 0.3:
                row[name] = int(rng.integers(-40, 80))
            elif fact.type == "float" and rng.random() < 0.3:
                row[name] = float(np.round(rng.uniform(0, 60_000), 2))
            else:
                choices = edges[name]
                row[name] = choices[rng.integers(len(choices))]
        rows.append(row)
    return rows, [days[i] for i in rng.integers(len(days), size=n)]


def rows_to_arrays(rows: list[dict[str, Any]], typed: bool = False) -> dict[str, np.ndarray]:
    """Column arrays for :class:`VectorEvaluator` from row dicts (absent -> None, or the
    fact's neutral default when it has one: an absent key means the same in both engines).

    ``typed=True`` uses native dtypes where the column allows it (int64, float64 with NaN for
    missing numbers, bool), the way a simulation would pass facts; otherwise object arrays.
    """
    from legal_rules.facts import FACTS

    out: dict[str, np.ndarray] = {}
    for name, fact in FACTS.items():
        default = fact.default
        col = [r[name] if name in r else default for r in rows]
        obj = np.empty(len(col), dtype=object)
        obj[:] = col
        if typed:
            kinds = {type(v) for v in col}
            if fact.type == "bool" and kinds <= {bool, np.bool_}:
                out[name] = obj.astype(bool)
                continue
            if fact.type in ("int", "float") and kinds <= {int}:
                out[name] = obj.astype(np.int64)
                continue
            if fact.type in ("int", "float") and kinds <= {int, float, type(None)}:
                out[name] = np.array([np.nan if v is None else v for v in col], dtype=np.float64)
                continue
        out[name] = obj
    return out
