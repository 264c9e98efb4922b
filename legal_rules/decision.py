"""What a decision says, and the fail-closed semantics both evaluators share.

Semantics (identical in :mod:`legal_rules.durable_eval` and :mod:`legal_rules.vector`), for one
rule ``r``, one row of facts and a date ``d``:

* ``r`` is *excluded* when ``d`` is outside ``[valid_from, valid_to]``, or the (valid)
  jurisdiction is not one ``r`` covers, or the (valid) customer type is not ``r``'s scope.
* Invalid facts (missing, wrong type: :func:`legal_rules.facts.fact_problem`) are unknown.
  "``r`` applies and its ``when`` holds" is evaluated in three-valued (Kleene) logic over
  the date check, ``jurisdiction`` (unless ``*``), ``customer_type`` (unless scope ``both``)
  and ``when``: an ``all`` with one false item is false, an ``any`` with one true item is
  true, whatever the unknown facts.
* True: ``r`` *fires*. A fired veto makes its actions not allowed; a fired
  ``require_human_review`` flags them for review; a fired ``cap`` adds a limit.
* Unknown: ``r`` is *unresolved*: every action in ``r.applies_to`` is not allowed (fail
  closed), whatever ``r``'s effect, and the reason names the missing facts.

Input the rules do not know blocks the whole decision (every action but ``WAIT``), whatever
the rules say (:func:`input_problems`): a key that is not a fact, a fact given with a value of
the wrong type, and a string value outside its vocabulary (:mod:`legal_rules.known`: a
jurisdiction no rule covers, an unknown region, industry, currency or customer type). Such a
value also counts as missing for the rules above, so the per-rule results stay defined. A
fact that is *absent* (or ``None``/NaN) only blocks the rules that need it.

``WAIT`` is always allowed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np

from engine.calendar import EPOCH, from_day
from engine.contract import Action
from engine.errors import InputError
from legal_rules.facts import FACTS, MAX_MAGNITUDE, fact_problem, native_value, with_defaults
from legal_rules.known import META_KEYS, Vocabulary, closest, unknown_fact_message
from legal_rules.messages import Message
from legal_rules.model import CapValue, Rule, evaluate_kleene

# Pseudo-rule ids: blocks that no rule file holds, named like rules wherever "blocked by" is
# shown (Decision.blocked_by, the daily run's reason, the review queue, the audit trail).
INPUT_UNKNOWN_FACT = "input.unknown_fact"  # a key that is not a fact
INPUT_WRONG_TYPE = "input.wrong_type"  # a fact of the wrong type (or out of range)
INPUT_UNKNOWN_VALUE = "input.unknown_value"  # a string value the rules do not know
INPUT_MISSING_FACT = "input.missing_fact"  # a rule that applies needs a fact not supplied
RATES_MISSING_PERIOD = "rates.missing_period"  # a claim needs a rate the table lacks
PSEUDO_RULES: dict[str, str] = {
    INPUT_UNKNOWN_FACT: "the input names a fact the rules do not know",
    INPUT_WRONG_TYPE: "a fact has a value of the wrong type or out of range",
    INPUT_UNKNOWN_VALUE: "a fact has a value the rules do not know (jurisdiction, region, "
                         "industry, currency, customer type)",
    INPUT_MISSING_FACT: "a rule that applies needs a fact that was not supplied",
    RATES_MISSING_PERIOD: "a claim (interest) needs a reference rate for a period that the "
                          "rate table does not hold",
}


def as_date(value: date | datetime | str | np.datetime64) -> date:
    """A decision date from a ``date``, ``datetime``, ISO string or ``numpy.datetime64``."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, np.datetime64):
        return from_day(int((value.astype("datetime64[D]") - EPOCH).astype(np.int64)))
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"as_of: expected a date YYYY-MM-DD, found {value!r}") from None


def as_action(action: Action | int | str) -> Action:
    if isinstance(action, Action):
        return action
    if isinstance(action, str):
        try:
            return Action.from_channel(action)
        except KeyError:
            channels = [a.channel for a in Action]
            hint = closest(action, channels)
            raise InputError(f"action: unknown channel {action!r}"
                             + (f"; did you mean {hint!r}?" if hint else "")
                             + f" (expected one of {', '.join(channels)})") from None
    return Action(int(action))


# Python type a valid fact value most often already has; such values need no conversion.
_PLAIN_TYPE = {name: {"int": int, "float": float, "bool": bool, "str": str}[f.type]
               for name, f in FACTS.items()}
# facts with value rules beyond their type (and floats: NaN, infinity) take the full check
_SPECIAL = frozenset({"jurisdiction", "customer_type"}
                     | {n for n, f in FACTS.items() if f.type == "float"})


