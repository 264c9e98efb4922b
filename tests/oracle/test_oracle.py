"""The oracle: exact backward induction equals an independent expectimax over the outcome
tree (drawn with ``world.advance``), and it beats the fixed schedule in simulation."""

from __future__ import annotations

import dataclasses
from functools import cache

import numpy as np
import pytest

from engine.calendar import from_days, weekday
from engine.contract import N_ACTIONS, SEGMENTS, Action
from policies.oracle import OraclePolicy, StateSpace, solve
from simulations import world
from simulations.world.rollout import logging_chooser, rollout

REMINDERS = [int(a) for a in (Action.EMAIL, Action.LETTER, Action.PHONE, Action.FINAL_NOTICE)]


def simple_mask(facts: dict[str, np.ndarray]) -> np.ndarray:
    """No reminder or handover on weekends, bank holidays or disputed invoices; reminders at
    least 7 days apart; agency only after a final notice at least 7 days old."""
    n = len(facts["days_overdue"])
    mask = np.ones((n, N_ACTIONS), dtype=bool)
    closed = facts["is_weekend"] | facts["is_bank_holiday"] | facts["disputed"]
    too_soon = facts["days_since_last_contact"] < 7
    mask[:, REMINDERS] &= ~(closed | too_soon)[:, None]
    mask[:, Action.AGENCY] = ~closed & facts["final_notice_sent"] & (
        facts["days_since_final_notice"] >= 7)
    return mask


def _tiny_params(horizon: int, seed: int) -> world.InvoiceParams:
    sc = dataclasses.replace(world.load_scenario("default"), horizon_days=horizon)
    p = world.sample_invoices(sc, 400, np.random.default_rng(seed))
    # One invoice per segment of interest, amounts and reliabilities as drawn.
    rows = [np.flatnonzero(p.segment == SEGMENTS.index(s))[0]
            for s in ("corporate", "family_business", "construction")]
    p = p.take(np.array(rows))
    p.milestone_offset[2] = 1  # the construction milestone falls inside the tiny horizon
    p.reliability[:] = 8.0  # make paying (and therefore every branch) likely within days
    p.response[:] = [0.4, 1.0, 2.5]  # customers answering reminders their own way
    p.timing_shift[:] = [-3, 5, 2]  # and at their own days (the corporate's peak moves)
    p.due_day[:] = p.due_day[0] - weekday(p.due_day[0])  # due on a Monday: business days
    return world.InvoiceParams(**{f.name: getattr(p, f.name)
                                  for f in dataclasses.fields(p)})


def _key(state: world.WorldState) -> tuple:
    return tuple(int(getattr(state, f.name)[0]) for f in dataclasses.fields(state))


def _expectimax(p: world.InvoiceParams, mask_fn) -> float:
    """Max over all (history-dependent) action choices of the exact expected NPV."""

    @cache
    def value(key: tuple) -> float:
        state = world.WorldState(*[np.array([v]) for v in key])
        for f in ("final_notice", "complaint", "disputed", "done"):
            setattr(state, f, getattr(state, f).astype(bool))
        if state.done[0]:
            return 0.0
        allowed = np.ones(N_ACTIONS, bool)
        if mask_fn is not None:
            allowed = mask_fn(world.facts_from_state(p, state))[0]
        allowed[0] = True
        return max(q(state, a) for a in range(N_ACTIONS) if allowed[a])

    def q(state: world.WorldState, a: int) -> float:
        total = 0.0
        p_comp = world.transition_probs(p, state, [a]).complaint[0]
        for complained, pc in ((True, p_comp), (False, 1 - p_comp)):
            if pc == 0:
                continue
            probe = state.copy()
            probe.complaint[:] |= complained
            tp = world.transition_probs(p, probe, [a])
            h, ps, pe = tp.pay_hazard[0], tp.dispute_start[0], tp.dispute_end[0]
            if state.disputed[0]:
                branches = [((0.0, 1.0), pe), ((1.0, 1.0), 1 - pe)]
            else:
                branches = [((0.0, 1.0), ps), ((1.0, 0.0), (1 - ps) * h),
                            ((1.0, 1.0), (1 - ps) * (1 - h))]
            for (u_disp, u_pay), pb in branches:
                if pb == 0:
                    continue
                draws = np.array([[0.0 if complained else 1.0], [u_disp], [u_pay]])
                new, out = world.advance(p, state, [a], draws)
                total += pc * pb * (out.reward[0] * out.discount[0] + value(_key(new)))
        return total

    return value(_key(world.initial_state(p)))


def _wait_only(facts: dict[str, np.ndarray]) -> np.ndarray:
    mask = np.zeros((len(facts["days_overdue"]), N_ACTIONS), dtype=bool)
    mask[:, 0] = True
    return mask


