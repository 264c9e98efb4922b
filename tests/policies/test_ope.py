"""Off-policy evaluation from the logged history, checked against the ground truth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from policies.baselines import FixedSchedulePolicy
from simulations.env import CollectionsSimulator, GroundTruthSource
from simulations.evaluation.harness import run_policy
from simulations.ope import (
    DirectMethod,
    DoublyRobust,
    InverseProbabilityWeighting,
    SelfNormalizedIPS,
    build_logged_dataset,
    direct_values,
    target_actions,
)


@pytest.fixture(scope="module")
def logged(company, legal_mask):
    return build_logged_dataset(company, legal_mask, max_invoices=500, seed=0)


def test_logged_dataset_matches_the_recorded_propensities(logged):
    assert logged.n > 100
    assert logged.propensity_mismatch < 0.05
    assert ((logged.pscore > 0) & (logged.pscore <= 1)).all()
    acted = logged.active & (logged.action > 0)
    assert acted.any()
    assert not (~logged.active & (logged.action > 0)).any()


def test_estimators_reduce_to_the_logged_value_without_weights(logged):
    certain = dataclasses.replace(logged, pscore=np.ones_like(logged.pscore))
    ips = InverseProbabilityWeighting().estimate(certain, logged.action)
    snips = SelfNormalizedIPS().estimate(certain, logged.action)
    assert ips == pytest.approx(logged.logged_value)
    assert snips == pytest.approx(logged.logged_value)
    zero = np.zeros((logged.n, logged.action.shape[1] + 1))
    assert DoublyRobust().estimate(logged, logged.action, zero) == pytest.approx(
        InverseProbabilityWeighting().estimate(logged, logged.action))


def test_doubly_robust_is_close_to_the_truth_for_the_fixed_schedule(logged, learned_source,
                                                                   legal_mask):
    policy = FixedSchedulePolicy()
    pi = target_actions(policy, logged)
    values = direct_values(policy, logged, learned_source, legal_mask)
    gt = GroundTruthSource(logged.params.scenario)
    sim = CollectionsSimulator(gt, legal_mask)
    batch = gt.batch_from_params(logged.params)
    truth = np.mean([run_policy(policy, sim, batch, s)[0].npv.mean() for s in range(4)])
    dr = DoublyRobust().estimate(logged, pi, values)
    dm = DirectMethod().estimate(logged, pi, values)
    lo, hi = DoublyRobust().estimate_interval(logged, pi, values, n_boot=200)
    assert lo <= dr <= hi
    assert abs(dr - truth) / truth < 0.2
    assert abs(dm - truth) / truth < 0.3
