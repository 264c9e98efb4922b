"""The planner: the exact DP solved on the learned model of a small real company (the RL
tests' shared run): lawful, better than the fixed schedule in the model it plans in, the
same from a saved copy, the same whether it reads the simulator or the observations, and
fail-closed on invoices it has no inputs for."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from engine.contract import N_ACTIONS, Action
from engine.errors import InputError


@pytest.fixture(scope="module")
def planner(small_run):
    from policies.planner import LearnedDynamics, PlannerPolicy

    return PlannerPolicy(LearnedDynamics.from_source(small_run.learned))


def _batch(small_run, n: int = 12, seed: int = 4):
    return small_run.learned.sample_invoices(n, np.random.default_rng(seed))


def test_planner_beats_the_fixed_schedule_in_the_learned_model_lawfully(small_run, planner):
    from policies.baselines.factory import make_policy
    from simulations import world
    from simulations.evaluation.harness import evaluate_policies

    policies = {"fixed": make_policy("fixed")[1], "planner": planner}
    ev = evaluate_policies(policies, world.load_scenario("default"), n_invoices=24,
                           seeds=[0], source=small_run.learned, reference="fixed")
    npv = {p: ev.overall[p]["npv"]["mean"] for p in policies}
    assert npv["planner"] > npv["fixed"]
    assert ev.overall["planner"]["violations"]["mean"] == 0
    assert ev.overall["planner"]["reminders_per_invoice"]["mean"] > 0  # it does act


def test_planner_never_chooses_a_vetoed_action(small_run, planner):
    from simulations.env import CollectionsSimulator, LegalMask

    sim = CollectionsSimulator(small_run.learned, LegalMask())
    sim.load(_batch(small_run, n=8))
    planner.bind_simulator(sim)
    obs = sim.observations()
    only_wait = np.zeros((sim.n, N_ACTIONS), dtype=bool)
    only_wait[:, Action.WAIT] = True
    assert (planner.act(obs, only_wait) == Action.WAIT).all()
    rng = np.random.default_rng(1)
    for _ in range(30):  # some days in, under random masks: only allowed actions
        masks = rng.random((sim.n, N_ACTIONS)) < 0.5
        masks[:, Action.WAIT] = True
        a = planner.act(sim.observations(), masks)
        assert masks[np.arange(sim.n), a].all()
        sim.step(planner.act(sim.observations(), sim.action_masks()), rng)


def test_observation_decoding_gives_the_simulator_state_actions(small_run, planner):
    """Off-policy estimators call act(obs, masks) without a simulator: the state read from
    the observations (last channel tracked between calls) must give the same actions."""
    from simulations.env import CollectionsSimulator, LegalMask

    sim = CollectionsSimulator(small_run.learned, LegalMask())
    batch = _batch(small_run, n=10, seed=7)
    sim.load(batch)
    planner.bind_simulator(sim)
    from policies.planner import PlannerPolicy

    blind = PlannerPolicy(planner.dynamics, mask=LegalMask())
    blind._cache = planner._cache  # the same solutions: only the state reading differs
    blind.plan(batch)
    rng = np.random.default_rng(2)
    sent = 0
    for _ in range(50):
        obs, masks = sim.observations(), sim.action_masks()
        a = planner.act(obs, masks)
        np.testing.assert_array_equal(blind.act(obs, masks)[sim.active], a[sim.active])
        sent += int((a[sim.active] > 0).sum())
        sim.step(a, rng)
    assert sent > 0


def test_saved_planner_plans_the_same(small_run, planner, tmp_path: Path):
    from policies.planner import PlannerPolicy

    batch = _batch(small_run, n=6, seed=9)
    values = planner.plan(batch).copy()
    table = planner.table[planner.row_of].copy()
    planner.save(tmp_path / "planner")
    loaded = PlannerPolicy.load(tmp_path / "planner")
    np.testing.assert_allclose(loaded.plan(batch), values)
    np.testing.assert_array_equal(loaded.table[loaded.row_of], table)
    with pytest.raises(InputError, match="planner.json"):
        PlannerPolicy.load(tmp_path)


def _support_of_reminders_sent(small_run, policy, support) -> np.ndarray:
    """The logged support of the cell of every reminder ``policy`` sends to 16 invoices of
    the learned model in 90 days (simulated, legal mask on)."""
    from simulations.env import CollectionsSimulator, LegalMask

    sim = CollectionsSimulator(small_run.learned, LegalMask())
    sim.load(_batch(small_run, n=16, seed=13))
    policy.bind_simulator(sim)
    rng = np.random.default_rng(3)
    seen: list[np.ndarray] = []
    for _ in range(90):
        a = policy.act(sim.observations(), sim.action_masks())
        r = np.flatnonzero(sim.active & (a >= Action.EMAIL) & (a <= Action.FINAL_NOTICE))
        st = sim.state
        seen.append(support.cell(sim.batch.segment[r], a[r], st.day[r],
                                 st.reminders[r].sum(axis=1)))
        sim.step(a, rng)
    return np.concatenate(seen)


@pytest.fixture(scope="module")
def plain_sent(small_run, planner) -> np.ndarray:
    """The logged support of every reminder the plain planner sends (simulated once)."""
    return _support_of_reminders_sent(small_run, planner, small_run.learned.rates.support)


def test_planner_with_logged_support_reminds_only_where_the_history_did(small_run, planner,
                                                                        plain_sent,
                                                                        tmp_path: Path):
    """min_support: no reminder in a (segment, channel, day overdue, number) cell where the
    history logged fewer; the plain planner sends some there; a saved copy keeps it."""
    from policies.planner import LearnedDynamics, PlannerPolicy

    support = small_run.learned.rates.support
    least = int(np.percentile(plain_sent, 25)) + 1  # above a quarter of the plain reminders'
    assert (plain_sent < least).any()
    careful = PlannerPolicy(dataclasses.replace(planner.dynamics, min_support=least))
    sent = _support_of_reminders_sent(small_run, careful, support)
    assert len(sent) > 0 and (sent >= least).all()
    careful.save(tmp_path / "planner")
    loaded = PlannerPolicy.load(tmp_path / "planner")
    assert loaded.dynamics.min_support == least and loaded.dynamics.support_by_day
    np.testing.assert_array_equal(loaded.dynamics.rates.support.count, support.count)
    with pytest.raises(InputError, match="min_support"):
        LearnedDynamics.from_source(small_run.learned, min_support=-1)


def test_planner_shrinks_the_effect_of_reminders_by_their_logged_support(small_run, planner,
                                                                         plain_sent):
    """reminder_prior: a reminder's effect is trusted in proportion to the reminders the
    history logged of its cell. The more pseudo-reminders, the
    less the model expects of reminders and the less it values the invoices; an
    overwhelming prior leaves them no short-term effect, and the planner sends fewer."""
    from policies.planner import PlannerPolicy

    batch = _batch(small_run, n=5, seed=15)
    support = small_run.learned.rates.support
    values = [planner.plan(batch).copy()]
    for prior in (20.0, 1e12):
        careful = PlannerPolicy(dataclasses.replace(planner.dynamics, reminder_prior=prior))
        values.append(careful.plan(batch))
    for more, less in zip(values, values[1:], strict=False):
        assert (less <= more + 1e-6).all() and (less < more - 1e-6).any()
    # counted over every day, a cell has at least the support of its day: less shrunk
    by_number = PlannerPolicy(dataclasses.replace(planner.dynamics, reminder_prior=20.0,
                                                  support_by_day=False)).plan(batch)
    assert (by_number >= values[1] - 1e-6).all() and (by_number <= values[0] + 1e-6).all()
    assert (by_number > values[1] + 1e-6).any()
    sent = len(_support_of_reminders_sent(small_run, careful, support))  # prior 1e12
    assert sent < len(plain_sent)


def _planned_outcomes(small_run, planner, batch) -> tuple[np.ndarray, np.ndarray]:
    """(money, complaints) per invoice of ``planner``'s table for ``batch``, evaluated
    exactly in the learned model at the complaint cost itself (weight 1)."""
    from policies.common.dp import evaluate_policy
    from policies.planner import LearnedDynamics
    from policies.planner.model import LearnedModel

    planner.plan(batch)
    table, space = planner.table[planner.row_of], planner.space
    plain = LearnedDynamics.from_source(small_run.learned)
    money = evaluate_policy(LearnedModel(plain, batch, None), space, table)[:, space.start]
    complaints = evaluate_policy(LearnedModel(plain, batch, None), space, table,
                                 count="complaints")[:, space.start]
    return money, complaints


def test_a_heavier_complaint_weight_never_plans_more_complaints(small_run, planner,
                                                                tmp_path: Path):
    """complaint_weight w: the DP charges w x the complaint cost. Each invoice's plan is
    exact, so (Lagrangian duality) a heavier weight never expects more complaints, nor more
    money at the cost itself; a heavy one expects fewer complaints. The weight is saved
    (only when not 1: older planners keep their hash) and refused below 1."""
    from policies.planner import LearnedDynamics, PlannerPolicy
    from policies.planner.policy import dynamics_to_dict

    batch = _batch(small_run, n=6, seed=21)
    outcomes = [_planned_outcomes(small_run, PlannerPolicy(
        dataclasses.replace(planner.dynamics, complaint_weight=w)), batch)
        for w in (1.0, 4.0, 64.0)]
    for (money, complaints), (money_w, complaints_w) in zip(outcomes, outcomes[1:],
                                                           strict=False):
        assert (complaints_w <= complaints + 1e-9).all()
        assert (money_w <= money + 1e-6).all()
    assert outcomes[2][1].sum() < outcomes[0][1].sum() - 1e-3
    heavy = PlannerPolicy(dataclasses.replace(planner.dynamics, complaint_weight=4.0))
    heavy.save(tmp_path / "planner")
    assert PlannerPolicy.load(tmp_path / "planner").dynamics.complaint_weight == 4.0
    assert "complaint_weight" not in dynamics_to_dict(planner.dynamics)
    for bad in (0.5, float("nan")):
        with pytest.raises(InputError, match="complaint_weight"):
            LearnedDynamics.from_source(small_run.learned, complaint_weight=bad)


def test_invoices_without_hazard_inputs_are_refused(small_run, planner):
    batch = dataclasses.replace(_batch(small_run, n=3), hazard_static=None)
    with pytest.raises(InputError, match="hazard-model inputs"):
        planner.plan(batch)
    wrong = dataclasses.replace(_batch(small_run, n=3),
                                hazard_static=np.zeros((3, 2)))
    with pytest.raises(InputError, match="reads"):
        planner.plan(wrong)


def test_equal_invoices_are_solved_once(small_run, planner):
    from simulations.env.arrays import take_rows

    batch = _batch(small_run, n=4, seed=11)
    twice = take_rows(batch, np.array([0, 1, 2, 3, 0, 1, 2, 3]))
    values = planner.plan(twice)
    assert len(planner.table) == len(np.unique(batch.params.pool_row))
    np.testing.assert_array_equal(values[:4], values[4:])


def test_a_plan_is_kept_for_the_rules_it_was_made_under(small_run, planner,
                                                        monkeypatch: pytest.MonkeyPatch):
    """The next evaluation seed meets many invoices again and their plans are kept; under
    other rules (e.g. after a rule change) every invoice is planned again."""
    import policies.planner.policy as planner_module
    from policies.planner import PlannerPolicy
    from simulations.env import LegalMask
    from simulations.env.masks import AllowAll

    solved: list[int] = []
    solve = planner_module.backward_induction

    def counted(model, *args, **kwargs):
        solved.append(model.n)
        return solve(model, *args, **kwargs)

    monkeypatch.setattr(planner_module, "backward_induction", counted)
    fresh = PlannerPolicy(planner.dynamics)
    batch, rules = _batch(small_run, n=5, seed=31), LegalMask()
    first = fresh.plan(batch, mask=rules)
    assert sum(solved) == 5
    np.testing.assert_array_equal(fresh.plan(batch, mask=rules), first)
    assert sum(solved) == 5  # kept
    np.testing.assert_array_equal(fresh.plan(batch, mask=LegalMask()), first)
    assert sum(solved) == 5  # another mask over the same rules: kept
    unruled = fresh.plan(batch, mask=AllowAll())
    assert sum(solved) == 10  # other rules: planned again
    assert (unruled >= first - 1e-9).all()  # allowing more never plans less value


def test_recommend_serves_a_saved_planner(small_run, planner, tmp_path: Path):
    """`dunning recommend --policy dunning-data/planner`: the daily run loads the planner,
    plans the open invoices and records lawful actions under the planner's hash."""
    import shutil

    from dunning.ops.recommend import Recommender, load_policy
    from engine.store import Store
    from policies.planner import PlannerPolicy

    db = tmp_path / "store.duckdb"
    shutil.copyfile(small_run.db, db)
    # a 20-day planning horizon keeps the test cheap: invoices further overdue wait
    short = PlannerPolicy(dataclasses.replace(planner.dynamics, horizon=20))
    short.save(tmp_path / "planner")
    loaded = load_policy(tmp_path / "planner")
    assert loaded.name == "planner" and loaded.hash == short.content_hash
    as_of = small_run.company.as_of
    result = Recommender(Store(db), policy=loaded).run(as_of)
    frame = result.frame
    assert len(frame) > 0 and set(frame["policy_hash"]) == {short.content_hash}
    assert frame["status"].isin(["recommended", "needs_review", "wait", "blocked"]).all()


