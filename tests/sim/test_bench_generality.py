"""benchmarks/bench_generality.py on a fake pipeline run: arguments, the configuration each
sampled company gets, the per-company figures and the summary it writes. (A real
``--tiny --n 1`` run is a whole tiny pipeline, about a minute or more on a shared machine:
too slow for the suite.)"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

import benchmarks.common
from benchmarks import bench_generality as bg
from simulations.world import load_scenario
from simulations.world.family import EVALUATION_SAMPLER_SEED, TUNING_SAMPLER_SEEDS


def test_arguments_default_to_the_evaluation_family() -> None:
    args = bg.parse_args([])
    assert (args.n, args.seed, args.tiny) == (8, EVALUATION_SAMPLER_SEED, False)
    assert args.seed not in TUNING_SAMPLER_SEEDS
    args = bg.parse_args(["--tiny", "--n", "1", "--seed", "3", "--out", "x"])
    assert (args.n, args.seed, args.tiny, args.out) == (1, 3, True, Path("x"))
    with pytest.raises(SystemExit):
        bg.parse_args(["--n", "0"])


def _results(k: int) -> dict[str, Any]:
    """A results.json-shaped mapping: fixed NPV 100, oracle 200, rl 100 + 10 k, a planner
    (no pipeline gap) 150; oracle complaints 40, rl 40 + k, agency 100 vs rl 105."""
    def pol(npv: float, complaints: float, agency: float, **extra: Any) -> dict[str, Any]:
        return {"npv": npv, "complaints_per_1000": complaints, "agency_per_1000": agency,
                "violations": 0.0, **extra}

    return {"policies": {
        "never": pol(50, 0, 0), "fixed": pol(100, 30, 0),
        "tuned": pol(120, 35, 90, oracle_gap_closed=0.2),
        "rl": pol(100 + 10 * k, 40 + k, 105, oracle_gap_closed=(10 * k) / 100),
        "planner": pol(150, 41, 100), "oracle": pol(200, 40, 100)},
        "n_eval_invoices": 600, "seeds": [0, 1], "holdout": {"company_invoices": 1234}}


def test_a_fake_run_writes_per_company_figures_and_the_summary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(benchmarks.common, "RESULTS_DIR", tmp_path / "results")
    seen: list[Any] = []

    def fake_run(config: Any) -> dict[str, Any]:
        seen.append(config)
        return _results(len(seen))

    args = bg.parse_args(["--tiny", "--n", "3", "--seed", "4", "--out", str(tmp_path / "w")])
    path = bg.run(args, fake_run, say=lambda _m: None)
    assert path == tmp_path / "results" / "rl_generality_tiny.json"
    # each company: its own sampled scenario file and folder, the tiny config otherwise
    assert [Path(c.scenario).name for c in seen] == [f"sampled-4-00{i}.yaml" for i in range(3)]
    assert all(c.robustness_scenario is None and c.n_customers == 100 for c in seen)
    assert len({c.out_dir for c in seen}) == 3
    load_scenario(seen[0].scenario)

    data = json.loads(path.read_text())
    assert data["data"]["sampler_seed"] == 4 and data["data"]["companies"] == 3
    assert "scenario" not in data["data"]["pipeline_config"]
    c2 = data["companies"]["sampled-4-001"]
    assert c2["shipped"] == "rl" and c2["shipped_gap"] == pytest.approx(0.2)
    assert c2["policies"]["planner"]["gap"] == pytest.approx(0.5)  # (150-100)/(200-100)
    assert c2["policies"]["rl"]["complaints_vs_oracle"] == pytest.approx(42 / 40)
    assert c2["policies"]["rl"]["agency_vs_oracle"] == pytest.approx(1.05)
    assert data["per_policy"]["rl"] == {"median_gap": pytest.approx(0.2),
                                        "min_gap": pytest.approx(0.1), "n": 3}
    t = data["targets"]
    assert t["shipped_median_gap"]["measured"] == pytest.approx(0.2)
    assert not t["shipped_median_gap"]["met"] and not t["shipped_min_gap"]["met"]
    assert t["complaints_vs_oracle"]["worst_ratio"] == pytest.approx(43 / 40)
    assert t["complaints_vs_oracle"]["met"] and t["violations_worst"]["met"]
    assert t["agency_vs_oracle"]["met"]  # 105 <= 1.10 x 100
    assert "machine" in data and "commit" in data["data"]


def test_resume_reuses_each_finished_company_with_its_seconds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(benchmarks.common, "RESULTS_DIR", tmp_path / "results")
    argv = ["--tiny", "--n", "2", "--seed", "4", "--out", str(tmp_path / "w")]

    def pipeline(config: Any, k: int = 1) -> dict[str, Any]:
        """Like run_pipeline: writes results.json into the company's folder."""
        Path(config.out_dir).mkdir(parents=True, exist_ok=True)
        (Path(config.out_dir) / "results.json").write_text(json.dumps(_results(k)))
        return _results(k)

    first = json.loads(bg.run(bg.parse_args(argv), pipeline, say=lambda _m: None).read_text())

    def must_not_run(_config: Any) -> dict[str, Any]:
        raise AssertionError("a finished company was run again")

    again = json.loads(bg.run(bg.parse_args([*argv, "--resume"]), must_not_run,
                              say=lambda _m: None).read_text())
    for name, figures in first["companies"].items():
        assert isinstance(figures["seconds"], float)
        assert again["companies"][name]["seconds"] == figures["seconds"]
        assert again["companies"][name]["policies"] == figures["policies"]
    # a company whose results.json is gone is run again
    (tmp_path / "w" / "sampled-4-001" / "results.json").unlink()
    seen: list[Any] = []
    bg.run(bg.parse_args([*argv, "--resume"]), lambda c: seen.append(c) or pipeline(c, 2),
           say=lambda _m: None)
    assert [Path(c.out_dir).name for c in seen] == ["sampled-4-001"]


