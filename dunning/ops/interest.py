"""The interest a letter claims: the first day of default, the periods and their rates.

Shared by the letters (:mod:`dunning.ops.letters`) and the daily run
(:mod:`dunning.ops.recommend`), which routes a letter whose interest has a period without a
rate to the review queue (:func:`interest_problem`) instead of printing a figure. Nothing
here imports the rest of ``dunning.ops``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from engine.contract import Action
from engine.errors import InputError

if TYPE_CHECKING:
    from legal_rules.decision import Decision


def default_start(letter_date: dt.date, days_in_default: Any) -> dt.date | None:
    """The first day of default from the fact ``days_in_default`` on ``letter_date``
    (1 = default began that day); ``None`` when not in default or unknown."""
    if not isinstance(days_in_default, int) or days_in_default < 1:
        return None
    return letter_date - dt.timedelta(days=days_in_default - 1)


class InterestRateUnknown(InputError):
    """A period of the interest claim has no known rate: the letter is not rendered (fail
    closed) rather than printed with a wrong figure."""


# Rates fixed once per debt: the UK statutory rate uses the reference rate of the half-year
# in which the debt fell due, for the life of the debt (Late Payment of Commercial Debts (Rate
# of Interest) (No. 3) Order 2002). Every other rate series is looked up per half-year, on its
# first day (DE: BGB § 247, the base rate changes each 1 January and 1 July; EU: Directive
# 2011/7/EU art. 2(7)-(8), the ECB rate on the first day of the half-year; SE: Räntelag § 9).
RATE_FIXED_AT_DUE_DATE = frozenset({"boe_rate"})


@dataclass(frozen=True)
class InterestPeriod:
    """One period of an interest claim: ``start``..``end`` inclusive, ``days`` of them.

    ``rate_pct`` = ``base_pct`` (the reference rate ``base`` looked up on ``rate_day``;
    ``None`` for a fixed rate) + ``margin_pp``; ``amount`` = principal x rate / 100 x days /
    365, rounded to cents (the claim is the sum of the rounded periods).
    """

    start: dt.date
    end: dt.date
    days: int
    rate_pct: float
    base: str | None
    base_pct: float | None
    rate_day: dt.date | None
    margin_pp: float
    amount: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("start", "end", "rate_day"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


def half_year_start(day: dt.date) -> dt.date:
    """1 January or 1 July of ``day``'s half-year."""
    return dt.date(day.year, 1 if day.month <= 6 else 7, 1)


def half_years(first: dt.date, last: dt.date) -> list[tuple[dt.date, dt.date]]:
    """``[first, last]`` split at each 1 January and 1 July: ``[(start, end)]`` inclusive."""
    out = []
    start = first
    while start <= last:
        nxt = dt.date(start.year, 7, 1) if start.month <= 6 else dt.date(start.year + 1, 1, 1)
        end = min(last, nxt - dt.timedelta(days=1))
        out.append((start, end))
        start = nxt
    return out


def interest_periods(principal: float, due_date: dt.date, letter_date: dt.date,
                     expression: str, ruleset: Any | None,
                     invoice_id: str = "", first: dt.date | None = None) -> list[InterestPeriod]:
    """Simple interest on ``principal`` from ``first`` (the first day of default; default
    the day after ``due_date``) to ``letter_date``.

    ``expression`` is a cap's rate expression (``"base_rate(DE) + 9"`` or a fixed ``"4"``).
    One period per half-year, each at its own rate (see :data:`RATE_FIXED_AT_DUE_DATE`),
    act/365. A period without a known rate raises :class:`InterestRateUnknown` naming every
    such period (no letter with a wrong figure).
    """
    from legal_rules.model import parse_cap_expression

    first = first or due_date + dt.timedelta(days=1)
    if letter_date < first or principal <= 0:
        return []
    name, jur, margin = parse_cap_expression(expression)
    base = f"{name}({jur})" if name else None
    out, missing = [], []
    for start, end in half_years(first, letter_date):
        days = (end - start).days + 1
        base_pct, rate_day = None, None
        if name is not None:
            rate_day = half_year_start(due_date if name in RATE_FIXED_AT_DUE_DATE else start)
            rate = ruleset.rate(name, jur or "", rate_day) if ruleset is not None else None
            if rate is None:
                missing.append(f"{start.isoformat()}..{end.isoformat()} (no {base} on "
                               f"{rate_day.isoformat()})")
                continue
            base_pct = rate.value
        pct = round((base_pct or 0.0) + margin, 6)
        out.append(InterestPeriod(start, end, days, pct, base, base_pct, rate_day, margin,
                                  round(principal * pct / 100 * days / 365, 2)))
    if missing:
        raise InterestRateUnknown(
            f"invoice {invoice_id}: interest ({expression}) has no known rate for "
            f"{'; '.join(missing)}; the letter is not rendered with a wrong figure. Add the "
            "rate period to rates.yaml (docs/legal-rules.md) and render it again")
    return out


