"""ROI calculator: evaluation KPIs of two policies -> money for one company's own figures.

The KPIs come from the evaluation harness (``evaluation.json``) or the demo
(``dunning-data/results.json``): per policy ``mean_days_to_pay`` (days from invoice to
payment), ``reminders_per_invoice``, ``first_reminder_pay_rate`` (share in [0, 1]),
``complaints_per_1000``, ``violations`` and, when present, ``write_off_rate`` (share of
invoices never paid; used as the share of the invoiced amount lost, i.e. amounts are assumed
independent of payment) and ``agency_rate`` (share of invoices handed to an agency, or
``agency_per_1000`` / 1000).

Every business figure is a field of :class:`RoiInputs` with a documented default; the
yearly benefit is the sum of four parts (all in EUR per year):

- liquidity: ``days_to_pay_reduction * annual_revenue / 365 * cost_of_capital`` (receivables
  that no longer need financing, DSO change times daily revenue, times the cost of capital);
- reminders saved: ``reminders_per_invoice reduction * invoices_per_year * cost_per_reminder``;
- staff time: ``staff_fte_saved * fte_cost``;
- losses avoided: the company's own bad debt (``bad_debt_rate * annual_revenue``) times
  the relative reduction of the simulated loss share, where a policy's loss share is
  ``write_off_rate + agency_rate * (1 - agency_recovery_rate * (1 - agency_fee_rate))``
  (a written-off invoice is lost; a handed-over one loses what the agency does not
  recover plus its fee on what it does). Relative, not absolute: the simulated company
  writes off what is unpaid 120 days after due (about 30 % of invoices under the fixed
  schedule, which never hands over), far more than a real company's bad debt, so the
  absolute rate difference times revenue overstated the saving about 50-fold; and an
  invoice handed to the agency is not a saved write-off but a partial recovery, so a
  policy that hands over more pays for it here. When the current loss share is 0 the
  absolute difference times revenue is used;

minus ``running_cost_per_year``. ``one_off_cost`` gives the payback period.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from engine.errors import InputError

KPI_NAMES: tuple[str, ...] = (
    "npv",
    "mean_days_to_pay",
    "first_reminder_pay_rate",
    "reminders_per_invoice",
    "complaints_per_1000",
    "violations",
    "write_off_rate",
    "agency_rate",
)
REQUIRED_KPIS: tuple[str, ...] = ("mean_days_to_pay", "reminders_per_invoice")

# The approach rarely pays off below these (practitioners' rule of thumb; documented).
MIN_ACTIVE_CUSTOMERS = 100
MAX_FIRST_REMINDER_PAY_RATE = 0.90


@dataclass(frozen=True)
class RoiInputs:
    """A company's own figures. Money in EUR, rates as fractions, time in years unless named.

    Attributes:
        annual_revenue: amount invoiced per year (EUR); daily revenue is this / 365.
        invoices_per_year: number of invoices issued per year.
        active_customers: customers invoiced in the last 12 months.
        cost_of_capital: yearly cost of financing receivables (0.03 = 3 %).
        cost_per_reminder: full cost of one reminder (staff, postage, system), EUR.
        staff_fte_saved: share of a full-time employee no longer needed for dunning.
        fte_cost: yearly cost of one full-time employee, EUR.
        agency_fee_rate: share of a recovered amount the collection agency keeps.
        agency_recovery_rate: share of handed-over claims the agency recovers.
        bad_debt_rate: the company's yearly losses on receivables (write-offs and agency
            shortfall) as a share of revenue today; losses avoided scale this.
        one_off_cost: setup cost (integration, pilot, training), EUR.
        running_cost_per_year: operating cost (hosting, model upkeep, review time), EUR.
    """

    annual_revenue: float = 10_000_000.0
    invoices_per_year: float = 5_000.0
    active_customers: int = 400
    cost_of_capital: float = 0.03
    cost_per_reminder: float = 12.0
    staff_fte_saved: float = 0.3
    fte_cost: float = 50_000.0
    agency_fee_rate: float = 0.15
    agency_recovery_rate: float = 0.6
    bad_debt_rate: float = 0.01
    one_off_cost: float = 30_000.0
    running_cost_per_year: float = 10_000.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or math.isnan(value) or value < 0:
                raise InputError(f"ROI input {f.name}: found {value!r}, expected a number >= 0")
        for name in ("agency_fee_rate", "agency_recovery_rate", "bad_debt_rate"):
            if getattr(self, name) > 1:
                raise InputError(f"ROI input {name}: found {getattr(self, name)!r}, expected "
                                 "a share in [0, 1]")
        if self.invoices_per_year == 0:
            raise InputError("ROI input invoices_per_year: found 0, expected a number > 0")


@dataclass(frozen=True)
class PolicyKpis:
    """Evaluation KPIs of one policy (means over seeds; ``None`` when not reported)."""

    mean_days_to_pay: float
    reminders_per_invoice: float
    first_reminder_pay_rate: float | None = None
    npv: float | None = None
    complaints_per_1000: float | None = None
    violations: float | None = None
    write_off_rate: float | None = None
    agency_rate: float | None = None

    @classmethod
    def from_mapping(cls, kpis: Mapping[str, Any], where: str = "results") -> PolicyKpis:
        """Read KPIs from a results dict; a KPI may be a number or ``{"mean": x, ...}``."""
        if "overall" in kpis and isinstance(kpis["overall"], Mapping):
            kpis = kpis["overall"]
        if "agency_rate" not in kpis and "agency_per_1000" in kpis:
            per_1000 = kpis["agency_per_1000"]
            per_1000 = per_1000.get("mean") if isinstance(per_1000, Mapping) else per_1000
            kpis = {**kpis, "agency_rate": None if per_1000 is None else float(per_1000) / 1000}
        values: dict[str, float | None] = {}
        for name in KPI_NAMES:
            raw = kpis.get(name)
            if isinstance(raw, Mapping):
                raw = raw.get("mean", raw.get("value"))
            if raw is None:
                if name in REQUIRED_KPIS:
                    raise InputError(f"{where}: KPI {name!r} is missing, expected a number")
                values[name] = None
                continue
            try:
                values[name] = float(raw)
            except (TypeError, ValueError):
                raise InputError(
                    f"{where}: KPI {name!r} is {raw!r}, expected a number"
                ) from None
        return cls(**values)  # type: ignore[arg-type]


def load_results(path: Path) -> dict[str, PolicyKpis]:
    """Per-policy KPIs from ``results.json`` or ``evaluation.json``.

    Accepts ``{"policies": {name: kpis}}`` or ``{name: kpis}``; ``kpis`` may nest the
    overall figures under ``"overall"``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found, expected evaluation results (JSON)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    return parse_results(data, where=str(path))


