"""The business commands end to end through the real CLI (typer's CliRunner)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from dunning.cli import app

runner = CliRunner()

RESULTS = {"policies": {
    "fixed": {"mean_days_to_pay": 67.0, "reminders_per_invoice": 1.8, "violations": 0,
              "first_reminder_pay_rate": 0.23, "agency_per_1000": 40.0},
    "rl": {"mean_days_to_pay": 58.0, "reminders_per_invoice": 1.3, "violations": 0,
           "first_reminder_pay_rate": 0.31, "agency_per_1000": 30.0},
}}


def run(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def results_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(RESULTS))
    return path


def test_roi_prints_the_business_case(results_file, tmp_path):
    out = tmp_path / "roi.json"
    r = run("roi", "--results", str(results_file), "--json", str(out))
    assert r.exit_code == 0, r.output
    assert "net yearly benefit" in r.output and "payback after" in r.output
    section = json.loads(out.read_text())
    assert section["viable"] and section["figures"]["yearly_benefit"] > 0
    assert section["figures"]["losses_avoided"] > 0  # agency 40 -> 30 per 1000


def test_roi_refuses_a_number_for_a_tiny_company(results_file):
    r = run("roi", "--results", str(results_file), "--active-customers", "40")
    assert r.exit_code == 0
    assert "unlikely to pay off" in r.output and "40 active customers" in r.output
    assert "EUR" not in r.output


def test_roi_user_errors_exit_2_without_traceback(tmp_path, results_file):
    r = run("roi", "--results", str(tmp_path / "none.json"))
    assert r.exit_code == 2 and "file not found" in r.output and "Traceback" not in r.output
    r = run("roi", "--results", str(results_file), "--proposed", "tuned")
    assert r.exit_code == 2 and "'tuned' not found" in r.output


def test_pilot_design_and_analyse(world_store, tmp_path):
    out = tmp_path / "pilot.csv"
    r = run("pilot", "design", "--db", str(world_store), "--customers", "120", "--seed", "3",
            "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "detect an effect of" in r.output
    a = pd.read_csv(out)
    assert list(a.columns) == ["customer_id", "arm", "stratum"] and len(a) == 120
    design = json.loads(out.with_suffix(".json").read_text())
    assert design["pilot_start"] == "2025-01-01" and design["power"]["n_customers"] == 120
    # the world ends 2024-12-31: with the default start there is nothing to analyse yet
    r = run("pilot", "analyse", "--assignment", str(out), "--db", str(world_store))
    assert r.exit_code == 2 and "no invoices" in r.output
    js = tmp_path / "analysis.json"
    r = run("pilot", "analyse", "--assignment", str(out), "--db", str(world_store),
            "--from", "2024-06-01", "--json", str(js))
    assert r.exit_code == 0, r.output
    assert "learned - current" in r.output and "safety guard" in r.output
    analysis = json.loads(js.read_text())
    assert {c["metric"] for c in analysis["comparisons"]} == {
        "first_reminder_pay_rate", "days_to_pay", "npv"}


def test_pilot_design_from_results_needs_no_store(results_file):
    r = run("pilot", "design", "--results", str(results_file), "--metric",
            "first_reminder_pay_rate", "--effect", "0.1")
    assert r.exit_code == 0, r.output
    assert "baseline 23.00" in r.output
    r = run("pilot", "design", "--results", str(results_file), "--metric", "days_to_pay")
    assert r.exit_code == 2 and "use --db" in r.output


def test_pilot_bad_options(world_store, tmp_path):
    r = run("pilot", "design", "--db", str(world_store), "--metric", "speed")
    assert r.exit_code == 2 and "expected one of" in r.output
    bad = tmp_path / "a.csv"
    bad.write_text("customer_id,arm\nC1,control\n")
    r = run("pilot", "analyse", "--assignment", str(bad), "--db", str(world_store))
    assert r.exit_code == 2 and "line 2: field arm is 'control'" in r.output


def test_drift_command(world_store, world_model, tmp_path):
    js = tmp_path / "drift.json"
    r = run("drift", "--db", str(world_store), "--model", str(world_model), "--json", str(js))
    assert r.exit_code == 0, r.output
    assert "feature shift" in r.output and "calibration of P(on time)" in r.output
    assert json.loads(js.read_text())["recent_period"][1] == "2024-12-31"


def test_what_if_needs_exactly_one_change():
    r = run("what-if")
    assert r.exit_code == 2 and "exactly one" in r.output
    r = run("what-if", "--change", "schedule=7,x")
    assert r.exit_code == 2 and "DAY:CHANNEL" in r.output


def test_pilot_design_dry_run_on_a_simulated_company(tmp_path):
    out = tmp_path / "dry.csv"
    r = run("pilot", "design", "--scenario", "default", "--customers", "40", "--metric",
            "days_to_pay", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "scenario default (simulated)" in r.output
    assert len(pd.read_csv(out)) == 40
