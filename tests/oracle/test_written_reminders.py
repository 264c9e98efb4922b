"""Issue #23/#25: the exact DP (oracle on the world, planner on the learned model) knows how
many WRITTEN reminders were sent. On histories mixing e-mails, calls, letters and final
notices, the legal facts and mask the DP reads from its state equal the simulator's (which
recounts the history exactly), and the oracle is not beaten by other policies."""

from __future__ import annotations

import dataclasses

import numpy as np

from engine.calendar import from_days
from engine.contract import Action
from policies.common.dp import MIN_SPACING_DAYS, StateSpace
from policies.planner.model import dp_env_state
from simulations import world
from simulations.env import CollectionsSimulator
from simulations.env.masks import legal_facts

E, L, P, FN = (int(a) for a in (Action.EMAIL, Action.LETTER, Action.PHONE,
                                Action.FINAL_NOTICE))
# Planned reminders per row (sent in order, 7+ days apart, when the simulator allows them).
PLANS = [(E, P, FN), (E, P, L, FN), (L, P, E, FN, P), (P, E, P, L, FN), (E, L, E, E)]
HISTORY_FACTS = ("written_reminders_sent", "contacts_last_7_days",
                 "calls_last_7_days", "final_notice_sent")
DAY_FACTS = ("days_since_last_contact", "days_since_last_written_reminder",
             "days_since_final_notice")


def _days_ok(got: np.ndarray, true: np.ndarray, cap: int) -> np.ndarray:
    """Days since: exact, "cap or more" when capped (``K`` of the state), or a lower bound
    of at least 7 days (after a call: the DP's spacing)."""
    return ((got == true) | ((got >= cap) & (true >= cap))
            | ((got >= MIN_SPACING_DAYS) & (got <= true)))


def _dp_state(sim: CollectionsSimulator, space: StateSpace) -> np.ndarray:
    """Flat DP state of each simulator row, read from the simulator's own bookkeeping."""
    st = sim.state
    counts = st.reminders.astype(np.int64)
    sent = counts.sum(axis=1)
    k = np.where(sent > 0, st.days_since_contact(), space.K)
    return space.lookup_arrays(k, sent, counts[:, E - 1] + counts[:, L - 1], st.last_channel,
                               st.final_notice_day >= 0, st.complained, st.disputed)


def _check_day(sim, params, w_space, p_space, active) -> None:
    """The oracle's facts (world state -> DP state -> facts_from_state) and the planner's
    (DP state -> EnvState -> legal_facts) give the simulator's mask on every active row."""
    t = sim.state.day.astype(np.int64)
    assert (sim.hidden.t == t).all()
    s_w = w_space.lookup(sim.hidden)
    assert (s_w[active] >= 0).all()
    np.testing.assert_array_equal(_dp_state(sim, w_space)[active], s_w[active])
    rows = np.flatnonzero(active)
    one_day = int(t[rows[0]])
    assert (t[rows] == one_day).all()
    oracle = world.facts_from_state(params.take(rows), w_space.world_state(one_day, s_w[rows]))
    s_p = _dp_state(sim, p_space)
    assert (s_p[active] >= 0).all()
    b = dataclasses.replace(sim.batch, params=None, hazard_static=None)
    planner = legal_facts(b, dp_env_state(p_space, one_day, s_p), sim.cal)
    for name in HISTORY_FACTS:
        np.testing.assert_array_equal(oracle[name], np.asarray(sim.facts[name])[rows], name)
        np.testing.assert_array_equal(np.asarray(planner[name])[rows],
                                      np.asarray(sim.facts[name])[rows], name)
    true = np.asarray(sim.facts["reminders_sent"])[rows]  # "N or more"
    np.testing.assert_array_equal(oracle["reminders_sent"], np.minimum(true, w_space.N))
    assert (np.asarray(planner["reminders_sent"])[rows] >= np.minimum(true, p_space.N)).all()
    for name in DAY_FACTS:
        true = np.asarray(sim.facts[name])[rows]
        assert _days_ok(oracle[name], true, w_space.K).all(), name
        assert _days_ok(np.asarray(planner[name])[rows], true, p_space.K).all(), name
    # exact where the last reminder was written (email, letter, final notice)
    written_last = (sim.state.last_channel[rows] != P) & (sim.state.last_channel[rows] > 0)
    true = np.asarray(sim.facts["days_since_last_written_reminder"])[rows]
    np.testing.assert_array_equal(
        oracle["days_since_last_written_reminder"][written_last],
        np.minimum(true, w_space.K)[written_last])
    o_mask = sim.mask(oracle | {k: np.asarray(v)[rows] for k, v in sim.facts.items()
                                if k not in oracle or oracle[k].dtype.kind == "U"},
                      from_days(params.due_day[rows] + one_day))
    p_mask = sim.mask(planner, sim.as_of)[rows]
    np.testing.assert_array_equal(o_mask, sim.masks[rows])
    np.testing.assert_array_equal(p_mask, sim.masks[rows])


