"""Reports of `dunning evaluate` and `dunning experiment run`: rendered from the JSON they
write, with the paired per-invoice intervals, per-scenario tables and learning curves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dunning.cli import app
from dunning.report.render import fmt_value
from engine.serialization import jsonable

from .test_report import EXTERNAL_REF

runner = CliRunner()
HOSTILE = '<script>alert("x")</script>&'


def _table(html: str, table_id: str) -> str:
    found = re.search(rf'<table id="{re.escape(table_id)}"[^>]*>(.*?)</table>', html, re.S)
    assert found, f"no table {table_id}"
    return found[1]


def _row(table: str, policy: str) -> str:
    found = re.search(rf'<tr data-policy="{re.escape(policy)}">(.*?)</tr>', table, re.S)
    assert found, f"no row {policy}"
    return found[1]


def _ci(st: dict) -> str:
    """A paired interval as the report prints an NPV difference."""
    return f"[{fmt_value(st['ci_low'], '{:+,.0f}')}, {fmt_value(st['ci_high'], '{:+,.0f}')}]"


def _assert_safe(html: str) -> None:
    assert "<script" not in html and "<img" not in html
    assert not EXTERNAL_REF.search(html)


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    """A real evaluation of never, fixed and a schedule under a hostile name, saved with its
    per-invoice outcomes (60 invoices x 2 seeds)."""
    from policies.baselines.factory import make_policy
    from simulations.env import GroundTruthSource, LegalMask
    from simulations.evaluation.harness import evaluate_policies

    policies = dict(make_policy(s) for s in ("never", "fixed"))
    policies[HOSTILE] = make_policy("fixed[7:email;21:phone]")[1]
    res = evaluate_policies(policies, "default", 60, [0, 1],
                            source=GroundTruthSource("default", pool_size=2000, seed=0),
                            mask=LegalMask())
    out = tmp_path_factory.mktemp("evaluation")
    res.save(out)
    return res, out


def test_evaluation_report_shows_the_paired_intervals(evaluation) -> None:
    res, out = evaluation
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "report" / "index.html").read_text()
    paired = _table(html, "run-0-paired")
    for name in ("never", HOSTILE):
        st = res.paired[name]["npv"]
        row = _row(paired, name.replace("&", "&amp;").replace("<", "&lt;")
                   .replace(">", "&gt;").replace('"', "&#34;"))
        assert fmt_value(st["mean"], "{:+,.0f}") in row
        assert _ci(st) in row
    assert 'data-policy="fixed"' not in paired  # the reference is not compared with itself
    assert "over 120" in html and "paired t-interval" in html  # 60 invoices x 2 seeds
    assert html.count("<svg") >= 3  # paired forest, NPV bars, timing
    _assert_safe(html)


def test_evaluation_report_escapes_a_hostile_policy_name(evaluation) -> None:
    from dunning.report.research import render_evaluation_report

    res, _ = evaluation
    html = render_evaluation_report(jsonable(res.to_dict()))
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;" in html
    _assert_safe(html)


def test_report_recomputes_bootstrap_intervals_from_the_outcomes(evaluation, tmp_path) -> None:
    res, out = evaluation
    result = runner.invoke(app, ["report", str(out / "evaluation.json"), "--interval",
                                 "bootstrap", "--bootstrap-resamples", "300", "--seed", "5",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "index.html").read_text()
    boot = res.paired_difference("never", "npv", method="bootstrap", n_boot=300, seed=5)
    t = res.paired["never"]["npv"]
    assert (boot["ci_low"], boot["ci_high"]) != (t["ci_low"], t["ci_high"])
    row = _row(_table(html, "run-0-paired"), "never")
    assert _ci(boot) in row
    assert "percentile bootstrap" in html and "300 resamples, seed 5" in html
    # without outcomes.npz the intervals cannot be recomputed: a clear error, exit 2
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "evaluation.json").write_text((out / "evaluation.json").read_text())
    result = runner.invoke(app, ["report", str(lone), "--interval", "bootstrap"])
    assert result.exit_code == 2 and "outcomes.npz" in result.output
    assert "Traceback" not in result.output


def test_report_input_errors_name_the_file(tmp_path) -> None:
    bad = tmp_path / "x.json"
    for text, message in (("{", "line 1: not valid JSON"), ('{"a": 1}', "not a results.json"),
                          ('{"experiment": {}, "runs": {"s": {"policies": []}}}',
                           "'runs.s': field 'scenario' missing")):
        bad.write_text(text)
        result = runner.invoke(app, ["report", str(bad)])
        assert result.exit_code == 2, result.output
        assert str(bad) in result.output.replace("\n", "")
        assert message in result.output.replace("\n", "")
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "neither results.json" in result.output
    bad.write_text('{"scenario": "s", "n_invoices": 3, "seeds": [0], "policies": ["a"], '
                   '"overall": {"a": {"npv": "oops"}}}')
    result = runner.invoke(app, ["report", str(bad)])
    assert result.exit_code == 2, result.output
    assert "not a well-formed evaluation file" in result.output.replace("\n", "")
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def rl_artifact(tmp_path_factory) -> Path:
    """A tiny but really trained MaskablePPO artifact (with its training_curve.json)."""
    from policies.rl import RLTrainingConfig, save_artifact, train_maskable_ppo
    from simulations.env import BatchCollectionsVecEnv, GroundTruthSource, LegalMask

    source, mask = GroundTruthSource("default", pool_size=2000, seed=0), LegalMask()
    cfg = RLTrainingConfig(seed=0, total_timesteps=512, n_envs=16, n_steps=16, batch_size=128,
                           n_epochs=1, net_arch=(8, 8))
    venv = BatchCollectionsVecEnv(source, num_envs=cfg.n_envs, mask=mask, seed=cfg.seed,
                                  reward_per_amount=True)
    model, curve, seconds = train_maskable_ppo(venv, cfg)
    out = tmp_path_factory.mktemp("rl") / "policy"
    save_artifact(model, out, cfg, curve, seconds, {"environment": "ground truth (test)"})
    return out


def test_experiment_report_has_every_scenario_and_the_learning_curve(tmp_path,
                                                                     rl_artifact) -> None:
    f = tmp_path / "sweep.yaml"
    f.write_text(f"name: '{HOSTILE}'\npolicies: [never, fixed, 'rl:{rl_artifact}']\n"
                 "scenarios: [default, shifted]\nseeds: [1, 2]\ninvoices: 30\n")
    out, rep = tmp_path / "exp.json", tmp_path / "rep"
    result = runner.invoke(app, ["experiment", "run", str(f), "--out", str(out),
                                 "--report", str(rep)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    html = (rep / "index.html").read_text()
    # the learning curve stored with the artifact is in the JSON and drawn in the report
    curve = json.loads((rl_artifact / "training_curve.json").read_text())
    assert curve["timesteps"] and data["training"]["rl"]["curve"] == curve
    meta = json.loads((rl_artifact / "policy.json").read_text())
    training = re.search(r'id="training">(.*?)</section>', html, re.S)[1]
    assert meta["content_hash"] in training and "<svg" in training
    # one section per scenario with its paired table; a summary across scenarios
    for i, sc in enumerate(("default", "shifted")):
        assert f'<section id="run-{i}" class="scenario" data-scenario="{sc}">' in html
        st = data["runs"][sc]["paired"]["rl"]["npv"]
        row = _row(_table(html, f"run-{i}-paired"), "rl")
        assert _ci(st) in row
    summary = _table(html, "summary-table")
    for sc in ("default", "shifted"):
        st = data["summary"][sc]["never"]["paired_npv_vs_reference"]
        assert _ci(st) in \
            _row(summary, "never")
    assert "&lt;script&gt;" in html
    _assert_safe(html)
    # `dunning report RESULT.json` re-renders the same page
    again = runner.invoke(app, ["report", str(out)])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "exp-report" / "index.html").read_text() == html


def test_evaluate_report_option_writes_the_same_page_as_report(tmp_path, rl_artifact) -> None:
    out, rep = tmp_path / "ev", tmp_path / "rep"
    result = runner.invoke(app, ["evaluate", "--policies", f"never,fixed,rl:{rl_artifact}",
                                 "--invoices", "30", "--seeds", "2", "--out", str(out),
                                 "--report", str(rep)])
    assert result.exit_code == 0, result.output
    html = (rep / "index.html").read_text()
    saved = json.loads((out / "evaluation.json").read_text())
    assert _ci(saved["paired"]["never"]["npv"]) in _row(_table(html, "run-0-paired"), "never")
    # the rl: artifact's learning curve is kept in evaluation.json and drawn
    curve = json.loads((rl_artifact / "training_curve.json").read_text())
    assert saved["config"]["training"]["rl"]["curve"] == curve
    training = re.search(r'id="training">(.*?)</section>', html, re.S)[1]
    assert "<svg" in training and str(rl_artifact) not in html  # no paths of this machine
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0
    assert (out / "report" / "index.html").read_text() == html


@pytest.mark.browser
def test_evaluation_report_renders_in_headless_chromium(evaluation, tmp_path) -> None:
    from dunning.report.research import render_evaluation_report, write_html

    from .conftest import chromium_path, run_chromium

    if chromium_path() is None:
        pytest.skip("needs chromium (make chromium)")
    res, _ = evaluation
    index = write_html(render_evaluation_report(jsonable(res.to_dict())), tmp_path / "r")
    dom = run_chromium(["--dump-dom", index.as_uri()], tmp_path)
    paired = _table(dom, "run-0-paired")
    assert len(re.findall(r"<tr data-policy=", paired)) == 2  # never and the hostile one
    assert "<script" not in dom  # the hostile name stayed text
    svgs = re.findall(r"<svg\b.*?</svg>", dom, re.DOTALL)
    assert len(svgs) >= 3 and all("<path" in s for s in svgs)
