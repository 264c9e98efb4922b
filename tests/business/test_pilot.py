"""Pilot design and analysis against synthetic outcomes with a known (planted) effect."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from dunning.business.pilot import (
    ARMS,
    OutcomeStats,
    assign_arms,
    compare_arms,
    complaint_p_value,
    outcome_stats,
    power_analysis,
    read_assignment,
    safety_guard,
    weekly_looks,
)
from engine.errors import InputError


def customers(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": [f"C{i:04d}" for i in range(n)],
        "segment": rng.choice(["corporate", "startup", "saas", None], n),
    })


def simulate(n_customers: int, m: int, effect: float, icc: float, seed: int,
             binary_p: float | None = None) -> pd.DataFrame:
    """Invoices of a pilot: customer effect (variance icc) + noise (1 - icc), ``m`` per customer.

    With ``binary_p`` the outcome is 0/1 with a customer-level probability shift instead.
    """
    rng = np.random.default_rng(seed)
    arm = np.where(np.arange(n_customers) % 2 == 0, "current", "learned")
    cust = np.repeat(np.arange(n_customers), m)
    shift = np.where(arm[cust] == "learned", effect, 0.0)
    if binary_p is None:
        u = rng.normal(0, np.sqrt(icc), n_customers)[cust]
        y = u + shift + rng.normal(0, np.sqrt(1 - icc), len(cust))
    else:
        y = (rng.random(len(cust)) < binary_p + shift).astype(float)
    return pd.DataFrame({"customer_id": cust.astype(str), "arm": arm[cust], "days_to_pay": y,
                         "first_reminder_pay_rate": y})


# ------------------------------------------------------------------------ assignment
def test_assignment_is_balanced_per_stratum_and_seeded():
    c = customers()
    a = assign_arms(c, 250, "segment", seed=3)
    assert len(a) == 250 and a["customer_id"].is_unique
    assert set(a["customer_id"]) <= set(c["customer_id"])
    assert set(a["arm"]) == set(ARMS)
    counts = a.groupby(["stratum", "arm"]).size().unstack()
    assert (counts.max(axis=1) - counts.min(axis=1)).max() <= 1
    assert "unknown" in set(a["stratum"])  # missing segment is its own stratum
    # stratum is the customer's own segment
    seg = c.set_index("customer_id")["segment"].astype(object).fillna("unknown")
    assert (a["stratum"].to_numpy() == seg.loc[a["customer_id"]].to_numpy()).all()
    pd.testing.assert_frame_equal(a, assign_arms(c, 250, "segment", seed=3))
    assert not a.equals(assign_arms(c, 250, "segment", seed=4))


def test_assignment_without_strata_and_errors():
    a = assign_arms(customers(), 101, None, seed=0)
    assert abs((a["arm"] == "current").sum() - (a["arm"] == "learned").sum()) == 1
    assert set(a["stratum"]) == {"all"}
    with pytest.raises(InputError, match="asked for 1000"):
        assign_arms(customers(), 1000)
    with pytest.raises(InputError, match="'region' not in customers"):
        assign_arms(customers(), 10, "region")


def test_read_assignment_names_line_and_field(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("customer_id,arm,stratum\nC1,current,x\nC2,treatment,x\n")
    with pytest.raises(InputError, match=r"line 3: field arm is 'treatment'"):
        read_assignment(path)


# ----------------------------------------------------------------------------- power
def test_outcome_stats_recovers_a_planted_icc():
    frame = simulate(400, 6, 0.0, icc=0.3, seed=1)
    frame["invoice_date"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(
        np.arange(len(frame)) % 180, unit="D")
    s = outcome_stats(frame, "days_to_pay")
    assert s.icc == pytest.approx(0.3, abs=0.06)
    assert s.sd == pytest.approx(1.0, abs=0.05)
    assert s.n_customers == 400 and s.n_invoices == 2400


def stats(icc: float, rate: float = 2.0, sd: float = 1.0, mean: float = 0.0,
          metric: str = "days_to_pay") -> OutcomeStats:
    return OutcomeStats(metric, mean, sd, icc, rate, 1000, 10000)


def test_sample_size_has_the_nominal_power():
    """Simulate pilots of the size the analysis asks for: ~80 % of them detect the effect."""
    s = stats(icc=0.2, rate=2.0)
    pa = power_analysis(s, effect=0.3, months=3.0)
    k = pa.customers_needed
    hits = [compare_arms(simulate(k, 6, 0.3, 0.2, seed), "days_to_pay").significant
            for seed in range(150)]
    assert 0.68 <= np.mean(hits) <= 0.92


def test_null_effect_is_flagged_at_the_stated_rate():
    flags = [compare_arms(simulate(120, 4, 0.0, 0.2, seed), "days_to_pay").significant
             for seed in range(300)]
    assert 0.01 <= np.mean(flags) <= 0.09


def test_mde_is_the_effect_the_pilot_size_can_detect():
    s = stats(icc=0.1, rate=1.5)
    pa = power_analysis(s, effect=0.5, n_customers=250, months=4.0)
    at_mde = power_analysis(s, effect=pa.mde, n_customers=250, months=4.0)
    assert at_mde.customers_needed == pytest.approx(250, abs=2)
    assert at_mde.months_needed == pytest.approx(4.0, rel=0.01)
    assert at_mde.total_months > at_mde.months_needed  # outcome lag added


def test_customer_variance_caps_what_time_can_buy():
    # icc 0.5: even infinitely many invoices per customer leave var 0.5 per customer mean
    pa = power_analysis(stats(icc=0.5), effect=0.1, n_customers=250)
    assert pa.months_needed is None and pa.total_months is None
    assert power_analysis(stats(icc=0.0), effect=0.1, n_customers=250).months_needed > 0


def test_binary_metric_uses_binomial_variance():
    s = stats(icc=0.0, rate=1.0, sd=99.0, mean=0.25, metric="first_reminder_pay_rate")
    pa = power_analysis(s, effect=0.05)
    # classic two-proportion figure for 25 % -> 30 %: about 1,250 per arm
    assert 1_200 <= pa.invoices_per_arm_if_independent <= 1_300
    assert pa.sd == pytest.approx(np.sqrt((0.25 * 0.75 + 0.3 * 0.7) / 2))


def test_power_analysis_rejects_bad_input():
    with pytest.raises(InputError, match="effect"):
        power_analysis(stats(0.1), effect=0.0)
    with pytest.raises(InputError, match="customers"):
        power_analysis(stats(0.1), n_customers=2)


# -------------------------------------------------------------------------- analysis
@pytest.mark.parametrize("method", ["welch", "bootstrap"])
def test_compare_arms_finds_a_planted_effect(method):
    frame = simulate(300, 3, 0.4, 0.2, seed=7)
    c = compare_arms(frame, "days_to_pay", method=method)
    assert c.significant and c.ci_low <= 0.4 <= c.ci_high
    assert c.difference == pytest.approx(
        c.arms[1].mean - c.arms[0].mean)
    assert [a.arm for a in c.arms] == list(ARMS)


def test_compare_arms_on_a_rate():
    frame = simulate(800, 2, 0.12, 0.0, seed=2, binary_p=0.25)
    c = compare_arms(frame, "first_reminder_pay_rate")
    assert c.significant and c.ci_low <= 0.12 <= c.ci_high
    assert c.arms[0].mean == pytest.approx(0.25, abs=0.04)


def test_bootstrap_and_welch_agree_on_null_coverage():
    frame = simulate(200, 3, 0.0, 0.2, seed=11)
    w = compare_arms(frame, "days_to_pay")
    b = compare_arms(frame, "days_to_pay", method="bootstrap", n_boot=1000)
    assert b.ci_low == pytest.approx(w.ci_low, abs=0.05)
    assert b.ci_high == pytest.approx(w.ci_high, abs=0.05)


# ---------------------------------------------------------------------- safety guard
def guard_events(rate_current: float, rate_learned: float, seed: int, n: int = 1200,
                 days: int = 84) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = np.where(np.arange(n) % 2 == 0, "current", "learned")
    rate = np.where(arm == "learned", rate_learned, rate_current)
    start = pd.Timestamp("2025-01-01")
    return pd.DataFrame({
        "arm": arm,
        "invoice_date": start + pd.to_timedelta(rng.integers(0, days, n), unit="D"),
        "complaints": rng.poisson(rate),
    })


def test_exact_complaint_test():
    assert complaint_p_value(0, 100, 0, 100) == 1.0
    # 10 complaints all in the learned arm of equal size: 0.5 ** 10
    assert complaint_p_value(10, 100, 0, 100) == pytest.approx(0.5**10)
    assert complaint_p_value(5, 100, 5, 100) > 0.5


def test_guard_false_stop_rate_is_below_overall_alpha():
    looks = weekly_looks("2025-01-01", "2025-03-26")
    assert len(looks) == 12
    stops = [safety_guard(guard_events(0.05, 0.05, seed), looks)[-1].stop for seed in range(300)]
    assert np.mean(stops) <= 0.05


def test_guard_stops_when_complaints_triple():
    looks = weekly_looks("2025-01-01", "2025-03-26")
    results = [safety_guard(guard_events(0.05, 0.15, seed), looks) for seed in range(60)]
    assert np.mean([r[-1].stop for r in results]) >= 0.9
    stopped = [r for r in results if r[-1].stop]
    assert all("complaints higher" in r[-1].reason for r in stopped)
    assert all(not look.stop for r in results for look in r[:-1])  # stops at the first firing


def test_guard_stops_on_any_violation():
    events = guard_events(0.0, 0.0, seed=0)
    events["violations"] = 0
    late = events.index[(events["arm"] == "learned")
                        & (events["invoice_date"] > "2025-02-15")][0]
    events.loc[late, "violations"] = 1
    looks = safety_guard(events, weekly_looks("2025-01-01", "2025-03-26"))
    assert looks[-1].stop and "violation" in looks[-1].reason
    assert pd.Timestamp(looks[-1].date) >= events.loc[late, "invoice_date"]
    assert not any(look.stop for look in looks[:-1])


def test_weekly_looks_are_thinned_to_max():
    looks = weekly_looks("2025-01-01", "2025-12-31", max_looks=12)
    assert len(looks) == 12 and str(looks[-1]) == "2025-12-31"
    with pytest.raises(InputError, match="at most 12"):
        safety_guard(guard_events(0.1, 0.1, 0), weekly_looks("2025-01-01", "2025-12-31", 20))


def test_stats_are_frozen_dataclasses():
    assert dataclasses.is_dataclass(stats(0.1))
