"""The RL scheduler: training in the learned env, the artifact, the policy, the hold-out."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.contract import N_ACTIONS, Action
from engine.errors import InputError

from .conftest import tiny_rl_config


@pytest.fixture(scope="module")
def trained(small_run, tmp_path_factory):
    from dunning.pipeline import train_policy_step

    small_run.config.rl = tiny_rl_config(seed=5)
    out = tmp_path_factory.mktemp("policy") / "policy"
    artifact = train_policy_step(small_run.config, small_run.db, small_run.model_dir, out,
                                 as_of=small_run.cut, source=small_run.learned)
    return artifact


def test_artifact_records_provenance_and_curve(trained, small_run):
    meta = json.loads((trained.path / "policy.json").read_text())
    assert meta["format"] == "dunning.rl_policy/1"
    assert meta["algorithm"] == "MaskablePPO"
    assert meta["timesteps"] >= 2048
    assert meta["seed"] == 5
    prov = meta["provenance"]
    assert prov["environment"] == "learned"
    assert prov["as_of"] == str(small_run.cut)
    card = json.loads((small_run.model_dir / "artifact.json").read_text())
    assert prov["hazard_model_hash"] == card["hazard_hash"]
    assert prov["payment_model_hash"] == card["payment_hash"]
    assert prov["ruleset_hash"]
    curve = json.loads((trained.path / "training_curve.json").read_text())
    assert len(curve["timesteps"]) == len(curve["mean_reward"]) >= 1
    assert all(np.isfinite(curve["mean_reward"]))
    assert len(meta["content_hash"]) == 64


def test_same_seed_same_policy(trained, small_run, tmp_path: Path, monkeypatch):
    import tempfile

    from dunning.pipeline import train_policy_step

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    again = train_policy_step(small_run.config, small_run.db, small_run.model_dir,
                              tmp_path / "again", as_of=small_run.cut, source=small_run.learned)
    assert again.content_hash == trained.content_hash
    assert list(temp.iterdir()) == []  # SB3's default logger would leave SB3-<time> here
    small_run.config.rl = tiny_rl_config(seed=6)
    other = train_policy_step(small_run.config, small_run.db, small_run.model_dir,
                              tmp_path / "other", as_of=small_run.cut, source=small_run.learned)
    small_run.config.rl = tiny_rl_config(seed=5)
    assert other.content_hash != trained.content_hash


def test_a_complaint_weight_changes_the_reward_and_nothing_else(small_run):
    """``with_costs``: the same draws and outcomes, complaints cost ``weight`` times more;
    the source it was made from keeps its costs."""
    from dataclasses import replace

    from policies.rl import RLTrainingConfig
    from simulations.env import CollectionsSimulator, LegalMask

    learned, mask = small_run.learned, LegalMask()
    costs = learned.costs
    weighted = learned.with_costs(RLTrainingConfig(complaint_weight=16.0).training_costs(costs))
    assert weighted.costs == replace(costs, complaint_cost=16.0 * costs.complaint_cost)
    assert learned.costs is costs
    sims = [CollectionsSimulator(src, mask) for src in (learned, weighted)]
    batch = learned.fresh_invoices(400, np.random.default_rng(3))
    for sim in sims:
        sim.load(batch)
    complaints = 0
    for day in range(60):  # an e-mail whenever one is allowed
        act = np.where(sims[0].masks[:, Action.EMAIL], int(Action.EMAIL), int(Action.WAIT))
        plain, heavy = (sim.step(act, np.random.default_rng([3, day])) for sim in sims)
        assert np.array_equal(plain.outcome.paid, heavy.outcome.paid)
        assert np.array_equal(plain.outcome.complaint, heavy.outcome.complaint)
        extra = 15.0 * costs.complaint_cost * costs.discount(np.full(len(act), day))
        np.testing.assert_allclose(plain.reward - heavy.reward,
                                   np.where(plain.outcome.complaint, extra, 0.0))
        complaints += int(plain.outcome.complaint.sum())
    assert complaints > 0


def test_policy_is_trained_with_its_complaint_weight(small_run, tmp_path: Path, monkeypatch):
    from dataclasses import replace

    import simulations.env as env
    from dunning.pipeline import train_policy_step
    from policies.rl import RLTrainingConfig

    seen = []

    class Recording(env.BatchCollectionsVecEnv):
        def __init__(self, source: Any, *args: Any, **kwargs: Any) -> None:
            seen.append(source.costs)
            super().__init__(source, *args, **kwargs)

    monkeypatch.setattr(env, "BatchCollectionsVecEnv", Recording)
    rl = replace(tiny_rl_config(seed=5), complaint_weight=16.0, timing_search=False,
                 total_timesteps=1024)
    art = train_policy_step(replace(small_run.config, rl=rl), small_run.db,
                            small_run.model_dir, tmp_path / "weighted", as_of=small_run.cut,
                            source=small_run.learned)
    costs = small_run.learned.costs
    assert seen == [replace(costs, complaint_cost=16.0 * costs.complaint_cost)]
    saved = RLTrainingConfig.from_dict(art.metadata["training_config"])
    assert saved.complaint_weight == 16.0
    older = {k: v for k, v in saved.to_dict().items() if k != "complaint_weight"}
    assert RLTrainingConfig.from_dict(older).complaint_weight == 1.0  # artifacts before it
    for bad in (0.5, float("nan")):
        with pytest.raises(InputError, match="complaint_weight"):
            RLTrainingConfig(complaint_weight=bad)


def _env_batch(small_run, n: int = 256):
    from simulations.env import BatchCollectionsVecEnv

    venv = BatchCollectionsVecEnv(small_run.learned, num_envs=n, seed=11)
    obs = venv.reset()
    return venv, obs


def test_loaded_policy_acts_lawfully_and_deterministically(trained, small_run):
    from policies.rl import RLPolicy

    policy = RLPolicy.load(trained.path)
    assert policy.content_hash == trained.content_hash
    venv, obs = _env_batch(small_run)
    for _ in range(30):
        masks = venv.action_masks()
        actions = policy.act(obs, masks)
        assert actions.shape == (venv.num_envs,) and actions.dtype == np.int64
        assert masks[np.arange(venv.num_envs), actions].all()
        np.testing.assert_array_equal(actions, policy.act(obs, masks))
        obs, _, _, _ = venv.step(actions)


def test_policy_obeys_a_mask_that_forbids_everything_but_wait(trained, small_run):
    from policies.rl import RLPolicy

    policy = RLPolicy.load(trained.path)
    _, obs = _env_batch(small_run, 64)
    only_wait = np.zeros((64, N_ACTIONS), dtype=bool)
    only_wait[:, Action.WAIT] = True
    assert (policy.act(obs, only_wait) == Action.WAIT).all()
    with pytest.raises(ValueError, match="masks must have shape"):
        policy.act(obs, only_wait[:10])
    assert policy.act(obs[:0], only_wait[:0]).shape == (0,)


def test_tampered_or_missing_artifact_is_a_clear_error(trained, tmp_path: Path):
    import shutil

    from policies.rl import RLPolicy

    with pytest.raises(InputError, match="policy.json: missing"):
        RLPolicy.load(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(trained.path, copy)
    meta = json.loads((copy / "policy.json").read_text())
    meta["training_config"]["seed"] = 999
    (copy / "policy.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="content_hash"):
        RLPolicy.load(copy)
    (copy / "policy.json").write_text("{broken")
    with pytest.raises(InputError, match="line 1"):
        RLPolicy.load(copy)


def test_training_refuses_an_env_without_legal_masks(small_run):
    from stable_baselines3.common.env_util import make_vec_env

    from policies.rl import train_maskable_ppo

    venv = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    with pytest.raises(ValueError, match="n_envs"):
        train_maskable_ppo(venv, tiny_rl_config())
    cfg = tiny_rl_config()
    cfg = type(cfg)(**{**cfg.to_dict(), "n_envs": 2, "net_arch": (16, 16)})
    with pytest.raises(ValueError, match="action_masks"):
        train_maskable_ppo(venv, cfg)


def test_month_cut():
    from policies.rl.holdout import month_cut

    assert month_cut(dt.date(2025, 12, 31), 4) == dt.date(2025, 9, 1)
    assert month_cut(dt.date(2025, 3, 31), 4) == dt.date(2024, 12, 1)
    assert month_cut(dt.date(2025, 1, 15), 1) == dt.date(2025, 1, 1)


def test_holdout_source_uses_only_invoices_due_after_the_cut(small_run):
    from dunning.pipeline import evaluation_source

    src = evaluation_source(small_run.config, small_run.company, small_run.model_dir,
                            small_run.cut, db=small_run.db)
    inv = small_run.company.invoices.set_index("invoice_id")
    due = inv.loc[src.invoice_ids, "due_date"].astype(str)
    assert (due >= str(small_run.cut)).all()
    n_after = int((small_run.company.invoices["due_date"].astype(str) >= str(small_run.cut)).sum())
    assert len(src) == n_after
    batch = src.fresh_invoices(50, np.random.default_rng(0))
    probs = batch.payment_probs
    assert probs.shape == (50, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert probs.std(axis=0).max() > 0  # real model outputs, not the uniform default
    again = src.fresh_invoices(50, np.random.default_rng(0))
    np.testing.assert_array_equal(batch.amount, again.amount)


def test_holdout_source_before_the_cut_is_the_training_period(small_run):
    """The ceiling diagnostic's truth holds exactly the invoices the evaluation excludes."""
    from policies.rl.holdout import holdout_source
    from simulations import world

    scenario = world.load_scenario(small_run.config.scenario)
    before = holdout_source(small_run.company, scenario, small_run.cut, small_run.model_dir,
                            before_cut=True)
    after = holdout_source(small_run.company, scenario, small_run.cut, small_run.model_dir)
    assert not set(before.invoice_ids) & set(after.invoice_ids)
    assert len(before) + len(after) == len(small_run.company.invoices)
    inv = small_run.company.invoices.set_index("invoice_id")
    assert (inv.loc[before.invoice_ids, "due_date"].astype(str) < str(small_run.cut)).all()


