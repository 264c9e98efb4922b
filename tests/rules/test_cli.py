"""`dunning rules ...`: check, test, list, explain; a new jurisdiction needs only a YAML file."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dunning.cli import app
from engine.contract import Action
from legal_rules.durable_eval import DurableEvaluator
from legal_rules.loader import load_rules, packaged_rules_dir
from legal_rules.testing import NEUTRAL_FACTS
from legal_rules.vector import VectorEvaluator

runner = CliRunner()
NORWAY = """\
description: Norway (NO), added by a legal team without code changes.
rules:
  - id: no.no_phone_b2c
    title: No collection calls to consumers
    jurisdiction: "NO"
    scope: b2c
    applies_to: [phone]
    effect: veto
    kind: law
    citation: "Inkassoloven § 8 (example)"
    valid_from: 2020-01-01
    rationale: Example rule for the test.
    tests:
      - {facts: {}, expect: fires, decision: vetoed}
      - {facts: {jurisdiction: SE}, expect: does_not_fire}
"""


def run(*args: str):  # noqa: ANN201
    return runner.invoke(app, ["rules", *args])


def test_check_packaged_ok():
    res = run("check")
    assert res.exit_code == 0, res.output
    assert "ok" in res.output and "rules" in res.output


def test_check_reports_file_line_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(NORWAY.replace("applies_to: [phone]", "applies_to: [pigeon]"), "utf-8")
    res = run("check", str(bad))
    assert res.exit_code == 1
    assert f"{bad}:7: rules[0].applies_to[0]: " in res.output
    assert "Traceback" not in res.output


def test_test_command_passes_and_fails(tmp_path):
    res = run("test")
    assert res.exit_code == 0, res.output[-2000:]
    assert "0 failed" in res.output and "PASS practice.min_gap" in res.output
    wrong = tmp_path / "no.yaml"
    wrong.write_text(NORWAY.replace("{facts: {jurisdiction: SE}, expect: does_not_fire}",
                                    "{facts: {jurisdiction: SE}, expect: fires}")
                     .replace("{facts: {}, expect: fires, decision: vetoed}",
                              "{facts: {}, expect: fires, decision: vetoed}\n"
                              "      - {facts: {customer_type: b2b}, expect: does_not_fire}"),
                     "utf-8")
    res = run("test", str(wrong))
    assert res.exit_code == 1
    assert "FAIL no.no_phone_b2c (2/3)" in res.output and "1 failed" in res.output


def test_list_filters_by_jurisdiction():
    res = run("list", "--jurisdiction", "SE")
    assert res.exit_code == 0 and "rule(s)" in res.output
    res = run("list", "--jurisdiction", "SE", "--json")
    ids = {r["id"] for r in json.loads(res.output)}
    assert {"se.days_to_pay", "gdpr.art22_agency_review", "eu.late_payment_interest"} <= ids
    assert not ids & {"de.interest_b2b", "us.regf_call_frequency"}


def test_explain_facts_file(tmp_path):
    f = tmp_path / "facts.json"
    f.write_text(json.dumps(dict(NEUTRAL_FACTS, jurisdiction="US", customer_type="b2c",
                                 region="MA", calls_last_7_days=2)), "utf-8")
    res = runner.invoke(app, ["rules", "explain", "--facts", str(f), "--action", "phone",
                              "--date", "2026-03-02"], terminal_width=250)
    assert res.exit_code == 0, res.output
    assert "NOT ALLOWED" in res.output and "(us.ma_call_frequency)" in res.output
    assert "940 CMR 7.04" in res.output
    assert "(us.regf_call_frequency): does not apply" in res.output
    res = runner.invoke(app, ["rules", "explain", "--facts", str(f), "--action", "phone",
                              "--date", "2026-03-02", "--technical"], terminal_width=250)
    assert "VETOED" in res.output and "us.ma_call_frequency" in res.output
    assert "not     us.regf_call_frequency: condition false" in res.output
    res = run("explain", "--facts", str(f), "--action", "email", "--date", "2026-03-02",
              "--json")
    out = json.loads(res.output)
    assert out["status"] == "allowed" and out["ruleset_hash"] == load_rules().hash


def test_explain_bad_input_is_one_clear_line(tmp_path):
    f = tmp_path / "facts.json"
    f.write_text('{"days_overdue": 3,\n "oops": }', "utf-8")
    res = run("explain", "--facts", str(f))
    assert res.exit_code == 2 and f"{f}:2: invalid JSON" in res.output
    f.write_text('{"days_overdue": 3, "dayz": 1}', "utf-8")
    res = run("explain", "--facts", str(f))
    assert res.exit_code == 2 and "unknown fact(s) dayz" in res.output
    res = run("explain")
    assert res.exit_code == 2 and "exactly one of --facts" in res.output


def test_explain_missing_fact_fails_closed(tmp_path):
    f = tmp_path / "facts.json"
    f.write_text(json.dumps({k: v for k, v in NEUTRAL_FACTS.items() if k != "disputed"}),
                 "utf-8")
    res = runner.invoke(app, ["rules", "explain", "--facts", str(f), "-a", "email",
                              "--date", "2026-03-02"], terminal_width=250)
    assert "NOT DECIDED" in res.output and "fact 'disputed' missing" in res.output


@pytest.fixture()
def rules_with_norway(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(packaged_rules_dir(), target)
    (target / "no.yaml").write_text(NORWAY, "utf-8")
    return target


def test_new_jurisdiction_is_one_yaml_file(rules_with_norway):
    row = dict(NEUTRAL_FACTS, jurisdiction="NO", customer_type="b2c", currency="NOK")
    day = date(2026, 3, 2)
    before = DurableEvaluator(load_rules()).decide(row, Action.PHONE, day)
    extended = load_rules(rules_with_norway)
    after = DurableEvaluator(extended).decide(row, Action.PHONE, day)
    # a country no rule covers is unknown: blocked until a rule file covers it
    assert before.status == "blocked" and not before.allowed
    assert "unknown jurisdiction 'NO'" in before.input_problems[0]
    assert not after.allowed and not after.input_problems
    assert after.vetoed_by == ("no.no_phone_b2c",) and after.ruleset_hash != before.ruleset_hash
    mask = VectorEvaluator(extended).mask({k: [v] for k, v in row.items()}, day)
    assert not mask[0, Action.PHONE] and mask[0, Action.EMAIL]
    # and through the CLI, with --rules
    res = run("test", str(rules_with_norway))
    assert res.exit_code == 0 and "PASS no.no_phone_b2c" in res.output
    f = rules_with_norway.parent / "row.json"
    f.write_text(json.dumps(row), "utf-8")
    for extra in (["--rules", str(rules_with_norway / "no.yaml")],  # added to the packaged
                  ["--rules", "packaged", "--rules", str(rules_with_norway / "no.yaml")],
                  ["--no-packaged", "--rules", str(rules_with_norway)]):
        res = run("explain", "--facts", str(f), "-a", "phone", "--date", "2026-03-02",
                  "--json", *extra)
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["status"] == "vetoed", extra
    res = run("explain", "--facts", str(f), "-a", "phone", "--date", "2026-03-02", "--json")
    assert json.loads(res.output)["status"] == "blocked"
    res = run("list", "--json", "--no-packaged", "--rules", str(rules_with_norway / "no.yaml"))
    assert [r["id"] for r in json.loads(res.output)] == ["no.no_phone_b2c"]


def test_check_and_test_one_new_file_with_packaged(rules_with_norway):
    new = str(rules_with_norway / "no.yaml")
    res = run("check", new, "--with-packaged")
    n_files = len(load_rules().files) + 1
    assert res.exit_code == 0 and f"{n_files} file(s)" in res.output, res.output
    res = run("test", new)
    assert res.exit_code == 0 and "2 passed" in res.output
