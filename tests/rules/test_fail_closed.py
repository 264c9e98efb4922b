"""Fail closed on input the rules do not know: every action blocked, the message names the
value and the closest known one, and both evaluators agree (every packaged rule file)."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pytest

from engine.contract import Action
from engine.errors import InputError
from legal_rules.decision import INPUT_CODES, as_action
from legal_rules.facts import FACTS
from legal_rules.known import CURRENCIES, INDUSTRIES
from legal_rules.testing import NEUTRAL_FACTS, case_facts, rows_to_arrays

DAY = date(2026, 3, 2)
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _random_word(rng: np.random.Generator, size: int) -> str:
    return "".join(rng.choice(list(LETTERS.lower() + "_"), size=size))


def unknown_change(rng: np.random.Generator, ruleset: Any, row: dict[str, Any]
                   ) -> tuple[str, Any]:
    """One random change that makes ``row`` hold something the rules do not know."""
    kind = rng.integers(7)
    if kind == 0:  # a 2-letter code no rule covers
        codes = [a + b for a in LETTERS for b in LETTERS]
        free = [c for c in codes if c not in ruleset.jurisdictions]
        return "jurisdiction", free[rng.integers(len(free))]
    if kind == 1:
        return "industry", _random_word(rng, int(rng.integers(1, 12)))
    if kind == 2:
        return "currency", "".join(rng.choice(list(LETTERS), size=3))
    if kind == 3:
        return "customer_type", ["B2B", "B2C", "consumer", "business", ""][rng.integers(5)]
    if kind == 4:  # a region of no covered country (or of another one)
        return "region", ["ZZ", "Q1", "XX-1", "by" if row["jurisdiction"] != "DE" else "NY"][
            rng.integers(4)]
    if kind == 5:  # a fact of the wrong type
        name = sorted(FACTS)[rng.integers(len(FACTS))]
        wrong = {"int": "16", "float": "12.5", "bool": "yes", "str": 7}[FACTS[name].type]
        return name, wrong
    return "not_a_fact_" + _random_word(rng, 4), True  # a key that is no fact


def test_every_packaged_rule_file_blocks_random_unknown_values(ruleset, durable, vector):
    """For every rule of every packaged file: its own case facts with one unknown value."""
    rng = np.random.default_rng(23)
    by_file: dict[str, int] = {}
    for rule in ruleset.rules:
        for case in rule.tests:
            base = case_facts(rule, case)
            for _ in range(3):
                name, value = unknown_change(rng, ruleset, base)
                row = dict(base, **{name: value})
                decisions = durable.decide_all(row, DAY)
                arrays = rows_to_arrays([row]) | (
                    {name: np.array([value], dtype=object)} if name not in FACTS else {})
                batch = vector.evaluate(arrays, DAY)
                mask = vector.mask(arrays, DAY)
                for a in Action:
                    if a is Action.WAIT:
                        assert decisions[a].allowed and mask[0, a]
                        continue
                    d = decisions[a]
                    assert not d.allowed and d.status == "blocked", (rule.id, name, value, a)
                    assert d.input_problems, (rule.id, name, value)
                    assert not batch.allowed[0, a] and not mask[0, a], (rule.id, name, value)
                    # "blocked by" names the input problem as a pseudo-rule, in both engines
                    assert set(d.blocked_by) & set(INPUT_CODES[:3]), (rule.id, name, value)
                    assert d.blocked_by == batch.blocked_by(0, a), (rule.id, name, value, a)
                assert batch.invalid[0]
                by_file[rule.source.file] = by_file.get(rule.source.file, 0) + 1
    rule_files = {r.source.file for r in ruleset.rules}
    assert set(by_file) == rule_files and min(by_file.values()) >= 6


def test_known_values_still_decide(durable, vector, facts):
    for industry in INDUSTRIES:
        for currency in ("EUR", "GBP"):
            row = facts(industry=industry, currency=currency)
            d = durable.decide_all(row, DAY)
            assert not d[Action.EMAIL].input_problems, (industry, currency)
            assert vector.mask(rows_to_arrays([row]), DAY)[0].tolist() == [
                d[a].allowed for a in Action]
    assert set(CURRENCIES) >= {"EUR", "GBP", "SEK", "PLN", "USD"}
    d = durable.decide_all(facts(jurisdiction="DE", region="BY"), DAY)
    assert d[Action.EMAIL].allowed  # Bavaria is a region of Germany


@pytest.mark.parametrize(("change", "message"), [
    ({"jurisdiction": "UK"}, "unknown jurisdiction 'UK'; did you mean 'GB'?"),
    ({"jurisdiction": "de"}, "did you mean 'DE'?"),
    ({"jurisdiction": "NO"}, "unknown jurisdiction 'NO': no rule covers it; known: AT, BE"),
    ({"industry": "helthcare"}, "unknown industry 'helthcare'; did you mean 'healthcare'?"),
    ({"industry": "Construction"}, "did you mean 'construction'?"),
    ({"customer_type": "B2C"}, "did you mean 'b2c'?"),
    ({"currency": "EURO"}, "unknown currency 'EURO'; did you mean 'EUR'?"),
    ({"jurisdiction": "US", "region": "ma"}, "unknown region 'ma' of US; did you mean 'MA'?"),
    ({"jurisdiction": "DE", "region": "MA"}, "unknown region 'MA' of DE"),
    ({"dayz_overdue": 3}, "unknown fact 'dayz_overdue'; did you mean 'days_overdue'?"),
    ({"days_overdue": "16"}, "fact 'days_overdue': expected a number, found str '16'"),
    ({"is_weekend": 0}, "fact 'is_weekend': expected true/false, found int 0"),
])
def test_messages_name_the_value_and_the_closest_known_one(durable, change, message):
    row = dict(NEUTRAL_FACTS, **change)
    d = durable.decide(row, "letter", DAY)
    assert d.status == "blocked" and not d.allowed
    assert any(message in p for p in d.input_problems), d.input_problems


def test_missing_fact_blocks_only_the_rules_that_need_it(durable, facts):
    # absent is not unknown: a rule that does not need the fact still decides
    d = durable.decide_all(facts(industry=None), DAY)
    assert not d[Action.EMAIL].input_problems and d[Action.EMAIL].allowed
    # with the milestone not reached, whether construction.milestone vetoes needs the industry
    d = durable.decide_all(facts(industry=None, milestone_reached=False), DAY)
    assert not d[Action.EMAIL].input_problems and d[Action.EMAIL].status == "blocked"
    assert [h.rule_id for h in d[Action.EMAIL].unresolved] == ["construction.milestone"]


def test_unknown_channel_names_the_closest():
    with pytest.raises(InputError, match="unknown channel 'e-mail'; did you mean 'email'"):
        as_action("e-mail")
    with pytest.raises(InputError, match="unknown channel 'sms'"):
        as_action("sms")


def test_unknown_key_blocks_the_whole_batch(vector, facts):
    arrays = rows_to_arrays([facts(), facts()])
    assert vector.mask(arrays, DAY)[:, 1:].any()
    arrays["promise_to_pay"] = np.array([True, False])
    assert not vector.mask(arrays, DAY)[:, 1:].any()
    arrays = rows_to_arrays([facts()]) | {"invoice_id": np.array(["i1"], dtype=object)}
    assert vector.mask(arrays, DAY)[0, 1:].any()  # ids identify the case; they are not facts


def test_the_simulated_worlds_hold_only_known_values(ruleset, vector, facts):
    """The environment's masks (and so the RL results) do not change for known values: every
    jurisdiction, currency, industry and customer type a packaged scenario draws is known."""
    from simulations.world.params import industry_vocabulary
    from simulations.world.scenario import load_scenario, packaged_scenarios

    vocab = ruleset.vocabulary
    for name in packaged_scenarios():
        sc = load_scenario(name)
        for j in sc.jurisdictions:
            assert vocab.value_ok("jurisdiction", j.code), (name, j.code)
            assert vocab.value_ok("currency", j.currency), (name, j.currency)
            row = facts(jurisdiction=j.code, currency=j.currency, region="")
            for industry in industry_vocabulary(sc):
                for ctype in ("b2b", "b2c"):
                    arrays = rows_to_arrays([dict(row, industry=industry,
                                                  customer_type=ctype)])
                    assert not vector.evaluate(arrays, DAY).invalid[0], (name, j.code,
                                                                         industry)


@pytest.mark.parametrize(("change", "code"), [
    ({"jurisdiction": "UK"}, "input.unknown_value"),
    ({"customer_type": "B2C"}, "input.unknown_value"),
    ({"region": "ZZ"}, "input.unknown_value"),
    ({"days_overdue": "16"}, "input.wrong_type"),
    ({"disputed": "no"}, "input.wrong_type"),
    ({"jurisdiction": 7}, "input.wrong_type"),
    ({"promise_to_pay": True}, "input.unknown_fact"),
    ({"is_weekend": None}, "input.missing_fact"),
])
def test_blocked_by_names_the_input_problem(durable, vector, facts, change, code):
    """A block caused by the input has a pseudo-rule id in ``blocked_by`` (both engines), so
    every "blocked by" column names a reason; waiting stays allowed with none."""
    row = {**facts(), **change}
    decisions = durable.decide_all(row, DAY)
    arrays = rows_to_arrays([{k: v for k, v in row.items() if k in FACTS}]) | {
        k: np.array([v], dtype=object) for k, v in row.items() if k not in FACTS}
    batch = vector.evaluate(arrays, DAY)
    for a in Action:
        d = decisions[a]
        if a is Action.WAIT:
            assert d.blocked_by == () and batch.blocked_by(0, a) == ()
            continue
        assert code in d.blocked_by, (a, d.blocked_by)
        assert d.blocked_by == batch.blocked_by(0, a)
        assert d.to_dict()["blocked_by"] == list(d.blocked_by)
    assert not set(decisions[Action.EMAIL].blocked_by) - {
        *INPUT_CODES, *(r.id for r in durable.ruleset.rules)}
