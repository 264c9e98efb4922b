"""The learned complaint model uses WHEN a reminder is sent, and complaints slow payment."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from engine.contract import Action
from simulations import world
from simulations.env.layout import SEGMENT_NAMES
from simulations.env.learned import ComplaintModel, estimate_rates
from simulations.env.types import EnvState

FAM = SEGMENT_NAMES.index("family_business")
CORP = SEGMENT_NAMES.index("corporate")


def _tables(n_inv: int, seed: int) -> dict[str, pd.DataFrame]:
    """Family businesses that complain about reminders before day 25 only (rate 0.4 vs 0.02)."""
    rng = np.random.default_rng(seed)
    due = pd.Timestamp("2025-01-31")
    customers = pd.DataFrame({"customer_id": ["C1", "C2"],
                              "segment": ["family_business", "corporate"]})
    invoices = pd.DataFrame({"invoice_id": [f"I{i}" for i in range(n_inv)],
                             "customer_id": ["C1" if i % 2 == 0 else "C2" for i in range(n_inv)],
                             "invoice_date": due - pd.Timedelta(days=30), "due_date": due,
                             "amount": 100.0})
    rows = []
    for i in range(n_inv):
        day = int(rng.integers(1, 40))
        early = day < 25
        p = (0.4 if early else 0.02) if i % 2 == 0 else 0.01
        rows.append({"invoice_id": f"I{i}", "action_date": due + pd.Timedelta(days=day),
                     "channel": "email", "complaint": bool(rng.random() < p)})
    actions = pd.DataFrame(rows)
    payments = pd.DataFrame({"invoice_id": pd.Series([], dtype=str),
                             "payment_date": pd.Series([], dtype="datetime64[ns]"),
                             "amount": pd.Series([], dtype=float)})
    return {"customers": customers, "invoices": invoices, "actions": actions,
            "payments": payments}


def test_complaint_probability_depends_on_the_day_the_reminder_is_sent():
    rates = estimate_rates(_tables(4000, 0), dt.date(2025, 6, 30))
    model = rates.complaint_model
    one = np.array([1])
    early = model.predict(one * FAM, one * Action.EMAIL, one * 5, one * 0, one * 10_000)
    late = model.predict(one * FAM, one * Action.EMAIL, one * 35, one * 0, one * 10_000)
    assert early[0] > 0.3 and late[0] < 0.08
    # corporates never complained more early than late: no timing effect invented
    c_early = model.predict(one * CORP, one * Action.EMAIL, one * 5, one * 0, one * 10_000)
    assert c_early[0] < 0.05


def test_unseen_cells_fall_back_to_the_segment_not_to_zero():
    rates = estimate_rates(_tables(2000, 1), dt.date(2025, 6, 30))
    one = np.array([1])
    # no phone call and no third reminder was ever logged
    p = rates.complaint_model.predict(one * FAM, one * Action.PHONE, one * 5, one * 2, one * 3)
    assert 0.1 < p[0] < 0.9
    wait = rates.complaint_model.predict(one * FAM, one * Action.WAIT, one * 5, one * 0, one * 9)
    assert wait[0] == 0.0


def test_shrinkage_pulls_a_sparse_cell_to_its_parent():
    # 300 quiet reminders on day 30, then 3 on day 3 that all drew a complaint
    overdue = np.r_[np.full(300, 30), np.full(3, 3)]
    y = np.r_[np.zeros(300, bool), np.ones(3, bool)]
    m = len(y)
    model = ComplaintModel.fit(np.zeros(m, np.int64), np.full(m, int(Action.EMAIL)), overdue,
                               np.zeros(m, np.int64), np.full(m, 10_000), y, 6)
    one = np.array([1])
    p = model.predict(one * 0, one * Action.EMAIL, one * 3, one * 0, one * 10_000)
    q = model.predict(one * 0, one * Action.EMAIL, one * 30, one * 0, one * 10_000)
    assert q[0] < p[0] < 0.5  # higher than the quiet cell, but 3 of 3 is no certainty


def test_generated_history_gives_timing_aware_rates_and_a_complaint_slowdown():
    sc = world.load_scenario("default")
    company = world.generate_company(sc, 400, 18, seed=3)
    tables = {k: getattr(company, k) for k in ("customers", "invoices", "payments", "actions")}
    rates = estimate_rates(tables, company.as_of)
    # the default world slows a family business that complained to 0.4 of its rate
    assert rates.complaint_hazard[FAM] < 0.85
    assert np.all(rates.complaint_hazard[:5] <= 1.5)
    one = np.array([1])
    # family businesses complain about a reminder before day 25 (early factor 5 in the world)
    early = rates.complaint_model.predict(one * FAM, one * Action.EMAIL, one * 14, one * 0,
                                          one * 10_000)
    late = rates.complaint_model.predict(one * FAM, one * Action.EMAIL, one * 30, one * 0,
                                         one * 10_000)
    assert early[0] > 1.5 * late[0]


def test_learned_source_uses_the_state_for_complaints():
    from simulations.env.learned import BehaviourRates, LearnedSource

    rates = estimate_rates(_tables(4000, 0), dt.date(2025, 6, 30))
    src = LearnedSource.__new__(LearnedSource)
    src.rates = BehaviourRates(rates.complaint, rates.dispute_start, rates.dispute_resolve,
                               rates.complaint_model, rates.complaint_hazard)
    state = EnvState.initial(2)
    state.day[:] = [5, 35]
    seg = np.array([FAM, FAM])
    actions = np.array([Action.EMAIL, Action.EMAIL])
    p = src._complaint_probability(seg, state, actions, np.array([True, True]))
    assert p[0] > 3 * p[1]


def test_a_multiplicative_world_is_recovered_with_its_day_17_step():
    """The world's complaint law is multiplicative: x5 before the segment's early day (17
    here; the sampled companies draw it from 15-35), x3 when the previous reminder is under
    7 days old. Reminders on every day 0-59, first ones and repeats: the model recovers
    each cell within 35 %, the step between day 15 and day 21 included (the old grid put
    both in one 14-25 bucket), and a rare cell (a quick repeat before day 17) from the
    product of its effects."""
    rng = np.random.default_rng(0)
    m = 30_000
    overdue = rng.integers(0, 60, m)
    before = rng.integers(0, 3, m)
    before[overdue < 17] = 0  # repeats before day 17 are rare: only a few
    before[rng.random(m) < 0.01] = 1
    since = np.where(before > 0, np.where(rng.random(m) < 0.5, 4, 20), 10_000)
    truth = lambda o, s: 0.01 * np.where(o < 17, 5.0, 1.0) * np.where(s < 7, 3.0, 1.0)  # noqa: E731
    y = rng.random(m) < truth(overdue, since)
    model = ComplaintModel.fit(np.zeros(m, np.int64), np.full(m, int(Action.EMAIL)), overdue,
                               before, since, y, 6)
    cells = [(15, 0, 10_000), (21, 0, 10_000), (35, 1, 20), (35, 1, 4), (10, 1, 4)]
    for o, r, s in cells:
        p = model.predict(np.array([0]), np.array([int(Action.EMAIL)]), np.array([o]),
                          np.array([r]), np.array([s]))[0]
        assert abs(p / truth(o, s) - 1) < 0.35, (o, r, s, p, truth(o, s))


def _slowdown_history(n_inv: int, slowdown: float, seed: int) -> dict[str, pd.DataFrame]:
    """Family businesses reminded on days 10, 20, 30, 40 after due while unpaid; each
    reminder draws a complaint with probability 0.3; the daily payment rate 0.03 falls to
    ``slowdown`` x 0.03 for good once the customer has complained."""
    rng = np.random.default_rng(seed)
    due = pd.Timestamp("2025-01-31")
    customers = pd.DataFrame({"customer_id": ["C1"], "segment": ["family_business"]})
    invoices = pd.DataFrame({"invoice_id": [f"I{i}" for i in range(n_inv)],
                             "customer_id": "C1", "invoice_date": due - pd.Timedelta(days=30),
                             "due_date": due, "amount": 100.0})
    actions, payments = [], []
    for i in range(n_inv):
        complained = False
        for day in range(1, 121):
            if day in (10, 20, 30, 40):
                drew = bool(rng.random() < 0.3)
                actions.append({"invoice_id": f"I{i}", "action_date": due + pd.Timedelta(days=day),
                                "channel": "email", "complaint": drew})
                complained |= drew
            if rng.random() < 0.03 * (slowdown if complained else 1.0):
                payments.append({"invoice_id": f"I{i}", "amount": 100.0,
                                 "payment_date": due + pd.Timedelta(days=day)})
                break
    return {"customers": customers, "invoices": invoices, "actions": pd.DataFrame(actions),
            "payments": pd.DataFrame(payments)}


def test_the_complaint_slowdown_is_not_diluted_by_reminders_after_a_complaint():
    """Reminders sent after the customer complained, and the days after a later complaint,
    are not the no-complaint rate: counted as such they pulled a planted 0.4 to about 0.6."""
    rates = estimate_rates(_slowdown_history(3000, 0.4, seed=0), dt.date(2025, 12, 31))
    assert abs(rates.complaint_hazard[FAM] - 0.4) < 0.08


def test_complaint_history_marks_earlier_complaints_and_the_first_complaint_day():
    from simulations.env.learned import _complaint_history

    start = np.array([0, 0, 0, 3, 3, 5])  # invoices a (rows 0-2), b (3-4), c (5)
    day = np.array([10, 20, 30, 5, 9, 7])
    comp = np.array([False, True, False, False, False, True])
    earlier, first = _complaint_history(start, day, comp)
    assert earlier.tolist() == [False, False, True, False, False, False]
    never = np.iinfo(np.int64).max
    assert first.tolist() == [20, 20, 20, never, never, 7]


def test_logged_support_counts_each_reminder_in_its_cell():
    """ReminderSupport: one count per logged reminder, by segment, channel, day-overdue
    bucket (the complaint model's) and reminders sent before; ``at`` reads a day's cells."""
    from simulations.env.learned import COMPLAINT_OVERDUE_EDGES, ReminderSupport

    tables = _tables(600, 2)
    rates = estimate_rates(tables, dt.date(2025, 6, 30))
    count = rates.support.count
    assert count.sum() == len(tables["actions"])  # one email per invoice, all counted
    assert count[:, [Action.WAIT, Action.LETTER, Action.AGENCY]].sum() == 0
    days = (tables["actions"]["action_date"] - pd.Timestamp("2025-01-31")).dt.days
    fam = tables["actions"]["invoice_id"].str[1:].astype(int) % 2 == 0
    on_day_20 = ((days >= 20) & (days < 23) & fam).sum()  # the bucket [20, 23)
    assert count[FAM, Action.EMAIL, list(COMPLAINT_OVERDUE_EDGES).index(20), 0] == on_day_20
    at = rates.support.at(np.array([FAM, CORP]), 21, np.array([0, 1, 5]))
    assert at.shape == (2, 3, 6)
    assert at[0, 0, Action.EMAIL] == on_day_20 and at[0, 1:].sum() == 0  # none was a 2nd
    first_emails = count[FAM, Action.EMAIL, :, 0].sum()  # counted over every day
    assert rates.support.over_days().at(np.array([FAM]), 3, np.array([0]))[
        0, 0, Action.EMAIL] == first_emails > on_day_20
    direct = ReminderSupport.fit(np.array([FAM, FAM]), np.array([1, 1]), np.array([21, 21]),
                                 np.array([0, 7]), len(SEGMENT_NAMES))
    assert direct.at(np.array([FAM]), 20, np.array([0, 3]))[0, :, 1].tolist() == [1, 1]


def _spaced_history(seed: int) -> dict[str, pd.DataFrame]:
    """Corporates reminded three times, never within 7 days of the last reminder: the second
    reminder draws complaints at 10 % when 7-13 days after the first, at 2 % later; the
    third at 1 % (fewer than the second, as a confounded history may show)."""
    rng = np.random.default_rng(seed)
    due = pd.Timestamp("2025-01-31")
    n_inv = 3000
    customers = pd.DataFrame({"customer_id": ["C1"], "segment": ["corporate"]})
    invoices = pd.DataFrame({"invoice_id": [f"I{i}" for i in range(n_inv)],
                             "customer_id": "C1", "invoice_date": due - pd.Timedelta(days=30),
                             "due_date": due, "amount": 100.0})
    rows = []
    for i in range(n_inv):
        first = int(rng.integers(1, 10))
        gap = int(rng.integers(7, 30))
        days = (first, first + gap, first + gap + 20)
        rates = (0.03, 0.10 if gap < 14 else 0.02, 0.01)
        rows += [{"invoice_id": f"I{i}", "action_date": due + pd.Timedelta(days=d),
                  "channel": "email", "complaint": bool(rng.random() < p)}
                 for d, p in zip(days, rates, strict=True)]
    empty = pd.DataFrame({"invoice_id": pd.Series([], dtype=str),
                          "payment_date": pd.Series([], dtype="datetime64[ns]"),
                          "amount": pd.Series([], dtype=float)})
    return {"customers": customers, "invoices": invoices, "actions": pd.DataFrame(rows),
            "payments": empty}


def test_a_reminder_sooner_or_after_more_is_never_taken_as_less_annoying():
    """Levels the history barely covers do not fall back below their neighbours: a reminder
    3 days after the last (never logged) is at least as complaint-prone as one 10 days
    after it, and a third reminder at least as much as a second."""
    model = estimate_rates(_spaced_history(3), dt.date(2025, 6, 30)).complaint_model
    one = np.array([1])

    def p(day: int, before: int, since: int) -> float:
        return float(model.predict(one * CORP, one * Action.EMAIL, one * day, one * before,
                                   one * since)[0])

    assert p(20, 1, 10) > 1.5 * p(20, 1, 20)  # what the history shows
    assert p(20, 1, 3) >= p(20, 1, 10)
    assert p(40, 2, 20) >= p(40, 1, 20)