def interest_expression(decision: Decision, ruleset: Any | None) -> list[Any]:
    """The cap(s) interest is claimed under: the tightest ``max_interest_rate``, or an EU
    ``interest_rate_pp_over_base`` + the ECB rate. [] = no interest. A rate cap whose value
    is unknown on the letter date raises :class:`InterestRateUnknown` (fail closed)."""
    rate_caps = [c for c in decision.caps if c.name == "max_interest_rate"]
    if rate_caps:
        unknown = [c for c in rate_caps if c.value is None]
        if unknown:
            raise InterestRateUnknown(
                f"interest cap {unknown[0].rule_id} ({unknown[0].expression}) is unknown on "
                f"{decision.as_of}: {unknown[0].note or 'no rate'}; the letter is not rendered "
                "with a wrong figure. Add the rate period to rates.yaml (docs/legal-rules.md)")
        best = min(c.value for c in rate_caps)
        return [c for c in rate_caps if c.value == best]
    if ruleset is None:
        return []
    for c in decision.caps:
        if (c.name == "interest_rate_pp_over_base" and c.value is not None
                and ruleset.rule(c.rule_id).jurisdiction == "EU"):
            return [replace(c, expression=f"ecb_rate(EU) + {c.value:g}")]
    return []


def interest_problem(principal: float, due_date: dt.date, letter_date: dt.date,
                     decision: Decision, ruleset: Any | None, invoice_id: str = "",
                     claims: Decision | None = None,
                     first: dt.date | None = None) -> str | None:
    """Why the interest of this letter cannot be computed (a rate missing for a period, a
    rate cap unknown on the letter date), or ``None`` when it can (or none is claimed).

    The daily run calls it for every letter it recommends: such a letter goes to the review
    queue (:data:`legal_rules.decision.RATES_MISSING_PERIOD`) instead of being printed.
    """
    try:
        rate_caps = interest_expression(claims or decision, ruleset)
        if rate_caps:
            interest_periods(principal, due_date, letter_date, rate_caps[0].expression,
                             ruleset, invoice_id, first)
    except InterestRateUnknown as exc:
        msg = str(exc)
        prefix = f"invoice {invoice_id}: "
        return msg if msg.startswith(prefix) or not invoice_id else prefix + msg
    return None


def carried_claims(evaluator: Any, facts: dict[str, Any], action: Action, day: dt.date,
                   invoice_id: str = "") -> Decision | None:
    """The decision whose claims a letter carries forward, or None (the letter's own).

    The pre-agency notice restates what the final notice claimed: interest (per period, up
    to the new letter's date) and the fixed compensation, as the rules give them for a final
    notice on ``day`` with the same facts. A final-notice decision the rules cannot evaluate
    (blocked) is refused: the claims would be unknown.
    """
    if action != Action.AGENCY:
        return None
    claims = evaluator.decide(facts, Action.FINAL_NOTICE, day)
    if claims.unresolved:
        raise InputError(f"invoice {invoice_id}: the claims of the final notice cannot be "
                         "restated in the pre-agency letter: rules "
                         f"{', '.join(h.rule_id for h in claims.unresolved)} are unresolved")
    return claims
