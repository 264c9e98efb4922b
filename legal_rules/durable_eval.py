"""durable_rules evaluator: the engine of record for single decisions (audit trail).

Pitfalls of durable_rules (found by testing) and how this module avoids them:

* A rule whose field is missing silently does not fire, and comparisons are loosely typed
  (``"16" < 18`` is true): facts are type-checked in Python first
  (:func:`legal_rules.decision.split_facts`); rules that need a missing/invalid fact are
  *unresolved* and block their actions (fail closed); only valid facts reach durable_rules.
* Each distinct session id leaks memory, ``post_batch``/``delete_state`` are unreliable and
  actions may run on timer threads: we use ONE durable ruleset per RuleSet hash, the default
  session, a private host without dispatch timer threads, and under a lock assert the
  candidate with a unique id, collect the fired rules, then retract it.
* Ruleset names are global in the process: the name contains the RuleSet hash.

Validity dates, jurisdiction and scope are part of each durable condition; the action a rule
applies to is mapped in Python (one assert decides all actions of an invoice).
"""

from __future__ import annotations

import functools
import itertools
import json
import threading
from datetime import date
from typing import Any

import durable_rules_engine as _engine
from durable import engine as durable_engine

from engine.calendar import day_number
from engine.contract import Action
from legal_rules.decision import (
    INPUT_CODES,
    INPUT_MISSING_FACT,
    Decision,
    RuleHit,
    as_action,
    as_date,
    exclusion,
    input_problems,
    rule_truth,
    split_facts,
)
from legal_rules.messages import Message
from legal_rules.model import (
    All,
    Always,
    AnyOf,
    CapValue,
    Compare,
    Condition,
    Not,
    Rule,
    RuleSet,
)

_DURABLE_OP = {"lt": "$lt", "le": "$lte", "gt": "$gt", "ge": "$gte", "ne": "$neq"}
_NEGATED = {"eq": "ne", "ne": "eq", "lt": "ge", "ge": "lt", "le": "gt", "gt": "le",
            "in": "not_in", "not_in": "in"}
_ALWAYS = {"$gte": {"_t": 1}}  # every candidate carries _t = 1
_ACTIONS = tuple(Action)


def _compare_json(fact: str, op: str, value: Any) -> dict[str, Any]:
    if op == "eq":
        return {fact: value}
    if op == "in":
        items = [{fact: v} for v in value]
        return items[0] if len(items) == 1 else {"$or": items}
    if op == "not_in":
        items = [{"$neq": {fact: v}} for v in value]
        return items[0] if len(items) == 1 else {"$and": items}
    return {_DURABLE_OP[op]: {fact: value}}


def condition_json(cond: Condition, negate: bool = False) -> dict[str, Any]:
    """durable_rules JSON for ``cond``; ``not`` is pushed down (De Morgan, flipped ops).

    Pushing negation down is exact here because only present, type-checked facts reach
    durable_rules (a rule needing a missing fact never gets evaluated).
    """
    if isinstance(cond, Always):
        return {"$lt": {"_t": 1}} if negate else _ALWAYS
    if isinstance(cond, Not):
        return condition_json(cond.item, not negate)
    if isinstance(cond, (All, AnyOf)):
        is_and = isinstance(cond, All) != negate
        items = [condition_json(c, negate) for c in cond.items]
        return items[0] if len(items) == 1 else {"$and" if is_and else "$or": items}
    assert isinstance(cond, Compare)
    op = _NEGATED[cond.op] if negate else cond.op
    return _compare_json(cond.fact, op, list(cond.value) if isinstance(cond.value, tuple)
                         else cond.value)


