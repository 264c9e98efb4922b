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