def test_no_complaints_of_the_oracle_means_none_allowed() -> None:
    """1.10 x 0 = 0: a policy with complaints where the oracle has none misses the target,
    even though the ratio is undefined."""
    res = _results(1)
    res["policies"]["oracle"]["complaints_per_1000"] = 0.0
    fig = bg.company_figures(res)
    assert fig["policies"]["rl"]["complaints_vs_oracle"] is None
    assert fig["policies"]["rl"]["complaints_within_target"] is False
    target = bg.summary({"a": fig})["targets"]["complaints_vs_oracle"]
    assert target["companies_over"] == 1 and not target["met"]


def test_the_customer_response_switch_reaches_every_company_and_names_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--customer-response on|off`` sets PipelineConfig.customer_response for every
    company and keeps the two measurements in separate files (default: the config's)."""
    monkeypatch.setattr(benchmarks.common, "RESULTS_DIR", tmp_path / "results")
    for value, flag in (("on", True), ("off", False)):
        seen: list[Any] = []

        def fake_run(config: Any, seen: list[Any] = seen) -> dict[str, Any]:
            seen.append(config)
            return _results(1)

        args = bg.parse_args(["--tiny", "--n", "2", "--seed", "4", "--out",
                              str(tmp_path / value), "--customer-response", value])
        path = bg.run(args, fake_run, say=lambda _m: None)
        assert path.name == f"rl_generality_tiny_customer_response_{value}.json"
        assert [c.customer_response for c in seen] == [flag, flag]
        data = json.loads(path.read_text())
        assert data["data"]["pipeline_config"]["customer_response"] is flag
    assert bg.parse_args([]).customer_response is None
    from dunning.pipeline import PipelineConfig, train_config

    on = dataclasses.replace(PipelineConfig.tiny(tmp_path), customer_response=True)
    assert train_config(on).hazard_params == {"customer_response": True}
    assert train_config(PipelineConfig.tiny(tmp_path)).hazard_params == {}


def _fake_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *flags: str
                 ) -> tuple[Path, list[Any]]:
    """A tiny run of 2 sampled companies with ``flags`` on a fake pipeline: the result
    file's path and the configuration each company got."""
    monkeypatch.setattr(benchmarks.common, "RESULTS_DIR", tmp_path / "results")
    seen: list[Any] = []

    def fake_run(config: Any) -> dict[str, Any]:
        seen.append(config)
        return _results(1)

    args = bg.parse_args(["--tiny", "--n", "2", "--seed", "4", "--out", str(tmp_path / "w"),
                          *flags])
    return bg.run(args, fake_run, say=lambda _m: None), seen


def test_the_planner_members_option_reaches_every_company_and_names_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--planner-members N`` sets PipelineConfig.planner_hazard_members for every company
    and writes its own file; without it the config's default (5 models) is used."""
    path, seen = _fake_family(tmp_path, monkeypatch, "--planner-members", "3")
    assert path.name == "rl_generality_tiny_planner_members_3.json"
    assert [c.planner_hazard_members for c in seen] == [3, 3]
    assert json.loads(path.read_text())["data"]["pipeline_config"][
        "planner_hazard_members"] == 3
    assert bg.parse_args([]).planner_members is None
    from dunning.pipeline import PipelineConfig

    assert PipelineConfig.default().planner_hazard_members == 5


