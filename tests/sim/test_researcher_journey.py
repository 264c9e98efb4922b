"""The researcher's journey of issue 26, from the docs alone: the commands and code are read
out of the docs' code blocks (docs/policies.md, docs/offline-rl.md, docs/experiments.md), so
a docs change that breaks them fails here. Only the sizes are made tiny (invoices, seeds,
customers), and what costs minutes is replaced by its documented fast form: the tuned
schedule is a saved file (`--tuned FILE` / `tuned:FILE`, not a search) and the RL policy a
512-step MaskablePPO artifact put where the docs expect it; `--model` (a trained payment
model) is left out.

(a) a policy class written into its own module on the path, (b) evaluated from the CLI against
fixed / tuned / RL / oracle with paired intervals, (c) the logged history exported and read
back, (d) the plugin policy valued off-policy with diagnostics and warnings, (e) a sweep from
one experiment file.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dunning.cli import app
from simulations.evaluation.harness import EvaluationResult

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
runner = CliRunner()
WIDE = {"COLUMNS": "400"}  # rich tables on one line per row: figures can be found in output
TINY = {"--invoices": "10", "--seeds": "2", "--customers": "50", "--months": "6"}


def code_blocks(doc: str, lang: str) -> list[str]:
    """The fenced ``lang`` code blocks of ``docs/<doc>``, in order."""
    text = (DOCS / doc).read_text()
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def doc_block(doc: str, lang: str, marker: str) -> str:
    hits = [b for b in code_blocks(doc, lang) if marker in b]
    assert hits, f"docs/{doc}: no {lang} block with {marker!r} (the docs changed?)"
    return hits[0]


def doc_command(doc: str, marker: str) -> list[str]:
    """The first ``dunning ...`` command of a bash block of ``doc`` containing ``marker``,
    as CLI arguments (continuations joined, comments and ``PYTHONPATH=.`` dropped: the test
    puts the working directory on the path itself)."""
    block = doc_block(doc, "bash", marker).replace("\\\n", " ")
    for line in block.splitlines():
        args = shlex.split(line, comments=True)
        if args and args[0] == "PYTHONPATH=.":
            args = args[1:]
        if args[:1] == ["dunning"] and marker in line:
            return args[1:]
    raise AssertionError(f"docs/{doc}: no `dunning` command with {marker!r}")


def tiny(args: list[str], **extra: str) -> list[str]:
    """``args`` with the sizes of :data:`TINY` (and ``extra``: ``--opt=value``, or ``None``
    to drop an option and its value); nothing else changed."""
    sizes = {**TINY, **{f"--{k.replace('_', '-')}": v for k, v in extra.items()}}
    out, skip = [], False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if a in sizes and i + 1 < len(args):
            skip = True
            if sizes[a] is not None:
                out += [a, sizes[a]]
            continue
        out.append(a)
    return out


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    """The researcher's working directory: the policy module of docs/policies.md, a tiny
    really trained RL artifact at the docs' ``dunning-data/policy`` (and ``runs/demo/policy``
    of the experiment example), and a saved tuned schedule."""
    from policies.baselines import DEFAULT_SCHEDULE, ScheduleStep
    from policies.rl import RLTrainingConfig, save_artifact, train_maskable_ppo
    from policies.tuned import TunedSchedulePolicy
    from simulations.env import BatchCollectionsVecEnv, GroundTruthSource, LegalMask
    from simulations.env.layout import SEGMENT_NAMES

    lab = tmp_path_factory.mktemp("lab")
    code = doc_block("policies.md", "python", "# mypolicies.py")
    (lab / "mypolicies.py").write_text(code)  # (a): a module of the researcher's own
    source, mask = GroundTruthSource("default", pool_size=1000, seed=0), LegalMask()
    cfg = RLTrainingConfig(seed=0, total_timesteps=512, n_envs=16, n_steps=16, batch_size=128,
                           n_epochs=1, net_arch=(8, 8))
    venv = BatchCollectionsVecEnv(source, num_envs=cfg.n_envs, mask=mask, seed=cfg.seed,
                                  reward_per_amount=True)
    model, curve, seconds = train_maskable_ppo(venv, cfg)
    for where in ("dunning-data/policy", "runs/demo/policy"):
        save_artifact(model, lab / where, cfg, curve, seconds, {"environment": "test"})
    early = tuple(ScheduleStep(s.day - 7, s.channel) for s in DEFAULT_SCHEDULE)
    tuned = TunedSchedulePolicy({s: early if s == "corporate" else DEFAULT_SCHEDULE
                                 for s in SEGMENT_NAMES})
    tuned.save(lab / "runs/demo/tuned_schedule.json")
    return lab


@pytest.fixture()
def in_lab(lab, monkeypatch):
    """Run from the lab with it on the path (the docs' ``PYTHONPATH=.``)."""
    monkeypatch.chdir(lab)
    monkeypatch.syspath_prepend(str(lab))
    monkeypatch.delitem(sys.modules, "mypolicies", raising=False)
    yield lab
    sys.modules.pop("mypolicies", None)


def test_b_evaluate_my_policy_against_fixed_tuned_rl_and_oracle(in_lab, wide_console) -> None:
    args = doc_command("policies.md", "mypolicies:EmailThenCall")
    assert "--policies" in args and "--model" in args
    args = tiny(args, model=None) + ["--tuned", "runs/demo/tuned_schedule.json"]
    res = runner.invoke(app, args, env=WIDE)
    assert res.exit_code == 0, res.output
    ev = EvaluationResult.load("results/")  # as the docs say
    mine = next(p for p in ev.policies if p.startswith("mypolicies:EmailThenCall"))
    assert ev.policies == ["never", "fixed", "tuned", "oracle", "rl", mine]
    assert ev.reference == "fixed"
    assert "paired on the same invoices" in res.output
    for p in ("never", "tuned", "oracle", "rl", mine):
        npv = ev.paired[p]["npv"]
        assert npv["n"] == 20 and npv["ci_low"] <= npv["mean"] <= npv["ci_high"]
        printed = f"{npv['mean']:+,.0f} [{npv['ci_low']:+,.0f}, {npv['ci_high']:+,.0f}]"
        assert printed in res.output  # the table shows the interval of evaluation.json
    # the interval is over invoice-level differences of the saved outcomes
    diff = ev.outcomes[mine]["npv"] - ev.outcomes["fixed"]["npv"]
    assert ev.paired[mine]["npv"]["mean"] == pytest.approx(diff.mean())
    assert ev.paired["tuned"]["npv"]["mean"] != 0  # the saved schedule differs from fixed
    assert ev.overall["oracle"]["npv"]["mean"] >= ev.overall["fixed"]["npv"]["mean"]
    assert ev.overall[mine]["violations"]["mean"] == 0
    sent = ev.outcomes[mine]["reminders"] > 0
    assert sent.any() and (ev.outcomes[mine]["first_reminder_day"][sent] >= 5).all()


@pytest.fixture(scope="module")
def dataset(lab) -> Path:
    """(c) `dunning dataset export` as docs/offline-rl.md shows it, tiny."""
    cwd = os.getcwd()
    os.chdir(lab)
    try:
        args = tiny(doc_command("offline-rl.md", "--scenario default"))
        res = runner.invoke(app, [*args, "--max-invoices", "80"], env=WIDE)
    finally:
        os.chdir(cwd)
    assert res.exit_code == 0, res.output
    return lab / "ds"


def test_c_export_the_logged_history_and_read_it_back(dataset, in_lab, monkeypatch) -> None:
    meta = json.loads((dataset / "dataset.json").read_text())
    assert 30 <= meta["episodes"] <= 80 and meta["propensity_missing_share"] == 0
    code = doc_block("offline-rl.md", "python", "Transitions.load")
    monkeypatch.setenv("MINARI_DATASETS_PATH", "unset-by-the-docs-code")  # restored after
    ns: dict = {}
    exec(compile(code, "docs/offline-rl.md", "exec"), ns)  # the docs' own reading code
    tr, ep = ns["tr"], ns["ep"]
    assert tr.n == meta["transitions"] and len(list(tr.episodes())) == meta["episodes"]
    assert tr.logging_probs.shape == (tr.n, 6)
    np.testing.assert_allclose(tr.logging_probs.sum(axis=1), 1.0, atol=1e-5)
    logged = tr.logging_probs[np.arange(tr.n), tr.actions]
    assert (logged > 0).all()  # every logged action had probability > 0 under the logger
    rows = next(tr.episodes())
    np.testing.assert_array_equal(ep.actions, tr.actions[rows])
    np.testing.assert_allclose(ep.infos["propensity"][:-1], tr.propensities[rows])


def test_d_estimate_my_policy_off_policy_with_diagnostics(dataset, in_lab) -> None:
    args = doc_command("offline-rl.md", "dataset estimate")
    assert any("mypolicies:EmailThenCall" in a for a in args)
    res = runner.invoke(app, args, env=WIDE)
    assert res.exit_code == 0, res.output
    out = json.loads(Path(args[args.index("--json") + 1]).read_text())
    n = json.loads((dataset / "dataset.json").read_text())["episodes"]
    assert out["episodes"] == n
    mine = next(p for p in out["policies"] if p.startswith("mypolicies:EmailThenCall"))
    assert set(out["policies"]) == {"fixed", mine}
    for name, r in out["policies"].items():
        d = r["diagnostics"]
        assert d["n_episodes"] == n and 0 <= d["unsupported_decisions"] <= 1
        assert f"effective sample size {d['ess']:.1f} of {n} episodes" in res.output
        assert f"off-policy value of {name}" in res.output
        for e in r["estimates"].values():
            if e["value"] is None:  # withheld, and why: never a bare number
                assert e["warning"] and e["ci"] is None
            else:
                assert e["ci"][0] <= e["value"] <= e["ci"][1]
                assert f"{e['value']:,.0f}" in res.output
        assert r["estimates"]["fqe"]["value"] is not None  # FQE needs no propensities
        assert r["estimates"]["dm"]["value"] is None  # no model values in a dataset
    # an early email-then-call target has little support in a 14/30/45 log: IS is withheld
    ips = out["policies"][mine]["estimates"]["ips"]
    assert ips["value"] is None and "effective sample size" in ips["warning"]
    assert "withheld" in res.output and "do not trust" in res.output


def test_d_a_bad_dataset_is_a_clean_error(dataset, in_lab, tmp_path) -> None:
    z = dict(np.load(dataset / "transitions.npz"))
    del z["rewards"]
    np.savez(tmp_path / "transitions.npz", **z)
    res = runner.invoke(app, ["dataset", "estimate", str(tmp_path), "--policies", "fixed"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "transitions.npz: field 'rewards' missing" in " ".join(res.output.split())
    z = dict(np.load(dataset / "transitions.npz"))
    z["propensities"] = z["propensities"] * 0
    np.savez(tmp_path / "transitions.npz", **z)
    res = runner.invoke(app, ["dataset", "estimate", str(tmp_path), "--policies", "fixed"])
    assert res.exit_code == 2 and "field 'propensities', row 0" in " ".join(res.output.split())
    import pandas as pd

    bad = tmp_path / "pq"
    bad.mkdir()
    pd.read_parquet(dataset / "transitions.parquet").drop(columns="mask.letter").to_parquet(
        bad / "transitions.parquet")
    res = runner.invoke(app, ["dataset", "estimate", str(bad), "--policies", "fixed"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "transitions.parquet: column 'mask.letter' missing" in " ".join(res.output.split())
    (bad / "transitions.parquet").write_text("not parquet")
    res = runner.invoke(app, ["dataset", "estimate", str(bad), "--policies", "fixed"])
    assert res.exit_code == 2 and "cannot read it as a dataset" in res.output
    res = runner.invoke(app, ["dataset", "estimate", str(dataset), "--policies", "oracle"])
    assert res.exit_code == 2 and "world's true state" in " ".join(res.output.split())


def test_e_a_sweep_from_one_file(in_lab) -> None:
    exp = yaml.safe_load(doc_block("experiments.md", "yaml", "name: early-vs-late"))
    assert any(p.startswith("rl:") for p in exp["policies"]) and "oracle" in exp["policies"]
    exp.update(seeds=2, invoices=6)
    Path("sweep.yaml").write_text(yaml.safe_dump(exp))
    args = doc_command("experiments.md", "experiment run docs/experiment-example.yaml --out")
    args = [("sweep.yaml" if a == "docs/experiment-example.yaml" else a) for a in args]
    res = runner.invoke(app, args, env=WIDE)
    assert res.exit_code == 0, res.output
    result = json.loads(Path(args[args.index("--out") + 1]).read_text())
    assert set(result["summary"]) == set(exp["scenarios"])
    for rows in result["summary"].values():
        assert rows["fixed"]["paired_npv_vs_reference"] is None
        p = rows["oracle"]["paired_npv_vs_reference"]
        assert p["n"] == 12 and p["ci_low"] <= p["mean"] <= p["ci_high"]
    assert "rl" in result["training"] and result["training"]["rl"]["curve"]
    assert (Path(args[args.index("--report") + 1]) / "index.html").is_file()


def test_d_the_printed_figures_are_estimate_all_on_the_replay(dataset, in_lab) -> None:
    """The CLI on the exported files gives what `estimate_all` gives on the replay the export
    came from (same company, same subset): nothing is lost in the files."""
    from policies.baselines.factory import make_policy
    from simulations import world
    from simulations.env import LegalMask
    from simulations.ope import build_logged_dataset, estimate_all, target_actions

    company = world.generate_company(world.load_scenario("default"), int(TINY["--customers"]),
                                     int(TINY["--months"]), 0)
    data = build_logged_dataset(company, LegalMask(), 80, 0)
    res = runner.invoke(app, ["dataset", "estimate", "ds/transitions.parquet", "--policies",
                              "fixed[7:email;21:phone]", "--json", "est.json"], env=WIDE)
    assert res.exit_code == 0, res.output
    got = json.loads(Path("est.json").read_text())["policies"]["fixed[7:email;21:phone]"]
    _, pol = make_policy("fixed[7:email;21:phone]")
    want = estimate_all(data, target_actions(pol, data), None, n_boot=500, seed=0)
    for k in ("ess", "match_rate", "unsupported_decisions", "unsupported_episodes"):
        assert got["diagnostics"][k] == pytest.approx(want["diagnostics"][k], rel=1e-9)
    for name, e in want["estimates"].items():  # FQE's amount scale comes from the float32
        assert got["estimates"][name]["value"] == (  # log_amount column: ~1e-7 apart
            None if e["value"] is None else pytest.approx(e["value"], rel=1e-6))
        assert got["estimates"][name]["warning"] == e["warning"] or e["value"] is None


def test_d_from_the_history_itself_the_model_based_estimators_are_given(dataset,
                                                                         in_lab) -> None:
    """Without DATASET the command replays the history as `export` does (same options), and
    the direct method's values come from a hazard model fitted on it: dr / wdr / dm get
    numbers, and the log-only estimators equal those on the exported files."""
    spec = 'mypolicies:EmailThenCall:{"email_day": 5, "call_day": 20}'
    args = tiny(doc_command("offline-rl.md", "dataset estimate --scenario"))
    assert any(spec in a for a in args)
    res = runner.invoke(app, [*args, "--max-invoices", "80", "--json", "hist.json"], env=WIDE)
    assert res.exit_code == 0, res.output
    hist = json.loads(Path("hist.json").read_text())["policies"][spec]
    res = runner.invoke(app, ["dataset", "estimate", "ds/", "--policies", spec, "--json",
                              "files.json"], env=WIDE)
    assert res.exit_code == 0, res.output
    files = json.loads(Path("files.json").read_text())["policies"][spec]
    for name in ("dr", "wdr", "dm"):
        e = hist["estimates"][name]
        assert e["value"] is not None and e["ci"][0] <= e["value"] <= e["ci"][1]
        assert files["estimates"][name]["value"] is None
    assert hist["estimates"]["fqe"]["value"] == pytest.approx(
        files["estimates"]["fqe"]["value"], rel=1e-6)
    assert hist["diagnostics"]["ess"] == pytest.approx(files["diagnostics"]["ess"], rel=1e-9)
    res = runner.invoke(app, ["dataset", "estimate", "ds/", "--model", "m/", "--policies",
                              "fixed"])
    assert res.exit_code == 2 and "only without DATASET" in res.output
