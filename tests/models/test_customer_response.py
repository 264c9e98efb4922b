"""Customer-level reminder response (engine.models.customer_response, issue #25): estimated
from the history known at each invoice's due date, shrunk toward the segment, it makes the
planner time two customers of one segment differently, and it never reads the future."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.models.customer_response import RESPONSE_FEATURES

START = dt.date(2023, 1, 2)
AMOUNT = 1000.0
NEW_AMOUNT = 300.0  # the two open invoices: a reminder is worth its cost only if it works


def _history(n_customers: int = 40, n_invoices: int = 24, seed: int = 0
             ) -> tuple[dict[str, pd.DataFrame], dt.date]:
    """One segment (corporate, DE), one e-mail reminder per invoice on a random day 0-35
    after due (exploration). Even customers pay 2-4 days after the reminder (or on their
    own day 25-55 if sooner); odd customers pay on a day 5-40 whatever is sent, so both
    kinds are about as late on average. Plus one open invoice of C000 (responds) and C001
    (does not), due on the as-of date."""
    rng = np.random.default_rng(seed)
    cust, inv, pay, act = [], [], [], []
    for c in range(n_customers):
        cid = f"C{c:03d}"
        cust.append({"customer_id": cid, "jurisdiction": "DE", "customer_type": "b2b",
                     "segment": "corporate", "industry": "retail", "customer_since": START})
        for j in range(n_invoices):
            iid = f"{cid}-{j:02d}"
            issued = START + dt.timedelta(days=int(30 * j + rng.integers(0, 5)))
            due = issued + dt.timedelta(days=30)
            inv.append({"invoice_id": iid, "customer_id": cid, "invoice_date": issued,
                        "due_date": due, "amount": AMOUNT, "currency": "EUR"})
            remind = int(rng.integers(0, 36))
            late = (min(int(rng.integers(25, 56)), remind + int(rng.integers(2, 5)))
                    if c % 2 == 0 else int(rng.integers(5, 41)))
            if remind < late:
                act.append({"invoice_id": iid, "action_date": due + dt.timedelta(days=remind),
                            "channel": "email"})
            pay.append({"invoice_id": iid, "payment_date": due + dt.timedelta(days=late),
                        "amount": AMOUNT})
    as_of = START + dt.timedelta(days=30 * n_invoices + 80)
    for cid in ("C000", "C001"):
        inv.append({"invoice_id": f"{cid}-new", "customer_id": cid,
                    "invoice_date": as_of - dt.timedelta(days=30), "due_date": as_of,
                    "amount": NEW_AMOUNT, "currency": "EUR"})
    return ({"customers": pd.DataFrame(cust), "invoices": pd.DataFrame(inv),
             "payments": pd.DataFrame(pay), "actions": pd.DataFrame(act)}, as_of)


def _timing_history(n_customers: int = 40, n_invoices: int = 24, seed: int = 0
                    ) -> tuple[dict[str, pd.DataFrame], dt.date]:
    """Like :func:`_history`, but every customer answers reminders: even customers pay 2-4
    days after a reminder sent 3-12 days after due, odd ones after one sent 17-26 days
    after due; a reminder on other days is ignored and the invoice is paid on the
    customer's own day 25-55. Plus one open invoice of C000 (answers early reminders) and
    C001 (late ones), due on the as-of date."""
    rng = np.random.default_rng(seed)
    tables, as_of = _history(n_customers, n_invoices, seed)
    inv = tables["invoices"][~tables["invoices"]["invoice_id"].str.endswith("-new")]
    act, pay = [], []
    for iid, cid, due in zip(inv["invoice_id"], inv["customer_id"], inv["due_date"],
                             strict=True):
        lo, hi = (3, 12) if int(cid[1:]) % 2 == 0 else (17, 26)
        remind, own = int(rng.integers(0, 36)), int(rng.integers(25, 56))
        late = min(own, remind + int(rng.integers(2, 5))) if lo <= remind <= hi else own
        if remind < late:
            act.append({"invoice_id": iid, "action_date": due + dt.timedelta(days=remind),
                        "channel": "email"})
        pay.append({"invoice_id": iid, "payment_date": due + dt.timedelta(days=late),
                    "amount": AMOUNT})
    return dict(tables, actions=pd.DataFrame(act), payments=pd.DataFrame(pay)), as_of


def _fit(tables: dict[str, pd.DataFrame], as_of: dt.date, on: bool):
    """Trees on amount and segment only: without the customer response the two open
    invoices have the same inputs, so whatever tells them apart is the estimate."""
    from engine.models.hazard import HazardModel

    return HazardModel(customer_response=on, n_estimators=30, min_child_samples=50,
                       features=["amount", "segment"]).fit_tables(tables, as_of)


@pytest.fixture(scope="module")
def history():
    return _history()


@pytest.fixture(scope="module")
def model(history):
    return _fit(*history, on=True)


NEW = np.array(["C000-new", "C001-new"])


def _schedule(planner, row: int, horizon: int) -> list[tuple[int, int]]:
    """(day after due, action) of the planned reminders while the invoice stays unpaid."""
    sp = planner.space
    k, n, w, c, f = sp.K, 0, 0, 0, 0
    out = []
    for t in range(horizon):
        s = sp.lookup_arrays(*(np.array([x]) for x in (k, n, w, c, f, 0, 0)))[0]
        a = int(planner.table[planner.row_of[row], t, s])
        if a:
            out.append((t, a))
        if 1 <= a <= 4:
            k, n, c, f = 1, min(n + 1, sp.N), a, f or int(a == 4)
            w = min(w + int(a in (1, 2)), sp.N)
        else:
            k = min(k + 1, sp.K)
    return out


def _plan(hazard, tables: dict[str, pd.DataFrame], email_cost: float | None = None
          ) -> list[list[tuple[int, int]]]:
    """The two open invoices' planned reminders; with ``email_cost`` an e-mail costs that
    and every other action ten times as much (default: the default costs)."""
    from policies.planner import LearnedDynamics, PlannerPolicy
    from simulations.env.layout import SEGMENT_NAMES
    from simulations.env.learned import BehaviourRates, batch_from_tables
    from simulations.env.types import CostModel

    ns = len(SEGMENT_NAMES)
    rates = BehaviourRates(complaint=np.zeros((ns, 6)), dispute_start=np.zeros(ns),
                           dispute_resolve=np.zeros(ns))
    costs = CostModel() if email_cost is None else CostModel(
        action_cost=(0.0, email_cost, *[10 * email_cost] * 3, 0.0))
    planner = PlannerPolicy(LearnedDynamics(hazard, rates, costs, horizon=40))
    static = hazard.static_for_invoices(tables, NEW)
    planner.plan(batch_from_tables(tables, NEW, static, np.full((2, 3), 1.0 / 3.0)))
    return [_schedule(planner, r, 40) for r in range(2)]


def test_the_planner_times_a_responding_and_an_ignoring_customer_differently(history, model):
    """A (C000) paid within days of every reminder, B (C001) paid when it paid, both about
    as late on average: the estimates say so (A's hazard after an e-mail far above its
    baseline, B's below), and the planner on the model with them times A's and B's
    reminders differently, where the model without them plans both alike."""
    tables, as_of = history
    est = model.static_for_invoices(tables, NEW)[:, len(model.tree_features_):]
    assert est.shape == (2, len(RESPONSE_FEATURES))
    base, email_0_3 = RESPONSE_FEATURES.index("resp_baseline"), RESPONSE_FEATURES.index(
        "resp_email_0_3")
    assert est[0, email_0_3] / est[0, base] > 2.0 > 1.0 > est[1, email_0_3] / est[1, base]
    a, b = _plan(model, tables)
    assert a and [day for day, _ in a] != [day for day, _ in b]
    same_a, same_b = _plan(_fit(*history, on=False), tables)
    assert same_a == same_b and same_a  # without the estimates: one plan for both


@pytest.mark.parametrize("seed", [0, 1])
def test_the_planner_reminds_each_customer_on_the_days_it_answers(seed):
    """Issue #25's two customers of one segment: A (C000) paid within days of every
    reminder sent 3-12 days after due, B (C001) of every one sent 17-26 days after due, both
    ignored the others. The send-day estimates say so (A's factor for reminders sent in the
    first two weeks above its factor for later ones, B's below), and the planner on the
    model with them sends A's first reminder on A's days and B's on B's, where the model
    without them plans both alike. An e-mail costs 80 on the 300 open: a reminder is worth
    sending only where it works."""
    from engine.models.customer_response import N_CELLS

    tables, as_of = _timing_history(seed=seed)
    model = _fit(tables, as_of, on=True)
    assert model.response_.by_segment["corporate"].k_send < 100
    rho = model.static_for_invoices(tables, NEW)[:, len(model.tree_features_) + N_CELLS:]
    early_over_late = rho[:, :2].mean(axis=1) / rho[:, 2:4].mean(axis=1)
    assert early_over_late[0] > 1.2 and early_over_late[1] < 0.8
    a, b = _plan(model, tables, email_cost=80.0)
    assert a and b, (a, b)
    assert 3 <= a[0][0] <= 12 and 17 <= b[0][0] <= 26, (a, b)
    same_a, same_b = _plan(_fit(tables, as_of, on=False), tables, email_cost=80.0)
    assert same_a == same_b  # without the estimates: one plan for both


def test_estimates_as_of_a_date_ignore_everything_dated_on_or_after_it(history, model):
    """Leakage: the estimates of invoices due on day D are the same when the payments,
    reminders and invoices dated D or later are removed, or more are added after D."""
    tables, _ = history
    inv = tables["invoices"]
    due = pd.to_datetime(inv["due_date"])
    cut = due[due >= pd.Timestamp(START + dt.timedelta(days=400))].min()  # D
    ids = inv.loc[due == cut, "invoice_id"].to_numpy()
    assert len(ids) >= 1

    def before(df: pd.DataFrame, col: str) -> pd.DataFrame:
        return df[pd.to_datetime(df[col]) < cut]

    keep = set(before(inv, "invoice_date")["invoice_id"]) | set(ids)
    cut_tables = {"customers": tables["customers"],
                  "invoices": inv[inv["invoice_id"].isin(keep)],
                  "payments": before(tables["payments"], "payment_date"),
                  "actions": before(tables["actions"], "action_date")}
    later = pd.DataFrame({"invoice_id": inv["invoice_id"].iloc[:200],
                          "action_date": cut + pd.Timedelta(days=1), "channel": "phone"})
    more = dict(tables, actions=pd.concat([tables["actions"], later], ignore_index=True))
    k = len(model.tree_features_)
    full = model.static_for_invoices(tables, ids)[:, k:]
    assert (np.abs(full - 1.0) > 0.01).any()  # real estimates, not the neutral 1
    for other in (cut_tables, more):
        np.testing.assert_allclose(model.static_for_invoices(other, ids)[:, k:], full,
                                   rtol=1e-9)


def test_a_customer_without_history_keeps_the_segment_response(model, history):
    """No days in the history: factor exactly 1 in every cell."""
    tables, as_of = history
    fresh = dict(tables)
    fresh["customers"] = pd.concat([tables["customers"], pd.DataFrame([{
        "customer_id": "NEW", "jurisdiction": "DE", "customer_type": "b2b",
        "segment": "corporate", "industry": "retail", "customer_since": START}])],
        ignore_index=True)
    fresh["invoices"] = pd.concat([tables["invoices"], pd.DataFrame([{
        "invoice_id": "NEW-1", "customer_id": "NEW", "invoice_date": as_of,
        "due_date": as_of + dt.timedelta(days=30), "amount": AMOUNT, "currency": "EUR"}])],
        ignore_index=True)
    static = model.static_for_invoices(fresh, ["NEW-1"])
    assert (static[0, len(model.tree_features_):] == 1.0).all()


def test_saved_model_keeps_the_customer_response(model, history, tmp_path: Path):
    from engine.models.hazard import HazardModel

    tables, _ = history
    model.save(tmp_path)
    loaded = HazardModel.load(tmp_path)
    assert loaded.response_ == model.response_
    assert loaded.static_features_[-len(RESPONSE_FEATURES):] == list(RESPONSE_FEATURES)
    static = model.static_for_invoices(tables, NEW)
    np.testing.assert_array_equal(loaded.static_for_invoices(tables, NEW), static)
    dyn = {name: np.zeros(2) for name in model.dynamic_features_}
    dyn.update(days_since_last_reminder=np.array([1.0, 1.0]), last_channel=np.ones(2),
               n_email=np.ones(2), days_overdue=np.array([3.0, 3.0]),
               last_reminder_overdue=np.array([2.0, 2.0]))
    np.testing.assert_allclose(loaded.predict_hazard(static, dyn),
                               model.predict_hazard(static, dyn))
    # the estimates act: the responding customer's hazard after an e-mail is the higher
    neutral = static.copy()
    neutral[:, len(model.tree_features_):] = 1.0
    ratio = model.predict_hazard(static, dyn) / model.predict_hazard(neutral, dyn)
    assert ratio[0] > 1.0 > ratio[1]


def test_training_episodes_and_serving_read_the_same_estimates(model, history):
    """The learned environment's invoices (training, planning) and the serving path
    (``static_for_invoices``, what ``dunning recommend``'s planner calls on the store's
    tables) build the same static rows; a model that would need the history but is fitted
    on a bare frame is refused."""
    from engine.errors import DunningError
    from engine.features import build_hazard_frame
    from engine.models.hazard import HazardModel
    from simulations.env.learned import LearnedSource

    tables, as_of = history
    source = LearnedSource.from_tables(tables, model, as_of=as_of, max_invoices=300)
    served = model.static_for_invoices(tables, source.invoice_ids)
    np.testing.assert_array_equal(source.pool.params.static, served)
    assert (served[:, len(model.tree_features_):] != 1.0).any()
    with pytest.raises(DunningError, match="fit_tables"):
        HazardModel(customer_response=True).fit(build_hazard_frame(tables, as_of))


def test_train_model_refuses_the_customer_response_on_a_cluster(tmp_path: Path):
    """Not silently dropped: the distributed trainer has no customer response yet."""
    from typer.testing import CliRunner

    from dunning.cli import app

    res = CliRunner().invoke(app, ["train-model", "--db", str(tmp_path / "none.duckdb"),
                                   "--out", str(tmp_path / "m"), "--customer-response",
                                   "--cluster", "local"])
    assert res.exit_code == 2, res.output
    assert "--customer-response" in res.output and "--cluster" in res.output


def _planted_totals(response_sigma: float, seed: int, n: int = 400,
                    timing: np.ndarray | None = None):
    """Per-customer observed and expected payments per column: every customer pays at its
    own overall rate (lognormal, sd 0.3), and in the reminder windows at its own response
    on top (lognormal with ``response_sigma``); the baseline cell holds 3 expected
    payments, each window cell 0.5-3. The window days once more by send bucket: the
    expected payments split at random, the observed ones by the expected times ``timing``
    ((n, S) each customer's own factor per send bucket; 1 when None)."""
    from engine.models.customer_response import N_CELLS, N_SEND

    rng = np.random.default_rng(seed)
    exp = np.column_stack([np.full(n, 3.0), rng.uniform(0.5, 3.0, (n, N_CELLS - 1))])
    overall = np.exp(0.3 * rng.standard_normal(n))
    response = np.exp(response_sigma * rng.standard_normal(n) - response_sigma ** 2 / 2)
    mult = np.column_stack([np.ones(n), np.repeat(response[:, None], N_CELLS - 1, axis=1)])
    obs = rng.poisson(exp * overall[:, None] * mult).astype(float)
    share = rng.dirichlet(np.full(N_SEND, 2.0), size=n)
    timing = np.ones((n, N_SEND)) if timing is None else timing
    weight = share * timing
    obs_send = np.array([rng.multinomial(int(o), w / w.sum())
                         for o, w in zip(obs[:, 1:].sum(axis=1), weight, strict=True)])
    exp_send = share * exp[:, 1:].sum(axis=1, keepdims=True)
    return (np.column_stack([obs, obs_send]).astype(float), np.column_stack([exp, exp_send]),
            response)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_prior_finds_customers_who_answer_reminders_differently(seed):
    """Most payments fall in the reminder windows, so a customer's overall factor is
    mostly its window factor: measured against it, customers would look alike there. The
    prior strengths are measured against each customer's OTHER cells (with that reference's
    own noise taken out): a planted spread in the response is found, none is found where
    there is none."""
    from engine.models.customer_response import N_CELLS, CustomerResponse

    obs, exp, _ = _planted_totals(0.0, seed)
    assert CustomerResponse.fit(obs, exp).pooled.k_since >= 1000  # no individual response
    obs, exp, response = _planted_totals(0.5, seed)
    fitted = CustomerResponse.fit(obs, exp)
    assert fitted.pooled.k_since < 200
    est = fitted.estimate(obs, exp)
    window_over_baseline = est[:, 1:N_CELLS].mean(axis=1) / est[:, 0]
    assert np.corrcoef(np.log(window_over_baseline), np.log(response))[0, 1] > 0.4


@pytest.mark.parametrize("seed", [0, 1])
def test_the_prior_finds_customers_who_answer_reminders_on_their_own_days(seed):
    """Half the customers answer reminders sent in the first two weeks after due three
    times as well as later ones, half the other way round (the same overall response): the
    send-day prior finds that spread and the estimates tell the two halves apart; where
    every customer answers every send day alike it finds none."""
    from engine.models.customer_response import N_CELLS, N_SEND, CustomerResponse

    obs, exp, _ = _planted_totals(0.3, seed)
    assert CustomerResponse.fit(obs, exp).pooled.k_send >= 1000  # no individual timing
    n = 400
    early = np.arange(n) % 2 == 0
    timing = np.where(early[:, None], [3.0, 3.0, 1.0, 1.0, 1.0], [1.0, 1.0, 3.0, 3.0, 3.0])
    assert timing.shape == (n, N_SEND)
    obs, exp, _ = _planted_totals(0.3, seed, timing=timing)
    fitted = CustomerResponse.fit(obs, exp)
    assert fitted.pooled.k_send < 100
    rho = fitted.estimate(obs, exp)[:, N_CELLS:]
    early_over_late = rho[:, :2].mean(axis=1) / rho[:, 2:].mean(axis=1)
    assert np.median(early_over_late[early]) > 1.5 > 1 > 0.67 > np.median(
        early_over_late[~early])
    assert (early_over_late[early] > early_over_late[~early].max()).mean() > 0.3


def test_a_segment_whose_customers_keep_their_own_days_gets_its_own_prior():
    """Only the corporates (a quarter of the customers) answer reminders on their own days:
    pooled over all segments their spread is averaged away (the pooled send-day prior is
    weak or absent), the corporates' own prior finds it and their estimates tell early from
    late responders apart; the other segments keep a strong prior. A customer without a
    known segment is shrunk by the pooled prior; a saved model reads back the same."""
    from engine.models.customer_response import N_CELLS, CustomerResponse

    n = 400
    corporate = np.arange(n) < 100
    early = np.arange(n) % 2 == 0
    timing = np.where(early[:, None], [4.0, 4.0, 1.0, 1.0, 1.0], [1.0, 1.0, 4.0, 4.0, 4.0])
    timing[~corporate] = 1.0
    obs, exp, _ = _planted_totals(0.3, 0, n=n, timing=timing)
    segment = np.where(corporate, "corporate", np.where(np.arange(n) < 250, "saas", None))
    fitted = CustomerResponse.fit(obs, exp, segment)
    assert set(fitted.by_segment) == {"corporate", "saas"}  # 150 without a segment
    own, pooled = fitted.by_segment["corporate"].k_send, fitted.pooled.k_send
    assert own < 20 and pooled > 3 * own and fitted.by_segment["saas"].k_send >= 1000
    rho = fitted.estimate(obs, exp, segment)[:, N_CELLS:]
    ratio = rho[:, :2].mean(axis=1) / rho[:, 2:].mean(axis=1)
    pooled_rho = fitted.estimate(obs, exp)[:, N_CELLS:]
    pooled_ratio = pooled_rho[:, :2].mean(axis=1) / pooled_rho[:, 2:].mean(axis=1)
    corp_early, corp_late = corporate & early, corporate & ~early
    assert (np.median(ratio[corp_early]) / np.median(ratio[corp_late])
            > np.median(pooled_ratio[corp_early]) / np.median(pooled_ratio[corp_late]) > 1)
    unknown = segment == None  # noqa: E711 (an object array)
    np.testing.assert_array_equal(rho[unknown], pooled_rho[unknown])
    assert CustomerResponse.from_dict(fitted.to_dict()) == fitted