def rule_json(rule: Rule) -> dict[str, Any]:
    """The full durable condition of ``rule``: dates, jurisdiction, scope and ``when``."""
    parts: list[dict[str, Any]] = [{"$gte": {"as_of": day_number(rule.valid_from)}}]
    if rule.valid_to is not None:
        parts.append({"$lte": {"as_of": day_number(rule.valid_to)}})
    countries = rule.countries
    if countries is not None:
        parts.append(_compare_json("jurisdiction", "in", sorted(countries)))
    if rule.scope != "both":
        parts.append({"customer_type": rule.scope})
    parts.append(condition_json(rule.when))
    return {"$and": parts}


def _no_action(_c: Any) -> None:
    """Registered as every rule's action; matches are read from the engine (see ``fire``)."""


def _float_text(value: float) -> str:
    """JSON for a float that durable_rules parses: it rejects '1e-05' but reads '1.0e-05'."""
    text = repr(value)
    mantissa, _, exponent = text.partition("e")
    if exponent and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"
    return text


def _to_json(candidate: dict[str, Any]) -> str:
    """Flat JSON object of a candidate (keys are fact names; floats via :func:`_float_text`)."""
    if not any(type(v) is float and v and not 1e-4 <= abs(v) < 1e16
               for v in candidate.values()):
        return json.dumps(candidate, ensure_ascii=False)  # no float written with an exponent
    return "{" + ",".join(
        f'"{key}":' + (_float_text(v) if type(v) is float else json.dumps(v, ensure_ascii=False))
        for key, v in candidate.items()) + "}"


class _NoTimerHost(durable_engine.Host):
    """A durable_rules host without the background dispatch threads (actions run inline)."""

    def _run(self) -> None:  # noqa: D401 - deliberately do nothing
        return None


class _DurableRuleset:
    """One registered durable ruleset, shared by all evaluators of the same RuleSet hash."""

    _host: _NoTimerHost | None = None
    _by_hash: dict[str, _DurableRuleset] = {}
    _registry_lock = threading.Lock()

    def __init__(self, ruleset: RuleSet):
        self.name = f"dunning_legal_{ruleset.hash[:24]}"
        self.lock = threading.Lock()
        self._ids = itertools.count()
        definition = {f"r{i}": {"all": [{"m": rule_json(r)}], "run": _no_action}
                      for i, r in enumerate(ruleset.rules)}
        host = self.host()
        host.register_rulesets({self.name: definition})
        self.durable = host.get_ruleset(self.name)

    @classmethod
    def host(cls) -> _NoTimerHost:
        if cls._host is None:
            cls._host = _NoTimerHost()
        return cls._host

    @classmethod
    def for_ruleset(cls, ruleset: RuleSet) -> _DurableRuleset:
        with cls._registry_lock:
            if ruleset.hash not in cls._by_hash:
                cls._by_hash[ruleset.hash] = cls(ruleset)
            return cls._by_hash[ruleset.hash]

    def fire(self, facts: dict[str, Any], day: date) -> list[int]:
        """Indices of the rules whose durable condition matches ``facts`` (valid facts only).

        The match is durable_rules' own (its C engine evaluates every condition). We read the
        matched rule names from the engine's action queue directly instead of through
        durable's Python action wrapper, which builds a closure and re-serialises the state
        per fired rule (about 4x slower); the queue is drained, then the fact is retracted.
        """
        handle = self.durable._handle
        with self.lock:
            candidate = dict(facts, as_of=day_number(day), _t=1, id=f"c{next(self._ids)}")
            text = _to_json(candidate)
            fired: list[int] = []
            try:
                code, state_handle = _engine.assert_fact(handle, text)
                if code == 0:
                    result = _engine.start_action_for_state(handle, state_handle)
                    while result:
                        message = result[1] if isinstance(result, tuple) else result
                        # message is '{"r12":{"m":{...}}}': the key is the durable rule name
                        fired.append(int(message[3:message.index('"', 2)]))
                        result = _engine.complete_and_start_action(handle, state_handle)
                elif code != 1:  # 1 = no rule matched; anything else is unexpected
                    raise RuntimeError(f"durable_rules assert_fact returned code {code}")
            finally:
                _engine.retract_fact(handle, text)
            return sorted(set(fired))