def parse_results(data: Mapping[str, Any], where: str = "results") -> dict[str, PolicyKpis]:
    """Per-policy KPIs from an already loaded results mapping (see :func:`load_results`)."""
    policies = None
    if isinstance(data, Mapping):
        # evaluation.json: {"overall": {policy: {kpi: {...}}}, "policies": [names]};
        # results.json: {"policies": {policy: {kpi: value}}}; or just {policy: {...}}.
        if isinstance(data.get("overall"), Mapping):
            policies = data["overall"]
        elif isinstance(data.get("policies"), Mapping):
            policies = data["policies"]
        else:
            policies = data
    if not isinstance(policies, Mapping):
        raise InputError(f"{where}: expected an object of policies, found {type(data).__name__}")
    out: dict[str, PolicyKpis] = {}
    for name, kpis in policies.items():
        if isinstance(kpis, Mapping) and any(
            k in kpis or k in kpis.get("overall", {}) for k in REQUIRED_KPIS
        ):
            out[str(name)] = PolicyKpis.from_mapping(kpis, where=f"{where}: policy {name!r}")
    if not out:
        raise InputError(f"{where}: no policy with KPIs {', '.join(REQUIRED_KPIS)} found")
    return out


@dataclass(frozen=True)
class KpiChange:
    """What the proposed policy changes against the current one (positive = better), and
    the current policy's write-off and agency rates (the base of the relative loss)."""

    days_to_pay_reduction: float
    reminders_saved_per_invoice: float
    write_off_rate_reduction: float
    agency_rate_reduction: float
    current_write_off_rate: float = 0.0
    current_agency_rate: float = 0.0

    @classmethod
    def between(cls, current: PolicyKpis, proposed: PolicyKpis) -> KpiChange:
        def drop(a: float | None, b: float | None) -> float:
            return 0.0 if a is None or b is None else a - b

        return cls(
            days_to_pay_reduction=current.mean_days_to_pay - proposed.mean_days_to_pay,
            reminders_saved_per_invoice=(
                current.reminders_per_invoice - proposed.reminders_per_invoice
            ),
            write_off_rate_reduction=drop(current.write_off_rate, proposed.write_off_rate),
            agency_rate_reduction=drop(current.agency_rate, proposed.agency_rate),
            current_write_off_rate=current.write_off_rate or 0.0,
            current_agency_rate=current.agency_rate or 0.0,
        )


@dataclass(frozen=True)
class RoiResult:
    """The business case. Money in EUR per year unless named; ``None`` when not viable."""

    viable: bool
    reasons: tuple[str, ...]
    change: KpiChange
    liquidity: float | None = None
    reminders_saved: float | None = None
    staff_time_saved: float | None = None
    losses_avoided: float | None = None
    running_cost: float | None = None
    yearly_benefit: float | None = None
    one_off_cost: float | None = None
    payback_months: float | None = None
    break_even_month: int | None = None
    three_year_net: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["reasons"] = list(self.reasons)
        return out


