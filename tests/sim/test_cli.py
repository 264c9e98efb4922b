"""`dunning simulate` / `dunning evaluate` on small sizes, and their error messages."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from dunning.cli import app

runner = CliRunner()


def test_evaluate_writes_json_and_tables(tmp_path):
    tuned = tmp_path / "tuned.json"
    tuned.write_text(json.dumps({"schedules": {"corporate": [{"day": 7, "channel": "phone"}]}}))
    out = tmp_path / "out"
    res = runner.invoke(app, ["evaluate", "--policies", "never,fixed:10:email,tuned",
                              "--tuned", str(tuned), "--invoices", "80", "--seeds", "2",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "evaluation.json").read_text())
    assert data["policies"] == ["never", "fixed:10:email", "tuned"]
    assert data["seeds"] == [0, 1]
    assert data["overall"]["tuned"]["violations"]["mean"] == 0
    assert "reminder timing" in res.output


def test_unknown_policy_is_a_clean_error():
    res = runner.invoke(app, ["simulate", "--policy", "sometimes", "--invoices", "10"])
    assert res.exit_code == 2
    assert "unknown policy 'sometimes'" in res.output
    assert "Traceback" not in res.output


def test_bad_scenario_and_schedule_are_clean_errors(tmp_path):
    res = runner.invoke(app, ["simulate", "--scenario", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2 and "scenario" in res.output
    res = runner.invoke(app, ["simulate", "--policy", "fixed:14:fax", "--invoices", "10"])
    assert res.exit_code == 2 and "fax" in res.output
    res = runner.invoke(app, ["simulate", "--policy", "tuned:" + str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "not found" in res.output