class DurableEvaluator:
    """Decide single (invoice, action) cases with durable_rules.

    Parameters
    ----------
    ruleset : RuleSet

    Examples
    --------
    >>> ev = DurableEvaluator(load_rules())
    >>> d = ev.decide({"days_overdue": 20, ...}, "letter", date(2026, 3, 2))
    >>> d.allowed, d.vetoed_by, d.caps
    """

    def __init__(self, ruleset: RuleSet):
        self.ruleset = ruleset
        self._durable = _DurableRuleset.for_ruleset(ruleset)
        self._needed = [(i, set(r.needed_facts)) for i, r in enumerate(ruleset.rules)]
        # immutable per-rule parts of a decision, built once
        self._hits = [RuleHit.of(r, f"when: {r.when}") for r in ruleset.rules]
        self._applies = {a: frozenset(i for i, r in enumerate(ruleset.rules)
                                      if a in r.applies_to) for a in Action}

    def fired_and_unresolved(self, facts: dict[str, Any], as_of: date | str,
                             ) -> tuple[list[int], dict[int, str], dict, tuple[str, ...],
                                        tuple[str, ...], frozenset[int]]:
        """Rule indices that fired, unresolved rule index -> reason, the valid facts, the
        input problems that block the whole decision (:func:`~legal_rules.decision.input_problems`),
        their pseudo-rule ids, and the unresolved rules that need a missing fact.
        """
        day = as_date(as_of)
        valid, problems = split_facts(facts)
        codes: set[str] = set()
        blocking = tuple(input_problems(facts, valid, problems, self.ruleset.vocabulary,
                                        codes))
        input_codes = tuple(c for c in INPUT_CODES if c in codes)
        # durable_rules never matches a condition on an absent field, so its matches are
        # exactly the rules that are true whatever the invalid facts (Kleene true).
        fired = self._durable.fire(valid, day)
        unresolved: dict[int, str] = {}
        missing: set[int] = set()
        if problems:
            fired_set, keys = set(fired), problems.keys()
            for i, needed in self._needed:
                if needed.isdisjoint(keys) or i in fired_set:
                    continue
                if rule_truth(self.ruleset.rules[i], valid, day) is None:
                    bad = sorted(needed.intersection(keys))
                    unresolved[i] = unknown_facts_reason(tuple((f, problems[f]) for f in bad))
                    if any(problems[f] == "missing" for f in bad):
                        missing.add(i)
        return fired, unresolved, valid, blocking, input_codes, frozenset(missing)

    def decide_all(self, facts: dict[str, Any], as_of: date | str,
                   explain: bool = False) -> dict[Action, Decision]:
        """One :class:`Decision` per action (one durable_rules assert for all of them).

        ``explain=True`` also fills ``Decision.not_fired`` (why each other rule did not fire).
        """
        day = as_date(as_of)
        fired, unresolved, valid, blocking, codes, missing = self.fired_and_unresolved(
            facts, day)
        caps = self._caps(fired, day, valid)
        return {a: self._decision(a, day, fired, unresolved, valid, explain, caps, blocking,
                                  codes, missing)
                for a in _ACTIONS}

    def decide(self, facts: dict[str, Any], action: Action | int | str,
               as_of: date | str, explain: bool = False) -> Decision:
        """The :class:`Decision` for one action (see :meth:`decide_all` for ``explain``)."""
        day = as_date(as_of)
        fired, unresolved, valid, blocking, codes, missing = self.fired_and_unresolved(
            facts, day)
        return self._decision(as_action(action), day, fired, unresolved, valid, explain,
                              None, blocking, codes, missing)

    def _caps(self, fired: list[int], day: date, valid: dict[str, Any]) -> dict[int, CapValue]:
        rules = self.ruleset.rules
        return {i: self.ruleset.cap_value(rules[i], day, valid) for i in fired
                if rules[i].cap is not None}

    def _decision(self, action: Action, day: date, fired: list[int],
                  unresolved: dict[int, str], valid: dict[str, Any],
                  explain: bool = False, cap_values: dict[int, CapValue] | None = None,
                  blocking: tuple[str, ...] = (), codes: tuple[str, ...] = (),
                  missing: frozenset[int] = frozenset()) -> Decision:
        if cap_values is None:
            cap_values = self._caps(fired, day, valid)
        applies = self._applies[action]
        mine = [i for i in fired if i in applies]
        hits = tuple(self._hits[i] for i in mine)
        caps = tuple(cap_values[i] for i in mine if i in cap_values)
        rules = self.ruleset.rules
        blocked = tuple(RuleHit.of(rules[i], reason) for i, reason in unresolved.items()
                        if i in applies) if unresolved else ()
        effects = {h.effect for h in hits}
        vetoed = "veto" in effects
        if action is Action.WAIT:
            blocking, codes = (), ()  # waiting is always allowed
        elif missing and not missing.isdisjoint(applies):
            codes = (*codes, INPUT_MISSING_FACT)
        return Decision(
            action=action, as_of=day, allowed=not vetoed and not blocked and not blocking,
            vetoed=vetoed, input_problems=blocking,
            needs_review="require_human_review" in effects,
            fired=hits, unresolved=blocked, caps=caps,
            ruleset_hash=self.ruleset.hash, blocked_inputs=codes,
            not_fired=tuple(self._why_not(action, day, set(fired), unresolved, valid))
            if explain else (),
        )

    def _why_not(self, action: Action, day: date, fired: set[int], unresolved: dict[int, str],
                 valid: dict[str, Any]) -> list[tuple[str, str]]:
        """(rule id, reason) for every rule about ``action`` that did not fire."""
        out = []
        for i, rule in enumerate(self.ruleset.rules):
            if action not in rule.applies_to or i in fired or i in unresolved:
                continue
            reason = exclusion(rule, valid, day)
            if reason is None:
                names = dict.fromkeys(rule.when.facts())
                facts_shown = ", ".join(f"{f}={valid.get(f, 'missing')!r}" for f in names)
                reason = Message("rule.condition_false", condition=str(rule.when),
                                 facts=facts_shown)
            out.append((rule.id, reason))
        return out