def test_dp_masks_equal_the_simulator_on_mixed_histories(gt_source, legal_mask) -> None:
    sim = CollectionsSimulator(gt_source, legal_mask)
    batch = gt_source.fresh_invoices(60, np.random.default_rng(11))
    n = len(batch.amount)
    batch = dataclasses.replace(batch, opted_out=np.zeros((n, 3), bool))
    sim.load(batch)
    params = gt_source.params_of(batch)
    sc = params.scenario
    w_space = StateSpace.build(sc.max_days_since_reminder, sc.max_reminders)
    p_space = StateSpace.build(15, 4)
    plan = [PLANS[i % len(PLANS)] for i in range(n)]
    pos = np.zeros(n, dtype=np.int64)
    last = np.full(n, -100)
    sent: dict[tuple[int, int], int] = {}
    refused: dict[tuple[int, int], int] = {}
    rng = np.random.default_rng(0)
    for day in range(60):
        active = sim.active.copy()
        if not active.any():
            break
        _check_day(sim, params, w_space, p_space, active)
        actions = np.zeros(n, dtype=np.int64)
        for i in np.flatnonzero(active & (day - last >= MIN_SPACING_DAYS)):
            if pos[i] >= len(plan[i]) or not sim.masks[i, P]:  # done, or a closed day
                continue
            a, key = plan[i][pos[i]], (i % len(PLANS), int(pos[i]))
            if sim.masks[i, a]:
                actions[i], last[i] = a, day
                sent[key] = sent.get(key, 0) + 1
            else:  # refused on an open day: the written-reminder rules, for good
                refused[key] = refused.get(key, 0) + 1
            pos[i] += 1
        step = sim.step(actions, rng)
        np.testing.assert_array_equal(step.executed[active], actions[active])
    # e-mail -> call -> final notice: one written reminder, the final notice is refused;
    # e-mail -> call -> letter -> final notice: two written, it is sent.
    assert refused.get((0, 2), 0) > 0 and sent.get((0, 2), 0) == 0
    assert sent.get((1, 3), 0) > 0 and refused.get((1, 3), 0) == 0
    assert sent.get((3, 4), 0) > 0  # call, e-mail, call, letter -> final notice
    # e-mail, letter, e-mail: three written, a fourth written reminder is refused
    assert refused.get((4, 3), 0) > 0 and sent.get((4, 3), 0) == 0


def test_oracle_is_not_beaten_under_the_packaged_rules(legal_mask) -> None:
    """The oracle's value (its own restriction included) is at least the exact value of
    other lawful tables in the world: waiting only, and a fixed mixed schedule."""
    from policies.common.dp import ReminderGrid, evaluate_policy
    from policies.oracle import solve
    from policies.oracle.solver import WorldModel

    sc = dataclasses.replace(world.load_scenario("default"), horizon_days=60)
    p = world.sample_invoices(sc, 6, np.random.default_rng(8))

    def mask_fn(facts, dates):
        return legal_mask(facts, dates)

    sol = solve(p, mask_fn=mask_fn)
    space, s0 = sol.space, sol.space.start
    # a lawful fixed table: the oracle's mask decides; e-mail, call, letter, final notice
    model = WorldModel(p, mask_fn)
    model.setup(space, ReminderGrid.build(space))
    block = space.spacing_block()
    want = np.array([E, P, L, FN, 0])[np.minimum(space.n, 4)]
    table = np.zeros_like(sol.policy)
    for t in range(sol.horizon):
        ok = model.mask(t)[:, want, np.arange(space.size)] & ~block[None]
        table[:, t] = np.where(ok, want[None], 0)
    fixed = evaluate_policy(WorldModel(p, None), space, table)[:, s0]
    wait = evaluate_policy(WorldModel(p, None), space, np.zeros_like(sol.policy))[:, s0]
    assert (sol.value >= fixed - 1e-9).all() and (sol.value >= wait - 1e-9).all()
    assert (sol.value > wait + 1.0).any()


def test_oracle_with_fact_classes_solves_as_with_every_state_judged(legal_mask) -> None:
    """The oracle judges one DP state per class of legal facts (the mask's
    ``fact_classes``, via ``FixedDateMask``); a mask without classes is asked for every
    state with distinct facts. Same values and tables, bit for bit."""
    from policies.oracle import solve
    from simulations.env.masks import FixedDateMask

    sc = dataclasses.replace(world.load_scenario("default"), horizon_days=45)
    p = world.sample_invoices(sc, 12, np.random.default_rng(21))
    classes = FixedDateMask(legal_mask, sc.start_date)
    assert hasattr(classes, "fact_classes")

    def every_state(facts):
        return classes(facts)

    a, b = solve(p, mask_fn=classes), solve(p, mask_fn=every_state)
    assert np.array_equal(a.value, b.value) and np.array_equal(a.policy, b.policy)
    assert (a.policy != 0).any()
