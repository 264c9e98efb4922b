"""Differential test: durable_rules and the numpy evaluator agree on every fact vector.

More than 100,000 fact vectors in total: numpy-random batches of edge values (at and next to
every threshold in the rules, every validity boundary), with missing facts and wrong types,
plus hypothesis-generated rows. Compared per (row, rule): fired and unresolved (fail-closed),
hence per (row, action): allowed, needs review, the vetoing rules and ``blocked_by`` (rules,
then the input pseudo-rules ``input.unknown_fact`` / ``wrong_type`` / ``unknown_value`` /
``missing_fact``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.contract import Action
from legal_rules.facts import FACTS
from legal_rules.loader import load_rules
from legal_rules.testing import (
    UNKNOWN_VALUES,
    WRONG_VALUES,
    edge_dates,
    edge_values,
    random_fact_rows,
)
from legal_rules.testing import rows_to_arrays as arrays

_RULES = load_rules()
_EDGES = edge_values(_RULES)
_DAYS = edge_dates(_RULES)


def disagreements(durable, vector, rows: list[dict[str, Any]], days: list[date],
                  typed: bool) -> list[str]:
    batch = vector.evaluate(arrays(rows, typed), np.array(days, dtype="datetime64[D]"))
    index = durable.ruleset.index
    out = []
    for i, (row, day) in enumerate(zip(rows, days, strict=True)):
        decisions = durable.decide_all(row, day)  # one durable_rules assert per row
        # every rule applies to some action, so the union over actions is every rule
        fired = sorted({index(h.rule_id) for d in decisions.values() for h in d.fired})
        unresolved = sorted({index(h.rule_id) for d in decisions.values() for h in d.unresolved})
        v_fired = np.flatnonzero(batch.fired[i]).tolist()
        v_unres = np.flatnonzero(batch.unresolved[i]).tolist()
        if v_fired != fired or v_unres != unresolved:
            out.append(f"row {row} on {day}: durable fired {fired} unresolved "
                       f"{unresolved}; numpy fired {v_fired} unresolved {v_unres}")
            continue
        if bool(decisions[Action.EMAIL].input_problems) != bool(batch.invalid[i]):
            out.append(f"row {row} on {day}: durable input problems "
                       f"{decisions[Action.EMAIL].input_problems}, numpy invalid "
                       f"{bool(batch.invalid[i])}")
        for a, d in decisions.items():
            if (d.allowed != bool(batch.allowed[i, a])
                    or d.needs_review != bool(batch.needs_review[i, a])):
                out.append(f"row {row} on {day}: action {a.channel} differs")
            elif d.blocked_by != batch.blocked_by(i, a):  # rules, then input pseudo-rules
                out.append(f"row {row} on {day}: action {a.channel} blocked by "
                           f"{d.blocked_by} (durable), {batch.blocked_by(i, a)} (numpy)")
    return out


MIXES = [(0.03, 0.03, False), (0.0, 0.0, True), (0.02, 0.0, True), (0.1, 0.1, False)]


@pytest.mark.parametrize(("seed", "p_missing", "p_wrong", "typed"),
                         [(seed, *mix) for seed, mix in enumerate(MIXES)])
def test_random_batches_agree(durable, vector, seed, p_missing, p_wrong, typed):
    # 4 x 2,500 rows in the default run (x 6 actions)
    rows, days = random_fact_rows(_RULES, 2_500, seed=seed, p_missing=p_missing,
                                  p_wrong=p_wrong)
    bad = disagreements(durable, vector, rows, days, typed)
    assert not bad, f"{len(bad)} disagreements, e.g. {bad[:3]}"


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "p_missing", "p_wrong", "typed"),
                         [(100 + seed, *MIXES[seed % 4]) for seed in range(20)])
def test_random_batches_agree_100k(durable, vector, seed, p_missing, p_wrong, typed):
    # 20 batches x 5,000 rows = 100,000 fact vectors (benchmarks/bench_legal_rules.py too)
    rows, days = random_fact_rows(_RULES, 5_000, seed=seed, p_missing=p_missing,
                                  p_wrong=p_wrong)
    bad = disagreements(durable, vector, rows, days, typed)
    assert not bad, f"{len(bad)} disagreements, e.g. {bad[:3]}"


def _fact_value(name: str) -> st.SearchStrategy[Any]:
    kind = FACTS[name].type
    valid = st.sampled_from(_EDGES[name])
    if kind == "int":
        valid = valid | st.integers(-10**6, 10**6)
    elif kind == "float":
        valid = valid | st.floats(-1e7, 1e7, allow_nan=False)
    elif kind == "str":
        valid = valid | st.text(max_size=3)
    wrong = st.sampled_from(WRONG_VALUES[kind])
    if name in UNKNOWN_VALUES:  # of the right type, but not a value the rules know
        wrong = wrong | st.sampled_from(UNKNOWN_VALUES[name])
    return st.one_of(valid, valid, valid, wrong)


ROW = st.fixed_dictionaries({}, optional={name: _fact_value(name) for name in FACTS})
FULL_ROW = st.fixed_dictionaries({name: _fact_value(name) for name in FACTS})


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=st.lists(st.one_of(FULL_ROW, ROW), min_size=1, max_size=20),
       day=st.sampled_from(_DAYS))
def test_hypothesis_rows_agree(durable, vector, rows, day):
    bad = disagreements(durable, vector, rows, [day] * len(rows), typed=False)
    assert not bad, bad[:3]