@pytest.mark.parametrize(("use_mask", "horizon"), [(False, 3), (True, 5)])
def test_dp_value_equals_expectimax_on_a_tiny_instance(use_mask: bool, horizon: int) -> None:
    p = _tiny_params(horizon=horizon, seed=1)
    mask_fn = simple_mask if use_mask else None
    sol = solve(p, mask_fn=mask_fn)
    for i in range(len(p)):
        one = p.take(np.array([i]))
        assert sol.value[i] == pytest.approx(_expectimax(one, mask_fn), rel=1e-10, abs=1e-8)
    # Not a trivial optimum: acting beats waiting only, for some invoice.
    waiting = solve(p, mask_fn=_wait_only).value
    assert (sol.value >= waiting - 1e-9).all() and (sol.value > waiting + 1.0).any()


def test_masked_actions_are_never_chosen_and_mask_lowers_value() -> None:
    p = _tiny_params(horizon=6, seed=2)
    free = solve(p)
    legal = solve(p, mask_fn=simple_mask)
    assert (legal.value <= free.value + 1e-9).all()
    space = legal.space
    for t in range(legal.horizon):
        rows = np.arange(space.half)
        state = space.world_state(t, rows)
        for i in range(len(p)):
            facts = world.facts_from_state(p.take(np.full(len(rows), i)), state)
            allowed = simple_mask(facts)
            chosen = legal.policy[i, t, rows]
            assert allowed[np.arange(len(rows)), chosen].all() | (chosen == 0).all()
            assert allowed[np.arange(len(rows)), chosen].all()


def test_state_space_lookup_roundtrip() -> None:
    sc = world.load_scenario("default")
    space = StateSpace.build(sc.max_days_since_reminder, sc.max_reminders)
    rows = np.arange(space.size)
    np.testing.assert_array_equal(space.lookup(space.world_state(5, rows)), rows)
    assert space.size == 2 * space.half
    np.testing.assert_array_equal(space.complaint[space.half:], True)


def test_oracle_beats_the_fixed_schedule_in_simulation() -> None:
    sc = world.load_scenario("default")
    p = world.sample_invoices(sc, 60, np.random.default_rng(3))
    sol = solve(p, mask_fn=simple_mask)
    vetoed = []

    def oracle(state: world.WorldState) -> np.ndarray:
        a = sol.action(state)
        allowed = simple_mask(world.facts_from_state(p, state))
        vetoed.append(int((~allowed[np.arange(len(a)), a] & ~state.done & (a > 0)).sum()))
        return a

    seeds = range(12)
    npv_oracle = np.array([rollout(p, oracle, np.random.default_rng(s)).npv.mean()
                           for s in seeds])
    npv_fixed = np.array([rollout(p, logging_chooser(p, np.random.default_rng(100 + s)),
                                  np.random.default_rng(s)).npv.mean() for s in seeds])
    assert sum(vetoed) == 0
    assert npv_oracle.mean() > 1.03 * npv_fixed.mean()
    # The DP value is the expectation of the simulated NPV.
    se = npv_oracle.std(ddof=1) / np.sqrt(len(seeds))
    assert abs(npv_oracle.mean() - sol.value.mean()) < 4 * se + 1e-6 * sol.value.mean()


def test_oracle_policy_interface() -> None:
    sc = world.load_scenario("default")
    p = world.sample_invoices(sc, 8, np.random.default_rng(4))
    sol = solve(p)
    state = world.initial_state(p)
    state.t[:] = 20
    policy = OraclePolicy(sol)
    with pytest.raises(RuntimeError):
        policy.act(np.zeros((8, 3)), np.ones((8, N_ACTIONS), bool))

    class Env:
        world_state = state
        oracle_rows = np.arange(8)

    policy.bind(Env())
    expected = sol.action(state)
    np.testing.assert_array_equal(policy.act(np.zeros((8, 3)), np.ones((8, N_ACTIONS), bool)),
                                  expected)
    veto = np.ones((8, N_ACTIONS), bool)
    veto[:, 1:] = False
    assert (policy.act(np.zeros((8, 3)), veto) == int(Action.WAIT)).all()
    policy.bind(lambda: (np.arange(8)[::-1], state))
    np.testing.assert_array_equal(policy.act(None, None), sol.action(state, np.arange(8)[::-1]))


def test_oracle_respects_the_packaged_legal_rules() -> None:
    from legal_rules import VectorEvaluator, load_rules

    mask = VectorEvaluator(load_rules()).mask  # (facts, as_of) -> (n, 6)
    sc = world.load_scenario("default")
    p = world.sample_invoices(sc, 8, np.random.default_rng(6))
    sol = solve(p, mask_fn=mask)
    assert (sol.value <= solve(p).value + 1e-9).all()
    vetoed = 0
    state = world.initial_state(p)
    rng = np.random.default_rng(0)
    while not state.done.all():
        a = sol.action(state)
        allowed = mask(world.facts_from_state(p, state),
                       from_days(p.due_day + state.t))
        vetoed += int((~allowed[np.arange(len(a)), a] & ~state.done).sum())
        state, _ = world.step(p, state, a, rng)
    assert vetoed == 0


