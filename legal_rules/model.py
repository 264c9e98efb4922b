"""The in-memory form of rule files: conditions, rules, rates and the immutable :class:`RuleSet`.

A :class:`RuleSet` is what both evaluators compile. Its :attr:`RuleSet.hash` is the SHA-256 of
the rule files' bytes (sorted by file name), so every decision can record exactly which rules it
was made under.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property, lru_cache
from typing import Any

from engine.contract import Action
from legal_rules.messages import Message

# EU member states (ISO 3166-1 alpha-2). A rule with ``jurisdiction: EU`` applies to these.
EU_MEMBERS: frozenset[str] = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)
JURISDICTION_GROUPS: dict[str, frozenset[str]] = {"EU": EU_MEMBERS}

COMPARISON_OPS = ("eq", "ne", "lt", "le", "gt", "ge")
SET_OPS = ("in", "not_in")


@dataclass(frozen=True)
class Source:
    """Where something was defined: file and 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


# --- conditions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compare:
    """``fact op value``; for ``in``/``not_in`` ``value`` is a tuple."""

    fact: str
    op: str
    value: Any

    def facts(self) -> Iterator[str]:
        yield self.fact

    def comparisons(self) -> Iterator[Compare]:
        yield self

    def __str__(self) -> str:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return f"{self.fact} {self.op} {value!r}"


@dataclass(frozen=True)
class All:
    items: tuple[Condition, ...]

    def facts(self) -> Iterator[str]:
        for item in self.items:
            yield from item.facts()

    def comparisons(self) -> Iterator[Compare]:
        for item in self.items:
            yield from item.comparisons()

    def __str__(self) -> str:
        return "(" + " and ".join(str(i) for i in self.items) + ")"


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]

    def facts(self) -> Iterator[str]:
        for item in self.items:
            yield from item.facts()

    def comparisons(self) -> Iterator[Compare]:
        for item in self.items:
            yield from item.comparisons()

    def __str__(self) -> str:
        return "(" + " or ".join(str(i) for i in self.items) + ")"


@dataclass(frozen=True)
class Not:
    item: Condition

    def facts(self) -> Iterator[str]:
        yield from self.item.facts()

    def comparisons(self) -> Iterator[Compare]:
        yield from self.item.comparisons()

    def __str__(self) -> str:
        return f"not {self.item}"


@dataclass(frozen=True)
class Always:
    """A rule without ``when``: it fires whenever it applies."""

    def facts(self) -> Iterator[str]:
        return iter(())

    def comparisons(self) -> Iterator[Compare]:
        return iter(())

    def __str__(self) -> str:
        return "always"


Condition = Compare | All | AnyOf | Not | Always


def evaluate_condition(cond: Condition, facts: dict[str, Any]) -> bool:
    """Plain-Python truth of ``cond`` for valid ``facts`` (used to explain, not to decide)."""
    if isinstance(cond, Always):
        return True
    if isinstance(cond, All):
        return all(evaluate_condition(c, facts) for c in cond.items)
    if isinstance(cond, AnyOf):
        return any(evaluate_condition(c, facts) for c in cond.items)
    if isinstance(cond, Not):
        return not evaluate_condition(cond.item, facts)
    x = facts[cond.fact]
    return {
        "eq": lambda: x == cond.value, "ne": lambda: x != cond.value,
        "lt": lambda: x < cond.value, "le": lambda: x <= cond.value,
        "gt": lambda: x > cond.value, "ge": lambda: x >= cond.value,
        "in": lambda: x in cond.value, "not_in": lambda: x not in cond.value,
    }[cond.op]()


def evaluate_kleene(cond: Condition, valid: dict[str, Any]) -> bool | None:
    """Three-valued truth of ``cond``: ``None`` when it depends on a fact missing from ``valid``.

    ``all`` is False as soon as one item is False, ``any`` is True as soon as one item is
    True (Kleene logic), so a missing fact only matters when it could change the outcome.
    """
    if isinstance(cond, Always):
        return True
    if isinstance(cond, Compare):
        return evaluate_condition(cond, valid) if cond.fact in valid else None
    if isinstance(cond, Not):
        inner = evaluate_kleene(cond.item, valid)
        return None if inner is None else not inner
    results = [evaluate_kleene(c, valid) for c in cond.items]
    decisive = isinstance(cond, AnyOf)  # True decides an any, False decides an all
    if decisive in results:
        return decisive
    return None if None in results else not decisive


# --- rules, caps, rates ------------------------------------------------------------------------


