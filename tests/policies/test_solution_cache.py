"""The solved-invoice cache of the oracle and the planner (policies.common.solutions)."""

from __future__ import annotations

import numpy as np
import pytest

from policies.common.solutions import SolutionCache, mask_context


def test_a_kept_table_comes_back_bit_for_bit():
    rng = np.random.default_rng(0)
    table = np.where(rng.random((30, 200)) < 0.9, 0, rng.integers(1, 6, (30, 200))
                     ).astype(np.int8)
    original = table.copy()
    cache = SolutionCache(4)
    cache.put(b"a", 12.5, table)
    table += 1  # the caller's array may change afterwards
    back = cache.table(b"a")
    assert back.dtype == np.int8
    np.testing.assert_array_equal(back, original)
    back += 1  # a copy: changing it changes nothing kept
    np.testing.assert_array_equal(cache.table(b"a"), original)
    assert cache.value(b"a") == 12.5


def test_the_oldest_go_first_and_those_in_use_stay():
    cache = SolutionCache(2)
    for i, key in enumerate((b"a", b"b", b"c", b"d")):
        cache.put(key, float(i), np.full((2, 3), i, np.int8))
    cache.evict(keep=[b"a"])
    assert b"a" in cache and b"d" in cache and b"c" not in cache and b"b" not in cache
    with pytest.raises(KeyError):
        cache.table(b"b")
    keeps_none = SolutionCache(0)
    keeps_none.put(b"x", 1.0, np.zeros((1, 1), np.int8))
    keeps_none.evict(keep=[b"x"])
    assert len(keeps_none) == 1
    keeps_none.evict()
    assert len(keeps_none) == 0
    with pytest.raises(ValueError):
        SolutionCache(-1)


def test_another_context_drops_what_was_kept():
    """Objects (the rules, the world) are compared by identity, plain values by equality."""
    rules, world = object(), object()
    cache = SolutionCache()
    cache.use_context((rules, "hash-1", 120))
    cache.put(b"a", 1.0, np.zeros((2, 2), np.int8))
    cache.use_context((rules, "hash-1", 120))  # the same: kept
    assert b"a" in cache
    for other in ((object(), "hash-1", 120), (rules, "hash-2", 120), (rules, "hash-1", 60),
                  (rules, "hash-1"), (world, "hash-1", 120)):
        cache.use_context((rules, "hash-1", 120))
        cache.put(b"a", 1.0, np.zeros((2, 2), np.int8))
        cache.use_context(other)
        assert b"a" not in cache, other


def test_masks_over_the_same_rules_share_a_context():
    from simulations.env import LegalMask
    from simulations.env.masks import AllowAll

    assert mask_context(LegalMask()) == mask_context(LegalMask())
    assert mask_context(LegalMask()) != mask_context(AllowAll())
    unhashed = object()
    assert mask_context(unhashed) == (unhashed,)


def test_solutions_solve_each_new_key_once_and_restore_the_kept():
    asked: list[list[int]] = []

    def solve(rows):
        asked.append(rows.tolist())
        return rows * 10.0, [np.full((2, 3), r, np.int8) for r in rows]

    cache = SolutionCache()
    values, tables = cache.solutions([b"a", b"b", b"a"], (2, 3), solve)
    assert asked == [[0, 1]]  # the repeated key is solved once, at its first row
    assert values.tolist() == [0.0, 10.0, 0.0]
    assert tables.shape == (3, 2, 3) and tables.dtype == np.int8
    assert (tables[2] == 0).all() and (tables[1] == 1).all()
    values, tables = cache.solutions([b"c", b"a"], (2, 3), solve)
    assert asked[-1] == [0]  # only c is new
    assert values.tolist() == [0.0, 0.0] and (tables[1] == 0).all()