def test_evaluating_the_optimal_table_gives_the_optimal_value_and_counts_add_up():
    """``evaluate_policy`` (exact policy evaluation, the planner-vs-oracle diagnostic of
    benchmarks/bench_handover.py) reproduces backward induction's value for its own table;
    paid + handed over <= 1 per invoice; a table that never acts collects less."""
    from policies.common.dp import evaluate_policy
    from policies.oracle.solver import WorldModel

    p = _tiny_params(30, 5)
    sol = solve(p, mask_fn=simple_mask)
    s0 = sol.space.start
    value = evaluate_policy(WorldModel(p, None), sol.space, sol.policy)[:, s0]
    np.testing.assert_allclose(value, sol.value, rtol=1e-9, atol=1e-9)
    paid = evaluate_policy(WorldModel(p, None), sol.space, sol.policy, count="paid")[:, s0]
    agency = evaluate_policy(WorldModel(p, None), sol.space, sol.policy, count="agency")[:, s0]
    assert ((paid > 0) & (paid + agency <= 1 + 1e-9)).all()
    wait = np.zeros_like(sol.policy)
    never = evaluate_policy(WorldModel(p, None), sol.space, wait)[:, s0]
    assert (never <= sol.value + 1e-9).all() and (never < sol.value - 1e-6).any()
    assert (evaluate_policy(WorldModel(p, None), sol.space, wait,
                            count="complaints")[:, s0] == 0).all()


def test_evaluate_policy_counts_reminders_per_channel():
    """``count="reminders"``: one e-mail on the due date, then waiting, is exactly one
    reminder (an e-mail) per invoice; the optimal table's reminders are the sum of its
    channels'; an unknown count is refused."""
    from engine.contract import Action
    from policies.common.dp import evaluate_policy
    from policies.oracle.solver import WorldModel

    p = _tiny_params(30, 5)
    sol = solve(p, mask_fn=simple_mask)
    s0 = sol.space.start
    once = np.zeros_like(sol.policy)
    once[:, 0] = Action.EMAIL

    def count(table: np.ndarray, what: str) -> np.ndarray:
        return evaluate_policy(WorldModel(p, None), sol.space, table, count=what)[:, s0]

    np.testing.assert_allclose(count(once, "reminders"), 1.0, atol=1e-12)
    np.testing.assert_allclose(count(once, "email"), 1.0, atol=1e-12)
    assert (count(once, "letter") == 0).all()
    channels = sum(count(sol.policy, ch) for ch in ("email", "letter", "phone", "final_notice"))
    total = count(sol.policy, "reminders")
    np.testing.assert_allclose(total, channels, rtol=1e-9)
    assert (total > 0).any()
    with pytest.raises(ValueError, match="not one of"):
        count(once, "sms")


@pytest.mark.parametrize("rows_per_call", [200_000, 500])
def test_the_days_judged_at_once_are_each_days_own_judgement(monkeypatch, rows_per_call):
    """The oracle's mask judges every day of a batch in a few calls and keeps each
    invoice's distinct masks (``policies.common.dp.DayMasks``): on every day it equals
    judging that day's facts of every state directly (with the date of each row, and in
    chunks of days)."""
    import policies.common.dp as dp
    import policies.oracle.solver as solver
    from legal_rules import VectorEvaluator, load_rules
    from policies.common.dp import ReminderGrid
    from simulations.env.masks import FixedDateMask, LegalMask

    monkeypatch.setattr(dp, "MASK_ROWS", rows_per_call)
    sc = dataclasses.replace(world.load_scenario("default"), horizon_days=30)
    p = world.sample_invoices(sc, 12, np.random.default_rng(11))
    dated = VectorEvaluator(load_rules()).mask  # (facts, as_of): each row's own date
    fixed = FixedDateMask(LegalMask(), sc.start_date)  # one date, with fact classes
    space = StateSpace.build(sc.max_days_since_reminder, sc.max_reminders)
    acting = ~space.spacing_block()  # the DP reads the mask only here
    every = np.arange(space.size)
    changes = 0
    for mask_fn in (dated, fixed):
        model = solver.WorldModel(p, mask_fn)
        model.setup(space, ReminderGrid.build(space))
        before = None
        for t in range(sc.horizon_days - 1, -1, -1):
            got = model.mask(t)  # (B, 6, S)
            for b in range(len(p)):
                facts = world.facts_from_state(p.take(np.full(space.size, b)),
                                               space.world_state(t, every))
                want = (dated(facts, from_days(p.due_day[b] + np.full(space.size, t)))
                        if mask_fn is dated else fixed(facts))
                assert (got[b][:, acting] == want[acting].T).all(), (t, b)
            changes += before is not None and not np.array_equal(got, before)
            before = got
    assert changes > 0  # weekends and deadlines: the masks do change over the days