@dataclass(frozen=True)
class Cap:
    """A limit a rule puts on what a letter may claim: ``name`` = ``value`` (``unit``).

    ``value`` is a number, a rate expression (``"base_rate(DE) + 9"``) or a scale name
    (``"bik"``); :meth:`RuleSet.cap_value` resolves it on a date.
    """

    name: str
    value: float | str
    unit: str = ""


@dataclass(frozen=True)
class TestCase:
    """An inline test: ``facts`` (over neutral defaults; ``None`` removes a fact) -> expectation."""

    __test__ = False  # not a pytest class

    facts: dict[str, Any]
    expect: str  # "fires" | "does_not_fire"
    action: str | None = None
    as_of: date | None = None
    decision: str | None = None  # "allowed" | "vetoed" | "needs_review" | "blocked"
    cap_value: float | str | None = None
    has_cap_value: bool = False
    name: str = ""
    source: Source = Source("?", 0)


@dataclass(frozen=True)
class Approval:
    """Who approved a rule's current text, on which date, and why."""

    name: str
    date: date
    role: str = ""
    note: str = ""


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    jurisdiction: str  # alpha-2, "EU" or "*"
    scope: str  # "b2b" | "b2c" | "both"
    applies_to: tuple[Action, ...]
    when: Condition
    effect: str  # "veto" | "require_human_review" | "cap"
    citation: str
    valid_from: date
    valid_to: date | None
    rationale: str
    cap: Cap | None = None
    tests: tuple[TestCase, ...] = ()
    source: Source = Source("?", 0)
    kind: str = "law"  # "law" | "company_policy"
    approved_by: Approval | None = None

    @property
    def countries(self) -> frozenset[str] | None:
        """Countries the rule applies to, or ``None`` for everywhere (``*``)."""
        if self.jurisdiction == "*":
            return None
        return JURISDICTION_GROUPS.get(self.jurisdiction, frozenset({self.jurisdiction}))

    @property
    def needed_facts(self) -> tuple[str, ...]:
        """Facts without which it cannot be decided whether the rule fires (sorted, unique)."""
        names = set(self.when.facts())
        if self.jurisdiction != "*":
            names.add("jurisdiction")
        if self.scope != "both":
            names.add("customer_type")
        return tuple(sorted(names))

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class Rate:
    """A time-varying figure such as a central-bank base rate, valid on [valid_from, valid_to]."""

    name: str
    jurisdiction: str
    value: float
    valid_from: date
    valid_to: date | None
    citation: str
    unit: str = "percent"
    source: Source = Source("?", 0)


@dataclass(frozen=True)
class RateSeries:
    """A rate caps may use, declared with its publisher even before any period is entered."""

    name: str
    jurisdiction: str
    citation: str
    publisher: str
    note: str = ""
    source: Source = Source("?", 0)


_RATE_EXPR = re.compile(
    r"^\s*(?:(?P<rate>[a-z][a-z0-9_]*)\((?P<jur>[A-Z]{2}|EU)\))?\s*"
    r"(?:(?P<sign>[+-])?\s*(?P<num>\d+(?:\.\d+)?))?\s*$"
)
CAP_SCALES = ("bik",)


@lru_cache(maxsize=1024)
def parse_cap_expression(expr: str) -> tuple[str | None, str | None, float]:
    """Split ``"base_rate(DE) + 9"`` into ``("base_rate", "DE", 9.0)``; ``ValueError`` if bad."""
    m = _RATE_EXPR.match(expr)
    if not m or (m["rate"] is None and m["num"] is None) or (m["rate"] is None and m["sign"]):
        raise ValueError(
            f"expected a number, a rate expression like 'base_rate(DE) + 9', or one of "
            f"{', '.join(CAP_SCALES)}; found {expr!r}"
        )
    offset = float(m["num"]) if m["num"] else 0.0
    if m["sign"] == "-":
        offset = -offset
    return m["rate"], m["jur"], offset


def bik_collection_costs(principal: float) -> float:
    """Dutch BIK scale (Besluit vergoeding voor buitengerechtelijke incassokosten), in EUR.

    15 % of the first 2,500, 10 % of the next 2,500, 5 % of the next 5,000, 1 % of the next
    190,000, 0.5 % above; at least 40 and at most 6,775.
    """
    bands = ((2_500, 0.15), (2_500, 0.10), (5_000, 0.05), (190_000, 0.01), (float("inf"), 0.005))
    rest, total = max(principal, 0.0), 0.0
    for width, pct in bands:
        part = min(rest, width)
        total += part * pct
        rest -= part
        if rest <= 0:
            break
    return float(min(max(total, 40.0), 6_775.0))


