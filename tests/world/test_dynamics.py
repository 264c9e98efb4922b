"""The vectorised MDP: probabilities agree with draws, segments behave as documented."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.calendar import from_days, weekday
from engine.contract import N_ACTIONS, SEGMENTS, Action
from legal_rules.facts import FACTS, NEVER_DAYS
from simulations import world
from simulations.world.dynamics import pay_hazard, tables

K_NONE = 21


def _state(size: int, **kw) -> world.WorldState:
    z = np.zeros(size, np.int64)
    f = np.zeros(size, bool)
    base = dict(t=z, k=np.full(size, K_NONE, np.int64), n=z, w=z, c=z, final_notice=f,
                complaint=f, disputed=f, done=f)
    for key, value in kw.items():
        base[key] = np.asarray(value, dtype=base[key].dtype)
    base = {key: np.broadcast_to(v, (size,)).copy() for key, v in base.items()}
    return world.WorldState(**base)


def _one_kind(params: world.InvoiceParams, segment: str, n: int) -> world.InvoiceParams:
    """n copies of the first invoice of a segment, due on a Monday business day (t=0..)."""
    row = np.flatnonzero(params.segment == SEGMENTS.index(segment))[0]
    return params.take(np.full(n, row))


def test_step_frequencies_match_transition_probs(params: world.InvoiceParams) -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    p = params.take(np.arange(n) % 50)  # 50 invoices, 4000 draws each
    state = _state(n, t=np.arange(n) % 7 + 3, k=5, n=1, c=1)
    actions = np.arange(n) % N_ACTIONS
    probs = world.transition_probs(p, state, actions)
    _, out = world.step(p, state, actions, rng)
    for event, prob in ((out.paid, probs.pay), (out.complaint, probs.complaint),
                        (out.dispute_started, probs.dispute_start), (out.agency, probs.agency)):
        expected, observed = prob.sum(), event.sum()
        assert abs(observed - expected) < 5 * np.sqrt(expected + 1), (observed, expected)


def test_step_does_not_mutate_and_finished_rows_stay(params: world.InvoiceParams) -> None:
    state = world.initial_state(params)
    state.done[:10] = True
    before = state.copy()
    new, out = world.step(params, state, np.full(len(params), int(Action.EMAIL)),
                          np.random.default_rng(1))
    for f in dataclasses.fields(state):
        np.testing.assert_array_equal(getattr(state, f.name), getattr(before, f.name))
    assert not out.paid[:10].any() and (out.reward[:10] == 0).all()
    assert (new.t[:10] == 0).all() and (new.t[10:] == 1).all()
    assert (new.n[10:] == 1).all() and (new.k[10:] == 1).all() and (new.c[10:] == 1).all()
    cost = params.scenario.costs.action[Action.EMAIL]
    unpaid = ~out.paid[10:] & ~out.complaint[10:]
    assert np.allclose(out.reward[10:][unpaid], -cost)


def test_no_payment_on_weekends_or_bank_holidays(params: world.InvoiceParams) -> None:
    cal = params.calendar
    for t in range(0, 40):
        state = _state(len(params), t=t)
        pay = world.transition_probs(params, state, np.zeros(len(params), np.int64)).pay
        d = params.due_index + t
        closed = ~cal.is_business[params.jurisdiction, d]
        assert closed.any() or t < 2
        assert (pay[closed] == 0).all()
        assert (pay[~closed] > 0).any()


def test_agency_ends_with_expected_value(params: world.InvoiceParams) -> None:
    costs = params.scenario.costs
    state = world.initial_state(params)
    new, out = world.step(params, state, np.full(len(params), int(Action.AGENCY)),
                          np.random.default_rng(2))
    assert new.done.all() and out.agency.all() and not out.paid.any()
    expected = params.amount * costs.agency_recovery_probability * (
        1 - costs.agency_fee_share) * costs.daily_discount ** costs.agency_delay_days
    np.testing.assert_allclose(out.reward, expected - costs.action[Action.AGENCY])
    assert 0.5 < out.agency_recovered.mean() / costs.agency_recovery_probability < 1.5


def test_episode_truncates_at_horizon(params: world.InvoiceParams) -> None:
    H = params.scenario.horizon_days
    state = _state(len(params), t=H - 1, disputed=True)
    new, out = world.step(params, state, np.zeros(len(params), np.int64),
                          np.random.default_rng(3))
    assert new.done.all() and out.truncated.all()


def test_disputed_invoices_never_pay(params: world.InvoiceParams) -> None:
    state = _state(len(params), t=10, disputed=True)
    probs = world.transition_probs(params, state, np.full(len(params), int(Action.PHONE)))
    assert (probs.pay == 0).all() and (probs.dispute_end > 0).all()


def _hazard(p: world.InvoiceParams, state: world.WorldState, action: int) -> np.ndarray:
    return world.transition_probs(p, state, np.full(len(p), action)).pay_hazard


def _h(p: world.InvoiceParams, t: int, k: int, n: int, c: int, complaint: bool = False):
    """Pay hazard of invoice 0 on a business day with calendar factor 1 (post-action k, n, c)."""
    return float(pay_hazard(tables(p.scenario), p.segment[:1], p.reliability[:1], 1.0,
                            p.milestone_offset[:1], t, k, n, c, complaint,
                            response=p.response[:1], shift=p.timing_shift[:1])[0])


def test_corporate_reminder_best_five_to_ten_days_after_due(
        params: world.InvoiceParams) -> None:
    p = _one_kind(params, "corporate", 1)
    gain = {t: _h(p, t, 0, 1, 1) / _h(p, t, K_NONE, 0, 0) for t in (2, 7, 20)}
    assert gain[7] > gain[2] and gain[7] > gain[20] and gain[7] > 3
    # The effect decays with days since the reminder and is stronger for stronger channels.
    assert _h(p, 30, 1, 1, 1) > _h(p, 30, 5, 1, 1) > _h(p, 30, 15, 1, 1)
    assert _h(p, 8, 0, 1, 4) > _h(p, 8, 0, 1, 3) > _h(p, 8, 0, 1, 2) > _h(p, 8, 0, 1, 1)


def test_a_customers_response_scales_the_reminder_effect_only(
        params: world.InvoiceParams) -> None:
    """``InvoiceParams.response`` multiplies the reminder effect E in lam = base * (1 + E):
    waiting is untouched, a reminder's extra intensity scales with it."""
    p = _one_kind(params, "corporate", 1)

    def lam(response: float, k: int, n: int, c: int) -> float:
        q = dataclasses.replace(p, response=np.array([response]))
        return -np.log1p(-_h(q, 7, k, n, c))

    base = lam(1.0, K_NONE, 0, 0)
    assert lam(0.2, K_NONE, 0, 0) == lam(3.0, K_NONE, 0, 0) == base
    effect = lam(1.0, 0, 1, int(Action.LETTER)) / base - 1
    assert effect > 0.5
    for response in (0.2, 3.0):
        got = lam(response, 0, 1, int(Action.LETTER)) / base - 1
        assert got == pytest.approx(response * effect, rel=1e-9)


