"""Every inline test case of every packaged rule passes, through both evaluators."""

from __future__ import annotations

from dataclasses import replace

import pytest

from legal_rules.loader import load_rules
from legal_rules.testing import run_case, run_rule_tests

_RULES = load_rules()
CASES = [(rule.id, i) for rule in _RULES.rules for i in range(len(rule.tests))]


def test_every_rule_has_a_firing_and_a_non_firing_case(ruleset):
    for rule in ruleset.rules:
        assert {c.expect for c in rule.tests} == {"fires", "does_not_fire"}, rule.id


@pytest.mark.parametrize(("rule_id", "case"), CASES, ids=[f"{r}[{i}]" for r, i in CASES])
def test_inline_case(ruleset, durable, vector, rule_id, case):
    rule = ruleset.rule(rule_id)
    result = run_case(rule, rule.tests[case], durable, vector)
    assert result.passed, "; ".join(result.messages)


@pytest.mark.parametrize("rule_id", ["practice.no_reminder_disputed", "de.interest_b2b",
                                     "us.ma_call_frequency"])
def test_a_wrong_expectation_fails(ruleset, durable, vector, rule_id):
    rule = ruleset.rule(rule_id)
    case = rule.tests[0]
    flipped = replace(case, expect="does_not_fire" if case.expect == "fires" else "fires")
    result = run_case(rule, flipped, durable, vector)
    assert not result.passed and "expected the rule to" in result.messages[0]


def test_wrong_cap_value_and_decision_fail(ruleset, durable, vector):
    rule = ruleset.rule("de.interest_b2b")
    case = next(c for c in rule.tests if c.has_cap_value)
    assert not run_case(rule, replace(case, cap_value=10.0), durable, vector).passed
    assert not run_case(rule, replace(case, decision="vetoed"), durable, vector).passed


def test_run_rule_tests_covers_all_cases(ruleset):
    results = run_rule_tests(ruleset)
    assert len(results) == sum(len(r.tests) for r in ruleset.rules) == len(CASES)
    assert all(r.passed for r in results)