def viability_reasons(
    inputs: RoiInputs, current: PolicyKpis, proposed: PolicyKpis
) -> list[str]:
    """Why the approach is unlikely to pay off for these inputs (empty list: no objection)."""
    reasons = []
    if inputs.active_customers < MIN_ACTIVE_CUSTOMERS:
        reasons.append(
            f"only {inputs.active_customers} active customers (< {MIN_ACTIVE_CUSTOMERS}): too "
            "few to learn per-segment timing and to run a pilot that can detect an effect"
        )
    rate = current.first_reminder_pay_rate
    if rate is not None and rate > MAX_FIRST_REMINDER_PAY_RATE:
        reasons.append(
            f"the current first-reminder pay rate is already {rate:.0%} "
            f"(> {MAX_FIRST_REMINDER_PAY_RATE:.0%}): little left to gain"
        )
    if proposed.violations is not None and proposed.violations > 0:
        reasons.append(
            f"the proposed policy has {proposed.violations:g} legal violations in evaluation; "
            "it must have 0 before any rollout"
        )
    return reasons


def agency_loss_share(inputs: RoiInputs) -> float:
    """Share of a handed-over amount that is lost: not recovered, or kept as the fee."""
    return 1.0 - inputs.agency_recovery_rate * (1.0 - inputs.agency_fee_rate)


def losses_avoided(inputs: RoiInputs, change: KpiChange) -> float:
    """EUR per year: ``bad_debt_rate * revenue`` times the relative drop of the loss share
    (see module docstring); the absolute drop times revenue when the current share is 0."""
    u = agency_loss_share(inputs)
    current = change.current_write_off_rate + change.current_agency_rate * u
    drop = change.write_off_rate_reduction + change.agency_rate_reduction * u
    if current <= 0:
        return drop * inputs.annual_revenue
    return inputs.bad_debt_rate * inputs.annual_revenue * drop / current


def benefit_parts(inputs: RoiInputs, change: KpiChange) -> dict[str, float]:
    """The four benefit parts and the running cost, EUR per year (see module docstring)."""
    daily_revenue = inputs.annual_revenue / 365.0
    return {
        "liquidity": change.days_to_pay_reduction * daily_revenue * inputs.cost_of_capital,
        "reminders_saved": (
            change.reminders_saved_per_invoice * inputs.invoices_per_year
            * inputs.cost_per_reminder
        ),
        "staff_time_saved": inputs.staff_fte_saved * inputs.fte_cost,
        "losses_avoided": losses_avoided(inputs, change),
        "running_cost": inputs.running_cost_per_year,
    }


def yearly_benefit(inputs: RoiInputs, change: KpiChange) -> float:
    """Net benefit per year in EUR: the benefit parts minus the running cost."""
    parts = benefit_parts(inputs, change)
    running = parts.pop("running_cost")
    return sum(parts.values()) - running


def compute_roi(
    current: PolicyKpis, proposed: PolicyKpis, inputs: RoiInputs | None = None
) -> RoiResult:
    """The business case of replacing ``current`` by ``proposed``.

    When :func:`viability_reasons` objects, the result carries the reasons and no money
    figures (a number would suggest a precision the situation does not have).
    """
    inputs = inputs or RoiInputs()
    change = KpiChange.between(current, proposed)
    reasons = viability_reasons(inputs, current, proposed)
    if reasons:
        return RoiResult(viable=False, reasons=tuple(reasons), change=change)
    parts = benefit_parts(inputs, change)
    net = yearly_benefit(inputs, change)
    if net > 0:
        payback = 12.0 * inputs.one_off_cost / net
        break_even = max(1, math.ceil(payback))
    else:
        payback, break_even = None, None
        reasons.append(
            f"the net yearly benefit is {net:,.0f} EUR (<= 0): the change does not pay back"
        )
    return RoiResult(
        viable=net > 0,
        reasons=tuple(reasons),
        change=change,
        liquidity=parts["liquidity"],
        reminders_saved=parts["reminders_saved"],
        staff_time_saved=parts["staff_time_saved"],
        losses_avoided=parts["losses_avoided"],
        running_cost=parts["running_cost"],
        yearly_benefit=net,
        one_off_cost=inputs.one_off_cost,
        payback_months=payback,
        break_even_month=break_even,
        three_year_net=3 * net - inputs.one_off_cost,
    )


# Inputs the tornado varies: every money/rate input that moves the yearly benefit, plus the
# KPI changes themselves (the evaluation's estimate is an input with its own uncertainty).
TORNADO_INPUTS: tuple[str, ...] = (
    "annual_revenue", "invoices_per_year", "cost_of_capital", "cost_per_reminder",
    "staff_fte_saved", "fte_cost", "agency_fee_rate", "agency_recovery_rate", "bad_debt_rate",
    "running_cost_per_year",
)
TORNADO_CHANGES: tuple[str, ...] = (
    "days_to_pay_reduction", "reminders_saved_per_invoice", "write_off_rate_reduction",
    "agency_rate_reduction",
)


