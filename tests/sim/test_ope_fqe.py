"""Fitted Q evaluation and DR-FQE on a tiny synthetic MDP whose true value is computable.

The MDP: an unpaid invoice over ``H`` days; each day the policy waits (0) or sends an email
(1, cost ``COST``); the debtor pays (reward 1, the episode ends) with probability
``P_PAY[t] + LIFT * email``. The observation is the one-hot day, so a per-action ridge
model is tabular (FQE is then exact up to sampling). The target's value follows by
backward induction.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulations.ope import (
    DoublyRobust,
    DoublyRobustFQE,
    FittedQEvaluation,
    FQEConfig,
    InverseProbabilityWeighting,
    LoggedDataset,
    estimate_all,
    fit_fqe,
    support_diagnostics,
)

H = 6
P_PAY = np.array([0.10, 0.05, 0.15, 0.05, 0.20, 0.10])
LIFT = 0.15
COST = 0.05
TARGET = np.array([0, 1, 0, 1, 0, 0])  # email on days 1 and 3
RIDGE = FQEConfig(model="ridge", scale_by_amount=False)


def true_value(plan: np.ndarray, start: int = 0) -> float:
    """Expected return of following ``plan`` from day ``start`` (still unpaid)."""
    v = 0.0
    for t in range(H - 1, start - 1, -1):
        p = P_PAY[t] + LIFT * plan[t]
        v = -COST * plan[t] + p * 1.0 + (1 - p) * v
    return float(v)


def simulate(n: int, seed: int, p_email: np.ndarray | None = None) -> LoggedDataset:
    """``n`` episodes under the logging policy: email with probability ``p_email[t]``."""
    rng = np.random.default_rng(seed)
    p_email = np.full(H, 0.5) if p_email is None else p_email
    action = np.zeros((n, H), dtype=np.int64)
    reward = np.zeros((n, H))
    active = np.zeros((n, H), dtype=bool)
    terminated = np.zeros((n, H), dtype=bool)
    pscore = np.ones((n, H))
    probs = np.zeros((n, H, 6), dtype=np.float32)
    alive = np.ones(n, dtype=bool)
    for t in range(H):
        active[:, t] = alive
        a = (rng.random(n) < p_email[t]).astype(np.int64)
        paid = rng.random(n) < P_PAY[t] + LIFT * a
        action[:, t] = np.where(alive, a, 0)
        reward[:, t] = np.where(alive, paid * 1.0 - COST * a, 0.0)
        pscore[:, t] = np.where(alive, np.where(a == 1, p_email[t], 1 - p_email[t]), 1.0)
        probs[:, t, 0] = np.where(alive, 1 - p_email[t], 0)
        probs[:, t, 1] = np.where(alive, p_email[t], 0)
        terminated[:, t] = alive & paid
        alive = alive & ~paid
    obs = np.broadcast_to(np.eye(H, dtype=np.float32), (n, H, H)).copy()
    masks = np.zeros((n, H, 6), dtype=bool)
    masks[:, :, :2] = True
    return LoggedDataset(obs=obs, masks=masks, action=action, pscore=pscore, reward=reward,
                         active=active, batch=None, invoice_ids=np.arange(n).astype(str),
                         params=None, propensity_mismatch=0.0, refused_logged_actions=0,
                         logging_probs=probs, terminated=terminated)


def target(data: LoggedDataset, plan: np.ndarray = TARGET) -> np.ndarray:
    return np.where(data.active, plan[None, :], 0)


@pytest.fixture(scope="module")
def logged() -> LoggedDataset:
    return simulate(4000, seed=0)


def test_fqe_recovers_the_true_value_of_a_known_policy(logged) -> None:
    truth = true_value(TARGET)
    pi = target(logged)
    ridge = fit_fqe(logged, pi, RIDGE)
    # tabular model: exact FQE; the error is sampling error (~1/sqrt(4000) per cell)
    assert ridge.converged
    assert abs(ridge.values[:, 0].mean() - truth) < 0.02
    # the fitted value of every day equals the backward induction's from that day
    for t in range(H):
        fitted = ridge.values[logged.active[:, t], t]
        assert np.ptp(fitted) < 1e-9  # one state per day
        assert abs(fitted[0] - true_value(TARGET, t)) < 0.03
    lgb = FittedQEvaluation(config=FQEConfig(scale_by_amount=False, min_child_samples=20))
    assert abs(lgb.estimate(logged, pi) - truth) < 0.04
    # a different target is valued differently, and right
    never = np.zeros(H, dtype=np.int64)
    other = fit_fqe(logged, target(logged, never), RIDGE).values[:, 0].mean()
    assert abs(other - true_value(never)) < 0.02
    assert abs(true_value(never) - truth) > 0.05  # the two targets are distinguishable


def test_tree_backup_reaches_the_one_step_value_in_fewer_iterations(logged) -> None:
    pi = target(logged)
    tree = fit_fqe(logged, pi, RIDGE)
    one_step = fit_fqe(logged, pi, FQEConfig(model="ridge", scale_by_amount=False, trace=0.0,
                                             init="zero", max_iter=60))
    assert tree.converged and one_step.converged
    # the same value in the limit; on a finite log both are within sampling error of it
    for fit in (tree, one_step):
        assert abs(fit.values[:, 0].mean() - true_value(TARGET)) < 0.02
    assert tree.iterations < one_step.iterations
    # one-step FQE from zero needs about one iteration per day of the horizon
    assert one_step.iterations >= H


def test_dr_fqe_is_unbiased_when_the_model_is_right_and_corrects_a_wrong_one() -> None:
    truth = true_value(TARGET)
    near = np.where(TARGET == 1, 0.8, 0.2)  # a logging policy near the target: small weights
    dr_fqe, ips, dr_wrong, dm_wrong = [], [], [], []
    for seed in range(6):
        data = simulate(1500, seed=seed + 10, p_email=near)
        pi = target(data)
        dr_fqe.append(DoublyRobustFQE(config=RIDGE).estimate(data, pi))
        ips.append(InverseProbabilityWeighting().estimate(data, pi))
        good = fit_fqe(data, pi, RIDGE).values
        wrong = np.where(np.arange(H + 1) < H, good + 0.3, 0.0)  # every value 0.3 too high
        dr_wrong.append(DoublyRobust().estimate(data, pi, wrong))
        dm_wrong.append(wrong[:, 0].mean())
    assert abs(np.mean(dr_fqe) - truth) < 0.015
    assert np.std(dr_fqe) < 0.03 and abs(np.mean(ips) - truth) < 0.03  # IPS: unbiased too
    # DR corrects the wrong model where the logging policy gives the target support
    assert abs(np.mean(dr_wrong) - truth) < 0.03
    assert abs(np.mean(dm_wrong) - truth) > 0.25


def test_diagnostics_warn_where_support_is_missing() -> None:
    p_email = np.full(H, 0.5)
    p_email[3] = 0.0  # the logging policy never emails on day 3; the target does
    data = simulate(1500, seed=3, p_email=p_email)
    pi = target(data)
    diag = support_diagnostics(data, pi)
    assert diag.unsupported_episodes > 0.05 and any("no support" in w for w in diag.warnings)
    res = estimate_all(data, pi, n_boot=50,
                       estimators=(InverseProbabilityWeighting(),
                                   FittedQEvaluation(config=RIDGE),
                                   DoublyRobustFQE(config=RIDGE)))
    est = res["estimates"]
    assert est["ips"]["value"] is None and "no support" in est["ips"]["warning"]
    # FQE keeps its number, saying it is extrapolated; DR-FQE says it is mostly the model's
    assert est["fqe"]["value"] is not None and "extrapolated" in est["fqe"]["warning"]
    assert est["dr-fqe"]["value"] is not None and "model's value" in est["dr-fqe"]["warning"]
    lo, hi = est["fqe"]["ci"]
    # without support the bootstrap barely moves the extrapolated value: the interval can
    # collapse onto it, and the ridge solves' summation order (BLAS threads) moves its ends
    # by a few ulps (seen in CI: lo above the value by 1.4e-15)
    tol = 1e-9 * abs(est["fqe"]["value"])
    assert lo - tol <= est["fqe"]["value"] <= hi + tol
    # with full support the model-based ones carry no warning
    full = estimate_all(simulate(1500, seed=4), target(simulate(1500, seed=4)), n_boot=50,
                        estimators=(FittedQEvaluation(config=RIDGE),))
    assert full["estimates"]["fqe"]["warning"] is None


def test_without_logged_propensities_only_fqe_and_dm_are_given() -> None:
    data = simulate(800, seed=5)
    data.pscore = np.where(data.action == 0, np.nan, data.pscore)  # "wait" days not logged
    data.logging_probs = None
    pi = target(data)
    res = estimate_all(data, pi, n_boot=50, estimators=(
        FittedQEvaluation(config=RIDGE), DoublyRobustFQE(config=RIDGE)))
    assert res["estimates"]["fqe"]["value"] is not None
    assert res["estimates"]["dr-fqe"]["value"] is None
    assert "not known" in res["estimates"]["dr-fqe"]["warning"]


def test_fqe_bootstrap_refits_are_seeded_and_cover_the_truth() -> None:
    data = simulate(1000, seed=6)
    pi = target(data)
    est = FittedQEvaluation(config=RIDGE, n_refits=25)
    a = est.estimate_interval(data, pi, seed=1)
    assert a == est.estimate_interval(data, pi, seed=1)
    assert a[0] < true_value(TARGET) < a[1]
    assert a[1] - a[0] < 0.15


def test_a_fit_that_did_not_converge_says_so(logged) -> None:
    pi = target(logged)
    short = FQEConfig(model="ridge", scale_by_amount=False, init="zero", trace=0.0, max_iter=3)
    fit = fit_fqe(logged, pi, short)
    assert not fit.converged and fit.iterations == 3 and len(fit.estimates) == 3
    res = estimate_all(logged, pi, n_boot=20, estimators=(FittedQEvaluation(config=short),))
    assert "did not converge in 3 iterations" in res["estimates"]["fqe"]["warning"]
    converged = estimate_all(logged, pi, n_boot=20, estimators=(FittedQEvaluation(config=RIDGE),))
    assert converged["estimates"]["fqe"]["warning"] is None
    with pytest.raises(ValueError, match="FQEConfig.model"):
        FQEConfig(model="xgboost")
