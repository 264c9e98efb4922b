"""The arithmetic of ``benchmarks/bench_rl.py --planner-seeds`` (planner_seeds.json): the
share of the oracle gap is paired per evaluation seed with the run's own fixed and oracle,
the issue #25 target needs 5 seeds, a mean >= 0.90 and none under 0.85, and seed 0 is
checked against the run's own planner. The full run (re-fit + DP + ground truth) takes
minutes even on the tiny company, so it is measured by the benchmark, not here."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from benchmarks import bench_rl
from dunning.pipeline import PipelineConfig

FIXED, ORACLE = [100.0, 100.0], [200.0, 300.0]


def kpis(npv: list[float], complaints: float = 30.0, agency: float = 150.0) -> dict:
    return {"npv": {"mean": sum(npv) / len(npv), "per_seed": npv},
            "complaints_per_1000": {"mean": complaints}, "agency_per_1000": {"mean": agency},
            "violations": {"mean": 0.0}}


def run_with(planner: list[float]) -> Any:
    return SimpleNamespace(seeds=[0, 1], n_invoices=600, overall={
        "fixed": kpis(FIXED), "oracle": kpis(ORACLE), "planner": kpis(planner)})


def judged(npv: list[float], complaints: float = 30.0, hash_: str = "h0") -> dict:
    return {"model_hash": hash_, "planner_hash": "p", "npv_per_eval_seed": npv,
            "npv": sum(npv) / len(npv), "complaints_per_1000": complaints,
            "agency_per_1000": 150.0, "violations": 0.0, "seconds": 1.0}


RESULTS = {"holdout": {"company_invoices": 9000, "invoices": 1500, "cut_date": "2025-09-01"},
           "hashes": {"model": "h0"}}


def figures(by_seed: dict[int, dict], run_planner: list[float]) -> dict:
    return bench_rl.planner_seed_figures(by_seed, run_with(run_planner), RESULTS,
                                         PipelineConfig())


def test_the_share_is_paired_per_evaluation_seed_not_a_ratio_of_means() -> None:
    # seed 0: (190-100)/(200-100) = 0.9; seed 1: (200-100)/(300-100) = 0.5
    share = bench_rl.planner_share([190.0, 200.0], run_with([0.0, 0.0]))
    assert share["per_seed"] == pytest.approx([0.9, 0.5])
    assert share["mean"] == pytest.approx(0.7)
    # demo.json's figure, the gap of the mean NPVs, is beside it: (195-100)/(250-100)
    seed = figures({0: judged([190.0, 200.0])}, [190.0, 200.0])["planner_by_model_seed"]["0"]
    assert seed["oracle_gap_closed"] == pytest.approx(0.7)
    assert seed["gap_of_mean_npvs"] == pytest.approx(95 / 150)


def test_the_target_needs_five_seeds_a_mean_of_90_and_none_under_85() -> None:
    # per-seed shares on ORACLE - FIXED = [100, 200]: npv = 100 + s * [100, 200]
    def at(s: float) -> list[float]:
        return [100 + s * 100, 100 + s * 200]

    good = figures({k: judged(at(s)) for k, s in enumerate([0.92, 0.9, 0.95, 0.88, 0.91])},
                   at(0.92))
    assert good["summary"]["mean"] == pytest.approx(0.912)
    assert good["summary"]["min"] == pytest.approx(0.88)
    assert good["target"]["met"] is True
    one_low = figures({k: judged(at(s)) for k, s in enumerate([0.95, 0.95, 0.95, 0.95, 0.84])},
                      at(0.95))
    assert one_low["summary"]["mean"] >= 0.9 and one_low["target"]["met"] is False
    four = figures({k: judged(at(0.95)) for k in range(4)}, at(0.95))
    assert four["target"]["met"] is False


def test_seed_0_is_checked_against_the_runs_own_planner_and_side_targets_against_the_oracle(
) -> None:
    same = figures({0: judged([190.0, 280.0])}, [190.0, 280.0])
    assert same["seed0_vs_run"]["reproduces"] is True
    assert same["seed0_vs_run"]["same_model_hash"] is True
    other = figures({0: judged([190.0, 281.0], hash_="h9")}, [190.0, 280.0])
    assert other["seed0_vs_run"]["reproduces"] is False
    assert other["seed0_vs_run"]["max_abs_npv_difference"] == pytest.approx(1.0)
    assert other["seed0_vs_run"]["same_model_hash"] is False
    # complaints limit: 10 % above the oracle's 30 per 1,000
    assert same["side_targets"]["complaints_per_1000"]["met"] is True
    many = figures({0: judged([190.0, 280.0], complaints=33.5)}, [190.0, 280.0])
    assert many["side_targets"]["complaints_per_1000"]["met"] is False