_SHARES = frozenset({"agency_fee_rate", "agency_recovery_rate", "bad_debt_rate"})


def _varied(name: str, value: float, factor: float) -> float:
    """``value * factor``; shares stay at most 1."""
    return min(value * factor, 1.0) if name in _SHARES else value * factor


@dataclass(frozen=True)
class TornadoBar:
    """Yearly benefit (EUR) with one input at ``-variation`` and ``+variation``."""

    name: str
    low: float
    high: float

    @property
    def swing(self) -> float:
        return abs(self.high - self.low)


def sensitivity(
    inputs: RoiInputs, change: KpiChange, variation: float = 0.2
) -> list[TornadoBar]:
    """Vary each input by ``+-variation`` (0.2 = 20 %) alone; bars sorted by swing, largest first.

    Inputs that do not move the benefit (value 0, or no KPI change they scale) are left out.
    """
    if not 0 < variation < 1:
        raise InputError(f"variation: found {variation}, expected a fraction in (0, 1)")
    bars = []
    for name in TORNADO_INPUTS:
        if getattr(inputs, name) == 0:
            continue
        low, high = (
            yearly_benefit(replace(inputs, **{name: _varied(name, getattr(inputs, name), f)}),
                           change)
            for f in (1 - variation, 1 + variation)
        )
        bars.append(TornadoBar(name, low, high))
    for name in TORNADO_CHANGES:
        if getattr(change, name) == 0:
            continue
        low, high = (
            yearly_benefit(inputs, replace(change, **{name: getattr(change, name) * f}))
            for f in (1 - variation, 1 + variation)
        )
        bars.append(TornadoBar(name, low, high))
    return sorted((b for b in bars if b.swing > 0), key=lambda b: b.swing, reverse=True)


def tornado_svg(bars: list[TornadoBar], base: float, variation: float) -> str:
    """A tornado chart (inline SVG): horizontal bars of yearly benefit around ``base``."""
    if not bars:
        return ""
    from dunning.report.charts import figure_to_svg, pyplot

    plt = pyplot()
    ordered = bars[::-1]  # largest swing on top
    fig, ax = plt.subplots(figsize=(6.0, 0.35 * len(bars) + 1.0))
    for i, bar in enumerate(ordered):
        lo, hi = min(bar.low, bar.high), max(bar.low, bar.high)
        ax.barh(i, lo - base, left=base, color="#e45756")
        ax.barh(i, hi - base, left=base, color="#4c78a8")
    ax.axvline(base, color="black", linewidth=0.8)
    ax.set_yticks(range(len(ordered)), [b.name.replace("_", " ") for b in ordered])
    ax.set_xlabel(f"yearly benefit, EUR (each input -/+ {variation:.0%})")
    ax.set_title("What the business case depends on")
    return figure_to_svg(fig)


def roi_section(
    results: Mapping[str, Any] | Path | str,
    current: str = "fixed",
    proposed: str = "rl",
    inputs: RoiInputs | None = None,
    variation: float = 0.2,
    chart: bool = True,
) -> dict[str, Any]:
    """Everything the HTML report shows about the business case, as plain data.

    ``results`` is a results mapping or a path to ``results.json`` / ``evaluation.json``.
    Returns ``{"current", "proposed", "inputs", "viable", "reasons", "figures", "tornado",
    "tornado_svg"}``; ``figures`` is :meth:`RoiResult.to_dict`, ``tornado`` a list of
    ``{"name", "low", "high", "swing"}`` (EUR per year), empty when not viable.
    """
    inputs = inputs or RoiInputs()
    policies = (
        load_results(Path(results)) if isinstance(results, str | Path)
        else parse_results(results)
    )
    for name in (current, proposed):
        if name not in policies:
            raise InputError(
                f"results: policy {name!r} not found, expected one of {sorted(policies)}"
            )
    result = compute_roi(policies[current], policies[proposed], inputs)
    bars = sensitivity(inputs, result.change, variation) if result.yearly_benefit is not None \
        else []
    return {
        "current": current,
        "proposed": proposed,
        "inputs": asdict(inputs),
        "viable": result.viable,
        "reasons": list(result.reasons),
        "figures": result.to_dict(),
        "variation": variation,
        "tornado": [
            {"name": b.name, "low": b.low, "high": b.high, "swing": b.swing} for b in bars
        ],
        "tornado_svg": (
            tornado_svg(bars, result.yearly_benefit, variation)
            if chart and bars and result.yearly_benefit is not None else ""
        ),
    }