def test_planner_by_name_for_dunning_evaluate(small_run, planner, tmp_path: Path):
    from policies.baselines.factory import make_policy
    from policies.planner import PlannerPolicy

    name, built = make_policy("planner", learned_source=lambda: small_run.learned)
    assert name == "planner" and isinstance(built, PlannerPolicy)
    with pytest.raises(InputError, match="planner:DIR"):
        make_policy("planner")
    planner.save(tmp_path / "p")
    name, loaded = make_policy(f"planner:{tmp_path / 'p'}")
    assert name == "planner" and loaded.content_hash == planner.content_hash


def test_a_planner_saved_with_the_old_complaint_grid_is_refused_clearly():
    """The complaint model's timing grid changed (issue 25): a planner.json with the old
    5-bucket table must fail closed with a message, not index a wrong cell."""
    from policies.planner.policy import dynamics_from_dict
    from simulations.env.learned import ComplaintModel

    def meta(overdue_buckets: int) -> dict:
        _, r, s = ComplaintModel.grid_shape()
        z = np.zeros((6, N_ACTIONS, overdue_buckets, r, s)).tolist()
        return {"horizon": 120, "K": 15, "N": 4,
                "costs": {"annual_discount_rate": 0.08, "action_cost": [0.0] * N_ACTIONS,
                          "complaint_cost": 50.0, "agency_fee_share": 0.25,
                          "agency_recovery_prob": 0.6, "agency_delay_days": 60},
                "rates": {"complaint": np.zeros((6, N_ACTIONS)).tolist(),
                          "dispute_start": [0.0] * 6, "dispute_resolve": [0.0] * 6,
                          "complaint_table": z, "complaint_hazard": None}}

    with pytest.raises(InputError, match="complaint table"):
        dynamics_from_dict(meta(5), hazard=None)
    dyn = dynamics_from_dict(meta(ComplaintModel.grid_shape()[0]), hazard=None)
    assert dyn.rates.complaint_model.table.shape[2:] == ComplaintModel.grid_shape()


