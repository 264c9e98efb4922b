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
from legal_rules.facts import FACTS, MAX_MAGNITUDE, fact_problem, native_value
from legal_rules.model import CapValue, Rule, evaluate_kleene


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
            raise InputError(f"action: expected one of wait, email, letter, phone, final_notice, "
                             f"agency; found {action!r}") from None
    return Action(int(action))


# Python type a valid fact value most often already has; such values need no conversion.
_PLAIN_TYPE = {name: {"int": int, "float": float, "bool": bool, "str": str}[f.type]
               for name, f in FACTS.items()}
# facts with value rules beyond their type (and floats: NaN, infinity) take the full check
_SPECIAL = frozenset({"jurisdiction", "customer_type"}
                     | {n for n, f in FACTS.items() if f.type == "float"})


def split_facts(facts: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``(valid, problems)``: valid facts as plain Python values; a reason per invalid fact.

    Every fact of :data:`legal_rules.facts.FACTS` that is absent is reported as ``missing``.
    Keys that are not facts are ignored.
    """
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


def exclusion(rule: Rule, valid: dict[str, Any], day: date) -> str | None:
    """Why ``rule`` does not apply to this row on ``day`` (from valid facts only), or ``None``."""
    if not rule.valid_on(day):
        until = rule.valid_to.isoformat() if rule.valid_to else "open end"
        return f"not in force on {day} (valid {rule.valid_from} .. {until})"
    countries = rule.countries
    jur = valid.get("jurisdiction")
    if countries is not None and jur is not None and jur not in countries:
        return f"jurisdiction {jur} is not {rule.jurisdiction}"
    ctype = valid.get("customer_type")
    if rule.scope != "both" and ctype is not None and ctype != rule.scope:
        return f"scope {rule.scope} only (customer is {ctype})"
    return None


def rule_truth(rule: Rule, valid: dict[str, Any], day: date) -> bool | None:
    """Kleene truth of "``rule`` applies on ``day`` and its ``when`` holds" (None: unknown)."""
    if exclusion(rule, valid, day) is not None:
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

    ``allowed`` is False when a veto fired or a rule could not be evaluated (``unresolved``:
    a fact it needs was missing or of the wrong type; fail closed). ``needs_review`` is True
    when a ``require_human_review`` rule fired. ``caps`` are the limits in force (e.g. the
    maximum reminder fee or interest a letter may claim). ``ruleset_hash`` identifies the rules.
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
    not_fired: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def status(self) -> str:
        """``vetoed``, ``blocked`` (fail closed), ``needs_review`` or ``allowed``."""
        if self.vetoed:
            return "vetoed"
        if self.unresolved:
            return "blocked"
        return "needs_review" if self.needs_review else "allowed"

    @property
    def vetoed_by(self) -> tuple[str, ...]:
        return tuple(h.rule_id for h in self.fired if h.effect == "veto")

    def cap(self, name: str) -> float | None:
        """The tightest resolved value of cap ``name`` (min; max for minimum-days caps)."""
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
        return out