def test_veto_counter_counts_rules_and_passes_actions_through(small_run):
    from dunning.pipeline import evaluation_source, vetoes_block
    from policies.baselines.schedule import FixedSchedulePolicy
    from policies.rl.vetoes import VetoCounter
    from simulations.evaluation.harness import evaluate_policies

    src = evaluation_source(small_run.config, small_run.company, small_run.model_dir,
                            small_run.cut, db=small_run.db)
    counted = VetoCounter(FixedSchedulePolicy())
    res = evaluate_policies({"fixed": FixedSchedulePolicy(), "counted": counted},
                            src.scenario, n_invoices=60, seeds=1, source=src)
    assert res.kpi("fixed", "npv") == res.kpi("counted", "npv")
    assert sum(counted.counts.values()) > 0  # weekends alone veto reminders
    rows = vetoes_block(counted.counts)
    assert rows[0]["count"] == max(counted.counts.values())
    assert all(r["citation"] for r in rows)


def test_train_policy_cli(small_run, tmp_path: Path):
    from typer.testing import CliRunner

    from dunning.cli import app
    from policies.rl import RLPolicy

    out = tmp_path / "cli-policy"
    res = CliRunner().invoke(app, ["train-policy", "--db", str(small_run.db), "--model",
                                   str(small_run.model_dir), "--out", str(out),
                                   "--timesteps", "1000", "--seed", "2",
                                   "--no-timing-search"])  # searched: test_timing.py
    assert res.exit_code == 0, res.output
    assert "policy saved to" in res.output and "timing rules" not in res.output
    policy = RLPolicy.load(out)
    assert policy.artifact.metadata["seed"] == 2
    assert policy.artifact.metadata["training_config"]["timing_search"] is False
    assert not (out / "timing_search.json").exists()
    # no searched rules: only the spacing it was trained with (RLTrainingConfig)
    assert {r.first_reminder_day for r in policy.timing.rules.values()} == {0}
    assert {r.min_days_between for r in policy.timing.rules.values()} == {7}
    assert policy.artifact.metadata["provenance"]["db"] == str(small_run.db)
    res = CliRunner().invoke(app, ["train-policy", "--db", str(tmp_path / "none.duckdb"),
                                   "--model", str(small_run.model_dir), "--out", str(out)])
    assert res.exit_code == 2
    assert "none.duckdb" in res.output and "Traceback" not in res.output