def split_facts(facts: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``(valid, problems)``: valid facts as plain Python values; a reason per invalid fact.

    Every fact of :data:`legal_rules.facts.FACTS` that is absent is reported as ``missing``,
    unless it has a neutral default (:data:`legal_rules.facts.FACT_DEFAULTS`), which is then
    used. Keys that are not facts are ignored.
    """
    facts = with_defaults(facts)
    valid: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name, plain in _PLAIN_TYPE.items():
        value = facts.get(name)
        # fast path for plain values that need no conversion; anything else: the full check
        vtype = type(value)
        if vtype is plain and name not in _SPECIAL and (
                vtype is bool
                or (vtype is int and -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE)
                or (vtype is str and value.isascii())):
            valid[name] = value
            continue
        problem = fact_problem(name, value)
        if problem is None:
            valid[name] = native_value(name, value)
        else:
            problems[name] = problem
    return valid, problems


# string facts with a vocabulary (legal_rules.known)
_VOCAB_FACTS = ("jurisdiction", "region", "industry", "currency", "customer_type")


def input_problems(facts: dict[str, Any], valid: dict[str, Any], problems: dict[str, str],
                   vocab: Vocabulary, codes: set[str] | None = None) -> list[str]:
    """Why the whole decision is blocked (empty: it is not), and drops unknown values.

    ``valid``/``problems`` come from :func:`split_facts`; a valid string outside its
    vocabulary is moved from ``valid`` to ``problems`` (it then counts as missing for the
    rules). Messages name the value and the closest known one. ``codes``, when given,
    receives the pseudo-rule id of each kind of problem (:func:`problem_code`).
    """
    codes = set() if codes is None else codes
    out = [unknown_fact_message(k) for k in facts if k not in FACTS and k not in META_KEYS]
    if out:
        codes.add(INPUT_UNKNOWN_FACT)
    for name, why in problems.items():
        if why != "missing":
            codes.add(problem_code(name, facts.get(name)))
            hint: Message | str = ""
            if name in _VOCAB_FACTS and isinstance(facts.get(name), str):
                hint = vocab.hint(name, facts[name])
            out.append(Message("input.bad_fact", name=name, problem=why, hint=hint))
    for name in _VOCAB_FACTS:
        value = valid.get(name)
        if value is None:
            continue
        ok = (vocab.region_ok(valid.get("jurisdiction"), value) if name == "region"
              else vocab.value_ok(name, value))
        if not ok:
            jur = valid.get("jurisdiction") if name == "region" else None
            out.append(vocab.value_message(name, value, jur))
            codes.add(INPUT_UNKNOWN_VALUE)
            problems[name] = "unknown value"
            del valid[name]
    return out


def problem_code(name: str, value: object) -> str:
    """The pseudo-rule id of an invalid (not missing) value of fact ``name``: a string given
    for a text fact is an unknown value (``'uk'``, ``'B2C'``), anything else a wrong type.
    Both evaluators classify by this rule."""
    return INPUT_UNKNOWN_VALUE if FACTS[name].type == "str" and isinstance(value, str) \
        else INPUT_WRONG_TYPE


# order in which pseudo-rule ids are listed after the rules in ``blocked_by``
INPUT_CODES = (INPUT_UNKNOWN_FACT, INPUT_WRONG_TYPE, INPUT_UNKNOWN_VALUE, INPUT_MISSING_FACT)


def excluded(rule: Rule, valid: dict[str, Any], day: date) -> bool:
    """Whether :func:`exclusion` has a reason, without building its message (the hot path
    of every decision: an engine message renders its English text when made)."""
    if not rule.valid_on(day):
        return True
    jur, ctype = valid.get("jurisdiction"), valid.get("customer_type")
    return (rule.countries is not None and jur is not None and jur not in rule.countries) or (
        rule.scope != "both" and ctype is not None and ctype != rule.scope)


def exclusion(rule: Rule, valid: dict[str, Any], day: date) -> str | None:
    """Why ``rule`` does not apply to this row on ``day`` (from valid facts only), or ``None``."""
    if not rule.valid_on(day):
        until = rule.valid_to.isoformat() if rule.valid_to else Message("rule.open_end")
        return Message("rule.not_in_force", day=str(day), valid_from=str(rule.valid_from),
                       valid_to=until)
    countries = rule.countries
    jur = valid.get("jurisdiction")
    if countries is not None and jur is not None and jur not in countries:
        return Message("rule.other_jurisdiction", value=jur, rule_jurisdiction=rule.jurisdiction)
    ctype = valid.get("customer_type")
    if rule.scope != "both" and ctype is not None and ctype != rule.scope:
        return Message("rule.other_scope", scope=rule.scope, customer_type=ctype)
    return None


def rule_truth(rule: Rule, valid: dict[str, Any], day: date) -> bool | None:
    """Kleene truth of "``rule`` applies on ``day`` and its ``when`` holds" (None: unknown)."""
    if excluded(rule, valid, day):
        return False
    when = evaluate_kleene(rule.when, valid)
    if when is False:
        return False
    known = (rule.countries is None or "jurisdiction" in valid) and (
        rule.scope == "both" or "customer_type" in valid)
    return None if (when is None or not known) else True


@dataclass(frozen=True)
class RuleHit:
    """A rule that fired (or could not be evaluated) for a decision."""

    rule_id: str
    title: str
    effect: str
    citation: str
    reason: str

    @classmethod
    def of(cls, rule: Rule, reason: str) -> RuleHit:
        return cls(rule.id, rule.title, rule.effect, rule.citation, reason)


@dataclass(frozen=True)
class Decision:
    """The legal decision for one invoice, one action, one date.

    ``allowed`` is False when a veto fired, a rule could not be evaluated (``unresolved``:
    a fact it needs was missing or of the wrong type; fail closed) or the input holds
    something the rules do not know (``input_problems``: every action but WAIT blocked).
    ``needs_review`` is True when a ``require_human_review`` rule fired. ``caps`` are the
    limits in force (e.g. the maximum reminder fee or interest a letter may claim).
    ``ruleset_hash`` identifies the rules.
    """

    action: Action
    as_of: date
    allowed: bool
    vetoed: bool
    needs_review: bool
    fired: tuple[RuleHit, ...] = ()
    unresolved: tuple[RuleHit, ...] = ()
    caps: tuple[CapValue, ...] = ()
    ruleset_hash: str = ""
    engine: str = "durable_rules"
    input_problems: tuple[str, ...] = ()
    not_fired: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    blocked_inputs: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """``blocked`` (unknown input), ``vetoed``, ``blocked`` (a rule could not be evaluated:
        fail closed), ``needs_review`` or ``allowed``, in that order."""
        if self.input_problems:  # the rules refuse to decide on input they do not know
            return "blocked"
        if self.vetoed:
            return "vetoed"
        if self.unresolved:
            return "blocked"
        return "needs_review" if self.needs_review else "allowed"

    @property
    def vetoed_by(self) -> tuple[str, ...]:
        return tuple(h.rule_id for h in self.fired if h.effect == "veto")

    @property
    def blocked_by(self) -> tuple[str, ...]:
        """Every reason this action is not allowed, as rule ids: the vetoes that fired, the
        rules that could not be evaluated, then the pseudo-rules of the input
        (:data:`INPUT_CODES`: ``input.unknown_fact``, ``input.wrong_type``,
        ``input.unknown_value``, ``input.missing_fact``). Empty when allowed."""
        if self.allowed:
            return ()
        return (*self.vetoed_by, *(h.rule_id for h in self.unresolved), *self.blocked_inputs)

    @property
    def blocked_claims(self) -> tuple[str, ...]:
        """Caps that apply but have no value on the date (a rate period is missing): what
        they limit (interest) must not be claimed; each says which rate is missing."""
        return tuple(Message("claim.blocked", name=c.name, rule=c.rule_id, note=c.note)
                     for c in self.caps if c.blocked)

    def cap(self, name: str) -> float | None:
        """The tightest resolved value of cap ``name`` (min; max for ``min_`` caps).

        ``None`` when no such cap applies, or when one of them is blocked (its rate is not
        known on the date): the tightest limit is then unknown, so nothing may be claimed.
        """
        if any(c.blocked for c in self.caps if c.name == name):
            return None
        values = [c.value for c in self.caps if c.name == name and c.value is not None]
        if not values:
            return None
        return max(values) if name.startswith("min_") else min(values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for audit logs and the API."""
        out = asdict(self)
        out.pop("not_fired")
        out["action"] = self.action.channel
        out["as_of"] = self.as_of.isoformat()
        out["status"] = self.status
        out["blocked_by"] = list(self.blocked_by)
        out["blocked_claims"] = list(self.blocked_claims)
        # the same messages language-neutral (id + parameters), for a client rendering them
        out["messages"] = {
            "input_problems": [_neutral(m) for m in self.input_problems],
            "unresolved": [{"rule_id": h.rule_id, "reason": _neutral(h.reason)}
                           for h in self.unresolved],
            "blocked_claims": [_neutral(m) for m in self.blocked_claims],
        }
        return out


def _neutral(message: object) -> dict[str, Any]:
    """``{"id", "params", "text"}`` of an engine message (``id`` None for plain text)."""
    if isinstance(message, Message):
        return message.to_dict()
    return {"id": None, "params": {}, "text": str(message)}
