"""Drift: PSI and ECE against hand computations and planted shifts."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from dunning.business.drift import (
    PSI_WARNING,
    DriftWarning,
    calibration_by_window,
    drift_between,
    expected_calibration_error,
    feature_psi,
    population_stability_index,
)


def test_psi_hand_computed_on_categories():
    ref = pd.Series(["a"] * 50 + ["b"] * 50)
    new = pd.Series(["a"] * 80 + ["b"] * 20)
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert population_stability_index(ref, new) == pytest.approx(expected)


def test_psi_same_distribution_is_small_and_shift_is_large():
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 20_000)
    assert population_stability_index(ref, rng.normal(0, 1, 20_000)) < 0.01
    assert population_stability_index(ref, rng.normal(0.8, 1, 20_000)) > 0.2
    # missing values are a bin of their own: 30 % newly missing is a shift
    shifted = np.where(rng.random(20_000) < 0.3, np.nan, rng.normal(0, 1, 20_000))
    assert population_stability_index(ref, shifted) > 0.2


def test_feature_psi_ranks_and_labels():
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"amount": rng.lognormal(7, 1, 5000),
                        "segment": rng.choice(list("ab"), 5000),
                        "late_share": rng.beta(2, 5, 5000)})
    new = ref.assign(amount=ref["amount"] * 3.0)
    out = feature_psi(ref, new)
    assert out["feature"].iloc[0] == "amount" and out["status"].iloc[0] == "warning"
    assert set(out.loc[out["feature"] != "amount", "status"]) == {"ok"}


def test_ece_hand_computed():
    p = np.array([0.15, 0.15, 0.85, 0.85])
    y = np.array([0, 1, 1, 1])
    # bin 1: |0.3 - 1| over 2 rows; bin 8: |1.7 - 2| over 2 rows
    assert expected_calibration_error(p, y) == pytest.approx((0.7 + 0.3) / 4)


def test_calibration_drift_is_found_in_the_month_it_starts():
    rng = np.random.default_rng(2)
    n = 6000
    dates = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 181, n), unit="D")
    p = rng.uniform(0.05, 0.95, n)
    true_p = np.where(dates >= pd.Timestamp("2025-05-01"), p * 0.6, p)  # customers slow down
    y = (rng.random(n) < true_p).astype(float)
    table = calibration_by_window(p, y, dates)
    assert list(table["status"]) == ["ok"] * 4 + ["warning"] * 2


def test_report_raises_drift_warnings():
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 3000)})
    report = drift_between(ref, pd.DataFrame({"x": rng.normal(1, 1, 3000)}), ["x"])
    assert report.drifted and "feature x" in report.messages[0]
    with pytest.warns(DriftWarning, match="PSI"):
        report.warn()
    quiet = drift_between(ref, pd.DataFrame({"x": rng.normal(0, 1, 3000)}), ["x"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.warn()
    assert not quiet.drifted
    assert quiet.to_dict()["features"][0]["feature"] == "x"


def test_counts_that_grow_with_time_show_no_false_drift():
    """A model trained yesterday: the last 90 days of its training period against the next
    90 days of the same world. Raw history counts move by construction (every customer has
    more history later); compared as rates they do not warn."""
    from dunning.business.drift import GROWING_COUNTS
    from engine.features import features_at, prepare_tables, to_day
    from simulations import world

    company = world.generate_company(world.load_scenario("default"), 200, 18, seed=3)
    p = prepare_tables({k: getattr(company, k) for k in
                        ("customers", "invoices", "payments", "actions")})
    cut = to_day("2025-03-01")
    ref = np.flatnonzero((p.invoice_day >= cut - 90) & (p.invoice_day < cut))
    new = np.flatnonzero((p.invoice_day >= cut) & (p.invoice_day < cut + 90))
    R = features_at(p, ref, p.invoice_day[ref])
    N = features_at(p, new, p.invoice_day[new])
    names = list(GROWING_COUNTS)
    raw = {f: population_stability_index(R[f], N[f]) for f in names}
    assert max(raw.values()) > PSI_WARNING  # the false alarm the raw counts would raise
    out = feature_psi(R, N, names).set_index("feature")
    assert (out.loc[names, "status"] != "warning").all(), out
    assert out.loc["hist_n_paid", "compared_as"] == "per hist_n_issued"
    # a real shift in the rate still warns: half the paid history disappears
    shifted = N.assign(hist_n_paid=N["hist_n_paid"] * 0.5)
    assert feature_psi(R, shifted, names).set_index("feature").loc[
        "hist_n_paid", "status"] == "warning"
