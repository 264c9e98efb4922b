"""Distributed evaluation gives EXACTLY the local figures for the same seeds."""

from __future__ import annotations

import json

import pytest

from engine.errors import DunningError
from policies.baselines import FixedSchedulePolicy, NeverPolicy
from simulations.env import GroundTruthSource
from simulations.evaluation.distributed import SweepItem, evaluate_policies_distributed, sweep
from simulations.evaluation.harness import evaluate_policies


def _canon(result) -> str:
    d = result.to_dict()
    d["config"] = {k: v for k, v in d["config"].items() if k not in ("seconds", "cluster")}
    return json.dumps(d, sort_keys=True, default=str)


def test_distributed_evaluation_equals_local(client, gt_source, legal_mask):
    policies = {"never": NeverPolicy(), "fixed": FixedSchedulePolicy()}
    local = evaluate_policies(policies, n_invoices=300, seeds=[3, 4, 5], source=gt_source,
                              mask=legal_mask)
    seen = []
    dist = evaluate_policies_distributed(
        client, policies, n_invoices=300, seeds=[3, 4, 5], source=gt_source, mask=legal_mask,
        progress=lambda msg, done, total: seen.append((done, total)))
    assert _canon(dist) == _canon(local)
    assert dist.config["cluster"]["tasks"] == 6
    assert seen[-1] == (6, 6)
    # and the figures are real: different seeds give different NPVs
    assert len(set(dist.overall["fixed"]["npv"]["per_seed"])) == 3


def test_sweep_over_scenarios_matches_local_runs(client, legal_mask):
    shifted = GroundTruthSource("shifted", pool_size=2000, seed=0)
    default = GroundTruthSource("default", pool_size=2000, seed=0)
    items = [SweepItem(name=name, policies={"fixed": FixedSchedulePolicy()}, source=src,
                       mask=legal_mask, n_invoices=200, seeds=[0, 1])
             for name, src in (("default", default), ("shifted", shifted))]
    results = sweep(client, items)
    assert set(results) == {"default", "shifted"}
    for item in items:
        local = evaluate_policies(item.policies, n_invoices=200, seeds=[0, 1],
                                  source=item.source, mask=legal_mask)
        assert _canon(results[item.name]) == _canon(local)
    assert results["default"].overall["fixed"]["npv"]["mean"] != \
        results["shifted"].overall["fixed"]["npv"]["mean"]


def test_unreachable_scheduler_is_a_clear_error():
    from engine.scale.cluster import connect

    with pytest.raises(DunningError, match="tcp://127.0.0.1:1"):
        with connect("tcp://127.0.0.1:1", timeout=1.0):
            pass
    with pytest.raises(DunningError, match="expected `local`"):
        with connect("nonsense"):
            pass


def test_distributed_evaluation_of_tuned_and_rl_policies(client, gt_source, legal_mask,
                                                         tmp_path):
    """The policies `evaluate --policies tuned:FILE,rl:DIR --cluster` sends to the workers
    (a tuned schedule and a tiny but really trained MaskablePPO artifact) give the local
    figures exactly."""
    from policies.baselines.factory import make_policy
    from policies.rl import RLTrainingConfig, save_artifact, train_maskable_ppo
    from policies.tuned import TuningConfig, tune_schedules
    from simulations.env import BatchCollectionsVecEnv

    tuned = tune_schedules(gt_source, TuningConfig(n_invoices=150, iterations=1, population=4,
                                                   validation_invoices=150, seed=0),
                           mask=legal_mask)
    tuned.save(tmp_path / "tuned.json")
    cfg = RLTrainingConfig(seed=0, total_timesteps=512, n_envs=16, n_steps=16, batch_size=128,
                           n_epochs=1, net_arch=(8, 8))
    venv = BatchCollectionsVecEnv(gt_source, num_envs=cfg.n_envs, mask=legal_mask,
                                  seed=cfg.seed, reward_per_amount=True)
    model, curve, seconds = train_maskable_ppo(venv, cfg)
    save_artifact(model, tmp_path / "rl", cfg, curve, seconds, {"source": "tests/scale"})
    policies = dict(make_policy(spec) for spec in (f"tuned:{tmp_path / 'tuned.json'}",
                                                   f"rl:{tmp_path / 'rl'}"))
    local = evaluate_policies(policies, n_invoices=200, seeds=[1, 2], source=gt_source,
                              mask=legal_mask)
    dist = evaluate_policies_distributed(client, policies, n_invoices=200, seeds=[1, 2],
                                         source=gt_source, mask=legal_mask)
    assert _canon(dist) == _canon(local)
    assert set(dist.overall) == {"tuned", "rl"}