def _reference_model(dynamics, batch, mask):
    """The planner's transition model as it was before the grid prediction and the mask by
    distinct facts (commit a7a8463): the hazard model on every (invoice, situation) row and
    the legal mask on every (invoice, state) row. Slow; the reference of the fast path."""
    from engine.calendar import from_days
    from engine.features import REMINDER_CHANNELS, reminder_dynamics
    from policies.planner.model import LearnedModel, dp_env_state
    from simulations.env.arrays import take_rows
    from simulations.env.masks import CategoricalFacts, legal_facts

    class Reference(LearnedModel):
        def setup(self, space, grid):
            super().setup(space, grid)
            B, half = self.n, space.half  # noqa: N806
            self._rep = np.repeat(np.arange(B), half)
            self._rep_batch = take_rows(self._slim, self._rep)
            strings = CategoricalFacts(len(self._rep))
            strings.set_rows(np.arange(len(self._rep)), self._rep_batch)
            self._rep_strings = strings.facts()
            self._rep_state = np.tile(np.arange(half), B)

        def mask(self, t):
            sp = self.space
            reach = self._reachable(t, np.arange(sp.half)) & ~sp.spacing_block()[:sp.half]
            pick = np.flatnonzero(np.tile(reach, self.n))
            state = dp_env_state(sp, t, self._rep_state[pick])
            rows = take_rows(self._rep_batch, pick)
            cal = self._calendar(t, self._place[self._rep[pick]], rows.due_day)
            facts = legal_facts(rows, state, cal)
            facts.update({k: v[pick] for k, v in self._rep_strings.items()})
            allowed = np.ones((len(self._rep), N_ACTIONS), dtype=bool)
            allowed[pick] = np.asarray(self.mask_fn(facts, from_days(rows.due_day + t)),
                                       dtype=bool)
            allowed = allowed.reshape(self.n, sp.half, N_ACTIONS)
            # (B, 6, S): the DP's layout
            return np.concatenate([allowed, allowed], axis=1).transpose(0, 2, 1)

        def _predict(self, t, counts, since, last):
            B, m = self.n, len(since)  # noqa: N806
            out = np.zeros((B, m))
            cal = self._calendar(t, self._place, self.batch.due_day)
            open_day = np.flatnonzero(~cal.is_weekend & ~cal.is_holiday)
            rows, cols = np.repeat(open_day, m), np.tile(np.arange(m), len(open_day))
            calendar = {k: getattr(cal, k)[rows] for k in (
                "weekday", "days_to_month_end", "days_to_quarter_end", "is_holiday",
                "month_phase", "quarter_phase")}
            dyn = reminder_dynamics(np.full(len(rows), t),
                                    {f"n_{ch}": counts[cols, j]
                                     for j, ch in enumerate(REMINDER_CHANNELS)},
                                    since[cols], last[cols], calendar)
            h = self.dyn.hazard.predict_hazard(self.batch.hazard_static[rows], dyn)
            out[open_day] = h.reshape(len(open_day), m)
            return out

    return Reference(dynamics, batch, mask)


