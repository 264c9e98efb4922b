"""Scenario files: the ground truth's behaviour, costs and logging policy, loaded from YAML.

A scenario is a YAML mapping (see ``simulations/scenarios/default.yaml``, every field is
commented there). :func:`load_scenario` accepts a packaged name (``default``, ``shifted``)
or a path, validates every field and raises :class:`engine.errors.InputError` naming the
file and the field on a mistake: an unknown key is an error with the closest known key
("did you mean"), shares (segment, jurisdiction, industry, payment-term weights) must sum
to 1. :func:`scenario_schema` publishes the file format as JSON Schema.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.contract import CHANNELS, SEGMENTS
from engine.errors import InputError

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
# Reminder channels in Action order (email=1 .. final_notice=4); agency is not a reminder.
REMINDER_CHANNELS: tuple[str, ...] = ("email", "letter", "phone", "final_notice")
CALENDAR_KINDS: tuple[str, ...] = ("none", "month_end", "mid_month", "quarter_end")
# Shares (segment, jurisdiction, industry and payment-term weights) must sum to 1 within this.
WEIGHT_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ComplaintModel:
    """P(complaint | reminder sent) = base * channel factor * early * frequent * (1 + per_prior*n).

    ``early_factor`` applies when the reminder is sent before day ``early_days`` after due,
    ``frequent_factor`` when the previous reminder was fewer than ``frequent_days`` ago.
    """

    base: float
    early_days: int
    early_factor: float
    frequent_days: int
    frequent_factor: float
    per_prior_reminder: float


@dataclass(frozen=True)
class SegmentBehaviour:
    """Payment behaviour of one segment (all hazards are per day).

    Daily payment intensity after the due date::

        lam = hazard * exp(overdue_trend_per_30_days * t / 30) * reliability * calendar(date)
              * (1 + E) * complaint_slowdown**complaint
              * (before_milestone_factor if before the milestone)

    ``calendar(date)`` is the month-end / mid-month / quarter-end factor times
    ``weekday_factors`` (Monday..Friday; e.g. payment runs), 0 on weekends and holidays.
        E   = reminder_effect * response * strength[c] * reminder_decay**k
              * reminder_diminishing**(n-1)
              * timing(day the last reminder was sent - timing_shift)
              (0 before the milestone)
        P(pay today) = 1 - exp(-lam)

    ``response`` is the customer's own answer to reminders: lognormal with mean 1 and
    ``reminder_response_sigma`` (0, the default: every customer of the segment answers
    alike). A customer with a high one pays soon after a reminder, one with a low one
    hardly reacts; unlike ``reliability`` it leaves the unreminded hazard alone.

    ``timing_shift`` is the customer's own reminder timing: a whole number of days, normal
    with mean 0 and ``reminder_timing_shift_sd`` (0, the default: every customer of the
    segment answers best on the segment's days). A customer with a shift of +10 answers a
    reminder sent on day 15 as the segment answers one sent on day 5: its best days come
    later. It matters only where ``reminder_timing`` is not flat.
    """

    name: str
    weight: float
    b2c_share: float
    industries: dict[str, float]
    payment_terms_days: dict[int, float]
    invoices_per_month: float
    amount_median: float
    amount_sigma: float
    reliability_sigma: float
    drift_sigma_per_year: float
    pre_due_hazard: float
    hazard: float
    reminder_effect: float
    reminder_decay: float
    reminder_diminishing: float
    reminder_timing: tuple[tuple[int, float], ...]
    calendar: str
    calendar_peak: float
    calendar_off_peak: float
    milestone_days: tuple[int, int] | None
    before_milestone_factor: float
    complaint: ComplaintModel
    complaint_slowdown: float
    dispute_start: float
    dispute_resolve: float
    weekday_factors: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)  # Monday..Friday
    overdue_trend_per_30_days: float = 0.0  # hazard * exp(trend * t / 30)
    reminder_response_sigma: float = 0.0  # spread of the customers' own reminder response
    reminder_timing_shift_sd: float = 0.0  # days; spread of the customers' own timing


@dataclass(frozen=True)
class Jurisdiction:
    code: str
    weight: float
    currency: str
    language: str


@dataclass(frozen=True)
class Costs:
    """Money figures of the reward, in the invoice currency (no FX: amounts are nominal).

    ``action[a]`` is the cost of action ``a`` (index = :class:`engine.contract.Action`),
    ``daily_discount`` the factor per day derived from ``annual_discount_rate``.
    """

    annual_discount_rate: float
    action: tuple[float, ...]  # (6,) wait, email, letter, phone, final_notice, agency
    complaint: float
    agency_fee_share: float
    agency_recovery_probability: float
    agency_delay_days: int

    @property
    def daily_discount(self) -> float:
        """gamma per day: (1 + annual rate) ** (-1/365)."""
        return (1.0 + self.annual_discount_rate) ** (-1.0 / 365.0)

    @property
    def agency_value_share(self) -> float:
        """Expected share of the amount an agency handover brings, discounted to handover."""
        return (self.agency_recovery_probability * (1.0 - self.agency_fee_share)
                * self.daily_discount ** self.agency_delay_days)


@dataclass(frozen=True)
class LoggingPolicyConfig:
    """The fixed schedule that produced the history, made stochastic for off-policy evaluation.

    ``schedule`` lists (channel, day after due) for the 1st, 2nd, ... action; each is sent on
    a business day drawn uniformly in ``day +- jitter_days`` (never on a weekend or bank
    holiday, never on a disputed invoice, never within ``min_gap_days`` of the previous
    reminder); with ``other_channel_probability`` another reminder channel is used instead.

    ``explore`` adds early reminders so that the history covers them: before the window of
    its next scheduled reminder (and at least ``min_gap_days`` after the previous one) an
    invoice gets, on each business day, a reminder on a uniformly drawn channel (email,
    letter, phone; also final notice after the first) with a small daily probability, so that
    about ``explore`` of the invoices get an early first reminder (days 1 to the window) and
    about ``explore`` of the reminded ones an early follow-up. 0 = the plain schedule.

    ``epsilon`` mixes every decision with a uniform choice (epsilon-greedy): on each day the
    logging policy may act at all (business day, no dispute, ``min_gap_days`` kept) its
    probabilities become ``(1 - epsilon) * p + epsilon * uniform`` over wait and the reminder
    channels it may use that day (email, letter, phone not stopped by the debtor; final
    notice after a first reminder; never the agency handover). So every such action, wait
    included, has probability >= ``epsilon / 5`` and any deterministic target policy has
    support on those days: what off-policy estimates need. 0 = no mixing (the default).
    """

    schedule: tuple[tuple[int, int], ...]  # (action index, day)
    jitter_days: int
    other_channel_probability: float
    min_gap_days: int
    explore: float = 0.0
    epsilon: float = 0.0


@dataclass(frozen=True)
class Scenario:
    """Everything the ground-truth world needs. Load with :func:`load_scenario`."""

    name: str
    description: str
    start_date: dt.date
    horizon_days: int
    max_days_since_reminder: int  # K: state k is capped at K ("K or more days / long ago")
    max_reminders: int  # N: state n is capped at N
    channel_strength: tuple[float, ...]  # (4,) email, letter, phone, final_notice
    channel_complaint_factor: tuple[float, ...]  # (4,)
    costs: Costs
    jurisdictions: tuple[Jurisdiction, ...]
    segments: tuple[SegmentBehaviour, ...]  # in engine.contract.SEGMENTS order
    logging_policy: LoggingPolicyConfig
    b2c_agency_consent_share: float = 1.0
    healthcare_agency_consent_share: float = 0.3
    reminder_fee_agreed_share: float = 0.5
    opted_out_share: float = 0.03
    source: str = field(default="<memory>", compare=False)

    def segment(self, name: str) -> SegmentBehaviour:
        return self.segments[SEGMENTS.index(name)]


# ----------------------------------------------------------------------------- schema
# The JSON Schema below is the published description of a scenario file (for editors:
# `dunning scenarios schema`). The loader uses it for the key structure (required keys,
# unknown keys with "did you mean"); types, ranges and cross-field checks are the loader's
# own, and tests/sim/test_scenario_strict.py checks that both agree on every bound.


def _number(lo: float | None = None, hi: float | None = None, desc: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "number"}
    if lo is not None:
        out["minimum"] = lo
    if hi is not None:
        out["maximum"] = hi
    if desc:
        out["description"] = desc
    return out


def _integer(lo: int, hi: int, desc: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "integer", "minimum": lo, "maximum": hi}
    if desc:
        out["description"] = desc
    return out


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None,
            desc: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": {**required, **(optional or {})},
                           "required": list(required), "additionalProperties": False}
    if desc:
        out["description"] = desc
    return out


def _shares(desc: str, key_pattern: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "object", "minProperties": 1, "additionalProperties": _number(0),
        "description": f"{desc}; shares that sum to 1 (within {WEIGHT_TOLERANCE})"}
    if key_pattern:
        out["propertyNames"] = {"pattern": key_pattern}
    return out


def _segment_schema() -> dict[str, Any]:
    complaint = _object({
        "base": _number(0, 1, "P(complaint | reminder) before the factors"),
        "early_days": _integer(0, 365), "early_factor": _number(0),
        "frequent_days": _integer(0, 365), "frequent_factor": _number(0),
        "per_prior_reminder": _number(0)})
    return _object({
        "weight": _number(0, desc="share of customers; all segments' weights sum to 1"),
        "b2c_share": _number(0, 1),
        "industries": _shares("industry name: share"),
        "payment_terms_days": _shares("payment term in days (0..180): share", r"^[0-9]+$"),
        "invoices_per_month": _number(0.01, 1000),
        "amount_median": _number(0.01), "amount_sigma": _number(0, 5),
        "reliability_sigma": _number(0, 5), "drift_sigma_per_year": _number(0, 5),
        "pre_due_hazard": _number(0, 10, "per day"), "hazard": _number(0, 10, "per day"),
        "reminder_effect": _number(0), "reminder_decay": _number(0, 1),
        "reminder_diminishing": _number(0, 1),
        "reminder_timing": {
            "type": "array", "minItems": 1, "description": "rows [from_day, multiplier], "
            "sorted by day, the first at day 0",
            "items": {"type": "array", "minItems": 2, "maxItems": 2,
                      "prefixItems": [{"type": "integer"}, _number(0)]}},
        "calendar": {"enum": list(CALENDAR_KINDS)},
        "complaint": complaint,
        "complaint_slowdown": _number(0, 1), "dispute_start": _number(0, 1, "per day"),
        "dispute_resolve": _number(0, 1, "per day"),
    }, {
        "calendar_peak": _number(0), "calendar_off_peak": _number(0),
        "milestone_days": {"anyOf": [{"type": "null"}, {
            "type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer"},
            "description": "[min_day, max_day] of the milestone relative to the due date"}]},
        "before_milestone_factor": _number(0),
        "weekday_factors": {"type": "array", "minItems": 5, "maxItems": 5,
                            "items": _number(0), "description": "Monday..Friday"},
        "overdue_trend_per_30_days": _number(-5, 5),
        "reminder_response_sigma": _number(
            0, 3, "spread (lognormal sigma) of the customers' own reminder response"),
        "reminder_timing_shift_sd": _number(
            0, 30, "spread (standard deviation, days) of the customers' own reminder timing"),
    })


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file, as the loader reads it."""
    channel_numbers = _object({c: _number(0) for c in REMINDER_CHANNELS})
    schedule_item = {"type": "array", "minItems": 2, "maxItems": 2,
                     "prefixItems": [{"enum": list(CHANNELS)}, _integer(0, 10**6)]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "dunning scenario",
        "description": "Ground-truth world of a synthetic company (simulations.world). "
                       "Unknown keys are errors; weights are shares that sum to 1.",
        **_object({
            "name": {"type": "string"},
            "start_date": {"type": "string", "format": "date"},
            "horizon_days": _integer(1, 3650, "an episode ends this many days after due"),
            "state": _object({"max_days_since_reminder": _integer(1, 365),
                              "max_reminders": _integer(1, 20)}),
            "channels": _object({"strength": channel_numbers,
                                 "complaint_factor": channel_numbers}),
            "economics": _object({
                "annual_discount_rate": _number(0, 1),
                "costs": _object({c: _number(0) for c in CHANNELS}),
                "complaint_cost": _number(0), "agency_fee_share": _number(0, 1),
                "agency_recovery_probability": _number(0, 1),
                "agency_delay_days": _integer(0, 3650)}),
            "jurisdictions": {
                "type": "object", "minProperties": 1,
                "propertyNames": {"pattern": "^[A-Z]{2}$"},
                "description": "ISO 3166-1 alpha-2 code: jurisdiction; weights sum to 1",
                "additionalProperties": _object({
                    "weight": _number(0),
                    "currency": {"type": "string", "minLength": 3, "maxLength": 3},
                    "language": {"type": "string", "minLength": 2, "maxLength": 2}})},
            "segments": _object({s: _segment_schema() for s in SEGMENTS}),
            "logging_policy": _object({
                "schedule": {"type": "array", "minItems": 1, "items": schedule_item},
                "jitter_days": _integer(0, 60),
                "other_channel_probability": _number(0, 1),
                "min_gap_days": _integer(0, 365)}, {
                "explore": _number(0, 0.9, "daily chance of early reminders before the "
                                   "schedule's windows"),
                "epsilon": _number(0, 0.5, "epsilon-greedy: share of each decision drawn "
                                   "uniformly over wait and the allowed reminder channels")}),
        }, {
            "description": {"type": "string"},
            "customers": _object({}, {
                "b2c_agency_consent_share": _number(0, 1),
                "healthcare_agency_consent_share": _number(0, 1),
                "reminder_fee_agreed_share": _number(0, 1),
                "opted_out_share": _number(0, 1)}),
        }),
    }


def _check_keys(schema: dict[str, Any], data: Any, path: str, source: str) -> None:
    """Reject keys the schema does not know, suggesting the closest known one.

    Only the key structure is checked here (walking mappings); wrong types are left to the
    typed reads of the loader, which name the field and what was expected.
    """
    if not isinstance(data, dict):
        return
    props: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, value in data.items():
        full = f"{path}.{key}" if path else str(key)
        if key in props:
            _check_keys(props[key], value, full, source)
        elif isinstance(extra, dict):
            _check_keys(extra, value, full, source)
        elif extra is False:
            known = list(props)
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            where = f"'{path}'" if path else "the top level"
            if close:
                missing = close[0] in schema.get("required", ()) and close[0] not in data
                hint = f"did you mean {close[0]!r}{' (required)' if missing else ''}?"
            else:
                hint = f"expected one of {', '.join(known)}"
            raise InputError(f"{source}: field '{full}': unknown key {key!r} in {where}, "
                             f"{hint}")


# ----------------------------------------------------------------------------- loading


class _Reader:
    """Reads typed fields from a YAML mapping, raising InputError that names file and field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, found: Any, expected: str) -> InputError:
        return InputError(f"{self.source}: field '{path}': found {found!r}, expected {expected}")

    def mapping(self, data: Any, path: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(path, data, "a mapping")
        return data

    def get(self, data: dict[str, Any], key: str, path: str) -> Any:
        if key not in data:
            raise InputError(f"{self.source}: field '{path}.{key}' is missing".replace("'.", "'"))
        return data[key]

    def number(self, data: dict[str, Any], key: str, path: str, lo: float = -math.inf,
               hi: float = math.inf, default: float | None = None) -> float:
        full = f"{path}.{key}" if path else key
        if key not in data and default is not None:
            return float(default)
        value = self.get(data, key, path)
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value)):
            raise self.fail(full, value, "a number")
        if not lo <= value <= hi:
            raise self.fail(full, value, f"a number in [{lo}, {hi}]")
        return float(value)

    def integer(self, data: dict[str, Any], key: str, path: str, lo: int = 0,
                hi: int = 10**6) -> int:
        full = f"{path}.{key}" if path else key
        value = self.get(data, key, path)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(full, value, f"an integer in [{lo}, {hi}]")
        return int(value)

    def weights(self, data: Any, path: str) -> dict[Any, float]:
        data = self.mapping(data, path)
        if not data:
            raise self.fail(path, data, "a non-empty mapping of name: weight")
        out = {}
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise self.fail(f"{path}.{key}", value, "a weight >= 0")
            out[key] = float(value)
        self.sum_to_one(path, sum(out.values()))
        return out

    def sum_to_one(self, path: str, total: float) -> None:
        """Shares are probabilities: a sum other than 1 is a mistake, not renormalised."""
        if not abs(total - 1.0) <= WEIGHT_TOLERANCE:
            raise InputError(f"{self.source}: field '{path}': weights sum to {total:.6g}, "
                             f"expected shares that sum to 1 (within {WEIGHT_TOLERANCE})")


def _read_segment(r: _Reader, name: str, d: Any) -> SegmentBehaviour:
    p = f"segments.{name}"
    d = r.mapping(d, p)
    terms = r.weights(r.get(d, "payment_terms_days", p), f"{p}.payment_terms_days")
    for term in terms:
        if isinstance(term, bool) or not isinstance(term, int) or not 0 <= term <= 180:
            raise r.fail(f"{p}.payment_terms_days", term, "day counts 0..180 as keys")
    timing_raw = r.get(d, "reminder_timing", p)
    if not isinstance(timing_raw, list) or not timing_raw:
        raise r.fail(f"{p}.reminder_timing", timing_raw, "a list of [from_day, multiplier]")
    timing = []
    for i, item in enumerate(timing_raw):
        if (not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], int)
                or not isinstance(item[1], int | float) or item[1] < 0):
            raise r.fail(f"{p}.reminder_timing[{i}]", item, "[from_day, multiplier >= 0]")
        timing.append((int(item[0]), float(item[1])))
    if timing != sorted(timing) or timing[0][0] != 0:
        raise r.fail(f"{p}.reminder_timing", timing_raw, "rows sorted by day, the first at day 0")
    calendar = r.get(d, "calendar", p)
    if calendar not in CALENDAR_KINDS:
        raise r.fail(f"{p}.calendar", calendar, f"one of {', '.join(CALENDAR_KINDS)}")
    milestone = d.get("milestone_days")
    if milestone is not None:
        if (not isinstance(milestone, list) or len(milestone) != 2
                or not all(isinstance(x, int) for x in milestone) or milestone[0] > milestone[1]):
            raise r.fail(f"{p}.milestone_days", milestone, "[min_day, max_day] after due or null")
        milestone = (int(milestone[0]), int(milestone[1]))
    c = r.mapping(r.get(d, "complaint", p), f"{p}.complaint")
    cp = f"{p}.complaint"
    complaint = ComplaintModel(
        base=r.number(c, "base", cp, 0, 1),
        early_days=r.integer(c, "early_days", cp, 0, 365),
        early_factor=r.number(c, "early_factor", cp, 0),
        frequent_days=r.integer(c, "frequent_days", cp, 0, 365),
        frequent_factor=r.number(c, "frequent_factor", cp, 0),
        per_prior_reminder=r.number(c, "per_prior_reminder", cp, 0),
    )
    weekday = d.get("weekday_factors", [1.0] * 5)
    if (not isinstance(weekday, list) or len(weekday) != 5
            or not all(isinstance(x, int | float) and not isinstance(x, bool) and x >= 0
                       for x in weekday)):
        raise r.fail(f"{p}.weekday_factors", weekday, "5 numbers >= 0 (Monday..Friday)")
    industries = r.weights(r.get(d, "industries", p), f"{p}.industries")
    if name == "construction" and set(industries) != {"construction"}:
        raise r.fail(f"{p}.industries", industries, "only 'construction' for this segment")
    return SegmentBehaviour(
        name=name,
        weight=r.number(d, "weight", p, 0),
        b2c_share=r.number(d, "b2c_share", p, 0, 1),
        industries=industries,
        payment_terms_days={int(k): v for k, v in terms.items()},
        invoices_per_month=r.number(d, "invoices_per_month", p, 0.01, 1000),
        amount_median=r.number(d, "amount_median", p, 0.01),
        amount_sigma=r.number(d, "amount_sigma", p, 0, 5),
        reliability_sigma=r.number(d, "reliability_sigma", p, 0, 5),
        drift_sigma_per_year=r.number(d, "drift_sigma_per_year", p, 0, 5),
        pre_due_hazard=r.number(d, "pre_due_hazard", p, 0, 10),
        hazard=r.number(d, "hazard", p, 0, 10),
        reminder_effect=r.number(d, "reminder_effect", p, 0),
        reminder_decay=r.number(d, "reminder_decay", p, 0, 1),
        reminder_diminishing=r.number(d, "reminder_diminishing", p, 0, 1),
        reminder_timing=tuple(timing),
        calendar=calendar,
        calendar_peak=r.number(d, "calendar_peak", p, 0, default=1.0),
        calendar_off_peak=r.number(d, "calendar_off_peak", p, 0, default=1.0),
        milestone_days=milestone,
        before_milestone_factor=r.number(d, "before_milestone_factor", p, 0, default=1.0),
        complaint=complaint,
        complaint_slowdown=r.number(d, "complaint_slowdown", p, 0, 1),
        dispute_start=r.number(d, "dispute_start", p, 0, 1),
        dispute_resolve=r.number(d, "dispute_resolve", p, 0, 1),
        weekday_factors=tuple(float(x) for x in weekday),
        overdue_trend_per_30_days=r.number(d, "overdue_trend_per_30_days", p, -5, 5,
                                           default=0.0),
        reminder_response_sigma=r.number(d, "reminder_response_sigma", p, 0, 3, default=0.0),
        reminder_timing_shift_sd=r.number(d, "reminder_timing_shift_sd", p, 0, 30,
                                          default=0.0),
    )


def _read_channels(r: _Reader, d: Any, path: str) -> tuple[float, ...]:
    d = r.mapping(d, path)
    unknown = set(d) - set(REMINDER_CHANNELS)
    if unknown:
        raise r.fail(path, sorted(unknown)[0], f"only {', '.join(REMINDER_CHANNELS)}")
    return tuple(r.number(d, ch, path, 0) for ch in REMINDER_CHANNELS)


def scenario_from_dict(data: Any, source: str = "<memory>") -> Scenario:
    """Validate a parsed YAML mapping and build a :class:`Scenario`."""
    r = _Reader(source)
    d = r.mapping(data, "<top level>")
    _check_keys(SCENARIO_SCHEMA, d, "", source)
    start = r.get(d, "start_date", "")
    if isinstance(start, str):
        try:
            start = dt.date.fromisoformat(start)
        except ValueError:
            raise r.fail("start_date", start, "an ISO date YYYY-MM-DD") from None
    if not isinstance(start, dt.date):
        raise r.fail("start_date", start, "an ISO date YYYY-MM-DD")

    ch = r.mapping(r.get(d, "channels", ""), "channels")
    econ = r.mapping(r.get(d, "economics", ""), "economics")
    costs_map = r.mapping(r.get(econ, "costs", "economics"), "economics.costs")
    unknown = set(costs_map) - set(CHANNELS)
    if unknown:
        raise r.fail("economics.costs", sorted(unknown)[0], f"only {', '.join(CHANNELS)}")
    costs = Costs(
        annual_discount_rate=r.number(econ, "annual_discount_rate", "economics", 0, 1),
        action=(0.0,) + tuple(r.number(costs_map, c, "economics.costs", 0) for c in CHANNELS),
        complaint=r.number(econ, "complaint_cost", "economics", 0),
        agency_fee_share=r.number(econ, "agency_fee_share", "economics", 0, 1),
        agency_recovery_probability=r.number(econ, "agency_recovery_probability", "economics",
                                             0, 1),
        agency_delay_days=r.integer(econ, "agency_delay_days", "economics", 0, 3650),
    )

    jur_map = r.mapping(r.get(d, "jurisdictions", ""), "jurisdictions")
    jurisdictions = []
    for code, jd in jur_map.items():
        jp = f"jurisdictions.{code}"
        if not isinstance(code, str) or len(code) != 2 or not code.isupper():
            raise r.fail("jurisdictions", code, "ISO 3166-1 alpha-2 codes such as DE")
        jd = r.mapping(jd, jp)
        currency, language = r.get(jd, "currency", jp), r.get(jd, "language", jp)
        if not isinstance(currency, str) or len(currency) != 3:
            raise r.fail(f"{jp}.currency", currency, "an ISO 4217 code such as EUR")
        if not isinstance(language, str) or len(language) != 2:
            raise r.fail(f"{jp}.language", language, "an ISO 639-1 code such as de")
        jurisdictions.append(Jurisdiction(code, r.number(jd, "weight", jp, 0), currency, language))
    if not jurisdictions:
        raise r.fail("jurisdictions", jur_map, "at least one jurisdiction")

    seg_map = r.mapping(r.get(d, "segments", ""), "segments")
    missing = [s for s in SEGMENTS if s not in seg_map]
    extra = [s for s in seg_map if s not in SEGMENTS]
    if missing or extra:
        raise r.fail("segments", sorted(seg_map), f"exactly the segments {', '.join(SEGMENTS)}")
    segments = tuple(_read_segment(r, s, seg_map[s]) for s in SEGMENTS)

    lp = r.mapping(r.get(d, "logging_policy", ""), "logging_policy")
    sched_raw = r.get(lp, "schedule", "logging_policy")
    if not isinstance(sched_raw, list) or not sched_raw:
        raise r.fail("logging_policy.schedule", sched_raw, "a list of [channel, day]")
    schedule = []
    for i, item in enumerate(sched_raw):
        if (not isinstance(item, list) or len(item) != 2 or item[0] not in CHANNELS
                or not isinstance(item[1], int) or item[1] < 0):
            raise r.fail(f"logging_policy.schedule[{i}]", item, "[channel, day after due >= 0]")
        schedule.append((CHANNELS.index(item[0]) + 1, int(item[1])))
    agency = CHANNELS.index("agency") + 1
    if any(ch == agency for ch, _ in schedule[:-1]):
        raise r.fail("logging_policy.schedule", sched_raw, "agency only as the last entry")
    n_reminders = sum(ch != agency for ch, _ in schedule)
    logging = LoggingPolicyConfig(
        schedule=tuple(schedule),
        jitter_days=r.integer(lp, "jitter_days", "logging_policy", 0, 60),
        other_channel_probability=r.number(lp, "other_channel_probability", "logging_policy",
                                           0, 1),
        min_gap_days=r.integer(lp, "min_gap_days", "logging_policy", 0, 365),
        explore=r.number(lp, "explore", "logging_policy", 0, 0.9, default=0.0),
        epsilon=r.number(lp, "epsilon", "logging_policy", 0, 0.5, default=0.0),
    )
    st = r.mapping(r.get(d, "state", ""), "state")
    custom = r.mapping(d.get("customers", {}), "customers")
    scenario = Scenario(
        name=str(r.get(d, "name", "")),
        description=str(d.get("description", "")),
        start_date=start,
        horizon_days=r.integer(d, "horizon_days", "", 1, 3650),
        max_days_since_reminder=r.integer(st, "max_days_since_reminder", "state", 1, 365),
        max_reminders=r.integer(st, "max_reminders", "state", 1, 20),
        channel_strength=_read_channels(r, r.get(ch, "strength", "channels"), "channels.strength"),
        channel_complaint_factor=_read_channels(r, r.get(ch, "complaint_factor", "channels"),
                                                "channels.complaint_factor"),
        costs=costs,
        jurisdictions=tuple(jurisdictions),
        segments=segments,
        logging_policy=logging,
        b2c_agency_consent_share=r.number(custom, "b2c_agency_consent_share", "customers", 0, 1,
                                          default=1.0),
        healthcare_agency_consent_share=r.number(custom, "healthcare_agency_consent_share",
                                                 "customers", 0, 1, default=0.3),
        reminder_fee_agreed_share=r.number(custom, "reminder_fee_agreed_share", "customers", 0,
                                           1, default=0.5),
        opted_out_share=r.number(custom, "opted_out_share", "customers", 0, 1, default=0.03),
        source=source,
    )
    if n_reminders > scenario.max_reminders:
        raise r.fail("logging_policy.schedule", sched_raw,
                     f"at most state.max_reminders = {scenario.max_reminders} reminders")
    r.sum_to_one("segments.*.weight", sum(s.weight for s in segments))
    r.sum_to_one("jurisdictions.*.weight", sum(j.weight for j in jurisdictions))
    return scenario


SCENARIO_SCHEMA: dict[str, Any] = scenario_schema()


def packaged_scenarios() -> list[str]:
    """Names of the scenarios shipped in ``simulations/scenarios``."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a packaged scenario by name (``default``) or a YAML file by path."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise InputError(f"scenario {str(name_or_path)!r}: no such packaged scenario "
                             f"(expected one of {', '.join(packaged_scenarios())} or a YAML path)")
    if not path.is_file():
        raise InputError(f"{path}: scenario file not found (expected a YAML file)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", exc)
        raise InputError(f"{path}:{where} not valid YAML ({problem})") from None
    return scenario_from_dict(data, source=str(path))
