"""VectorEvaluator.fact_classes: rows whose number and bool facts are swapped for others of
the same class get the same mask and the same decision (fired, unresolved, vetoes, input
problems): what lets the planner evaluate one DP state per class."""

from __future__ import annotations

import numpy as np
import pytest

from legal_rules.facts import FACTS
from legal_rules.loader import load_rules
from legal_rules.testing import random_fact_rows, rows_to_arrays
from legal_rules.vector import VectorEvaluator

_RULES = load_rules()


@pytest.mark.parametrize("typed", [False, True])
def test_a_fact_swapped_within_its_class_changes_nothing(typed: bool):
    ev = VectorEvaluator(_RULES)
    rows, days = random_fact_rows(_RULES, 3000, seed=11)
    facts = rows_to_arrays(rows, typed=typed)
    as_of = np.array(days, dtype="datetime64[D]")
    classes = ev.fact_classes(facts)
    assert set(classes) == {n for n, f in FACTS.items() if f.type in ("int", "float", "bool")}
    rng = np.random.default_rng(3)
    swapped = dict(facts)
    merged = 0
    for name, cls in classes.items():
        # each row takes the value of a random row of its class
        _, group, counts = np.unique(cls, return_inverse=True, return_counts=True)
        group = group.reshape(-1)
        order = np.argsort(group, kind="stable")
        starts = np.cumsum(counts) - counts
        pick = order[starts[group] + (rng.random(len(cls)) * counts[group]).astype(np.int64)]
        np.testing.assert_array_equal(cls[pick], cls)
        swapped[name] = facts[name][pick]
        merged += len({repr(v) for v in facts[name]}) > len(counts)
    assert merged >= 3  # classes do merge distinct values
    before, after = ev.evaluate(facts, as_of), ev.evaluate(swapped, as_of)
    for field in ("allowed", "fired", "unresolved", "vetoed_by", "needs_review", "invalid",
                  "input_codes", "missing_blocked"):
        np.testing.assert_array_equal(getattr(after, field), getattr(before, field), field)
    np.testing.assert_array_equal(ev.mask(swapped, as_of), ev.mask(facts, as_of))
    assert not before.allowed.all() and before.allowed[:, 1:].any()