@dataclass(frozen=True)
class CapValue:
    """A cap resolved on a date: ``value`` is ``None`` when a rate it needs has no data then."""

    name: str
    value: float | None
    unit: str
    expression: str
    rule_id: str
    citation: str
    note: str = ""
    blocked: bool = False  # the cap applies but has no value: what it limits is not claimed


@dataclass(frozen=True, eq=False)
class RuleSet:
    """Immutable, validated rules and rates, with a content hash of the files they came from.

    Attributes
    ----------
    rules : tuple[Rule, ...]
        In load order (files sorted by name, rules in file order); indices are used by
        :class:`legal_rules.vector.BatchDecision.vetoed_by`.
    rates : tuple[Rate, ...]
    hash : str
        SHA-256 hex of the source files' names and bytes.
    files : tuple[str, ...]
    """

    rules: tuple[Rule, ...]
    rates: tuple[Rate, ...]
    hash: str
    files: tuple[str, ...] = ()
    series: tuple[RateSeries, ...] = ()
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({r.id: i for i, r in enumerate(self.rules)})

    def __len__(self) -> int:
        return len(self.rules)

    @cached_property
    def jurisdictions(self) -> frozenset[str]:
        """Countries some rule covers (explicit codes, groups expanded; ``*`` adds none)."""
        out: set[str] = set()
        for rule in self.rules:
            out |= rule.countries or frozenset()
        return frozenset(out)

    @cached_property
    def vocabulary(self) -> Any:
        """Known string-fact values under these rules (:class:`legal_rules.known.Vocabulary`)."""
        from legal_rules.known import Vocabulary

        return Vocabulary(self.jurisdictions)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def index(self, rule_id: str) -> int:
        return self._index[rule_id]

    def rule(self, rule_id: str) -> Rule:
        return self.rules[self._index[rule_id]]

    def rate(self, name: str, jurisdiction: str, day: date) -> Rate | None:
        """The rate in force on ``day`` (the latest ``valid_from`` wins), or ``None``."""
        found = [r for r in self.rates if r.name == name and r.jurisdiction == jurisdiction
                 and r.valid_from <= day and (r.valid_to is None or day <= r.valid_to)]
        return max(found, key=lambda r: r.valid_from) if found else None

    def missing_rate_note(self, name: str, jurisdiction: str, day: date) -> Message:
        """Why no ``name(jurisdiction)`` applies on ``day``, and what to do about it."""
        periods = sorted((r for r in self.rates if (r.name, r.jurisdiction) == (name,
                                                                              jurisdiction)),
                         key=lambda r: r.valid_from)
        key = f"{name}({jurisdiction})"
        if periods:
            spans = ", ".join(f"{r.valid_from}..{r.valid_to or 'open'}" for r in periods)
            have = Message("rate.periods", key=key, spans=spans)
        else:
            have = Message("rate.none", key=key)
        series = next((s for s in self.series if (s.name, s.jurisdiction) == (name,
                                                                             jurisdiction)), None)
        where = Message("rate.publisher", publisher=series.publisher) if series else ""
        return Message("rate.missing", key=key, day=day.isoformat(), have=have,
                       publisher=where)

    def cap_value(self, rule: Rule, day: date, facts: dict[str, Any] | None = None) -> CapValue:
        """Resolve ``rule.cap`` on ``day`` (the BIK scale needs ``facts['amount']``)."""
        assert rule.cap is not None
        cap = rule.cap
        expr = str(cap.value)
        base = dict(name=cap.name, unit=cap.unit, expression=expr, rule_id=rule.id,
                    citation=rule.citation)
        if isinstance(cap.value, (int, float)):
            return CapValue(value=float(cap.value), **base)
        if expr in CAP_SCALES:
            amount = (facts or {}).get("amount")
            if not isinstance(amount, (int, float)) or isinstance(amount, bool):
                return CapValue(value=None, note="needs the amount", **base)
            return CapValue(value=bik_collection_costs(float(amount)), **base)
        rate_name, jur, offset = parse_cap_expression(expr)
        if rate_name is None:
            return CapValue(value=offset, **base)
        rate = self.rate(rate_name, jur or "", day)
        if rate is None:
            return CapValue(value=None, blocked=True,
                            note=self.missing_rate_note(rate_name, jur or "", day), **base)
        return CapValue(value=round(rate.value + offset, 6),
                        note=f"{rate_name}({jur}) = {rate.value} from {rate.valid_from}", **base)