def test_planner_solves_exactly_as_the_reference(small_run, planner):
    """The booster on distinct situations only and the legal mask once per distinct fact
    row give bit for bit the values and the table of the full computation."""
    from policies.common.dp import backward_induction
    from policies.planner.model import LearnedModel
    from simulations.env import LegalMask

    batch = _batch(small_run, n=4, seed=13)
    mask = LegalMask()
    H = 50  # noqa: N806 - every state reachable from day 36 on
    fast = backward_induction(LearnedModel(planner.dynamics, batch, mask), planner.space, H)
    slow = backward_induction(_reference_model(planner.dynamics, batch, mask),
                              planner.space, H)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    assert (fast[1] > 0).any()  # it does act


def test_the_batch_size_changes_no_plan(small_run, planner):
    from policies.planner import PlannerPolicy

    batch = _batch(small_run, n=7, seed=23)
    plans = []
    for size in (3, 64):
        policy = PlannerPolicy(planner.dynamics, batch_size=size, cache_size=0)
        plans.append((policy.plan(batch), policy.table))
    assert np.array_equal(plans[0][0], plans[1][0])
    assert np.array_equal(plans[0][1], plans[1][1])


def test_the_planner_plans_the_same_on_compiled_trees(small_run, planner,
                                                      monkeypatch: pytest.MonkeyPatch):
    """The compiled trees (engine.models.compiled) change the planner's speed, not its
    plans: the same values and tables, bit for bit, as LightGBM's predict."""
    import copy

    from engine.models.compiled import ENV_SWITCH, BoosterPredictor
    from policies.planner import PlannerPolicy

    batch = _batch(small_run, n=6, seed=21)
    plans = {}
    for compiled in (False, True):
        hazard = copy.deepcopy(planner.dynamics.hazard)  # a copy without compiled trees
        monkeypatch.setenv(ENV_SWITCH, "1" if compiled else "0")
        hazard._predictor = BoosterPredictor(hazard.booster_, compile_after_rows=0)
        policy = PlannerPolicy(dataclasses.replace(planner.dynamics, hazard=hazard))
        plans[compiled] = (policy.plan(batch), policy.table)
        assert hazard._predictor.compiled_ == compiled
    assert np.array_equal(plans[True][0], plans[False][0])
    assert np.array_equal(plans[True][1], plans[False][1])
