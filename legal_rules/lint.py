"""Warnings about a valid rule set that a legal team should look at (``dunning rules check``).

Not errors: the rules load and decide, but something is probably not what was meant.

* **Contradictions**: a ``veto`` rule and a ``require_human_review`` rule on the same action,
  where every case the review rule fires on is a case the veto rule fires on too (its
  condition implies the veto's, in an overlapping jurisdiction, scope and validity). The veto
  wins, so the review can never happen there: one of the two does not say what was meant.
  Implication is decided on the rules' text (conjunctions of comparisons), so a contradiction
  hidden behind an ``any``/``not`` is not found.
* **Gaps in rates**: days between two periods of the same rate with no figure (interest caps
  on those days are unknown and block interest).
* **Rates that end soon**: the last period of a rate ends within :data:`RATE_HORIZON_DAYS`
  of ``today`` (or has ended): the next published figure must be added. A declared rate
  series with no period at all is reported too.
* **Margins under a floor**: a national ``interest_rate_pp_over_base`` below a
  ``min_interest_rate_pp_over_base`` floor (the EU directive's 8 pp) that applies to the
  same countries and customers.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from legal_rules.model import All, Always, Compare, Condition, Rate, Rule, RuleSet

RATE_HORIZON_DAYS = 60


def rule_warnings(ruleset: RuleSet, today: date) -> list[str]:
    """Every warning, each ``file:line: message``."""
    empty = [f"{s.source}: {s.name}({s.jurisdiction}) has no period: every cap using it is "
             f"unknown and interest is blocked (add figures published by {s.publisher})"
             for s in ruleset.series
             if not any((r.name, r.jurisdiction) == (s.name, s.jurisdiction)
                        for r in ruleset.rates)]
    return [*contradictions(ruleset), *margins_under_floor(ruleset),
            *rate_warnings(ruleset.rates, today), *empty]


def margins_under_floor(ruleset: RuleSet) -> list[str]:
    """National interest margins below a floor rule covering the same debtors."""
    floors = [r for r in ruleset.rules if r.cap is not None
              and r.cap.name == "min_interest_rate_pp_over_base"
              and isinstance(r.cap.value, (int, float))]
    out = []
    for rule in ruleset.rules:
        cap = rule.cap
        if cap is None or cap.name != "interest_rate_pp_over_base" \
                or not isinstance(cap.value, (int, float)):
            continue
        for floor in floors:
            where = _overlap(rule, floor)
            if where is not None and cap.value < floor.cap.value:  # type: ignore[union-attr]
                out.append(f"{rule.source}: {rule.id} gives {cap.value} pp over the base rate "
                           f"in {where}, below the floor of {floor.cap.value} pp of "  # type: ignore[union-attr]
                           f"{floor.id} ({floor.citation})")
                break  # one warning per margin
    return out


# --------------------------------------------------------------------------- contradictions
def _atoms(cond: Condition) -> list[Compare] | None:
    """The comparisons of a pure conjunction (``Always``: none), else ``None``."""
    if isinstance(cond, Always):
        return []
    if isinstance(cond, Compare):
        return [cond]
    if isinstance(cond, All):
        out: list[Compare] = []
        for item in cond.items:
            sub = _atoms(item)
            if sub is None:
                return None
            out += sub
        return out
    return None


def _holds(op: str, x: Any, v: Any) -> bool:
    return {"eq": lambda: x == v, "ne": lambda: x != v, "lt": lambda: x < v,
            "le": lambda: x <= v, "gt": lambda: x > v, "ge": lambda: x >= v,
            "in": lambda: x in v, "not_in": lambda: x not in v}[op]()


def _implies(a: Compare, b: Compare) -> bool:
    """Whether ``a`` true forces ``b`` true (same fact; conservative: False if unsure)."""
    if a.fact != b.fact:
        return False
    if (a.op, a.value) == (b.op, b.value):
        return True
    try:
        if a.op == "eq":
            return _holds(b.op, a.value, b.value)
        if a.op == "in":
            return all(_holds(b.op, x, b.value) for x in a.value)
        if a.op in ("lt", "le") and b.op in ("lt", "le"):  # x < a.v  =>  x < b.v ?
            return a.value < b.value or (a.value == b.value and (a.op == "lt" or b.op == "le"))
        if a.op in ("gt", "ge") and b.op in ("gt", "ge"):
            return a.value > b.value or (a.value == b.value and (a.op == "gt" or b.op == "ge"))
    except TypeError:
        return False
    return False


def _overlap(a: Rule, b: Rule) -> str | None:
    """Where both rules apply (jurisdictions, scope, dates) as text, or None if nowhere.

    The review rule ``a`` must lie within the veto ``b``'s jurisdictions and scope."""
    if b.scope != "both" and a.scope != b.scope:
        return None
    ca, cb = a.countries, b.countries
    if cb is not None and ca is None:
        where = cb
    elif cb is not None and ca is not None:
        where = ca & cb
        if not where:
            return None
    else:
        where = ca
    end_a, end_b = a.valid_to or date.max, b.valid_to or date.max
    if max(a.valid_from, b.valid_from) > min(end_a, end_b):
        return None
    if where is None:
        return "everywhere"
    return ", ".join(sorted(where)) if len(where) <= 6 else f"{len(where)} countries"