@functools.lru_cache(maxsize=4096)
def unknown_facts_reason(problems: tuple[tuple[str, str], ...]) -> Message:
    """Why a rule could not be evaluated: its ``(fact, problem)`` pairs. Cached: the same few
    pairs recur on every row, and a message renders its English text when it is made."""
    return Message("rule.facts_unknown", problems=[
        Message("rule.fact_unknown", name=f, problem=why) for f, why in problems])


# Default evaluator on the packaged rules, created on first use.
_default: DurableEvaluator | None = None


def default_evaluator() -> DurableEvaluator:
    global _default
    if _default is None:
        from legal_rules.loader import load_rules

        _default = DurableEvaluator(load_rules())
    return _default


def decide(facts: dict[str, Any], action: Action | int | str, as_of: date | str,
           ruleset: RuleSet | None = None) -> Decision:
    """Decide one action with durable_rules (packaged rules unless ``ruleset`` is given)."""
    ev = DurableEvaluator(ruleset) if ruleset is not None else default_evaluator()
    return ev.decide(facts, action, as_of)


def decide_all(facts: dict[str, Any], as_of: date | str,
               ruleset: RuleSet | None = None) -> dict[Action, Decision]:
    """Decide every action with durable_rules (packaged rules unless ``ruleset`` is given)."""
    ev = DurableEvaluator(ruleset) if ruleset is not None else default_evaluator()
    return ev.decide_all(facts, as_of)


__all__ = ["DurableEvaluator", "decide", "decide_all", "condition_json", "rule_json"]
