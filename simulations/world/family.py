"""A family of companies: scenario files drawn around the structure of the default scenario.

:func:`sample_scenario` perturbs ``simulations/scenarios/default.yaml`` (every structural
choice of a company, not only its numbers) within the ranges of :class:`FamilyRanges`;
:func:`write_family` writes ``N`` of them as YAML files (``dunning scenarios sample``).
Company ``i`` of sampler seed ``S`` is drawn from ``numpy.random.default_rng([S, i])``, so it
does not depend on ``N`` and the same ``(S, i)`` gives a byte-identical file. Every sampled
file passes the strict loader (:func:`simulations.world.scenario.load_scenario`).

Seeds: :data:`EVALUATION_SAMPLER_SEED` draws the companies the generality figures are
measured on (``benchmarks/bench_generality.py``); nothing may be tuned on them. Tune on
other sampler seeds (:data:`TUNING_SAMPLER_SEEDS`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from engine.contract import SEGMENTS
from engine.files import atomic_write_text
from simulations.world.scenario import SCENARIO_DIR, scenario_from_dict

EVALUATION_SAMPLER_SEED = 2500  # the held-out family: figures only, never tuning
TUNING_SAMPLER_SEEDS = range(0, 100)  # free for choosing hyperparameters
FAMILY_VERSION = 1  # bump when the ranges or the draw order change (files would differ)

Range = tuple[float, float]


@dataclass(frozen=True)
class FamilyRanges:
    """The documented ranges a sampled company is drawn from (docs/world.md shows this table).

    "x" ranges multiply the default scenario's value by a log-uniform factor; plain ranges
    are drawn uniformly (integers: inclusive). Days are days after the due date.

    ====================================  ==============================================
    field                                 what is drawn
    ====================================  ==============================================
    segment_concentration, segment_floor  segment weights = floor + (1 - 5 floor) *
                                          Dirichlet(c * default weights)
    jurisdiction_count, jurisdiction_pool  how many of the pool (uniform choice);
                                          weights 0.05 + Dirichlet(1, ..., 1) share
    hazard_factor                         x each segment's ``hazard`` and
                                          ``pre_due_hazard``
    reminder_effect_factor                x each segment's ``reminder_effect``
    timing_peak_share                     chance a non-corporate segment gets a timing
                                          peak (corporate always has one)
    timing_peak_day, timing_peak_width    the peak's first day and its length in days
    timing_low, timing_tail               multiplier before and after the peak (peak = 1)
    startup_calendars, saas_calendars     the payment calendar of start-ups and SaaS
    calendar_peak, calendar_off_peak      month/quarter-end factor and the rest of the
                                          month's factor of those calendars
    milestone_first, milestone_last       construction's milestone range [first, last]
    before_milestone_factor               construction's hazard factor before it
    weekday_factor                        corporate payment-run factor per weekday
    amount_factor                         x each segment's ``amount_median``
    complaint_factor                      x each segment's complaint ``base`` (cap 1)
    early_complaint_days                  family businesses complain of reminders
                                          before this day
    dispute_factor                        x each segment's ``dispute_start``
    cost_factor                           x each action cost (email .. agency)
    complaint_cost                        cost of one complaint
    annual_discount_rate                  the reward's discount rate
    agency_fee_share, agency_recovery     agency fee and recovery probability
    agency_delay_days                     days from handover to the agency's recovery
    first_reminder_day                    the logging schedule's first reminder (email)
    reminder_spacing_days                 days to the 2nd and 3rd reminder
    agency_after_days                     days from the 3rd reminder to the agency
    jitter_days, other_channel_probability  logging schedule's noise
    explore, epsilon                      logging policy's exploration
    opted_out_share                       customers who stopped one channel
    reminder_fee_agreed_share             customers with an agreed reminder fee
    ====================================  ==============================================
    """

    segment_concentration: float = 6.0
    segment_floor: float = 0.04
    jurisdiction_pool: tuple[tuple[str, str, str], ...] = (
        ("DE", "EUR", "de"), ("AT", "EUR", "de"), ("SE", "SEK", "sv"), ("FR", "EUR", "fr"),
        ("GB", "GBP", "en"), ("NL", "EUR", "nl"), ("ES", "EUR", "es"), ("IT", "EUR", "it"),
        ("PL", "PLN", "pl"))
    jurisdiction_count: tuple[int, int] = (2, 6)
    hazard_factor: Range = (0.6, 1.6)
    reminder_effect_factor: Range = (0.6, 1.6)
    timing_peak_share: float = 0.5
    timing_peak_day: tuple[int, int] = (3, 28)
    timing_peak_width: tuple[int, int] = (4, 12)
    timing_low: Range = (0.2, 0.7)
    timing_tail: Range = (0.3, 0.7)
    startup_calendars: tuple[str, ...] = ("month_end", "mid_month")
    saas_calendars: tuple[str, ...] = ("quarter_end", "month_end")
    calendar_peak: Range = (3.0, 7.0)
    calendar_off_peak: Range = (0.15, 0.4)
    milestone_first: tuple[int, int] = (-35, -5)
    milestone_last: tuple[int, int] = (40, 90)
    before_milestone_factor: Range = (0.04, 0.15)
    weekday_factor: Range = (0.7, 1.3)
    amount_factor: Range = (0.5, 2.0)
    complaint_factor: Range = (0.5, 2.0)
    early_complaint_days: tuple[int, int] = (15, 35)
    dispute_factor: Range = (0.5, 3.0)
    cost_factor: Range = (0.6, 1.6)
    complaint_cost: Range = (30.0, 120.0)
    annual_discount_rate: Range = (0.04, 0.12)
    agency_fee_share: Range = (0.15, 0.35)
    agency_recovery: Range = (0.45, 0.75)
    agency_delay_days: tuple[int, int] = (30, 60)
    first_reminder_day: tuple[int, int] = (7, 21)
    reminder_spacing_days: tuple[int, int] = (10, 21)
    agency_after_days: tuple[int, int] = (21, 35)
    jitter_days: tuple[int, int] = (1, 3)
    other_channel_probability: Range = (0.05, 0.2)
    explore: Range = (0.1, 0.4)
    epsilon: Range = (0.0, 0.1)
    opted_out_share: Range = (0.01, 0.06)
    reminder_fee_agreed_share: Range = (0.3, 0.7)


RANGES = FamilyRanges()


def range_names() -> list[str]:
    """The field names of :class:`FamilyRanges` (the docs table must name each)."""
    return [f.name for f in fields(FamilyRanges)]


def _r(x: float, digits: int = 4) -> float:
    """Round to ``digits`` significant digits: readable files, same bytes for the same draw."""
    return float(f"{x:.{digits}g}")


class _Draw:
    """The draws of one company, in a fixed order (the order is part of FAMILY_VERSION)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def uniform(self, lo_hi: Range) -> float:
        return _r(self.rng.uniform(*lo_hi))

    def factor(self, lo_hi: Range) -> float:
        lo, hi = lo_hi
        return float(np.exp(self.rng.uniform(np.log(lo), np.log(hi))))

    def integer(self, lo_hi: tuple[int, int]) -> int:
        return int(self.rng.integers(lo_hi[0], lo_hi[1] + 1))

    def choice(self, options: tuple[str, ...]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def shares(self, alpha: np.ndarray, floor: float = 0.0) -> list[float]:
        """Shares ``floor + (1 - k * floor) * Dirichlet(alpha)`` (each >= ``floor``),
        rounded to 4 decimals, summing to exactly 1."""
        w = floor + (1.0 - len(alpha) * floor) * self.rng.dirichlet(alpha)
        w = np.round(w, 4)
        w[int(np.argmax(w))] += round(1.0 - float(w.sum()), 4)
        return [round(float(x), 4) for x in w]


def _timing(d: _Draw, ranges: FamilyRanges) -> list[list[float]]:
    """Rows [from_day, multiplier]: low before the peak, 1 on it, tail after."""
    day = d.integer(ranges.timing_peak_day)
    width = d.integer(ranges.timing_peak_width)
    return [[0, d.uniform(ranges.timing_low)], [day, 1.0], [day + width, d.uniform(
        ranges.timing_tail)]]


def _segment(d: _Draw, name: str, seg: dict[str, Any], ranges: FamilyRanges) -> None:
    """Perturb one segment's mapping in place."""
    hz = d.factor(ranges.hazard_factor)
    seg["hazard"] = _r(seg["hazard"] * hz)
    seg["pre_due_hazard"] = _r(seg["pre_due_hazard"] * hz)
    seg["reminder_effect"] = _r(seg["reminder_effect"] * d.factor(ranges.reminder_effect_factor))
    peak = d.rng.uniform() < ranges.timing_peak_share
    if name == "corporate" or peak:
        seg["reminder_timing"] = _timing(d, ranges)
    seg["amount_median"] = _r(seg["amount_median"] * d.factor(ranges.amount_factor))
    c = seg["complaint"]
    c["base"] = min(1.0, _r(c["base"] * d.factor(ranges.complaint_factor)))
    seg["dispute_start"] = min(1.0, _r(seg["dispute_start"] * d.factor(ranges.dispute_factor)))
    if name == "corporate":
        seg["weekday_factors"] = [d.uniform(ranges.weekday_factor) for _ in range(5)]
    if name == "family_business":
        c["early_days"] = d.integer(ranges.early_complaint_days)
    if name in ("startup", "saas"):
        seg["calendar"] = d.choice(ranges.startup_calendars if name == "startup"
                                   else ranges.saas_calendars)
        seg["calendar_peak"] = d.uniform(ranges.calendar_peak)
        seg["calendar_off_peak"] = d.uniform(ranges.calendar_off_peak)
    if name == "construction":
        seg["milestone_days"] = [d.integer(ranges.milestone_first),
                                 d.integer(ranges.milestone_last)]
        seg["before_milestone_factor"] = d.uniform(ranges.before_milestone_factor)


def _jurisdictions(d: _Draw, ranges: FamilyRanges) -> dict[str, dict[str, Any]]:
    pool = ranges.jurisdiction_pool
    k = d.integer(ranges.jurisdiction_count)
    picked = sorted(int(i) for i in d.rng.choice(len(pool), size=k, replace=False))
    weights = d.shares(np.ones(k), floor=0.05)
    return {pool[i][0]: {"weight": w, "currency": pool[i][1], "language": pool[i][2]}
            for i, w in zip(picked, weights, strict=True)}


def _logging_policy(d: _Draw, ranges: FamilyRanges) -> dict[str, Any]:
    first = d.integer(ranges.first_reminder_day)
    second = first + d.integer(ranges.reminder_spacing_days)
    third = second + d.integer(ranges.reminder_spacing_days)
    agency = third + d.integer(ranges.agency_after_days)
    second_channel = d.choice(("letter", "email"))
    return {
        "schedule": [["email", first], [second_channel, second], ["final_notice", third],
                     ["agency", agency]],
        "jitter_days": d.integer(ranges.jitter_days),
        "other_channel_probability": d.uniform(ranges.other_channel_probability),
        "min_gap_days": 7,
        "explore": d.uniform(ranges.explore),
        "epsilon": d.uniform(ranges.epsilon),
    }


def default_scenario_data() -> dict[str, Any]:
    """The parsed mapping of the packaged default scenario (the family's template)."""
    return yaml.safe_load((SCENARIO_DIR / "default.yaml").read_text(encoding="utf-8"))


def sample_scenario(seed: int, index: int, ranges: FamilyRanges = RANGES,
                    template: dict[str, Any] | None = None) -> dict[str, Any]:
    """Company ``index`` of sampler seed ``seed``: a scenario mapping (validated).

    Raises ``engine.errors.InputError`` if the ranges produced an invalid file (a bug of
    the ranges, not of the user: the tests sample many companies to rule it out).
    """
    data = copy.deepcopy(template if template is not None else default_scenario_data())
    d = _Draw(np.random.default_rng([int(seed), int(index)]))
    data["name"] = f"sampled-{seed}-{index:03d}"
    data["description"] = (f"Company {index} of the scenario family, sampler seed {seed} "
                           f"(family version {FAMILY_VERSION}; ranges: "
                           "simulations/world/family.py).")
    segs = data["segments"]
    default_w = np.array([segs[s]["weight"] for s in SEGMENTS], float)
    weights = d.shares(ranges.segment_concentration * default_w / default_w.sum(),
                       floor=ranges.segment_floor)
    for s, w in zip(SEGMENTS, weights, strict=True):
        segs[s]["weight"] = w
        _segment(d, s, segs[s], ranges)
    data["jurisdictions"] = _jurisdictions(d, ranges)
    econ = data["economics"]
    econ["costs"] = {k: _r(v * d.factor(ranges.cost_factor)) for k, v in econ["costs"].items()}
    econ["complaint_cost"] = d.uniform(ranges.complaint_cost)
    econ["annual_discount_rate"] = d.uniform(ranges.annual_discount_rate)
    econ["agency_fee_share"] = d.uniform(ranges.agency_fee_share)
    econ["agency_recovery_probability"] = d.uniform(ranges.agency_recovery)
    econ["agency_delay_days"] = d.integer(ranges.agency_delay_days)
    data["logging_policy"] = _logging_policy(d, ranges)
    cust = data.setdefault("customers", {})
    cust["opted_out_share"] = d.uniform(ranges.opted_out_share)
    cust["reminder_fee_agreed_share"] = d.uniform(ranges.reminder_fee_agreed_share)
    scenario_from_dict(data, source=data["name"])  # fail here, not in a user's run
    return data


def scenario_yaml(data: dict[str, Any], seed: int, index: int) -> str:
    """The file text: a header naming where it came from, then the mapping (keys in the
    default scenario's order, leaf lists inline)."""
    header = (f"# Sampled by `dunning scenarios sample --seed {seed}` (company {index}, family "
              f"version {FAMILY_VERSION}).\n# Ranges: simulations/world/family.py "
              "(FamilyRanges); structure: simulations/scenarios/default.yaml.\n")
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100,
                          allow_unicode=True)
    return header + body


def write_family(n: int, seed: int, out_dir: str | Path,
                 ranges: FamilyRanges = RANGES) -> list[Path]:
    """Write companies ``0..n-1`` of sampler seed ``seed`` to ``out_dir/<name>.yaml``
    (atomically, one file each); returns the paths in index order."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out = Path(out_dir)
    template = default_scenario_data()
    paths = []
    for i in range(n):
        data = sample_scenario(seed, i, ranges, template)
        path = out / f"{data['name']}.yaml"
        atomic_write_text(path, scenario_yaml(data, seed, i))
        paths.append(path)
    return paths