def contradictions(ruleset: RuleSet) -> list[str]:
    """Review rules that a veto always overrides (see the module docstring)."""
    out = []
    vetoes = [r for r in ruleset.rules if r.effect == "veto"]
    for review in (r for r in ruleset.rules if r.effect == "require_human_review"):
        r_atoms = _atoms(review.when)
        if r_atoms is None:
            continue
        for veto in vetoes:
            actions = [a.channel for a in review.applies_to if a in veto.applies_to]
            v_atoms = _atoms(veto.when)
            if not actions or v_atoms is None:
                continue
            if not all(any(_implies(a, b) for a in r_atoms) for b in v_atoms):
                continue
            where = _overlap(review, veto)
            if where is None:
                continue
            out.append(f"{review.source}: {review.id} (review) and {veto.id} (veto, "
                       f"{veto.source}) contradict on {', '.join(actions)} in {where}: "
                       f"whenever {review.id} asks for a review, {veto.id} vetoes, so the "
                       f"review never happens; narrow one of them or drop the review there")
    return out


# --------------------------------------------------------------------------- rates
def rate_warnings(rates: tuple[Rate, ...] | list[Rate], today: date) -> list[str]:
    """Gaps between periods of a rate, and rates whose last period ends soon (or ended)."""
    out = []
    by_key: dict[tuple[str, str], list[Rate]] = {}
    for r in rates:
        by_key.setdefault((r.name, r.jurisdiction), []).append(r)
    horizon = today + timedelta(days=RATE_HORIZON_DAYS)
    for (name, jur), periods in sorted(by_key.items()):
        periods = sorted(periods, key=lambda r: r.valid_from)
        for a, b in zip(periods, periods[1:], strict=False):
            if a.valid_to is not None and b.valid_from > a.valid_to + timedelta(days=1):
                out.append(f"{b.source}: no {name}({jur}) from {a.valid_to + timedelta(days=1)}"
                           f" to {b.valid_from - timedelta(days=1)}: interest on those days "
                           f"is blocked until the period is added")
        last = periods[-1]
        if last.valid_to is not None and last.valid_to < horizon:
            state = "ended" if last.valid_to < today else "ends"
            out.append(f"{last.source}: {name}({jur}) {state} on {last.valid_to} (within "
                       f"{RATE_HORIZON_DAYS} days of {today} or before): add the next "
                       f"published period, else interest from {last.valid_to + timedelta(1)} "
                       f"is blocked")
    return out