def test_the_complaint_weight_reaches_every_company_and_names_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--planner-complaint-weight W`` sets PipelineConfig.planner_complaint_weight for
    every company and writes its own file."""
    path, seen = _fake_family(tmp_path, monkeypatch, "--planner-complaint-weight", "8")
    assert path.name == "rl_generality_tiny_planner_complaint_weight_8.json"
    assert [c.planner_complaint_weight for c in seen] == [8.0, 8.0]
    assert bg.parse_args([]).planner_complaint_weight is None


def test_the_decreasing_counts_option_reaches_every_company_and_the_hazard_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--hazard-counts-decreasing`` sets PipelineConfig.hazard_counts_decreasing for every
    company, writes its own file, and the run's hazard model gets the option."""
    path, seen = _fake_family(tmp_path, monkeypatch, "--hazard-counts-decreasing")
    assert path.name == "rl_generality_tiny_hazard_counts_decreasing.json"
    assert [c.hazard_counts_decreasing for c in seen] == [True, True]
    assert bg.parse_args([]).hazard_counts_decreasing is False
    from dunning.pipeline import PipelineConfig, train_config

    both = dataclasses.replace(seen[0], customer_response=True)
    assert train_config(both).hazard_params == {"customer_response": True,
                                                "reminder_counts_decreasing": True}
    assert PipelineConfig.default().hazard_counts_decreasing is False


def test_the_milestone_option_reaches_every_company_and_the_hazard_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--hazard-milestone-inputs`` with ``--hazard-counts-decreasing``: both reach every
    company and the hazard model, and the file's name says both."""
    path, seen = _fake_family(tmp_path, monkeypatch, "--hazard-counts-decreasing",
                              "--hazard-milestone-inputs")
    assert path.name == ("rl_generality_tiny_hazard_counts_decreasing"
                         "_hazard_milestone_inputs.json")
    assert [c.hazard_milestone_inputs for c in seen] == [True, True]
    assert bg.parse_args([]).hazard_milestone_inputs is False
    from dunning.pipeline import PipelineConfig, train_config

    assert train_config(seen[0]).hazard_params == {"reminder_counts_decreasing": True,
                                                   "milestone_inputs": True}
    assert PipelineConfig.default().hazard_milestone_inputs is False


def test_the_history_rates_option_reaches_every_company_and_the_hazard_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--hazard-history-rates-only`` sets PipelineConfig.hazard_history_rates_only for
    every company, writes its own file, and the run's hazard model gets the option."""
    path, seen = _fake_family(tmp_path, monkeypatch, "--hazard-history-rates-only")
    assert path.name == "rl_generality_tiny_hazard_history_rates_only.json"
    assert [c.hazard_history_rates_only for c in seen] == [True, True]
    assert bg.parse_args([]).hazard_history_rates_only is False
    from dunning.pipeline import PipelineConfig, train_config

    assert train_config(seen[0]).hazard_params == {"history_rates_only": True}
    assert PipelineConfig.default().hazard_history_rates_only is False


def _saved_evaluation(run_dir: Path, complaints: dict[str, list[int]]) -> None:
    """An evaluation.json + outcomes.npz with one seed: ``complaints[policy]`` per invoice
    (agency handovers: none)."""
    import numpy as np

    from simulations.evaluation.harness import EvaluationResult
    from simulations.evaluation.metrics import OUTCOME_FIELDS

    n = len(next(iter(complaints.values())))
    outcomes = {p: {f: np.zeros((1, n)) for f in OUTCOME_FIELDS} for p in complaints}
    for p, c in complaints.items():
        outcomes[p]["complaints"] = np.array([c], dtype=float)
    EvaluationResult(scenario="x", n_invoices=n, seeds=[0], policies=list(complaints),
                     overall={}, by_segment={}, timing={}, difference={}, vetoes={},
                     reference="fixed", outcomes=outcomes,
                     invoices={"segment": np.zeros((1, n)), "amount": np.ones((1, n))}
                     ).save(run_dir)


def test_paired_excess_is_the_per_invoice_difference_to_the_target(tmp_path: Path) -> None:
    """On the same invoices: a planner complaining on 120 of 400 where the oracle does on 40
    is clearly over 1.10 x; one complaining on the oracle's 40 invoices plus 2 is not."""
    oracle = [1] * 40 + [0] * 360
    _saved_evaluation(tmp_path / "a", {"fixed": [0] * 400, "oracle": oracle,
                                       "planner": [1] * 120 + [0] * 280,
                                       "rl": [1] * 42 + [0] * 358})
    excess = bg.paired_excess(tmp_path / "a")
    assert set(excess) == {"planner", "rl"}  # not the fixed schedule nor the oracle
    planner = excess["planner"]["complaints_per_1000"]
    assert planner["mean"] == pytest.approx(1000 * (120 - 1.1 * 40) / 400)
    assert planner["ci_low"] > 0
    rl = excess["rl"]["complaints_per_1000"]
    assert rl["mean"] == pytest.approx(1000 * (42 - 44) / 400)
    assert rl["ci_low"] < 0 < rl["ci_high"]
    assert excess["rl"]["agency_per_1000"]["mean"] == 0.0
    assert bg.paired_excess(tmp_path / "missing") == {}
    companies = {c: {"shipped": shipped, "shipped_gap": None, "policies": {},
                     "paired_excess": excess} for c, shipped in (("c", "planner"), ("d", "rl"))}
    over = bg.summary(companies)["targets"]["complaints_vs_oracle"]
    assert over["companies_clearly_over"] == 1
