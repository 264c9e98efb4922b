"""Choosing the shipped scheduler without the truth (dunning.selection.choose)."""

from __future__ import annotations

import numpy as np

from dunning.selection import choose, selection_block


def _cand(dr_terms: np.ndarray, learned: float) -> dict:
    return {"dr": float(dr_terms.mean()), "dr_per_invoice": dr_terms.tolist(),
            "learned_value": learned, "dr_ci": [0.0, 0.0]}


def test_a_significantly_better_dr_estimate_ships():
    rng = np.random.default_rng(0)
    base = rng.normal(100.0, 10.0, 300)
    cands = {"tuned": _cand(base, 500.0), "planner": _cand(base + 20.0, 90.0)}
    chosen, reason = choose(cands)
    assert chosen == "planner"  # even though its learned value is lower
    assert "significantly better" in reason


def test_a_tie_by_dr_is_decided_by_the_learned_value():
    rng = np.random.default_rng(1)
    a = rng.normal(100.0, 50.0, 300)
    b = a + rng.normal(0.0, 50.0, 300)  # same mean, noisy: not significant either way
    cands = {"rl": _cand(a, 120.0), "planner": _cand(b, 130.0)}
    chosen, reason = choose(cands)
    assert chosen == "planner"
    assert "not significant" in reason
    cands["rl"]["learned_value"] = 140.0
    assert choose(cands)[0] == "rl"


def test_the_block_puts_the_truth_beside_and_says_if_it_agreed():
    rng = np.random.default_rng(2)
    base = rng.normal(100.0, 10.0, 200)
    cands = {"tuned": _cand(base, 1.0), "planner": _cand(base + 30.0, 2.0)}
    truth = {"tuned": {"npv": 7000.0, "oracle_gap_closed": 0.4},
             "planner": {"npv": 6900.0, "oracle_gap_closed": 0.3}}
    block = selection_block(cands, truth, {"episodes": 200})
    assert block["chosen"] == "planner"
    assert block["truth_best"] == "tuned" and block["chose_truth_best"] is False
    assert block["candidates"]["tuned"]["truth_npv"] == 7000.0
