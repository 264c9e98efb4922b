"""`dunning experiment run FILE.yaml`: policies x scenarios x seeds -> one JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dunning.cli import app
from engine.errors import InputError
from policies.baselines.factory import make_policy
from simulations.env import GroundTruthSource, LegalMask
from simulations.evaluation.harness import evaluate_policies
from simulations.world import load_scenario

runner = CliRunner()

SWEEP = """\
name: tiny
policies: [never, fixed, "fixed[7:email;21:phone]"]
scenarios: [default, shifted]
seeds: [3, 4]
invoices: 40
"""


def test_a_sweep_runs_every_scenario_and_policy_into_one_json(tmp_path) -> None:
    f = tmp_path / "sweep.yaml"
    f.write_text(SWEEP)
    res = runner.invoke(app, ["experiment", "run", str(f)])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "experiment-tiny.json").read_text())
    assert data["experiment"]["seeds"] == [3, 4] and data["experiment"]["invoices"] == 40
    assert set(data["runs"]) == {"default", "shifted"}
    for sc, run in data["runs"].items():
        assert run["policies"] == ["never", "fixed", "fixed[7:email;21:phone]"]
        assert run["seeds"] == [3, 4] and run["reference"] == "fixed"
        assert data["summary"][sc]["fixed"]["paired_npv_vs_reference"] is None
        assert data["summary"][sc]["never"]["paired_npv_vs_reference"]["n"] == 80
    # the same numbers as evaluating the scenario directly
    sc = load_scenario("shifted")
    direct = evaluate_policies(dict(make_policy(s) for s in ("never", "fixed")), sc, 40, [3, 4],
                               source=GroundTruthSource(sc), mask=LegalMask())
    for name in ("never", "fixed"):
        assert np.isclose(data["summary"]["shifted"][name]["npv"]["mean"],
                          direct.overall[name]["npv"]["mean"])
    assert "experiment tiny" in res.output


def test_experiment_file_errors_name_the_file_and_key(tmp_path) -> None:
    f = tmp_path / "bad.yaml"
    cases = {SWEEP.replace("seeds:", "sedes:"): "unknown key 'sedes'; did you mean 'seeds'?",
             SWEEP.replace("invoices: 40", "invoices: -5"): "'invoices': expected a positive",
             SWEEP.replace("name: tiny\n", "reference: oracle\n"): "'reference': 'oracle'",
             "policies: [never]\n": "missing required key 'scenarios'"}
    for text, message in cases.items():
        f.write_text(text)
        res = runner.invoke(app, ["experiment", "run", str(f)])
        assert res.exit_code == 2, res.output
        assert str(f) in res.output.replace("\n", "") and message in res.output.replace("\n", "")
        assert "Traceback" not in res.output
    f.write_text(SWEEP.replace("[default, shifted]", "[nope]"))
    res = runner.invoke(app, ["experiment", "run", str(f)])
    assert res.exit_code == 2 and "nope" in res.output


def test_the_docs_example_loads_and_policy_paths_are_relative_to_the_file(tmp_path) -> None:
    from pathlib import Path

    from dunning.experiment import load_experiment

    docs = Path(__file__).resolve().parents[2] / "docs" / "experiment-example.yaml"
    exp = load_experiment(docs)
    assert exp.name == "early-vs-late" and exp.scenarios == ["default", "shifted"]
    assert "rl:runs/demo/policy" in exp.policies  # not beside the file: as written (cwd)
    (tmp_path / "runs" / "policy").mkdir(parents=True)
    f = tmp_path / "sweep.yaml"
    for spec, read in (("rl:runs/policy", f"rl:{tmp_path / 'runs' / 'policy'}"),
                       ("rl:elsewhere", "rl:elsewhere")):
        f.write_text(SWEEP.replace('"fixed[7:email;21:phone]"]',
                                   f'"fixed[7:email;21:phone]", "{spec}"]')
                     + "interval: bootstrap\n")
        exp = load_experiment(f)
        assert read in exp.policies
    assert exp.interval == "bootstrap" and exp.bootstrap_resamples == 2000
    f.write_text(SWEEP + "interval: jackknife\n")
    with pytest.raises(InputError, match="'interval': expected t or bootstrap"):
        load_experiment(f)


def test_a_hostile_name_cannot_steer_the_default_output_path(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    f = tmp_path / "sub" / "sweep.yaml"
    f.write_text(SWEEP.replace("name: tiny", "name: '../../x/<b>'").replace(
        "[default, shifted]", "[default]").replace("seeds: [3, 4]", "seeds: [3]").replace(
        "invoices: 40", "invoices: 10"))
    res = runner.invoke(app, ["experiment", "run", str(f)])
    assert res.exit_code == 0, res.output
    assert [p.name for p in (tmp_path / "sub").glob("experiment-*.json")] == \
        ["experiment-x-b.json"]
    assert not list(tmp_path.glob("*.json"))


def test_the_reference_is_a_policy_as_named_in_the_results(tmp_path) -> None:
    """``rl:DIR`` is named ``rl`` in the results: ``reference: rl`` and ``reference: rl:DIR``
    both mean it; two specs with one result name (two RL artifacts) are refused instead of
    one silently replacing the other."""
    from dunning.experiment import load_experiment
    from policies.baselines.factory import policy_name

    f = tmp_path / "sweep.yaml"
    with_rl = SWEEP.replace('"fixed[7:email;21:phone]"]', '"fixed[7:email;21:phone]", "rl:runs/a"]')
    for reference in ("rl", "rl:runs/a", "RL:runs/a"):
        f.write_text(with_rl + f"reference: {reference}\n")
        if reference.startswith("RL"):  # not a listed spec, not a result name
            with pytest.raises(InputError, match="'reference': 'RL:runs/a' is not one of the "
                                                 "policies \\(never, fixed, fixed\\[7"):
                load_experiment(f)
        else:
            assert load_experiment(f).reference == "rl"
    f.write_text(with_rl + "reference: fixed[7:email;21:phone]\n")
    assert load_experiment(f).reference == "fixed[7:email;21:phone]"
    f.write_text(with_rl.replace('"rl:runs/a"]', '"rl:runs/a", "rl:runs/b"]'))
    with pytest.raises(InputError, match="'rl:runs/a' and 'rl:runs/b' are both named 'rl'"):
        load_experiment(f)
    for spec in ("never", "Fixed", "fixed:7:email", "fixed[7:email]", "oracle"):  # no files
        assert policy_name(spec) == make_policy(spec)[0]
    assert policy_name("Planner:dir") == "planner" and policy_name("rl:a") == "rl"
