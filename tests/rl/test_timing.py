"""Per-segment timing rules: the hold they put on the masks, their file form, the search, and
their place in the RL artifact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.contract import N_ACTIONS, Action
from engine.errors import InputError
from simulations.env.layout import LAYOUT, SEGMENT_NAMES


def _observations(rows: list[tuple[str, int, int, int]]) -> np.ndarray:
    """One row per ``(segment, days overdue, emails sent, days since the last one)``."""
    obs = np.zeros((len(rows), LAYOUT.dim), np.float32)
    seg = LAYOUT.slice("segment")
    for i, (segment, day, sent, since) in enumerate(rows):
        obs[i, seg.start + SEGMENT_NAMES.index(segment)] = 1
        obs[i, LAYOUT["days_overdue"]] = day
        obs[i, LAYOUT.slice("reminders").start] = sent
        obs[i, LAYOUT["days_since_contact"]] = since
    return obs


def test_rules_hold_a_too_early_first_reminder_and_a_too_close_next_one():
    from policies.rl.timing_rules import TimingRule, TimingRules

    rules = TimingRules({"corporate": TimingRule(first_reminder_day=6, min_days_between=10)})
    obs = _observations([
        ("corporate", 3, 0, 60),   # held: first reminder before day 6
        ("corporate", 6, 0, 60),   # free from day 6 on
        ("corporate", 20, 1, 4),   # held: 4 days after the last reminder
        ("corporate", 20, 1, 10),  # free after 10 days
        ("startup", 0, 0, 60),     # no rule for start-ups
    ])
    assert rules.held(obs).tolist() == [True, False, True, False, False]
    masks = np.ones((len(obs), N_ACTIONS), bool)
    masks[1, int(Action.PHONE)] = False  # the legal mask is kept where the rule is silent
    out = rules.apply(obs, masks)
    for i in (0, 2):
        assert out[i].tolist() == [a == Action.WAIT for a in range(N_ACTIONS)]
    assert (out[[1, 3, 4]] == masks[[1, 3, 4]]).all()
    assert masks.all(axis=1)[[0, 2, 3, 4]].all()  # the input is not modified


def test_rules_round_trip_and_bad_rules_name_the_field():
    from policies.rl.timing_rules import TimingRule, TimingRules

    rules = TimingRules({"corporate": TimingRule(6, 10), "saas": TimingRule(0, 14),
                         "startup": TimingRule()})
    data = rules.to_dict()
    assert data == {"corporate": {"first_reminder_day": 6, "min_days_between": 10},
                    "saas": {"first_reminder_day": 0, "min_days_between": 14}}
    assert TimingRules.from_dict(json.loads(json.dumps(data))).to_dict() == data
    with pytest.raises(InputError, match="policy.json: .*first_reminder_day must be"):
        TimingRules.from_dict({"corporate": {"first_reminder_day": -1}}, "policy.json")
    with pytest.raises(InputError, match="min_days_between must be .*'7'"):
        TimingRules.from_dict({"corporate": {"min_days_between": "7"}})
    with pytest.raises(InputError, match="unknown segment.*'retail'"):
        TimingRules.from_dict({"retail": {"first_reminder_day": 3}})
    with pytest.raises(InputError, match="unexpected keyword argument 'first_day'"):
        TimingRules.from_dict({"corporate": {"first_day": 3}})
    with pytest.raises(InputError, match="expected a mapping"):
        TimingRules.from_dict([6, 10])


def test_search_moves_early_calls_later_where_waiting_pays(gt_source, legal_mask):
    """Calls from the due date on waste the corporates' best week (they pay best on a
    reminder 5-10 days after due, docs/ARCHITECTURE field knowledge); the search on the
    world must find a later first reminder for them, and keep it only if it validates."""
    from policies.baselines.schedule import ScheduleStep, SegmentSchedulePolicy
    from policies.rl.timing import TimingSearchConfig, search_timing_rules
    from simulations.env.core import CollectionsSimulator
    from simulations.evaluation.harness import segment_mean_npv

    early = SegmentSchedulePolicy({}, (ScheduleStep(0, "phone"), ScheduleStep(7, "phone"),
                                       ScheduleStep(14, "phone")))
    cfg = TimingSearchConfig(first_reminder_days=(0, 6), min_days_between=(0, 14),
                             n_invoices=1500, validation_invoices=1500, seed=0)
    rules, report = search_timing_rules(early, gt_source, cfg, mask=legal_mask)
    assert rules.rules["corporate"].first_reminder_day == 6
    assert report["validation"]["corporate"]["kept"]
    corp = report["candidates"]["corporate"]
    assert max(corp["6/0"], corp["6/14"]) > max(corp["0/0"], corp["0/14"])
    # every kept rule beat the policy alone on the validation invoices
    for seg, v in report["validation"].items():
        assert v["kept"] == (seg in rules.rules)
        if v["kept"]:
            assert v["npv_per_amount_with_rule"] > v["npv_per_amount_policy_alone"]
    # ... and that is what the rules do on invoices neither the search nor the check saw
    from policies.rl.timing import TimedPolicy
    from policies.rl.timing_rules import TimingRules

    sim = CollectionsSimulator(gt_source, legal_mask)
    fresh = gt_source.fresh_invoices(1500, np.random.default_rng(99))
    timed = segment_mean_npv(TimedPolicy(early, rules), sim, fresh, 7, per_amount=True)
    alone = segment_mean_npv(TimedPolicy(early, TimingRules()), sim, fresh, 7, per_amount=True)
    corporate = SEGMENT_NAMES.index("corporate")
    assert timed[corporate] > alone[corporate]


def test_search_leaves_a_policy_that_never_reminds_alone(gt_source, legal_mask):
    from policies.baselines.factory import make_policy
    from policies.rl.timing import TimingSearchConfig, search_timing_rules

    _, never = make_policy("never")
    cfg = TimingSearchConfig(first_reminder_days=(0, 6), min_days_between=(0, 14),
                             n_invoices=300, validation_invoices=300)
    rules, report = search_timing_rules(never, gt_source, cfg, mask=legal_mask)
    assert rules.rules == {}
    assert not any(v["kept"] for v in report["validation"].values())


def test_search_config_needs_the_no_rule_option():
    from policies.rl.timing import TimingSearchConfig

    with pytest.raises(ValueError, match="first_reminder_days must include 0"):
        TimingSearchConfig(first_reminder_days=(3, 6))


def test_artifact_carries_its_rules_into_the_hash_and_the_policy(small_run, tmp_path: Path):
    from dunning.pipeline import train_policy_step
    from policies.rl import RLPolicy, load_artifact, save_artifact
    from policies.rl.timing_rules import TimingRule, TimingRules

    from .conftest import tiny_rl_config

    small_run.config.rl = tiny_rl_config(seed=2)
    trained = train_policy_step(small_run.config, small_run.db, small_run.model_dir,
                                tmp_path / "searched", as_of=small_run.cut,
                                source=small_run.learned)
    report = json.loads((trained.path / "timing_search.json").read_text())
    assert set(report["validation"]) == set(SEGMENT_NAMES)
    assert report["seconds"] >= 0
    # the config's grid is the one searched, and it comes back from the artifact as it was
    assert report["config"]["first_reminder_days"] == [0, 9, 30]
    assert report["config"]["min_days_between"] == [0, 14]
    assert {s: set(c) for s, c in report["candidates"].items()} == {
        s: {"0/0", "0/14", "9/0", "9/14", "30/0", "30/14"} for s in SEGMENT_NAMES}
    kept = {s for s, v in report["validation"].items() if v["kept"]}
    saved = trained.metadata["timing_rules"]
    gap = small_run.config.rl.min_days_between
    assert gap == 7 and set(saved) == set(SEGMENT_NAMES)  # every segment keeps the spacing
    for seg, rule in saved.items():
        searched = report["validation"][seg]["rule"]
        want = searched if seg in kept else {"first_reminder_day": 0, "min_days_between": 0}
        assert rule == {"first_reminder_day": want["first_reminder_day"],
                        "min_days_between": max(gap, want["min_days_between"])}

    policy = RLPolicy.load(trained.path)
    rules = TimingRules({"corporate": TimingRule(first_reminder_day=9)})
    meta, curve = trained.metadata, load_artifact(trained.path).curve
    from policies.rl import RLTrainingConfig
    from policies.rl.training import TrainingCurve

    cfg = RLTrainingConfig.from_dict(meta["training_config"])
    assert cfg == small_run.config.rl
    plain = save_artifact(policy.model, tmp_path / "plain", cfg, TrainingCurve(**curve),
                          meta["train_seconds"], meta["provenance"])
    timed = save_artifact(policy.model, tmp_path / "timed", cfg, TrainingCurve(**curve),
                          meta["train_seconds"], meta["provenance"], timing=rules)
    assert RLPolicy.load(plain.path).timing == cfg.spacing_rules()
    assert timed.content_hash != plain.content_hash
    loaded = RLPolicy.load(timed.path)
    assert loaded.timing == rules.with_min_gap(gap)
    assert loaded.timing.rules["corporate"] == TimingRule(9, gap)
    obs = _observations([("corporate", 2, 0, 60), ("corporate", 2, 0, 60)])
    obs[:, LAYOUT.slice("payment_probs")] = (0.2, 0.3, 0.5)
    assert (loaded.act(obs, np.ones((2, N_ACTIONS), bool)) == int(Action.WAIT)).all()

    # hand-edited rules no longer match the hash: the policy is refused
    edited = tmp_path / "edited"
    shutil.copytree(timed.path, edited)
    data = json.loads((edited / "policy.json").read_text())
    data["timing_rules"]["corporate"]["first_reminder_day"] = 3
    (edited / "policy.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="content_hash"):
        RLPolicy.load(edited)
    data["timing_rules"]["corporate"]["first_reminder_day"] = -3
    (edited / "policy.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="timing_rules.*first_reminder_day"):
        RLPolicy.load(edited)


def test_rules_describe_themselves_for_a_person():
    from policies.rl.timing_rules import TimingRule, TimingRules

    assert TimingRules().describe() == "none"
    rules = TimingRules({"startup": TimingRule(0, 14), "corporate": TimingRule(6, 10),
                         "saas": TimingRule()})
    assert rules.describe() == ("corporate: first reminder from day 6, >= 10 days apart; "
                                "startup: >= 14 days apart")