def _one_value_per_customer(company: world.Company, per_invoice: np.ndarray) -> np.ndarray:
    """(customers,) the one value ``per_invoice`` (n_invoices,) has on all of a customer's
    invoices (asserted: a customer's own trait, not an invoice's)."""
    inv = company.invoices
    per_customer = [set(per_invoice[(inv["customer_id"] == c).to_numpy()])
                    for c in inv["customer_id"].unique()]
    assert all(len(values) == 1 for values in per_customer)
    return np.array([next(iter(v)) for v in per_customer])


def test_customers_answer_reminders_their_own_way_only_where_the_scenario_says() -> None:
    """``reminder_response_sigma``: one response per customer (all its invoices), lognormal
    with mean 1; without it every response is 1 and nothing else of the company changes."""
    spread = world.generate_company(world.load_scenario("individual_response"), 120, 6, 4)
    plain = world.generate_company(world.load_scenario("default"), 120, 6, 4)
    assert (plain.params.response == 1.0).all()
    values = _one_value_per_customer(spread, spread.params.response)
    assert values.std() > 0.5 and 0.6 < values.mean() < 1.6
    assert (values < 0.5).any() and (values > 2).any()


def test_a_customers_timing_shift_moves_its_best_reminder_days(
        params: world.InvoiceParams) -> None:
    """``InvoiceParams.timing_shift``: a customer shifted by s answers a reminder sent on day
    d exactly as its segment answers one sent on day d - s; waiting is untouched."""
    p = _one_kind(params, "corporate", 1)

    def h(shift: int, t: int, k: int, n: int, c: int) -> float:
        return _h(dataclasses.replace(p, timing_shift=np.array([shift])), t, k, n, c)

    for t in (0, 3, 9, 30, 60):
        assert h(-6, t, K_NONE, 0, 0) == h(0, t, K_NONE, 0, 0) == h(12, t, K_NONE, 0, 0)
    # sent today (k = 0) on day t + shift by the shifted customer, on day t by the segment,
    # looked at on the same day: the same timing multiplier, so the same effect
    base = {t: -np.log1p(-h(0, t, K_NONE, 0, 0)) for t in range(40)}
    for shift in (-4, 8, 14):
        for t in range(max(0, -shift), 40 - max(shift, 0)):
            a, b = t + shift, t
            eff_shifted = -np.log1p(-h(shift, a, 0, 1, 2)) / base[a]
            eff_segment = -np.log1p(-h(0, b, 0, 1, 2)) / base[b]
            assert eff_shifted == pytest.approx(eff_segment, rel=1e-9)
    # the segment's best days are 5-10; a customer shifted by 14 answers best on days 19-24
    gain = {t: h(14, t, 0, 1, 1) / h(14, t, K_NONE, 0, 0) for t in (7, 21)}
    assert gain[21] > 1.5 * gain[7]


