"""Throughput of the batched collections environment, with the legal masks on.

``env_steps_per_second``: invoice-steps per second of ``BatchCollectionsVecEnv`` (SB3
VecEnv, auto-reset) for both transition sources, with a policy that sends a lawful
reminder on ~5 % of invoice-days. Target: over 200,000 on 2 cores for BOTH sources.
Also the evaluation harness (never + fixed on the same invoices). Writes
``benchmarks/results/simulation.json``; the machine's load average is recorded because
the machine may be shared while measuring.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_result  # noqa: E402

TARGET = 200_000
NUM_ENVS = 4096
SECONDS = 8.0


def _throughput(env, seconds: float = SECONDS) -> dict:
    n = env.num_envs
    env.reset()
    rng = np.random.default_rng(0)
    steps = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        masks = env.action_masks()
        want = np.where(rng.random(n) < 0.05, rng.integers(1, 5, n), 0)
        actions = np.where(masks[np.arange(n), want], want, 0)
        env.step(actions)
        steps += n
    elapsed = time.perf_counter() - started
    return {"num_envs": n, "invoice_steps": steps, "seconds": round(elapsed, 2),
            "env_steps_per_second": round(steps / elapsed), "target": TARGET,
            "meets_target": steps / elapsed > TARGET,
            "episodes_finished": env.episodes_finished}


def _hazard_rows_per_second(hazard, source) -> int:
    """Raw ``predict_hazard`` speed on 4096 rows: the learned source's floor."""
    rows = source.pool.params.static[:4096]
    n = len(rows)
    dyn = {name: np.full(n, 1.0) for name in hazard.dynamic_features_}
    started, calls = time.perf_counter(), 0
    while time.perf_counter() - started < 3.0:
        hazard.predict_hazard(rows, dyn)
        calls += 1
    return round(calls * n / (time.perf_counter() - started))


def main() -> None:
    from engine.models.hazard import HazardModel
    from policies.baselines import FixedSchedulePolicy, NeverPolicy
    from simulations import world
    from simulations.env import BatchCollectionsVecEnv, GroundTruthSource, LearnedSource, LegalMask
    from simulations.evaluation.harness import evaluate_policies

    load_before = os.getloadavg()
    mask = LegalMask()
    sc = world.load_scenario("default")
    gt = GroundTruthSource(sc, pool_size=50_000)
    ground_truth = _throughput(BatchCollectionsVecEnv(gt, NUM_ENVS, mask, seed=0))
    print("ground truth", ground_truth)

    company = world.generate_company(sc, 1500, 12, seed=5)
    tables = {k: getattr(company, k) for k in ("customers", "invoices", "payments", "actions")}
    hazard = HazardModel(random_state=0).fit_tables(tables, company.as_of)
    learned_src = LearnedSource.from_tables(tables, hazard, None, sc, company.as_of)
    learned = _throughput(BatchCollectionsVecEnv(learned_src, NUM_ENVS, mask, seed=0))
    learned["hazard_model"] = {"trees": hazard.n_estimators, "leaves": hazard.num_leaves,
                               "static_features": len(hazard.static_features_),
                               "predict_rows_per_second": _hazard_rows_per_second(
                                   hazard, learned_src)}
    print("learned", learned)

    n_inv, seeds = 5000, 2
    t0 = time.perf_counter()
    evaluate_policies({"never": NeverPolicy(), "fixed": FixedSchedulePolicy()}, sc, n_inv,
                      seeds, source=gt, mask=mask)
    harness_s = time.perf_counter() - t0
    write_result("simulation", {
        "ground_truth": ground_truth,
        "learned": learned,
        "env_steps_per_second": {"ground_truth": ground_truth["env_steps_per_second"],
                                 "learned": learned["env_steps_per_second"],
                                 "target": TARGET},
        "legal_masks": {"rules": len(mask.rule_ids), "ruleset_hash": mask.ruleset_hash},
        "evaluation_harness": {"invoices_per_seed": n_inv, "seeds": seeds, "policies": 2,
                               "seconds": round(harness_s, 1),
                               "invoice_episodes_per_second": round(2 * n_inv * seeds
                                                                    / harness_s)},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    })


if __name__ == "__main__":
    main()
