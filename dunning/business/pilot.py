"""Pilot design and analysis: a randomised comparison of the current and the learned policy.

Design
    Customers (not invoices) are randomised, because a policy acts on a customer's whole
    account and invoices of one customer are correlated. :func:`assign_arms` draws
    ``n_customers`` customers and, within each stratum (e.g. segment), alternates them over
    the two arms after a seeded shuffle, so arms are balanced per stratum.

Power
    :func:`power_analysis` uses the outcome's variance ``sd**2`` and the intra-customer
    correlation ``icc`` observed in the company's history (:func:`outcome_stats`). A customer
    with ``m`` eligible invoices in the pilot contributes a customer mean with variance
    ``sd**2 * (1 + (m - 1) * icc) / m``; with ``k`` customers per arm the difference of arm
    means is detectable (two-sided ``alpha``, ``power``) when
    ``effect >= (z_{1-alpha/2} + z_{power}) * sqrt(2 * sd**2 * (1 + (m - 1) * icc) / (m * k))``.
    ``m`` grows with the pilot's enrolment duration, but the customer-level part of the
    variance does not shrink: with a large ``icc`` more months cannot replace customers.

Analysis
    :func:`compare_arms` compares customer means per arm (Welch's t-test and interval, or a
    customer-level bootstrap), the unit that was randomised.

Safety guard (sequential)
    :func:`safety_guard` looks at the cumulative data at up to ``max_looks`` dates. At each
    look the pilot stops when (a) the learned arm has any legal violation, or (b) its
    complaints per invoice exceed the current arm's in a one-sided exact conditional test
    (given the total number of complaints, the learned arm's count is binomial with
    probability = its share of invoices) at ``alpha_per_look = overall_alpha / max_looks``
    (Bonferroni over the looks: the chance of a false stop over the whole pilot is at most
    ``overall_alpha``; conservative, since the looks are positively correlated).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from dunning.business.outcomes import BINARY_METRICS, check_metric
from engine.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

ARMS: tuple[str, str] = ("current", "learned")
DEFAULT_PILOT_CUSTOMERS = 250
# Days after enrolment until an invoice's outcome is known (invoice -> due -> reminders).
OUTCOME_LAG_DAYS: dict[str, int] = {
    "first_reminder_pay_rate": 75, "days_to_pay": 120, "npv": 120,
}
# Effect to power for when the user gives none: a difference a finance lead would act on.
DEFAULT_EFFECT: dict[str, float] = {
    "first_reminder_pay_rate": 0.05, "days_to_pay": 5.0, "npv": 0.02,  # npv: share of mean
}


# ------------------------------------------------------------------------------- power
@dataclass(frozen=True)
class OutcomeStats:
    """The history a power analysis needs, for one metric.

    Attributes:
        metric: one of ``dunning.business.outcomes.METRICS``.
        mean: mean outcome per eligible invoice (share for a rate, days, EUR).
        sd: standard deviation per eligible invoice (same unit).
        icc: intra-customer correlation of the outcome, in [0, 1).
        eligible_per_customer_month: eligible invoices per active customer per month.
        n_customers, n_invoices: how much history the figures rest on.
        source: where they come from (store file, results file).
    """

    metric: str
    mean: float
    sd: float
    icc: float
    eligible_per_customer_month: float
    n_customers: int
    n_invoices: int
    source: str = ""


def outcome_stats(outcomes: pd.DataFrame, metric: str, source: str = "") -> OutcomeStats:
    """Mean, sd, ICC and eligibility rate of ``metric`` from per-invoice outcomes.

    ``outcomes`` has at least customer_id, invoice_date and the metric column (see
    :func:`dunning.business.outcomes.invoice_outcomes`); rows with a missing metric are not
    eligible (e.g. never reminded). The ICC is the one-way ANOVA estimator, clipped to [0, 1).
    """

    check_metric(metric)
    rows = outcomes[outcomes[metric].notna()]
    if len(rows) < 10 or rows["customer_id"].nunique() < 2:
        raise InputError(
            f"{source or 'history'}: only {len(rows)} invoices with a known {metric}, "
            "expected at least 10 over at least 2 customers"
        )
    y = rows[metric].to_numpy(float)
    groups = rows.groupby("customer_id")[metric]
    sizes = groups.size().to_numpy(float)
    means = groups.mean().to_numpy(float)
    n, g = len(y), len(sizes)
    grand = y.mean()
    ss_between = float((sizes * (means - grand) ** 2).sum())
    ss_within = float(((y - rows.groupby("customer_id")[metric].transform("mean")) ** 2).sum())
    msb = ss_between / max(g - 1, 1)
    msw = ss_within / max(n - g, 1)
    n0 = (n - (sizes**2).sum() / n) / max(g - 1, 1)
    icc = (msb - msw) / (msb + (n0 - 1) * msw) if msb + (n0 - 1) * msw > 0 else 0.0
    span_days = (outcomes["invoice_date"].max() - outcomes["invoice_date"].min()).days + 1
    months = max(span_days / 30.44, 1.0)
    active = outcomes["customer_id"].nunique()
    return OutcomeStats(
        metric=metric,
        mean=float(grand),
        sd=float(y.std(ddof=1)),
        icc=float(min(max(icc, 0.0), 0.99)),
        eligible_per_customer_month=float(n / active / months),
        n_customers=int(active),
        n_invoices=int(n),
        source=source,
    )


RESULT_KPI_OF_METRIC: dict[str, str] = {
    "first_reminder_pay_rate": "first_reminder_pay_rate", "days_to_pay": "mean_days_to_pay",
    "npv": "npv",
}


def stats_from_results(
    results: dict[str, Any], metric: str, policy: str = "fixed", icc: float = 0.0,
    eligible_per_customer_month: float = 1.0, source: str = "results",
) -> OutcomeStats:
    """:class:`OutcomeStats` from simulated KPIs (``results.json``) of the ``policy`` arm.

    Simulation results hold means, not the spread between invoices: a rate uses the
    binomial variance; ``days_to_pay``/``npv`` need a ``<kpi>_sd`` entry (e.g.
    ``mean_days_to_pay_sd``). ``icc`` and the eligibility rate are assumptions the caller
    states (the store gives both; prefer it).
    """
    check_metric(metric)
    policies = results.get("overall") if isinstance(results.get("overall"), dict) else \
        results.get("policies", results)
    if not isinstance(policies, dict) or policy not in policies:
        raise InputError(f"{source}: policy {policy!r} not found, expected one of "
                         f"{sorted(policies) if isinstance(policies, dict) else []}")
    kpis = policies[policy]
    kpis = kpis.get("overall", kpis)
    key = RESULT_KPI_OF_METRIC[metric]

    def number(name: str) -> float:
        raw = kpis.get(name)
        raw = raw.get("mean") if isinstance(raw, dict) else raw
        if raw is None:
            raise InputError(f"{source}: policy {policy!r} has no {name!r}; the spread of "
                             f"{metric} is only known from history: use --db")
        return float(raw)

    mean = number(key)
    sd = math.sqrt(mean * (1 - mean)) if metric in BINARY_METRICS else number(f"{key}_sd")
    return OutcomeStats(metric, mean, sd, icc, eligible_per_customer_month, 0, 0, source)


@dataclass(frozen=True)
class PowerAnalysis:
    """Sample size and duration for a two-arm pilot (see module docstring for the formula).

    ``effect`` is in the metric's unit (share, days, EUR). ``months_needed`` is the
    enrolment duration ``n_customers`` need to detect ``effect`` (``None``: impossible at
    any duration because of the customer-level variance); ``total_months`` adds the days
    until outcomes are known. ``customers_needed`` is the total for ``months``.
    ``mde`` is the smallest effect ``n_customers`` detect in ``months``.
    """

    metric: str
    effect: float
    alpha: float
    power: float
    n_customers: int
    months: float
    baseline: float
    sd: float
    icc: float
    eligible_per_customer_month: float
    invoices_per_arm_if_independent: int
    customers_needed: int | None
    months_needed: float | None
    total_months: float | None
    mde: float
    mde_relative: float | None
    stats: OutcomeStats = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _z(alpha: float, power: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2) + norm.ppf(power))


def _variance(stats: OutcomeStats, effect: float) -> float:
    if stats.metric in BINARY_METRICS:
        p1 = stats.mean
        p2 = min(max(p1 + effect, 0.0), 1.0)
        return (p1 * (1 - p1) + p2 * (1 - p2)) / 2
    return stats.sd**2


def power_analysis(
    stats: OutcomeStats,
    effect: float | None = None,
    n_customers: int = DEFAULT_PILOT_CUSTOMERS,
    months: float = 3.0,
    alpha: float = 0.05,
    power: float = 0.8,
) -> PowerAnalysis:
    """Customers and months a pilot needs to detect ``effect`` on ``stats.metric``.

    ``effect`` defaults to :data:`DEFAULT_EFFECT` (npv: as a share of the mean). For a rate
    the variance is the binomial one at the baseline and baseline + effect.
    """
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise InputError(f"alpha/power: found {alpha}/{power}, expected fractions in (0, 1)")
    if n_customers < 4:
        raise InputError(f"customers: found {n_customers}, expected at least 4 (2 per arm)")
    if months <= 0:
        raise InputError(f"months: found {months}, expected > 0")
    if effect is None:
        effect = DEFAULT_EFFECT[stats.metric]
        if stats.metric == "npv":
            effect *= abs(stats.mean)
    effect = abs(float(effect))
    if effect == 0:
        raise InputError("effect: found 0, expected the smallest difference worth detecting")
    z = _z(alpha, power)
    var = _variance(stats, effect)
    icc, rate = stats.icc, stats.eligible_per_customer_month
    n_indep = math.ceil(2 * z**2 * var / effect**2)
    m = max(rate * months, 1e-9)
    inflation = (1 + (m - 1) * icc) / m  # variance of a customer mean / var
    customers_needed = 2 * math.ceil(n_indep * inflation) if rate > 0 else None
    per_arm = n_customers / 2
    denominator = per_arm - n_indep * icc
    if rate > 0 and denominator > 0:
        m_needed = n_indep * (1 - icc) / denominator
        months_needed: float | None = m_needed / rate
        total = months_needed + OUTCOME_LAG_DAYS[stats.metric] / 30.44
    else:
        months_needed, total = None, None
    mde = z * math.sqrt(2 * _variance(stats, 0.0) * inflation / per_arm)
    return PowerAnalysis(
        metric=stats.metric,
        effect=effect,
        alpha=alpha,
        power=power,
        n_customers=n_customers,
        months=months,
        baseline=stats.mean,
        sd=math.sqrt(var),
        icc=icc,
        eligible_per_customer_month=rate,
        invoices_per_arm_if_independent=n_indep,
        customers_needed=customers_needed,
        months_needed=months_needed,
        total_months=total,
        mde=mde,
        mde_relative=mde / abs(stats.mean) if stats.mean else None,
        stats=stats,
    )


# -------------------------------------------------------------------------- assignment
def assign_arms(
    customers: pd.DataFrame,
    n_customers: int = DEFAULT_PILOT_CUSTOMERS,
    stratify_by: str | None = "segment",
    seed: int = 0,
) -> pd.DataFrame:
    """Randomly pick ``n_customers`` and assign them to ``current``/``learned``.

    ``customers`` has a ``customer_id`` column and, when stratifying, the ``stratify_by``
    column (missing values form their own stratum ``"unknown"``). Returns a DataFrame
    ``(n_customers, 3)``: customer_id, arm, stratum; arms differ by at most one customer per
    stratum. Same seed, same assignment.
    """
    import numpy as np
    import pandas as pd

    if "customer_id" not in customers.columns:
        raise InputError("customers: column 'customer_id' is missing")
    if customers["customer_id"].duplicated().any():
        dup = customers.loc[customers["customer_id"].duplicated(), "customer_id"].iloc[0]
        raise InputError(f"customers: customer_id {dup!r} appears twice, expected unique ids")
    if stratify_by and stratify_by not in customers.columns:
        raise InputError(
            f"--stratify-by: column {stratify_by!r} not in customers, expected one of "
            f"{', '.join(map(str, customers.columns))}"
        )
    if not 2 <= n_customers <= len(customers):
        raise InputError(
            f"customers: asked for {n_customers}, expected 2..{len(customers)} (the number of "
            "customers available)"
        )
    rng = np.random.default_rng(seed)
    chosen = customers.iloc[rng.permutation(len(customers))[:n_customers]]
    strata = (
        chosen[stratify_by].astype("object").where(chosen[stratify_by].notna(), "unknown")
        .astype(str)
        if stratify_by else pd.Series("all", index=chosen.index)
    )
    arms = np.empty(len(chosen), dtype=object)
    positions = pd.Series(np.arange(len(chosen)), index=chosen.index)
    for _, idx in strata.groupby(strata, sort=True).groups.items():
        pos = positions.loc[idx].to_numpy()
        # Alternate after a shuffle; a random first arm so odd strata do not favour one arm.
        first = int(rng.integers(2))
        arms[pos] = [ARMS[(first + i) % 2] for i in range(len(pos))]
    out = pd.DataFrame({
        "customer_id": chosen["customer_id"].astype(str).to_numpy(),
        "arm": arms.astype(str),
        "stratum": strata.to_numpy(),
    })
    return out.sort_values("customer_id", ignore_index=True)


def read_assignment(path: Any) -> pd.DataFrame:
    """Read and check an assignment CSV (customer_id, arm, stratum)."""
    from pathlib import Path

    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found, expected an assignment CSV from "
                         "`dunning pilot design`")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in ("customer_id", "arm"):
        if col not in frame.columns:
            raise InputError(f"{path}: column {col!r} missing, expected customer_id,arm,stratum")
    bad = ~frame["arm"].isin(ARMS)
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise InputError(
            f"{path}: line {row + 2}: field arm is {frame['arm'].iloc[row]!r}, expected "
            f"{' or '.join(ARMS)}"
        )
    dup = frame["customer_id"].duplicated()
    if dup.any():
        row = int(dup.to_numpy().argmax())
        raise InputError(f"{path}: line {row + 2}: customer_id "
                         f"{frame['customer_id'].iloc[row]!r} is assigned twice")
    return frame


# ---------------------------------------------------------------------------- analysis
@dataclass(frozen=True)
class ArmSummary:
    """One arm: customer-level mean of the metric with its 95 % (1 - alpha) interval."""

    arm: str
    n_customers: int
    n_invoices: int
    mean: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Comparison:
    """Learned minus current, on customer means. ``significant``: CI excludes 0."""

    metric: str
    method: str
    alpha: float
    arms: tuple[ArmSummary, ArmSummary]
    difference: float
    ci_low: float
    ci_high: float
    p_value: float | None
    significant: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _customer_means(outcomes: pd.DataFrame, metric: str) -> pd.DataFrame:
    rows = outcomes[outcomes[metric].notna()]
    return rows.groupby(["arm", "customer_id"], observed=True)[metric].agg(["mean", "size"])


def compare_arms(
    outcomes: pd.DataFrame,
    metric: str,
    alpha: float = 0.05,
    method: str = "welch",
    n_boot: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Compare the arms on ``metric`` (learned - current) at the customer level.

    ``outcomes``: one row per invoice with customer_id, arm and the metric (missing =
    not eligible). ``method``: ``"welch"`` (t interval with Welch-Satterthwaite df) or
    ``"bootstrap"`` (percentile interval, customers resampled within arm).
    """
    import numpy as np
    from scipy import stats as st

    check_metric(metric)
    if method not in ("welch", "bootstrap"):
        raise InputError(f"method: found {method!r}, expected welch or bootstrap")
    cm = _customer_means(outcomes, metric)
    values, summaries = {}, []
    for arm in ARMS:
        if arm not in cm.index.get_level_values(0):
            raise InputError(f"pilot: no customer in arm {arm!r} has a known {metric}")
        part = cm.loc[arm]
        x = part["mean"].to_numpy(float)
        if len(x) < 2:
            raise InputError(f"pilot: arm {arm!r} has {len(x)} customer with a known {metric}, "
                             "expected at least 2")
        values[arm] = x
        half = st.t.ppf(1 - alpha / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
        summaries.append(ArmSummary(arm, len(x), int(part["size"].sum()), float(x.mean()),
                                    float(x.mean() - half), float(x.mean() + half)))
    a, b = values["current"], values["learned"]
    diff = float(b.mean() - a.mean())
    if method == "welch":
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else 1.0
        half = float(st.t.ppf(1 - alpha / 2, df) * se)
        lo, hi = diff - half, diff + half
        p = float(2 * st.t.sf(abs(diff) / se, df)) if se > 0 else (0.0 if diff else 1.0)
    else:
        rng = np.random.default_rng(seed)
        boot = np.array([
            rng.choice(b, len(b)).mean() - rng.choice(a, len(a)).mean() for _ in range(n_boot)
        ])
        lo, hi = (float(q) for q in np.quantile(boot, [alpha / 2, 1 - alpha / 2]))
        p = float(min(1.0, 2 * min((boot <= 0).mean(), (boot >= 0).mean())))
    return Comparison(
        metric=metric, method=method, alpha=alpha, arms=(summaries[0], summaries[1]),
        difference=diff, ci_low=lo, ci_high=hi, p_value=p, significant=not lo <= 0 <= hi,
    )


# ------------------------------------------------------------------------ safety guard
@dataclass(frozen=True)
class GuardLook:
    """Cumulative safety figures at one look date and the guard's decision."""

    date: str
    invoices_current: int
    invoices_learned: int
    complaints_current: int
    complaints_learned: int
    violations_learned: int
    p_value: float
    stop: bool
    reason: str


def complaint_p_value(c_learned: int, n_learned: int, c_current: int, n_current: int) -> float:
    """One-sided exact conditional p-value that the learned arm's complaint rate is higher.

    Given ``c_learned + c_current`` complaints, under equal rates per invoice the learned
    arm's count is Binomial(total, n_learned / (n_learned + n_current)).
    """
    from scipy.stats import binom

    total = c_learned + c_current
    if total == 0 or n_learned == 0:
        return 1.0
    share = n_learned / (n_learned + n_current)
    return float(binom.sf(c_learned - 1, total, share))


def safety_guard(
    events: pd.DataFrame,
    look_dates: list[Any],
    overall_alpha: float = 0.05,
    max_looks: int = 12,
) -> list[GuardLook]:
    """Apply the sequential stopping rule (module docstring) at each look date, in order.

    ``events``: one row per pilot invoice with ``arm``, ``invoice_date``, ``complaints``
    (count, dated at ``complaint_date`` if that column exists, else the invoice date) and an
    optional ``violations`` count. Looks stop at the first that fires; at most ``max_looks``.
    """
    import numpy as np
    import pandas as pd

    if len(look_dates) > max_looks:
        raise InputError(f"safety guard: {len(look_dates)} looks, expected at most {max_looks}")
    alpha_look = overall_alpha / max_looks
    looks: list[GuardLook] = []
    enrolled_on = events["invoice_date"].to_numpy("datetime64[ns]")
    counted_on = (events["complaint_date"] if "complaint_date" in events
                  else events["invoice_date"]).to_numpy("datetime64[ns]")
    learned = (events["arm"] == "learned").to_numpy()
    current = (events["arm"] == "current").to_numpy()
    complaints = events["complaints"].to_numpy(float)
    violations = (events["violations"].to_numpy(float) if "violations" in events
                  else np.zeros(len(events)))
    for look in look_dates:
        cutoff = pd.Timestamp(look)
        enrolled = enrolled_on <= cutoff.to_datetime64()
        counted = enrolled & (counted_on <= cutoff.to_datetime64())
        n = {"current": int((enrolled & current).sum()), "learned": int((enrolled & learned).sum())}
        c = {"current": int(complaints[counted & current].sum()),
             "learned": int(complaints[counted & learned].sum())}
        v = int(violations[counted & learned].sum())
        p = complaint_p_value(c["learned"], n["learned"], c["current"], n["current"])
        if v > 0:
            stop, reason = True, f"{v} legal violation(s) in the learned arm"
        elif p < alpha_look:
            stop, reason = True, (f"complaints higher in the learned arm (one-sided p={p:.4f} < "
                                  f"{alpha_look:.4f})")
        else:
            stop, reason = False, "continue"
        looks.append(GuardLook(str(cutoff.date()), n["current"], n["learned"], c["current"],
                               c["learned"], v, p, stop, reason))
        if stop:
            break
    return looks


def weekly_looks(start: Any, end: Any, max_looks: int = 12) -> list[Any]:
    """Look dates every 7 days from ``start`` + 7 to ``end`` (the last look on ``end``),
    thinned evenly to at most ``max_looks``."""
    import numpy as np
    import pandas as pd

    start, end = pd.Timestamp(start), pd.Timestamp(end)
    dates = list(pd.date_range(start + pd.Timedelta(days=7), end, freq="7D"))
    if not dates or dates[-1] < end:
        dates.append(end)
    if len(dates) > max_looks:
        idx = np.unique(np.linspace(0, len(dates) - 1, max_looks).round().astype(int))
        dates = [dates[i] for i in idx]
    return [d.date() for d in dates]


# ---------------------------------------------------------------------- whole analysis
def pilot_events(outcomes: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """Per pilot invoice: arm, invoice_date, complaints, complaint_date, violations.

    ``complaint_date`` is the invoice's first complaint (the invoice date if none).
    ``violations`` counts actions flagged in a ``violation`` column of the actions table
    (an extra column the audit trail may add); without it violations are 0 (not checked).
    """
    import pandas as pd

    flagged = actions[actions["complaint"].astype(bool)]
    first = flagged.groupby("invoice_id")["action_date"].min()
    events = outcomes[["invoice_id", "arm", "invoice_date", "complaints"]].copy()
    events["complaint_date"] = events["invoice_id"].map(first).fillna(events["invoice_date"])
    if "violation" in actions.columns:
        v = actions.assign(v=actions["violation"].astype(bool)).groupby("invoice_id")["v"].sum()
        events["violations"] = events["invoice_id"].map(v).fillna(0).astype(int)
    else:
        events["violations"] = pd.Series(0, index=events.index)
    return events


def analyse_pilot(
    assignment: pd.DataFrame, db: Any, start: Any = None,
    metrics: tuple[str, ...] | list[str] = ("first_reminder_pay_rate", "days_to_pay", "npv"),
    method: str = "welch", alpha: float = 0.05, max_looks: int = 12,
) -> dict[str, Any]:
    """Analyse a running or finished pilot from the store ``db``.

    Pilot invoices: those of assigned customers dated on or after ``start`` (all when
    ``None``). Returns ``{"start", "end", "n_invoices", "comparisons": [Comparison dicts],
    "skipped": [messages], "guard": [GuardLook dicts], "violations_checked": bool}``.
    """
    import pandas as pd

    from dunning.business.outcomes import invoice_outcomes, load_tables

    tables = load_tables(db)
    outcomes = invoice_outcomes(tables)
    arms = assignment.set_index("customer_id")["arm"]
    outcomes = outcomes[outcomes["customer_id"].isin(arms.index)]
    if start is not None:
        outcomes = outcomes[outcomes["invoice_date"] >= pd.Timestamp(start)]
    if outcomes.empty:
        raise InputError(f"{db}: no invoices of the {len(arms)} assigned customers"
                         + (f" dated on or after {start}" if start else ""))
    outcomes = outcomes.assign(arm=outcomes["customer_id"].map(arms).to_numpy())
    comparisons, skipped = [], []
    for metric in metrics:
        try:
            comparisons.append(compare_arms(outcomes, metric, alpha, method).to_dict())
        except InputError as exc:
            skipped.append(f"{metric}: skipped, {exc}")
    begin = start or outcomes["invoice_date"].min()
    end = max(outcomes["invoice_date"].max(), tables["actions"]["action_date"].max(),
              tables["payments"]["payment_date"].max())
    events = pilot_events(outcomes, tables["actions"])
    guard = safety_guard(events, weekly_looks(begin, end, max_looks), max_looks=max_looks)
    return {
        "start": str(pd.Timestamp(begin).date()),
        "end": str(pd.Timestamp(end).date()),
        "n_invoices": int(len(outcomes)),
        "comparisons": comparisons,
        "skipped": skipped,
        "guard": [asdict(g) for g in guard],
        "violations_checked": "violation" in tables["actions"].columns,
    }