def test_customers_keep_their_own_timing_only_where_the_scenario_says() -> None:
    """``reminder_timing_shift_sd``: one whole-day shift per customer (all its invoices),
    mean about 0; without it every shift is 0 and the company draws everything else as
    before (the same reliabilities)."""
    timing = world.generate_company(world.load_scenario("individual_timing"), 120, 6, 4)
    plain = world.generate_company(world.load_scenario("default"), 120, 6, 4)
    assert (plain.params.timing_shift == 0).all()
    values = _one_value_per_customer(timing, timing.params.timing_shift)
    assert values.dtype == np.int64 and 5 < values.std() < 10 and abs(values.mean()) < 2
    # the shift is drawn after everything else: the rest of the company is the default's
    # except where the timing changes what was paid
    assert (timing.params.reliability == plain.params.reliability).all()
    assert (timing.params.amount == plain.params.amount).all()


def test_family_business_complains_about_early_reminders(params: world.InvoiceParams) -> None:
    p = _one_kind(params, "family_business", 1)
    early = world.transition_probs(p, _state(1, t=3), [int(Action.EMAIL)]).complaint[0]
    late = world.transition_probs(p, _state(1, t=40), [int(Action.EMAIL)]).complaint[0]
    frequent = world.transition_probs(p, _state(1, t=40, k=3, n=1, c=1),
                                      [int(Action.EMAIL)]).complaint[0]
    assert early > 2 * late and frequent > 2 * late
    corp = _one_kind(params, "corporate", 1)
    assert world.transition_probs(corp, _state(1, t=3), [1]).complaint[0] < early / 3


def test_complaint_slows_payment(params: world.InvoiceParams) -> None:
    calm = _hazard(params, _state(len(params), t=20), 0)
    upset = _hazard(params, _state(len(params), t=20, complaint=True), 0)
    assert (upset <= calm).all() and (upset < calm).any()


def test_construction_reminder_before_milestone_is_wasted(params: world.InvoiceParams) -> None:
    p = _one_kind(params, "construction", 1)
    p.milestone_offset[:] = 30
    # A phone call sent on day 22 (before the milestone) does nothing on day 32 ...
    assert _h(p, 32, 10, 1, 3) == pytest.approx(_h(p, 32, K_NONE, 0, 0))
    # ... one sent on day 35 (after it) helps on day 45.
    assert _h(p, 45, 10, 1, 3) > 1.05 * _h(p, 45, K_NONE, 0, 0)
    # Paying is much slower before the milestone.
    assert _h(p, 31, K_NONE, 0, 0) > 5 * _h(p, 29, K_NONE, 0, 0)


def test_startup_pays_at_month_end_saas_after_quarter_end(scenario: world.Scenario) -> None:
    p = world.sample_invoices(scenario, 1, np.random.default_rng(0))
    cal = p.calendar
    days = np.arange(cal.n_days)
    dates = from_days(cal.first_day + days)
    dom = (dates - dates.astype("datetime64[M]").astype("datetime64[D]")).astype(int)
    for seg, peak_days, off_days in (("startup", [0, 1], [10, 11, 12, 13, 14]),):
        s = SEGMENTS.index(seg)
        mult = cal.pay_multiplier[s].sum(axis=0)
        assert mult[np.isin(dom, peak_days)].mean() > 3 * mult[np.isin(dom, off_days)].mean()
    saas = cal.pay_multiplier[SEGMENTS.index("saas")].sum(axis=0)
    month = dates.astype("datetime64[M]").astype(int) % 12
    after_q = np.isin(month, [0, 3, 6, 9]) & (dom < 8)
    mid_q = np.isin(month, [1, 4, 7, 10]) & (dom > 10)
    assert saas[after_q].mean() > 3 * saas[mid_q].mean()
    # Corporate payment runs: Tuesdays beat Fridays (both business days of DE).
    corp = cal.pay_multiplier[SEGMENTS.index("corporate"), 0]
    wday = weekday(cal.first_day + days)
    tue = (wday == 1) & cal.is_business[0] & cal.is_business[0, np.maximum(days - 1, 0)]
    fri = (wday == 4) & cal.is_business[0]
    assert corp[tue].mean() > 1.5 * corp[fri].mean()


