"""Per-invoice outcomes and paired intervals: a policy minus the reference on the same
invoices and draws, over invoices x seeds (t and seeded bootstrap), saved and loaded."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dunning.cli import app
from policies.baselines import FixedSchedulePolicy, NeverPolicy, ScheduleStep
from simulations.evaluation.harness import (
    EvaluationResult,
    combine_evaluations,
    evaluate_policies,
)
from simulations.evaluation.metrics import OUTCOME_FIELDS, PAIRED_KPIS, paired_interval

SEEDS = [0, 1]
N = 150


@pytest.fixture(scope="module")
def result(gt_source, legal_mask) -> EvaluationResult:
    early = FixedSchedulePolicy((ScheduleStep(5, "phone"), ScheduleStep(20, "letter")))
    return evaluate_policies({"never": NeverPolicy(), "fixed": FixedSchedulePolicy(),
                              "early": early}, n_invoices=N, seeds=SEEDS, source=gt_source,
                             mask=legal_mask)


def test_outcomes_are_per_invoice_and_add_up_to_the_kpis(result: EvaluationResult) -> None:
    assert set(result.invoices) == {"segment", "amount"}
    assert result.invoices["amount"].shape == (len(SEEDS), N)
    for p in result.policies:
        oc = result.outcomes[p]
        assert set(oc) == set(OUTCOME_FIELDS)
        assert all(v.shape == (len(SEEDS), N) for v in oc.values())
        np.testing.assert_allclose(oc["npv"].mean(axis=1), result.overall[p]["npv"]["per_seed"])
        np.testing.assert_allclose(oc["paid"].mean(axis=1),
                                   result.overall[p]["pay_rate"]["per_seed"])
        np.testing.assert_allclose(1000 * oc["complaints"].mean(axis=1),
                                   result.overall[p]["complaints_per_1000"]["per_seed"])
    # common random numbers: the same column is the same invoice for every policy
    assert (result.outcomes["never"]["reminders"] == 0).all()
    assert (result.outcomes["fixed"]["first_reminder_day"][
        result.outcomes["fixed"]["reminders"] > 0] >= 14).all()


def test_paired_differences_match_the_seed_means_and_are_narrower(
        result: EvaluationResult) -> None:
    assert result.reference == "fixed" and set(result.paired) == set(result.policies)
    for p in result.policies:
        assert set(result.paired[p]) == set(PAIRED_KPIS)
        for kpi, row in result.paired[p].items():
            seed_diff = (np.asarray(result.overall[p][kpi]["per_seed"])
                         - np.asarray(result.overall["fixed"][kpi]["per_seed"]))
            assert row["mean"] == pytest.approx(seed_diff.mean(), abs=1e-9)
            assert row["n"] == len(SEEDS) * N and row["method"] == "t"
    assert result.paired["fixed"]["npv"]["mean"] == 0
    for p in ("never", "early"):
        paired, seeds = result.paired[p]["npv"], result.difference[p]
        assert paired["mean"] == pytest.approx(seeds["npv_minus_reference"])
        assert paired["ci_low"] < paired["mean"] < paired["ci_high"]
        # invoices x seeds - 1 degrees of freedom instead of seeds - 1
        assert paired["ci_high"] - paired["ci_low"] < (seeds["ci_high"] - seeds["ci_low"]) / 2
    # never reminding collects less than the schedule, significantly
    assert result.paired["never"]["npv"]["ci_high"] < 0
    assert result.paired["never"]["reminders_per_invoice"]["mean"] < -1


def test_t_interval_is_the_textbook_one_on_all_differences() -> None:
    from scipy import stats

    rng = np.random.default_rng(3)
    d = rng.normal(2.0, 5.0, size=(3, 400))
    out = paired_interval(d)
    half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
    assert out["ci_low"] == pytest.approx(d.mean() - half)
    assert out["ci_high"] == pytest.approx(d.mean() + half)
    with pytest.raises(ValueError, match="'t' or 'bootstrap'"):
        paired_interval(d, method="jackknife")


def test_bootstrap_is_seeded_and_covers_like_the_t_interval() -> None:
    rng = np.random.default_rng(4)
    d = rng.exponential(3.0, size=(2, 300)) - 3.0  # skewed, true mean 0
    a = paired_interval(d, "bootstrap", n_boot=1000, seed=7)
    b = paired_interval(d, "bootstrap", n_boot=1000, seed=7)
    c = paired_interval(d, "bootstrap", n_boot=1000, seed=8)
    t = paired_interval(d)
    assert a == b and a["ci_low"] != c["ci_low"]
    assert a["ci_high"] - a["ci_low"] == pytest.approx(t["ci_high"] - t["ci_low"], rel=0.15)
    covered = 0
    for rep in range(120):  # coverage of the true mean 0 over fresh samples
        x = np.random.default_rng(100 + rep).exponential(3.0, size=(2, 150)) - 3.0
        ci = paired_interval(x, "bootstrap", n_boot=400, seed=rep)
        covered += ci["ci_low"] <= 0 <= ci["ci_high"]
    assert 0.87 <= covered / 120 <= 0.99


def test_paired_difference_on_demand_by_segment_and_method(result: EvaluationResult) -> None:
    boot = result.paired_difference("early", "npv", method="bootstrap", n_boot=500, seed=1)
    assert boot["mean"] == pytest.approx(result.paired["early"]["npv"]["mean"])
    assert boot["method"] == "bootstrap" and boot["ci_low"] < boot["ci_high"]
    seg = result.paired_difference("never", "npv", reference="fixed", segment="corporate")
    rows = result.invoices["segment"] == 0
    diff = result.outcomes["never"]["npv"][rows] - result.outcomes["fixed"]["npv"][rows]
    assert seg["n"] == rows.sum() and seg["mean"] == pytest.approx(diff.mean())
    with pytest.raises(ValueError, match="not a mean over invoices"):
        result.paired_difference("never", "dso")
    with pytest.raises(ValueError, match="no per-invoice outcomes of policy 'tuned'"):
        result.paired_difference("tuned")


def test_save_and_load_a_directory_round_trip(result: EvaluationResult, tmp_path) -> None:
    path = result.save(tmp_path / "ev")
    assert path.name == "evaluation.json" and (tmp_path / "ev" / "outcomes.npz").is_file()
    for where in (tmp_path / "ev", path):  # the directory save() took, or the file
        back = EvaluationResult.load(where)
        assert back.policies == result.policies and back.paired == json.loads(
            json.dumps(result.paired))
        for p in result.policies:
            for k, v in result.outcomes[p].items():
                np.testing.assert_array_equal(back.outcomes[p][k], v)
        np.testing.assert_array_equal(back.invoices["amount"], result.invoices["amount"])
        assert back.paired_difference("never") == result.paired_difference("never")
    (tmp_path / "ev" / "outcomes.npz").unlink()  # the JSON alone still loads
    alone = EvaluationResult.load(tmp_path / "ev")
    assert alone.outcomes == {} and alone.paired["never"]["npv"]["mean"] == pytest.approx(
        result.paired["never"]["npv"]["mean"])


def test_combined_evaluations_keep_outcomes_and_pairing(gt_source, legal_mask,
                                                        result: EvaluationResult) -> None:
    kw = {"n_invoices": N, "seeds": SEEDS, "source": gt_source, "mask": legal_mask}
    a = evaluate_policies({"never": NeverPolicy(), "fixed": FixedSchedulePolicy()}, **kw)
    b = evaluate_policies({"early": FixedSchedulePolicy(
        (ScheduleStep(5, "phone"), ScheduleStep(20, "letter")))}, **kw)
    both = combine_evaluations([a, b], order=["never", "fixed", "early"])
    assert both.paired == result.paired
    np.testing.assert_array_equal(both.outcomes["early"]["npv"], result.outcomes["early"]["npv"])


def test_cli_evaluate_shows_paired_intervals_and_saves_outcomes(tmp_path) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(app, [
        "evaluate", "--policies", "never,fixed", "--invoices", "60", "--seeds", "2",
        "--interval", "bootstrap", "--bootstrap-resamples", "300", "--out", str(out)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())  # the table titles wrap in a narrow terminal
    assert "paired on the same invoices" in text and "bootstrap, 300 resamples" in text
    back = EvaluationResult.load(out)
    assert back.config["interval"]["method"] == "bootstrap"
    assert back.outcomes["never"]["npv"].shape == (2, 60)
    res = CliRunner().invoke(app, ["evaluate", "--policies", "never,fixed", "--invoices",
                                   "20", "--seeds", "1", "--reference", "oracle"])
    assert res.exit_code == 2 and "--reference 'oracle'" in res.output
    res = CliRunner().invoke(app, ["evaluate", "--policies", "never,fixed", "--invoices",
                                   "20", "--seeds", "1", "--reference", "Fixed", "--out",
                                   str(tmp_path / "ref")])  # the spec, not the name
    assert res.exit_code == 0, res.output
    assert EvaluationResult.load(tmp_path / "ref").reference == "fixed"


def test_results_json_gets_the_paired_block_beside_the_old_fields(result, tmp_path) -> None:
    from dunning.pipeline import PipelineConfig, assemble_results

    res = assemble_results(PipelineConfig(), result, model_dir=tmp_path)
    assert res["paired_vs_fixed"] == result.paired
    assert res["npv_difference_vs_fixed"] == result.difference  # unchanged field
    assert json.loads(json.dumps(res["paired_vs_fixed"]))["never"]["npv"]["n"] == len(SEEDS) * N
