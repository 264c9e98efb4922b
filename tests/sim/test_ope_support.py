"""Logging-policy exploration (scenario logging_policy.epsilon) and OPE support diagnostics:
effective sample size, unsupported target actions, a warning instead of a number."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml

from engine.errors import InputError
from policies.baselines import FixedSchedulePolicy, NeverPolicy
from simulations import world
from simulations.ope import (
    DirectMethod,
    DoublyRobust,
    DoublyRobustFQE,
    FittedQEvaluation,
    FQEConfig,
    InverseProbabilityWeighting,
    SelfNormalizedIPS,
    WeightedDoublyRobust,
    build_logged_dataset,
    estimate_all,
    importance_weights,
    support_diagnostics,
    target_actions,
)
from simulations.ope.support import SupportThresholds, target_logging_probability
from simulations.world.scenario import SCENARIO_DIR, scenario_from_dict

EPS = 0.2
# the estimators on propensities and given model values (FQE's own tests: test_ope_fqe.py)
CLASSIC = (InverseProbabilityWeighting(), SelfNormalizedIPS(), DoublyRobust(),
           WeightedDoublyRobust(), DirectMethod())


def _scenario(epsilon: float | None):
    data = yaml.safe_load((SCENARIO_DIR / "default.yaml").read_text())
    if epsilon is not None:
        data["logging_policy"]["epsilon"] = epsilon
    return scenario_from_dict(data, "test.yaml")


@pytest.fixture(scope="module")
def logs(legal_mask):
    """Logged datasets of the same small company under epsilon 0 and EPS."""
    out = {}
    for eps in (0.0, EPS):
        company = world.generate_company(_scenario(eps), 100, 8, 3)
        out[eps] = build_logged_dataset(company, legal_mask, max_invoices=250, seed=0)
    return out


def test_epsilon_zero_is_the_unchanged_logging_policy() -> None:
    a = world.generate_company(_scenario(None), 40, 4, 1)
    b = world.generate_company(_scenario(0.0), 40, 4, 1)
    assert a.actions.equals(b.actions) and a.payments.equals(b.payments)
    assert _scenario(None).logging_policy.epsilon == 0.0


def test_epsilon_mixes_every_free_decision_with_a_uniform_one(logs) -> None:
    for data in logs.values():
        p = data.logging_probs[data.active]
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    # with mixing, waiting is possible on every logged day (>= eps / 5 where it may act)
    wait_plain = target_logging_probability(logs[0.0], np.zeros_like(logs[0.0].action))
    wait_mixed = target_logging_probability(logs[EPS], np.zeros_like(logs[EPS].action))
    assert wait_plain[logs[0.0].active].min() == 0.0  # the schedule's forced sends
    assert wait_mixed[logs[EPS].active].min() >= EPS / 5 - 1e-6
    # the history gets more varied: more reminders, phone calls off the schedule
    n_acts = {eps: int((d.action[d.active] > 0).sum()) for eps, d in logs.items()}
    assert n_acts[EPS] > 1.2 * n_acts[0.0]
    bad = yaml.safe_load((SCENARIO_DIR / "default.yaml").read_text())
    bad["logging_policy"]["epsilon"] = 0.9
    with pytest.raises(InputError, match="'logging_policy.epsilon'"):
        scenario_from_dict(bad, "x.yaml")


def test_support_diagnostics_of_a_target_without_support(logs) -> None:
    data = logs[0.0]
    pi = target_actions(NeverPolicy(), data)
    diag = support_diagnostics(data, pi)
    assert diag.unsupported_episodes > 0.1 and diag.unsupported_decisions > 0
    rho, _ = importance_weights(data, pi)
    w = rho[:, -1]
    assert diag.ess == pytest.approx(w.sum() ** 2 / (w ** 2).sum())
    assert diag.match_rate == pytest.approx((w > 0).mean())
    assert any(m.startswith("no support") for m in diag.warnings)
    res = estimate_all(data, pi, values=np.zeros((data.n, data.action.shape[1] + 1)),
                       estimators=CLASSIC)
    for name in ("ips", "snips"):  # a warning instead of a number
        assert res["estimates"][name]["value"] is None
        assert "no support" in res["estimates"][name]["warning"]
    assert res["estimates"]["dr"]["value"] is not None
    assert "mostly the model's value" in res["estimates"]["dr"]["warning"]
    assert res["diagnostics"]["unsupported_episodes"] == diag.unsupported_episodes


def test_exploration_gives_support_and_numbers_come_back(logs) -> None:
    data = logs[EPS]
    for policy in (NeverPolicy(), FixedSchedulePolicy()):
        pi = target_actions(policy, data)
        diag = support_diagnostics(data, pi)
        assert diag.unsupported_episodes == 0 and diag.unsupported_decisions == 0
        assert diag.ess > 0
        loose = SupportThresholds(min_ess=min(diag.ess, 1.0))
        res = estimate_all(data, pi, thresholds=loose, estimators=CLASSIC)
        ips = res["estimates"]["ips"]
        assert ips["value"] is not None and ips["warning"] is None
        assert ips["ci"][0] <= ips["value"] <= ips["ci"][1]
        strict = estimate_all(data, pi, thresholds=SupportThresholds(min_ess=diag.ess + 1),
                              estimators=CLASSIC)
        assert strict["estimates"]["snips"]["value"] is None
        assert "effective sample size" in strict["estimates"]["snips"]["warning"]


def test_weighted_doubly_robust_reduces_to_snips_dm_and_the_logged_value(logs) -> None:
    data = logs[EPS]
    H = data.action.shape[1]
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 5000, size=(data.n, H + 1))
    wdr = WeightedDoublyRobust()
    pi = target_actions(FixedSchedulePolicy(), data)
    # without a model it is per-decision weighted IS
    assert wdr.estimate(data, pi, np.zeros_like(values)) == pytest.approx(
        SelfNormalizedIPS().estimate(data, pi))
    # a target no episode follows: only the model's value at the due date is left (DM)
    never_matched = np.where(data.active, (data.action + 1) % 6, 0)
    assert wdr.estimate(data, never_matched, values) == pytest.approx(
        DirectMethod().estimate(data, never_matched, values))
    # certain logging and the logged actions as target: the logged value, whatever the model
    certain = dataclasses.replace(data, pscore=np.ones_like(data.pscore))
    assert wdr.estimate(certain, data.action, values) == pytest.approx(data.logged_value)
    lo, hi = wdr.estimate_interval(data, pi, values, n_boot=200)
    assert lo <= wdr.estimate(data, pi, values) <= hi and lo < hi
    res = estimate_all(data, pi, values, thresholds=SupportThresholds(min_ess=1e9),
                       estimators=CLASSIC)
    assert res["estimates"]["wdr"]["value"] is not None
    assert "mostly the model's value" in res["estimates"]["wdr"]["warning"]


def test_missing_propensities_leave_only_the_direct_method_and_fqe(logs) -> None:
    data = logs[0.0]
    pscore = np.where(data.action > 0, data.pscore, np.nan)  # as an ingested history logs
    unlogged = dataclasses.replace(data, pscore=pscore, logging_probs=None)
    pi = target_actions(FixedSchedulePolicy(), unlogged)
    values = np.ones((data.n, data.action.shape[1] + 1))
    quick = FQEConfig(max_iter=3, n_estimators=10)
    res = estimate_all(unlogged, pi, values, n_boot=100, estimators=(
        *CLASSIC, FittedQEvaluation(config=quick), DoublyRobustFQE(config=quick)))
    assert res["estimates"]["dm"]["value"] == pytest.approx(1.0)
    assert res["estimates"]["fqe"]["value"] > 0  # FQE needs no propensities
    for name in ("ips", "snips", "dr", "wdr", "dr-fqe"):
        assert res["estimates"][name]["value"] is None
        assert "not known" in res["estimates"][name]["warning"]
    assert 0 < res["diagnostics"]["propensity_missing"] < 1