def test_facts_cover_the_registry_with_types(params: world.InvoiceParams) -> None:
    state = _state(len(params), t=9, k=4, n=2, c=4, final_notice=True)
    facts = world.facts_from_state(params, state)
    assert set(facts) == set(FACTS)
    kinds = {"int": "i", "float": "f", "bool": "b", "str": "U"}
    for name, fact in FACTS.items():
        assert len(facts[name]) == len(params), name
        assert facts[name].dtype.kind == kinds[fact.type], name
    assert (facts["days_overdue"] == 9).all() and (facts["contacts_last_7_days"] == 1).all()
    assert (facts["days_since_final_notice"] == 4).all()
    fresh = world.facts_from_state(params, world.initial_state(params))
    assert (fresh["days_since_last_contact"] == NEVER_DAYS).all()
    assert (fresh["days_since_final_notice"] == NEVER_DAYS).all()
    assert set(fresh["jurisdiction"]) <= {j.code for j in params.scenario.jurisdictions}
    weekend = params.calendar.is_weekend[params.due_index]
    np.testing.assert_array_equal(fresh["is_weekend"], weekend)
    # Explicit decision dates give the same facts as the state's day.
    dated = world.facts_from_state(params, state, from_days(params.due_day + 9))
    for name in FACTS:
        np.testing.assert_array_equal(dated[name], facts[name])


def test_logging_policy_probs_are_a_distribution(params: world.InvoiceParams) -> None:
    rng = np.random.default_rng(5)
    state = world.initial_state(params)
    seen_send = 0
    for _ in range(60):
        probs = world.logging_policy_probs(params, state)
        assert probs.shape == (len(params), N_ACTIONS)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0)
        assert (probs >= 0).all()
        closed = ~params.calendar.is_business[params.jurisdiction, params.due_index + state.t]
        assert (probs[closed | state.disputed | state.done, 0] == 1).all()
        assert (probs[params.opted_out_email & ~state.done, Action.EMAIL] == 0).all()
        seen_send += (probs[:, 0] < 1).sum()
        cum = np.cumsum(probs, axis=1)
        a = (cum <= (rng.random(len(params)) * cum[:, -1])[:, None]).sum(axis=1)
        assert (probs[np.arange(len(params)), a] > 0).all()
        state, _ = world.step(params, state, a, rng)
    assert seen_send > 0


@lru_cache(maxsize=1)
def _pool() -> world.InvoiceParams:
    return world.sample_invoices(world.load_scenario("default"), 1000, np.random.default_rng(9))


@settings(max_examples=40, deadline=None)
@given(t=st.integers(0, 119), k=st.integers(1, 21), n=st.integers(0, 4),
       c=st.integers(1, 4), complaint=st.booleans(), disputed=st.booleans(),
       action=st.integers(0, N_ACTIONS - 1), seed=st.integers(0, 2**16))
def test_any_state_steps_to_a_valid_state(t, k, n, c, complaint, disputed, action, seed) -> None:
    pool = _pool()
    sc = pool.scenario
    p = pool.take(np.random.default_rng(seed).choice(len(pool), 64))
    c = c if n > 0 else 0
    k = k if n > 0 else K_NONE
    state = _state(64, t=t, k=k, n=n, c=c, final_notice=c == 4, complaint=complaint,
                   disputed=disputed)
    probs = world.transition_probs(p, state, np.full(64, action))
    for v in (probs.pay, probs.complaint, probs.dispute_start, probs.dispute_end):
        assert ((v >= 0) & (v <= 1)).all()
    new, out = world.step(p, state, np.full(64, action), np.random.default_rng(seed))
    live = ~new.done
    assert ((new.k[live] >= 1) & (new.k[live] <= sc.max_days_since_reminder)).all()
    assert (new.n <= sc.max_reminders).all() and (new.n >= state.n).all()
    written = action in (int(Action.EMAIL), int(Action.LETTER))
    np.testing.assert_array_equal(new.w, np.minimum(state.w + written, sc.max_reminders))
    assert (new.t == t + 1).all()
    assert not (out.paid & state.disputed).any()
    assert (new.done == (out.paid | out.agency | out.truncated)).all()