def _same_figures(a: Any, b: Any, names: list[str],
                  parts: tuple[str, ...] = ("overall", "by_segment", "timing", "difference",
                                            "vetoes")) -> None:
    """``names``' figures in evaluations ``a`` and ``b`` of the same invoices are equal."""
    assert a.seeds == b.seeds and a.scenario == b.scenario and a.n_invoices == b.n_invoices
    # compared as JSON: NaN KPIs (e.g. never's first-reminder pay rate) are != themselves
    for part in parts:
        for name in names:
            assert (json.dumps(getattr(a, part).get(name), sort_keys=True, default=float)
                    == json.dumps(getattr(b, part).get(name), sort_keys=True, default=float)
                    ), (part, name)


@pytest.mark.slow
def test_baselines_in_a_worker_then_rl_here_equal_one_evaluation(trained, small_run,
                                                                 tmp_path: Path):
    """The pipeline tunes and evaluates never / fixed / tuned / planner (and never / fixed /
    tuned / oracle on the robustness scenario) in a spawned process while RL and the oracle
    are evaluated here, then combines. Under common random numbers a policy's figures do
    not depend on the policies beside it (combining: tests/sim/test_evaluation.py), so the
    combination is one evaluation of all six when every figure that crossed the process
    boundary is what this process computes: the planner the worker saved, loaded here, and
    fixed, the reference of the paired differences; the oracle on the robustness scenario."""
    from dataclasses import replace

    from dunning.pipeline import (
        POLICY_ORDER,
        _worker,
        baselines_in_worker,
        build_policies,
        evaluate_step,
        evaluation_source,
        oracle_policy,
        robustness_step,
        save_planner_members,
        with_policy,
    )
    from engine.models.ensemble import SEED_STRIDE
    from policies.planner import PlannerPolicy
    from policies.rl import RLPolicy
    from policies.rl.vetoes import VetoCounter

    # the planner on the mean of the run's hazard model and one of another seed, reminding
    # only where the history logged one at least; half the tiny sizes (the property does
    # not depend on them, and every policy here is solved or planned twice)
    config = replace(small_run.config, out_dir=tmp_path, planner_hazard_members=2,
                     planner_min_support=1, n_eval_invoices=20, ope_invoices=20,
                     tune_invoices=80)
    source = evaluation_source(config, small_run.company, small_run.model_dir, small_run.cut,
                               db=small_run.db)
    rl = {"rl": VetoCounter(RLPolicy.load(trained.path))}
    members_dir = tmp_path / "planner_members"
    with _worker() as worker:  # as run_pipeline: the planner's added model fitted first
        fitted = worker.submit(save_planner_members, config, small_run.db, small_run.cut,
                               members_dir)
        job = worker.submit(baselines_in_worker, config, small_run.company, small_run.db,
                            small_run.model_dir, small_run.cut, members_dir)
        here = evaluate_step(config, {**rl, "oracle": oracle_policy()}, source)
        base = job.result()
    assert fitted.result() == 1  # the count comes back, the model through its files
    assert base.evaluation.policies == ["never", "fixed", "tuned", "planner"]
    planner = PlannerPolicy.load(base.planner_dir)
    assert len(planner.dynamics.hazard.members) == 2  # saved and loaded as an ensemble
    assert [m.random_state for m in planner.dynamics.hazard.members] == [
        config.seed, config.seed + SEED_STRIDE]
    handed = (members_dir / "member_1" / "hazard_model.txt").read_text()
    assert handed == (base.planner_dir / "member_1" / "hazard_model.txt").read_text()
    assert planner.dynamics.min_support == 1
    combined = with_policy(base.evaluation, here)
    assert combined.policies == list(POLICY_ORDER)
    crossed = {k: v for k, v in build_policies(base.tuned, None, planner).items()
               if k in ("fixed", "planner")}
    again = evaluate_step(config, crossed, source)
    _same_figures(combined, again, ["fixed", "planner"])
    # (``here`` has no reference for differences)
    _same_figures(combined, here, ["rl", "oracle"], ("overall", "by_segment", "timing", "vetoes"))
    assert combined.difference["planner"] and combined.difference["rl"]
    assert sum(rl["rl"].counts.values()) > 0  # the RL policy's vetoes are still counted
    shifted = with_policy(base.robustness, robustness_step(
        config, small_run.model_dir, small_run.cut, {"rl": RLPolicy.load(trained.path)}))
    assert shifted.scenario == "shifted"
    assert shifted.policies == [p for p in POLICY_ORDER if p != "planner"]
    _same_figures(shifted, robustness_step(config, small_run.model_dir, small_run.cut,
                                           {"fixed": crossed["fixed"],
                                            "oracle": oracle_policy()}), ["fixed", "oracle"])


@pytest.mark.slow
def test_tuning_in_a_worker_process_equals_tuning_here(small_run, tmp_path: Path):
    """The pipeline tunes the schedule in a spawned process beside the RL training, from
    the store and models on disk; it must find what tuning in this process finds."""
    from dataclasses import replace

    from dunning.pipeline import _worker, tune_in_worker, tune_step

    config = replace(small_run.config, out_dir=tmp_path)
    here = tune_step(config, small_run.learned).to_dict()
    (tmp_path / "tuned_schedule.json").unlink()
    with _worker() as worker:
        job = worker.submit(tune_in_worker, config, small_run.db, small_run.model_dir,
                            small_run.cut)
        there = job.result().to_dict()
    assert there == here and here
    saved = json.loads((tmp_path / "tuned_schedule.json").read_text())  # by the worker
    assert saved["schedules"] == here
