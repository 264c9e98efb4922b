"""`dunning retrain --policy-candidate`: the off-policy gate on a real store, company and
hazard model (policies/promotion.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dunning.business.promotion import (
    PolicyGateConfig,
    evaluate_candidate,
    finish,
    ope_rule,
    promote_policy,
    promotion_log_path,
)
from dunning.cli import app
from engine.errors import InputError
from policies.baselines.schedule import DEFAULT_SCHEDULE
from policies.tuned import TunedSchedulePolicy
from simulations.env.layout import SEGMENT_NAMES

runner = CliRunner()


@pytest.fixture(scope="module")
def gate(world_store, world_tables, tmp_path_factory):
    """The world store's company directory (summary.json), a model with its hazard model
    trained before 2024-09-01, and two policies: the fixed 14/30/45 schedule for every
    segment and never reminding (clearly worse on this company)."""
    from engine.models.training import TrainConfig, train_artifact
    from simulations.world import generate_company, load_scenario

    tmp = tmp_path_factory.mktemp("gate")
    generate_company(load_scenario("default"), 160, 12, seed=5).write(tmp / "company")
    cfg = TrainConfig(payment_params={"n_estimators": 30}, hazard_params={"n_estimators": 30})
    train_artifact(world_tables, tmp / "model", as_of="2024-09-01", cfg=cfg)
    TunedSchedulePolicy({s: DEFAULT_SCHEDULE for s in SEGMENT_NAMES}).save(tmp / "fixed.json")
    TunedSchedulePolicy({s: () for s in SEGMENT_NAMES}).save(tmp / "never.json")
    return {"db": world_store, "dir": tmp, "model": tmp / "model", "company": tmp / "company"}


def _copy(gate, name: str, to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(gate["dir"] / f"{name}.json", to)
    return to


def test_a_better_policy_is_promoted_through_the_cli(gate, tmp_path):
    policy = _copy(gate, "never", tmp_path / "policy.json")
    r = runner.invoke(app, ["retrain", "--db", str(gate["db"]), "--model", str(gate["model"]),
                            "--policy", str(policy), "--policy-candidate",
                            str(gate["dir"] / "fixed.json"), "--company", str(gate["company"]),
                            "--policy-only"])
    assert r.exit_code == 0, r.output
    assert "policy promoted" in r.output
    assert policy.read_text() == (gate["dir"] / "fixed.json").read_text()
    assert (tmp_path / "policy.json.previous").read_text() == \
        (gate["dir"] / "never.json").read_text()
    entry = json.loads(promotion_log_path(policy).read_text().splitlines()[-1])
    assert entry["promoted"] and entry["model_gate"] is None
    dr = entry["estimates"]["dr"]
    assert dr["candidate"] > dr["current"] and dr["difference_ci"][0] > 0
    assert entry["episodes"] >= 30 and entry["ope_from"] < entry["ope_to"]


def test_a_worse_policy_is_refused_with_the_reason_logged(gate, tmp_path):
    policy = _copy(gate, "fixed", tmp_path / "policy.json")
    before = policy.read_text()
    d = promote_policy(gate["db"], gate["model"], policy, gate["dir"] / "never.json",
                       gate["company"])
    assert not d.promoted and not d.ope_passed
    assert "lower bound below" in d.reason
    assert d.estimates["dr"]["difference_ci"][1] < 0  # clearly worse, not just noisy
    assert policy.read_text() == before and not (tmp_path / "policy.json.previous").exists()
    # append-only: a second run adds a line, the first stays as written
    log = promotion_log_path(policy)
    first = log.read_text()
    promote_policy(gate["db"], gate["model"], policy, gate["dir"] / "never.json",
                   gate["company"])
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and log.read_text().startswith(first)
    assert json.loads(lines[1])["reason"] == d.reason


def test_the_same_policy_passes_but_a_refused_model_blocks_it(gate, tmp_path):
    policy = _copy(gate, "fixed", tmp_path / "policy.json")
    ev = evaluate_candidate(gate["db"], gate["model"], policy, gate["dir"] / "fixed.json",
                            gate["company"])
    assert ev["estimates"]["dr"]["difference_ci"] == [0.0, 0.0]
    d = finish(ev, policy, gate["dir"] / "fixed.json", PolicyGateConfig(), model_gate=False)
    assert d.ope_passed and not d.promoted and "model was not promoted" in d.reason
    d = finish(ev, policy, gate["dir"] / "fixed.json", PolicyGateConfig(), model_gate=True)
    assert d.promoted


@pytest.mark.parametrize("args, needle", [
    (["--policy-candidate", "{dir}/missing.json", "--policy", "{dir}/fixed.json"],
     "--policy-candidate {dir}/missing.json: not found"),
    (["--policy-candidate", "{dir}/company/summary.json", "--policy", "{dir}/fixed.json"],
     "Tuned schedule file"),
    (["--policy-candidate", "{dir}/company", "--policy", "{dir}/fixed.json"],
     "not a policy"),
    (["--policy-candidate", "{dir}/never.json"], "needs --policy"),
    (["--policy-candidate", "{dir}/never.json", "--policy", "{dir}/fixed.json",
      "--company", "{dir}/model"], "no summary.json"),
    (["--policy-candidate", "{dir}/never.json", "--policy", "{dir}/fixed.json",
      "--ope-from", "2030-01-01"], "no complete logged episode"),
    (["--policy-only"], "needs --policy-candidate"),
])
def test_bad_inputs_give_one_line_errors(gate, args, needle):
    args = [a.format(dir=gate["dir"]) for a in args]
    r = runner.invoke(app, ["retrain", "--db", str(gate["db"]), "--model", str(gate["model"]),
                            "--company", str(gate["company"]), *args])
    assert r.exit_code == 2, r.output
    assert needle.format(dir=gate["dir"]).lower() in " ".join(r.output.split()).lower()
    assert "Traceback" not in r.output


def test_gate_options_are_checked():
    with pytest.raises(InputError, match="--tolerance"):
        PolicyGateConfig(tolerance_share=-0.1)


def _estimates(dr: float, dr_ci: tuple[float, float], snips: float) -> dict:
    return {"dr": {"current": 100.0, "candidate": 100.0 + dr, "difference": dr,
                   "difference_ci": list(dr_ci)},
            "snips": {"current": 90.0, "candidate": 90.0 + snips, "difference": snips,
                      "difference_ci": [snips - 50.0, snips + 50.0]},
            "match_rate": {"current": 0.15, "candidate": 0.025}}


@pytest.mark.parametrize("dr, dr_ci, snips, passed, needle", [
    (5.0, (-0.9, 10.0), 3.0, True, "does not point the other way"),   # within margin 1.0
    (5.0, (-1.1, 10.0), 3.0, False, "lower bound below -1.00"),
    (50.0, (20.0, 80.0), -1.1, False, "estimators disagree"),  # the demo's tuned schedule
    (50.0, (20.0, 80.0), -0.9, True, ">= -1.00"),
])
def test_the_rule_needs_dr_non_inferior_and_snips_not_pointing_the_other_way(
        dr, dr_ci, snips, passed, needle):
    ok, reason = ope_rule(_estimates(dr, dr_ci, snips), tolerance=1.0)
    assert ok is passed and needle in reason
    if "disagree" in needle:
        assert "2.5%" in reason  # how little support the candidate has
