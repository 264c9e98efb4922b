"""The oracle is the upper bound: no policy collects more in the ground truth."""

from __future__ import annotations

from policies.baselines import FixedSchedulePolicy, NeverPolicy, ScheduleStep
from policies.baselines.oracle import GroundTruthOracle
from policies.tuned import TunedSchedulePolicy
from simulations.evaluation.harness import evaluate_policies


def test_oracle_collects_at_least_as_much_as_every_other_policy(gt_source, legal_mask):
    early = TunedSchedulePolicy({"corporate": (ScheduleStep(7, "phone"),),
                                 "family_business": (ScheduleStep(30, "email"),)})
    res = evaluate_policies(
        {"never": NeverPolicy(), "fixed": FixedSchedulePolicy(), "tuned": early,
         "oracle": GroundTruthOracle()},
        n_invoices=60, seeds=[0], source=gt_source, mask=legal_mask)
    oracle = res.kpi("oracle", "npv")
    for p in ("never", "fixed", "tuned"):
        assert oracle >= res.kpi(p, "npv"), p
    assert res.kpi("oracle", "violations") == 0
    assert res.kpi("oracle", "refused_attempts") == 0


def test_an_oracle_solved_with_other_parameters_is_still_played_in_the_truth(gt_source,
                                                                              legal_mask):
    """``solved_params`` changes what the MDP is solved with, not the world it plays in
    (the reliability-blind diagnostic of benchmarks/bench_oracle_information.py)."""
    import dataclasses

    import numpy as np

    class Blind(GroundTruthOracle):
        def solved_params(self, params):
            return dataclasses.replace(params, reliability=np.full_like(params.reliability,
                                                                        0.05))

    blind, true = Blind(), GroundTruthOracle()
    res = evaluate_policies({"oracle": true, "blind": blind}, n_invoices=60, seeds=[0],
                            source=gt_source, mask=legal_mask)
    assert (blind.solution.params.reliability == 0.05).all()
    assert not (true.solution.params.reliability == 0.05).all()
    # believing every customer 20x slower than average makes it worse, never better
    assert res.kpi("blind", "npv") < res.kpi("oracle", "npv")
    assert res.kpi("blind", "violations") == 0
