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


def test_an_invoice_met_again_is_played_from_the_kept_solution(gt_source, legal_mask,
                                                               monkeypatch):
    """The oracle keeps solved invoices between evaluation batches (the next seed draws
    many of them again): the kept solution is the one a fresh oracle solves, bit for bit,
    and other rules (not another mask object over the same rules) drop what was kept."""
    import numpy as np

    import policies.oracle
    from simulations import world
    from simulations.env import LegalMask
    from simulations.env.core import CollectionsSimulator
    from simulations.env.masks import AllowAll

    solved: list[int] = []  # invoices per call of the solver
    solve = policies.oracle.solve

    def counted(params, *args, **kwargs):
        solved.append(len(params))
        return solve(params, *args, **kwargs)

    monkeypatch.setattr(policies.oracle, "solve", counted)

    params = world.sample_invoices(gt_source.scenario, 36, np.random.default_rng(11))
    first = gt_source.batch_from_params(params.take(np.arange(0, 24)))
    again = gt_source.batch_from_params(params.take(np.arange(12, 36)))  # 12 met again
    sim = CollectionsSimulator(gt_source, legal_mask, horizon=40)
    kept = GroundTruthOracle()
    for batch, new in ((first, 24), (again, 12)):
        sim.load(batch)
        kept.bind_simulator(sim)
        assert solved[-1] == new
        fresh = GroundTruthOracle()
        fresh.bind_simulator(sim)
        np.testing.assert_array_equal(kept.solution.policy, fresh.solution.policy)
        np.testing.assert_array_equal(kept.solution.value, fresh.solution.value)
        assert (kept.solution.policy > 0).any()  # it does act

    calls = len(solved)
    same_rules = CollectionsSimulator(gt_source, LegalMask(), horizon=40)
    same_rules.load(again)
    kept.bind_simulator(same_rules)
    assert len(solved) == calls  # another mask over the same rules: all kept
    other_rules = CollectionsSimulator(gt_source, AllowAll(), horizon=40)
    other_rules.load(again)
    kept.bind_simulator(other_rules)
    assert solved[-1] == 24  # other rules: nothing kept is reused
