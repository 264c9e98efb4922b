"""Why does the planner hand over to the agency more than the oracle? (issue 25)

On one company of a finished ``bench_generality.py`` run (``--run <out>/<company>`` and its
``--scenario`` file), on the held-out invoices (due on or after the hold-out cut):

* ``survival``: P(still unpaid) at days 30/60/90/119 after due, the learned model (the
  planner's ``LearnedModel``) against the ground truth (the oracle's ``WorldModel``), (a)
  never reminded, (b) from day 40 on in the state "final notice sent, nothing since"
  (where handovers are decided), and the daily hazard late in the horizon;
* ``value_of_waiting``: the learned and the true expected collections of waiting from day
  ``d`` in that final-notice state (no more actions, discounted to day d, share of the
  amount) next to the agency's net value (share of the amount, the same in both);
* ``exact``: the planner's and the oracle's action tables evaluated exactly
  (:func:`policies.common.dp.evaluate_policy`) in the truth, and in the learned model:
  expected payments, handovers, complaints, reminders (all and per channel) per 1,000 and
  NPV per invoice, overall and per segment (complaints per reminder right but reminders
  more than the learned model expects: the planner's invoices stay unpaid longer);
* ``reminder_lift_first_reminder`` (``--reminder-lift-only``, alone): the immediate lift of
  a first reminder by channel, send day and segment, learned against true (and split by
  whether a project milestone is reached, and by whether the history shows the invoice
  paid before its due date), with the mean hazards of waiting and of being reminded it is
  the ratio of;
* ``calibration`` (``--calibration-only``, alone): the hazard model's observed over
  predicted payments on its training rows by 20-day band of days overdue, and
  (``calibration_by_segment``) per segment, band and reminder state on its training rows
  and on the held-out invoices' history (out of time), and (``calibration_customer_split``)
  in time on customers a model fitted on the other half has not seen; with
  ``--planner-hazard JSON`` also of a model fitted with those settings;
* ``planner_hazard_variant`` (``--planner-hazard JSON``, alone): the planner's table in
  the truth when it plans on a hazard model with other settings, against the default;
* ``planner_members`` (``--planner-members N``, alone): the same when it plans on the mean
  of N hazard models of other seeds (the pipeline's planner), against the one model;
* ``planner_dynamics_variant`` (``--planner-dynamics JSON``, alone): the same with other
  ``LearnedDynamics`` settings (logged support: ``min_support``, ``reminder_prior``);
* ``complaint_weights`` (``--complaint-weights 1,8,16``, alone or with
  ``--planner-members N``: the planner on N hazard models): the oracle and the planner with
  each complaint weight, exactly in the truth;
* ``planner_pessimism`` (``--planner-pessimism 0,0.5,1``, alone): the oracle and the
  planner on N hazard models, planning on their mean (k = 0) or below their disagreement
  (mean x exp(-k std of log hazard)), exactly in the truth; with ``--pessimism-on lift``
  only a reminder's effect is shrunk, by the members' disagreement about it;
* ``planner_bootstrap`` (``--planner-bootstrap``, alone): the oracle and the planner on N
  hazard models grown by seed (the pipeline's) and by customer bootstrap, exactly in the
  truth;
* ``planner_truth`` (``--planner-only``, alone): the pipeline's planner (one model) in the
  truth, exact: the figure to compare across commits (e.g. a change to the learned rates);
* ``simulated`` (``--simulate``): both simulated in the truth by the harness, with the
  quartiles of the handover day.

Writes ``benchmarks/results/handover_diagnostic.json`` (``--out`` to change).
``python benchmarks/bench_handover.py --run DIR --scenario FILE [--invoices 200] [--seeds 2]
[--simulate]``
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_result  # noqa: E402
from dunning.pipeline import planner_dynamics  # noqa: E402

DAYS = (30, 60, 90, 119)
FN_FROM = 40  # the final-notice state is entered on this day in (b)


def held_out(config: Any, company: Any, cut: Any, n: int) -> tuple[Any, Any, Any]:
    """``(truth source, learned source, batch)``: the company's ground truth and learned
    environment as of ``cut`` and ``n`` of its held-out invoices (seeded: the same for
    every mode and commit)."""
    from dunning.pipeline import evaluation_source, learned_source

    truth = evaluation_source(config, company, config.model_dir, cut, db=config.db_path)
    learned = learned_source(config, config.db_path, config.model_dir, as_of=cut)
    return truth, learned, truth.fresh_invoices(n, np.random.default_rng([0, 0]))


def _models(config: Any, company: Any, cut: Any, n: int) -> tuple[Any, Any, Any, Any]:
    """``(learned LearnedModel, truth WorldModel, space, learned source)`` on ``n`` held-out
    invoices (seeded)."""
    from policies.common.dp import ReminderGrid, StateSpace
    from policies.oracle.solver import WorldModel
    from policies.planner.model import LearnedModel

    truth, learned, batch = held_out(config, company, cut, n)
    dyn = planner_dynamics(config, learned)
    space = StateSpace.build(dyn.K, dyn.N)
    grid = ReminderGrid.build(space)
    lm = LearnedModel(dyn, batch, None)
    wm = WorldModel(truth.params_of(batch), None)
    lm.setup(space, grid)
    wm.setup(space, grid)
    return lm, wm, space, (learned, truth, batch)


def hazard_tables(lm: Any, wm: Any, space: Any, horizon: int) -> dict[str, np.ndarray]:
    """(B, H) daily hazards of the two models in the start state and the final-notice
    state (k = K, n = N, two emails/letters, last channel final notice, f, no complaint,
    no dispute)."""
    from engine.contract import Action

    fin = int(Action.FINAL_NOTICE)
    s0 = space.start
    sf = int(space.index[space.K, space.N, 2, fin, 1, 0, 0])
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("l0", "w0", "lf", "wf")}
    for t in range(horizon):
        hl, hw = lm.wait_hazard(t), wm.wait_hazard(t)
        out["l0"].append(hl[:, s0])
        out["w0"].append(hw[:, s0])
        out["lf"].append(hl[:, sf])
        out["wf"].append(hw[:, sf])
    return {k: np.stack(v, axis=1) for k, v in out.items()}


def _survival(h: np.ndarray, start: int = 0) -> np.ndarray:
    """(B, H + 1) P(unpaid at the start of day d) from day ``start`` on (1 before)."""
    s = np.ones((h.shape[0], h.shape[1] + 1))
    s[:, start + 1:] = np.cumprod(1 - h[:, start:], axis=1)
    return s


def waiting_value(h: np.ndarray, gamma: float, d: int) -> np.ndarray:
    """(B,) expected share of the amount collected by waiting from day ``d`` to the horizon
    (discounted to day d), hazards ``h`` (B, H), disputes ignored."""
    hh = h[:, d:]
    surv = np.cumprod(np.concatenate([np.ones((len(h), 1)), 1 - hh[:, :-1]], axis=1), axis=1)
    disc = gamma ** np.arange(hh.shape[1])
    return (hh * surv * disc).sum(axis=1)


def diagnose(config: Any, company: Any, cut: Any, n: int, seeds: int,
             partial: Any = None, simulate: bool = False) -> dict[str, Any]:

    lm, wm, space, (learned, truth, batch) = _models(config, company, cut, n)
    H = learned.horizon  # noqa: N806
    h = hazard_tables(lm, wm, space, H)
    out: dict[str, Any] = {"invoices": n}
    s_l0, s_w0 = _survival(h["l0"]), _survival(h["w0"])
    s_lf, s_wf = _survival(h["lf"], FN_FROM), _survival(h["wf"], FN_FROM)
    out["survival_never_reminded"] = {
        str(d): {"learned": float(s_l0[:, d].mean()), "truth": float(s_w0[:, d].mean())}
        for d in DAYS}
    out[f"survival_final_notice_from_day_{FN_FROM}"] = {
        str(d): {"learned": float(s_lf[:, d].mean() / 1.0), "truth": float(s_wf[:, d].mean())}
        for d in DAYS if d > FN_FROM}
    out["mean_hazard_final_notice_state"] = {
        f"{a}-{b}": {"learned": float(h["lf"][:, a:b].mean()),
                     "truth": float(h["wf"][:, a:b].mean())}
        for a, b in ((20, 40), (40, 60), (60, 80), (80, 100), (100, H))}
    agency_share = float(np.mean(lm.agency_value / lm.amount))
    out["agency_net_value_share"] = agency_share
    out["value_of_waiting_final_notice_state"] = {
        str(d): {"learned": float(waiting_value(h["lf"], lm.gamma, d).mean()),
                 "truth": float(waiting_value(h["wf"], wm.gamma, d).mean()),
                 "share_learned_below_agency": float(
                     (waiting_value(h["lf"], lm.gamma, d) < lm.agency_value / lm.amount).mean()),
                 "share_truth_below_agency": float(
                     (waiting_value(h["wf"], wm.gamma, d) < wm.agency_value / wm.amount).mean())}
        for d in (40, 60, 80, 100)}
    if partial is not None:
        partial(out)
    # the policies, exactly (no simulation noise): the planner's and the oracle's action
    # tables evaluated in the truth, the planner's also in the learned model
    out["exact"] = exact_comparison(config, learned, truth, batch)
    if simulate:
        if partial is not None:
            partial(out)
        out["simulated"] = simulated_handover_days(config, learned, truth, n, seeds)
    return out


def simulated_handover_days(config: Any, learned: Any, truth: Any, n: int, seeds: int
                            ) -> dict[str, Any]:
    """Planner and oracle simulated in the truth (the harness, ``seeds`` x ``n`` invoices):
    KPIs and the quartiles of the day of each handover."""
    from policies.baselines.factory import make_policy
    from policies.planner import PlannerPolicy
    from simulations.evaluation.harness import evaluate_policies

    planner = PlannerPolicy(planner_dynamics(config, learned))
    ev = evaluate_policies({"planner": planner, "oracle": make_policy("oracle")[1]},
                           config.scenario, n_invoices=n, seeds=seeds, source=truth,
                           reference=None)
    out: dict[str, Any] = {}
    for name in ev.overall:
        o = ev.overall[name]
        res: dict[str, Any] = {k: round(float(o[k]["mean"]), 3) for k in
                               ("npv", "pay_rate", "complaints_per_1000", "agency_per_1000")}
        ag = np.asarray(ev.outcomes[name]["agency"]).astype(bool)
        days = np.asarray(ev.outcomes[name]["end_day"])[ag]
        res["handover_day_quartiles"] = ([float(x) for x in np.percentile(days, [25, 50, 75])]
                                         if len(days) else None)
        out[name] = res
    return out


def oracle_solution(params: Any) -> Any:
    """The oracle's exact solution for the invoices of ``params`` (the truth), under the
    packaged legal rules as of the scenario's start."""
    from policies.oracle import solve
    from simulations.env.masks import default_mask

    mask = default_mask()
    as_of = np.datetime64(params.scenario.start_date, "D")
    return solve(params, mask_fn=lambda facts: mask(
        facts, np.full(len(facts["days_overdue"]), as_of)))


def oracle_truth(params: Any, batch: Any) -> dict[str, Any]:
    """The oracle's table (:func:`oracle_solution`) evaluated exactly in the truth."""
    from policies.oracle.solver import WorldModel

    sol = oracle_solution(params)
    return _exact(lambda: WorldModel(params, None), sol.space, sol.policy,
                  np.asarray(batch.segment))


def grown_hazard(config: Any, learned: Any, cut: Any, members: int) -> Any:
    """The mean of the company's hazard model and ``members - 1`` more fitted alike with
    other seeds on the history known at ``cut``, as the pipeline's planner plans on."""
    from dunning.pipeline import train_config
    from engine.models.ensemble import HazardEnsemble
    from engine.store import Store

    return HazardEnsemble.grown_from(learned.hazard, Store(config.db_path).tables(cut), cut,
                                     members, train_config(config).hazard_params)


def exact_comparison(config: Any, learned: Any, truth: Any, batch: Any) -> dict[str, Any]:
    """Expected payments, handovers, complaints per 1,000 and NPV per invoice of the
    planner's and the oracle's tables (:func:`policies.common.dp.evaluate_policy`)."""
    from policies.oracle.solver import WorldModel
    from policies.planner import PlannerPolicy
    from policies.planner.model import LearnedModel
    from simulations.env.masks import default_mask

    params = truth.params_of(batch)
    dyn = planner_dynamics(config, learned)
    planner = PlannerPolicy(dyn)
    planner.plan(batch, mask=default_mask())
    p_table = planner.table[planner.row_of]  # (B, H, S15)
    sol = oracle_solution(params)
    w_space, l_space = sol.space, planner.space
    # the planner's table on the truth's state space (days since a reminder capped at its K)
    to_l = l_space.lookup_arrays(np.minimum(w_space.k, l_space.K), w_space.n, w_space.w,
                                 w_space.c, w_space.final_notice, w_space.complaint,
                                 w_space.disputed)
    H = min(p_table.shape[1], sol.policy.shape[1])  # noqa: N806
    tables = {"planner": p_table[:, :H][:, :, to_l], "oracle": sol.policy[:, :H]}
    # the oracle's table on the planner's state space ("15 or more days" read as day 15)
    to_w = w_space.lookup_arrays(np.where(l_space.n > 0, l_space.k, w_space.K), l_space.n,
                                 l_space.w, l_space.c, l_space.final_notice, l_space.complaint,
                                 l_space.disputed)
    seg = np.asarray(batch.segment)
    out: dict[str, Any] = {}
    for name, table in tables.items():
        out[f"{name}_truth"] = _exact(lambda: WorldModel(params, None), w_space, table, seg)
    # valued in the learned model at the complaint cost itself, as in the truth (the
    # planner's complaint weight shapes its plan, not the money it reports)
    at_cost = dataclasses.replace(dyn, complaint_weight=1.0)
    out["planner_learned"] = _exact(lambda: LearnedModel(at_cost, batch, None), l_space,
                                    p_table[:, :H], seg)
    out["oracle_learned"] = _exact(lambda: LearnedModel(at_cost, batch, None), l_space,
                                   sol.policy[:, :H][:, :, to_w], seg)
    return out


def _exact(make: Any, space: Any, table: np.ndarray, seg: np.ndarray) -> dict[str, Any]:
    """Means over the invoices (and per segment) from the due date: NPV and per 1,000
    invoices payments, handovers, complaints, reminders and each channel's sends."""
    from policies.common.dp import COUNTS, evaluate_policy
    from simulations.env.layout import SEGMENT_NAMES

    s0 = space.start
    per = {"npv": evaluate_policy(make(), space, table)[:, s0]}
    for what in COUNTS:
        per[f"{what}_per_1000"] = 1000 * evaluate_policy(make(), space, table,
                                                         count=what)[:, s0]
    res: dict[str, Any] = {k: float(v.mean()) for k, v in per.items()}
    res["by_segment"] = {SEGMENT_NAMES[s]: {k: round(float(v[seg == s].mean()), 2)
                                            for k, v in per.items()}
                         for s in np.unique(seg)}
    return res


def calibration(config: Any, cut: Any) -> dict[str, Any]:
    """Observed over predicted payments of the hazard model on its own training rows (the
    history before ``cut``), per 20-day band of days overdue, all rows and those after a
    final notice: ``{"all"|"final_notice": {"0-20": {"rows", "ratio"}, ...}}``."""
    from engine.features import build_hazard_frame
    from engine.models.hazard import HazardModel
    from engine.store import Store

    hz = HazardModel.load(config.model_dir)
    fr = build_hazard_frame(Store(config.db_path).tables(cut), cut,
                            horizon_days=hz.horizon_days, seed=0)
    pred = hz.predict_hazard(hz.static_matrix(fr.static)[fr.static_index], fr.dynamic)
    day = np.asarray(fr.dynamic["days_overdue"])
    final = np.asarray(fr.dynamic["n_final_notice"]) > 0
    out: dict[str, Any] = {}
    for name, sel in (("all", np.ones(len(day), bool)), ("final_notice", final)):
        bands = {}
        for lo in range(0, hz.horizon_days, 20):
            m = sel & (day >= lo) & (day < lo + 20)
            if m.any():
                obs = float((fr.event[m] * fr.weight[m]).sum())
                exp = float((pred[m] * fr.weight[m]).sum())
                bands[f"{lo}-{lo + 20}"] = {"rows": int(m.sum()), "ratio": obs / exp}
        out[name] = bands
    return out


CALIBRATION_BANDS = (0, 5, 10, 20, 40, 80, 120)  # days overdue, left-closed


def reminder_state(dynamic: Any) -> np.ndarray:
    """(m,) str: each hazard row's reminder state: ``unreminded`` (nothing sent yet),
    ``reminded_recently`` (within the reminder lift's window of the last reminder) or
    ``reminded_earlier``."""
    from engine.models.reminder_lift import WINDOW_DAYS

    since = np.asarray(dynamic["days_since_last_reminder"])
    sent = np.asarray(dynamic["last_reminder_overdue"]) >= 0
    return np.where(~sent, "unreminded",
                    np.where(since < WINDOW_DAYS, "reminded_recently", "reminded_earlier"))


def calibration_by_segment(config: Any, company: Any, cut: Any, hz: Any = None
                           ) -> dict[str, Any]:
    """Observed over predicted payments of the company's hazard model on the history's own
    rows, in time (invoices due before ``cut``, as known at ``cut``: its training rows)
    and out of time (the held-out invoices, due on or after ``cut``, as the company's
    history shows them to its end), per segment, band of days overdue
    (:data:`CALIBRATION_BANDS`) and reminder state (nothing sent yet; a reminder within
    the reminder lift's window; only older ones). What the logging policy did, so no
    truth is needed: a user can run it on a real ledger. ``hz``: the hazard model to check
    (default: the company's).
    ``{"in_time"|"out_of_time": {segment: {state: {band: {"rows", "paid", "expected",
    "ratio"}}}, "by_state": {state: {"paid", "expected"}}, "by_due_month": {months after
    the cut the invoice fell due: {"paid", "expected"}}}}`` (payments weighted by the
    frame's sampling weights; months of 30 days, negative before the cut)."""
    from engine.calendar import to_day
    from engine.features import build_hazard_frame, prepare_tables
    from engine.models.hazard import HazardModel
    from engine.store import Store

    hz = hz if hz is not None else HazardModel.load(config.model_dir)
    out: dict[str, Any] = {}
    for name, as_of, keep in (("in_time", cut, lambda due: due < to_day(cut)),
                              ("out_of_time", company.as_of, lambda due: due >= to_day(cut))):
        tables = prepare_tables(Store(config.db_path).tables(as_of))
        fr = build_hazard_frame(tables, as_of, horizon_days=hz.horizon_days, seed=0)
        pred = hz.predict_hazard(hz.static_matrix(fr.static)[fr.static_index], fr.dynamic)
        day = np.asarray(fr.dynamic["days_overdue"])
        state = reminder_state(fr.dynamic)
        segment = np.asarray(fr.static["segment"].astype(str))[fr.static_index]
        rows = keep(tables.due_day[fr.rows])
        paid_w, pred_w = fr.event * fr.weight, pred * fr.weight
        table: dict[str, Any] = {"by_state": {
            st: {"paid": float(paid_w[rows & (state == st)].sum()),
                 "expected": float(pred_w[rows & (state == st)].sum())}
            for st in ("unreminded", "reminded_recently", "reminded_earlier")}}
        month = (tables.due_day[fr.rows] - to_day(cut)) // 30
        table["by_due_month"] = {
            int(m): {"paid": float(paid_w[rows & (month == m)].sum()),
                     "expected": float(pred_w[rows & (month == m)].sum())}
            for m in np.unique(month[rows])}
        for seg in np.unique(segment[rows]):
            for st in ("unreminded", "reminded_recently", "reminded_earlier"):
                for lo, hi in zip(CALIBRATION_BANDS[:-1], CALIBRATION_BANDS[1:], strict=True):
                    m = rows & (segment == seg) & (state == st) & (day >= lo) & (day < hi)
                    if not m.any():
                        continue
                    paid, expected = float(paid_w[m].sum()), float(pred_w[m].sum())
                    table.setdefault(seg, {}).setdefault(st, {})[f"{lo}-{hi}"] = {
                        "rows": int(m.sum()), "paid": paid, "expected": expected,
                        "ratio": paid / expected if expected > 0 else None}
        out[name] = table
    return out


def company_hazard_params(config: Any) -> dict[str, Any]:
    """The ``HazardModel`` settings the company's run fitted with (without its seed)."""
    from dunning.pipeline import train_config

    return dict(train_config(config).hazard_params)


def variant_hazard(config: Any, cut: Any, settings: dict[str, Any]) -> Any:
    """A hazard model fitted like the company's (its settings and seed) with ``settings``
    on top, on the history known at ``cut``."""
    from engine.models.hazard import HazardModel
    from engine.store import Store

    params = {**company_hazard_params(config), **settings}
    return HazardModel(random_state=config.seed, **params).fit_tables(
        Store(config.db_path).tables(cut), cut)


def calibration_customer_split(config: Any, cut: Any) -> dict[str, Any]:
    """Observed over expected payments by reminder state (as :func:`calibration_by_segment`)
    of a hazard model fitted with the company's settings on the training rows of half of
    the customers (a seeded draw; the other half's rows weighted 0), on the rows of the
    other half, in time (before ``cut``). Near 1 where the out-of-time ratio is not: the
    out-of-time miss is a change over time, not the fit's own optimism on rows it has not
    seen. ``{"held_out_customers"|"fitted_customers": {state: {"paid", "expected"}}}``."""
    from engine.features import prepare_tables
    from engine.models.hazard import HazardModel
    from engine.store import Store

    tables = prepare_tables(Store(config.db_path).tables(cut))
    model = HazardModel(**company_hazard_params(config))
    fr = model.training_frame(tables, cut)
    half = np.random.default_rng([0, 2]).random(int(tables.cust.max()) + 1) < 0.5
    fitted_rows = half[tables.cust[fr.rows]]
    model.fit(dataclasses.replace(fr, weight=fr.weight * fitted_rows))
    pred = model.predict_hazard(model.static_matrix(fr.static)[fr.static_index], fr.dynamic)
    state = reminder_state(fr.dynamic)
    paid_w, pred_w = fr.event * fr.weight, pred * fr.weight
    return {name: {st: {"paid": float(paid_w[rows & (state == st)].sum()),
                        "expected": float(pred_w[rows & (state == st)].sum())}
                   for st in ("unreminded", "reminded_recently", "reminded_earlier")}
            for name, rows in (("held_out_customers", ~fitted_rows),
                               ("fitted_customers", fitted_rows))}


def planner_variant(config: Any, company: Any, cut: Any, n: int,
                    hazard_params: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    """The planner's table in the truth (exact, the same ``n`` held-out invoices) when it
    plans on the company's default hazard model and on one fitted with ``hazard_params``
    (into ``model_dir``) on the same history: what a different learned model would change."""
    from dunning.pipeline import evaluation_source, learned_source
    from engine.models.training import TrainConfig, train_artifact
    from engine.store import Store
    from policies.planner import PlannerPolicy

    train_artifact(Store(config.db_path).tables(cut), model_dir, as_of=cut,
                   cfg=TrainConfig(seed=config.seed, hazard_params=hazard_params))
    out: dict[str, Any] = {"hazard_params": hazard_params}
    for name, mdir in (("default", config.model_dir), ("variant", model_dir)):
        truth = evaluation_source(config, company, mdir, cut, db=config.db_path)
        learned = learned_source(config, config.db_path, mdir, as_of=cut)
        batch = truth.fresh_invoices(n, np.random.default_rng([0, 0]))
        params = truth.params_of(batch)
        out[f"planner_{name}_truth"] = planner_in_truth(
            PlannerPolicy(planner_dynamics(config, learned)), batch, params)
    return out


def planner_in_truth(planner: Any, batch: Any, params: Any) -> dict[str, Any]:
    """The planner's table for ``batch`` evaluated exactly in the truth (``params``), with
    the seconds it took to plan."""
    from policies.common.dp import StateSpace
    from policies.oracle.solver import WorldModel
    from simulations.env.masks import default_mask

    t0 = time.perf_counter()
    planner.plan(batch, mask=default_mask())
    seconds = time.perf_counter() - t0
    w_space = StateSpace.build(params.scenario.max_days_since_reminder,
                               params.scenario.max_reminders)
    ls = planner.space
    to_l = ls.lookup_arrays(np.minimum(w_space.k, ls.K), w_space.n, w_space.w, w_space.c,
                            w_space.final_notice, w_space.complaint, w_space.disputed)
    table = planner.table[planner.row_of][:, :, to_l]
    res = _exact(lambda: WorldModel(params, None), w_space, table, np.asarray(batch.segment))
    return {**res, "plan_seconds": seconds}


def planner_members(config: Any, company: Any, cut: Any, n: int, members: int
                    ) -> dict[str, Any]:
    """The planner's table in the truth (exact, ``n`` held-out invoices) when it plans on
    the company's hazard model alone and on the mean of it and ``members - 1`` more
    fitted with other seeds (:class:`engine.models.ensemble.HazardEnsemble`, as the
    pipeline's planner does)."""
    from policies.planner import PlannerPolicy

    truth, learned, batch = held_out(config, company, cut, n)
    params = truth.params_of(batch)
    single = planner_dynamics(config, learned)
    t0 = time.perf_counter()
    ensemble = grown_hazard(config, learned, cut, members)
    fit_seconds = time.perf_counter() - t0
    return {"members": members, "fit_seconds": fit_seconds,
            "planner_single_truth": planner_in_truth(PlannerPolicy(single), batch, params),
            "planner_ensemble_truth": planner_in_truth(
                PlannerPolicy(dataclasses.replace(single, hazard=ensemble)), batch, params)}


def bootstrap_hazard(config: Any, learned: Any, cut: Any, members: int) -> Any:
    """The mean of the company's hazard model and ``members - 1`` more of the seeds of
    :func:`grown_hazard`, each fitted on a customer bootstrap of the same history: every
    customer's training rows weighted by a Poisson(1) draw of that customer (bagging by
    customer, the unit the history's payments depend on). Seeds alone only vary LightGBM's
    row and feature sampling; a bootstrap also varies which customers a thin cell's
    evidence comes from (an experiment of this benchmark, not a pipeline option)."""
    from engine.features import prepare_tables
    from engine.models.ensemble import HazardEnsemble, member_seeds
    from engine.models.hazard import HazardModel
    from engine.store import Store

    params = company_hazard_params(config)
    tables = prepare_tables(Store(config.db_path).tables(cut))
    fitted = [learned.hazard]
    for seed in member_seeds(learned.hazard.random_state, members):
        model = HazardModel(random_state=seed, **params)
        frame = model.training_frame(tables, cut)
        draws = np.random.default_rng([seed, 1]).poisson(1.0, int(tables.cust.max()) + 1)
        weight = frame.weight * draws[tables.cust[frame.rows]]
        fitted.append(model.fit(dataclasses.replace(frame, weight=weight)))
    return HazardEnsemble(fitted)


def planner_bootstrap(config: Any, company: Any, cut: Any, n: int, members: int
                      ) -> dict[str, Any]:
    """The oracle and the planner on ``members`` hazard models grown by seed (the
    pipeline's) and by customer bootstrap (:func:`bootstrap_hazard`), exactly in the truth
    on ``n`` held-out invoices: does a bagged model overrate fewer of the planner's
    reminders?"""
    from policies.planner import PlannerPolicy

    truth, learned, batch = held_out(config, company, cut, n)
    params = truth.params_of(batch)
    plain = planner_dynamics(config, learned)
    out: dict[str, Any] = {"planner_hazard_members": members,
                           "oracle_truth": oracle_truth(params, batch)}
    for name, grow in (("seeds", grown_hazard), ("bootstrap", bootstrap_hazard)):
        t0 = time.perf_counter()
        hazard = grow(config, learned, cut, members)
        out[f"{name}_fit_seconds"] = time.perf_counter() - t0
        out[f"planner_{name}_truth"] = planner_in_truth(
            PlannerPolicy(dataclasses.replace(plain, hazard=hazard)), batch, params)
    return out


def planner_dynamics_variant(config: Any, company: Any, cut: Any, n: int,
                             settings: dict[str, Any]) -> dict[str, Any]:
    """The planner's table in the truth (exact, ``n`` held-out invoices) with the default
    :class:`~policies.planner.LearnedDynamics` and with ``settings`` (e.g.
    ``{"min_support": 10}``: reminders only where the history logged that many of the
    cell; ``{"reminder_prior": 20}``: a reminder's effect shrunk by its logged support)."""
    from policies.planner import PlannerPolicy

    truth, learned, batch = held_out(config, company, cut, n)
    params = truth.params_of(batch)
    plain = planner_dynamics(config, learned)
    return {"settings": settings,
            "planner_default_truth": planner_in_truth(PlannerPolicy(plain), batch, params),
            "planner_variant_truth": planner_in_truth(
                PlannerPolicy(dataclasses.replace(plain, **settings)), batch, params)}


def complaint_weights(config: Any, company: Any, cut: Any, n: int,
                      weights: list[float], members: int = 1) -> dict[str, Any]:
    """The oracle and the planner with each complaint weight
    (``LearnedDynamics.complaint_weight``) on ``n`` held-out invoices, exactly in the truth
    (NPV at the complaint cost itself): how many complaints each weight saves and what it
    costs. ``members``: the planner plans on the mean of the company's hazard model and
    ``members - 1`` more of other seeds (the pipeline's ``planner_hazard_members``)."""
    from policies.planner import PlannerPolicy

    truth, learned, batch = held_out(config, company, cut, n)
    params = truth.params_of(batch)
    plain = planner_dynamics(config, learned)
    if members > 1:
        plain = dataclasses.replace(plain, hazard=grown_hazard(config, learned, cut, members))
    out: dict[str, Any] = {
        "complaint_cost": plain.costs.complaint_cost, "planner_hazard_members": members,
        "oracle_truth": oracle_truth(params, batch)}
    for w in weights:
        out[f"planner_weight_{w:g}_truth"] = planner_in_truth(
            PlannerPolicy(dataclasses.replace(plain, complaint_weight=w)), batch, params)
    return out


def member_hazards(members: Any, static: np.ndarray, situations: Any, per_invoice: Any
                   ) -> np.ndarray:
    """(members, B, m) each member's ``predict_hazard_grid``."""
    return np.array([m.predict_hazard_grid(static, situations, per_invoice) for m in members])


def pessimistic_hazard(ensemble: Any, k: float) -> Any:
    """``ensemble`` whose hazard is the members' mean times exp(-k x their standard
    deviation of log hazard): lower where the seeds disagree, i.e. where the history is
    thin (an experiment of this benchmark, not a pipeline option; k = 0 is the mean)."""
    from engine.models.ensemble import HazardEnsemble

    class Pessimistic(HazardEnsemble):
        def predict_hazard_grid(self, static: np.ndarray, situations: Any,
                                per_invoice: Any) -> np.ndarray:
            each = member_hazards(self.members, static, situations, per_invoice)
            spread = np.log(np.clip(each, 1e-12, None)).std(axis=0)
            return each.mean(axis=0) * np.exp(-k * spread)

    return Pessimistic(ensemble.members)


def lift_pessimistic_hazard(ensemble: Any, k: float) -> Any:
    """``ensemble`` whose hazard within :data:`policies.planner.model.DECAYED_DAYS` of a
    reminder keeps the members' mean hazard of the same reminders sent long ago, and only
    the reminder's effect above it is shrunk by the members' disagreement about it:
    ``old + exp(-k s) (h - old)``, ``s`` the members' standard deviation of the log lift
    ``log h - log old``. Unlike :func:`pessimistic_hazard` the hazard of waiting is left
    alone (an experiment of this benchmark, not a pipeline option; k = 0 is the mean)."""
    from engine.features import REMINDER_CHANNELS
    from engine.models.ensemble import HazardEnsemble
    from policies.planner.model import DECAYED_DAYS

    class LiftPessimistic(HazardEnsemble):
        def predict_hazard_grid(self, static: np.ndarray, situations: Any,
                                per_invoice: Any) -> np.ndarray:
            each = member_hazards(self.members, static, situations, per_invoice)
            h = each.mean(axis=0)
            since = np.asarray(situations["days_since_last_reminder"])
            sent = sum(np.asarray(situations[f"n_{c}"]) for c in REMINDER_CHANNELS)
            recent = np.flatnonzero((since < DECAYED_DAYS) & (sent > 0))
            if len(recent) == 0:
                return h
            twin = {name: np.asarray(v)[recent] for name, v in situations.items()}
            twin["days_since_last_reminder"] = np.full(len(recent), float(DECAYED_DAYS))
            twin["last_reminder_overdue"] = twin["days_overdue"] - DECAYED_DAYS
            old = np.array([m.predict_hazard_grid(static, twin, per_invoice)
                            for m in self.members])
            log_lift = (np.log(np.clip(each[:, :, recent], 1e-12, None))
                        - np.log(np.clip(old, 1e-12, None)))
            trust = np.exp(-k * log_lift.std(axis=0))
            old_mean = old.mean(axis=0)
            h[:, recent] = old_mean + trust * (h[:, recent] - old_mean)
            return h

    return LiftPessimistic(ensemble.members)


def planner_pessimism(config: Any, company: Any, cut: Any, n: int, members: int,
                      ks: list[float], on: str = "hazard") -> dict[str, Any]:
    """The oracle and the planner on the mean of ``members`` hazard models (k = 0, the
    pipeline's) and on their pessimistic hazard for each k (:func:`pessimistic_hazard`),
    exactly in the truth on ``n`` held-out invoices: does planning below the members'
    disagreement send fewer of the reminders the learned model overvalues?"""
    from policies.planner import PlannerPolicy

    truth, learned, batch = held_out(config, company, cut, n)
    params = truth.params_of(batch)
    plain = planner_dynamics(config, learned)
    ensemble = grown_hazard(config, learned, cut, members)
    out: dict[str, Any] = {"planner_hazard_members": members, "pessimism_on": on,
                           "oracle_truth": oracle_truth(params, batch)}
    shrink = {"hazard": pessimistic_hazard, "lift": lift_pessimistic_hazard}[on]
    for k in ks:
        hazard = ensemble if k == 0 else shrink(ensemble, k)
        out[f"planner_pessimism_{k:g}_truth"] = planner_in_truth(
            PlannerPolicy(dataclasses.replace(plain, hazard=hazard)), batch, params)
    return out


def planner_alone(config: Any, company: Any, cut: Any, n: int) -> dict[str, Any]:
    """The planner's table on the company's learned model (its hazard model and the rates
    estimated from the store now) in the truth, exact, ``n`` held-out invoices."""
    from policies.planner import PlannerPolicy

    truth, learned, batch = held_out(config, company, cut, n)
    return planner_in_truth(PlannerPolicy(planner_dynamics(config, learned)), batch,
                            truth.params_of(batch))


LIFT_DAYS = (2, 5, 10, 15, 20, 30, 45)


def paid_before_due(company: Any, truth: Any, n: int) -> np.ndarray:
    """(n,) bool: which of the ``n`` held-out invoices of :func:`held_out` the company's
    history shows paid before their due date. The evaluation replays every held-out
    invoice from its due date, these too; the hazard model never trained on one (its rows
    start at the due date of invoices still open then)."""
    import pandas as pd

    rows = truth._draw(n, np.random.default_rng([0, 0]))  # the draw of held_out's batch
    ids = pd.Series(truth.invoice_ids[rows])
    first_paid = pd.to_datetime(ids.map(company.payments.groupby("invoice_id")["payment_date"]
                                        .min()))
    due = pd.to_datetime(ids.map(company.invoices.set_index("invoice_id")["due_date"]))
    return (first_paid < due).to_numpy()


def reminder_lift(config: Any, company: Any, cut: Any, n: int) -> dict[str, Any]:
    """The immediate lift of a FIRST reminder sent on day d: the hazard that day after the
    reminder over the hazard of waiting (both from the start state), learned model against
    the truth, mean over the held-out invoices of each segment that can pay that day, per
    channel and day. Invoices paid after a project milestone are also split by whether the
    milestone is reached on day d (the world wastes reminders before it)."""
    from engine.contract import Action
    from simulations.env.layout import SEGMENT_NAMES

    lm, wm, space, (_, truth, batch) = _models(config, company, cut, n)
    seg = np.asarray(batch.segment)
    reached = np.asarray(truth.params_of(batch).milestone_offset)[:, None] <= np.asarray(
        LIFT_DAYS)[None]  # (B, days)
    early = paid_before_due(company, truth, n)
    out: dict[str, Any] = {}
    for a in (Action.EMAIL, Action.LETTER, Action.PHONE):
        for j, d in enumerate(LIFT_DAYS):
            lw, ww = lm.wait_hazard(d)[:, space.start], wm.wait_hazard(d)[:, space.start]
            # grid row 0: the start state (nothing sent); today's complaint flag 0
            lr = np.asarray(lm.reminder_hazard(d, int(a)))[:, 0, 0, 0]
            wr = np.asarray(wm.reminder_hazard(d, int(a)))[:, 0, 0, 0]
            cell: dict[str, Any] = {}
            for s, name in enumerate(SEGMENT_NAMES[:-1]):
                for part, rows in (("all", seg == s), ("milestone_reached", (seg == s)
                                                        & reached[:, j]),
                                   ("before_milestone", (seg == s) & ~reached[:, j]),
                                   ("open_at_due", (seg == s) & ~early),
                                   ("paid_before_due", (seg == s) & early)):
                    ok = rows & (lw > 0) & (ww > 0)
                    milestone_part = part in ("milestone_reached", "before_milestone")
                    if ok.sum() >= 5 and not (milestone_part and reached[seg == s, j].all()):
                        cell.setdefault(name, {})[part] = {
                            "learned": float(np.mean(lr[ok] / lw[ok])),
                            "truth": float(np.mean(wr[ok] / ww[ok])), "invoices": int(ok.sum()),
                            # the two hazards the lift is made of, means over the invoices
                            "waiting_learned": float(lw[ok].mean()),
                            "waiting_truth": float(ww[ok].mean()),
                            "reminded_learned": float(lr[ok].mean()),
                            "reminded_truth": float(wr[ok].mean())}
            out[f"{a.name.lower()}_day_{d}"] = cell
    return out


def main(argv: list[str] | None = None) -> None:
    from benchmarks.bench_generality import company_config
    from dunning.pipeline import cut_date, generate_step

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--scenario", type=Path, required=True)
    ap.add_argument("--invoices", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", default="handover_diagnostic")
    ap.add_argument("--reminder-lift-only", action="store_true",
                    help="only the learned vs true lift of a first reminder by channel, "
                         "send day and segment")
    ap.add_argument("--calibration-only", action="store_true",
                    help="only the hazard model's calibration on its training rows")
    ap.add_argument("--planner-hazard", default=None,
                    help='only: the planner on a hazard model with these HazardModel '
                         'settings (JSON, e.g. \'{"calendar_lift_smoothing": 30}\') against '
                         'the default one, exactly in the truth')
    ap.add_argument("--planner-members", type=int, default=None,
                    help="only: the planner on the mean of this many hazard models of other "
                         "seeds against the company's one model, exactly in the truth (with "
                         "--complaint-weights: the weights' planner on this many)")
    ap.add_argument("--planner-dynamics", default=None,
                    help='only: the planner with these LearnedDynamics settings (JSON, e.g. '
                         '\'{"reminder_prior": 20}\') against the default ones, exactly in '
                         'the truth')
    ap.add_argument("--complaint-weights", default=None,
                    help="only: the oracle and the planner with each of these complaint "
                         "weights (comma-separated, e.g. 1,4,8,16,32), exactly in the truth")
    ap.add_argument("--planner-pessimism", default=None,
                    help="only: the planner on --planner-members models (default 5) with "
                         "each of these pessimism factors k (comma-separated, e.g. 0,0.5,1), "
                         "exactly in the truth")
    ap.add_argument("--pessimism-on", choices=("hazard", "lift"), default="hazard",
                    help="with --planner-pessimism: shrink the hazard itself (default) or "
                         "only a reminder's effect above the hazard of the same reminders "
                         "sent long ago")
    ap.add_argument("--planner-bootstrap", action="store_true",
                    help="only: the planner on --planner-members models (default 5) grown "
                         "by seed and by customer bootstrap, exactly in the truth")
    ap.add_argument("--planner-only", action="store_true",
                    help="only: the planner on the company's learned model, exactly in the "
                         "truth")
    ap.add_argument("--simulate", action="store_true",
                    help="also simulate planner and oracle in the truth (handover days)")
    args = ap.parse_args(argv)
    config = company_config(args.scenario, args.run, tiny=False)
    company = generate_step(config, scenario=config.scenario)
    cut = cut_date(config, company)
    from benchmarks.bench_generality import _commit

    head = {"company": args.scenario.stem, "cut_date": str(cut),
            "invoices": args.invoices, "seeds": args.seeds, **_commit()}
    if args.calibration_only:
        res = {"calibration": calibration(config, cut),
               "calibration_by_segment": calibration_by_segment(config, company, cut),
               "calibration_customer_split": calibration_customer_split(config, cut)}
        if args.planner_hazard:  # and of a model with other settings, fitted alike
            import json

            res["variant"] = {"hazard_params": json.loads(args.planner_hazard),
                              "calibration_by_segment": calibration_by_segment(
                                  config, company, cut,
                                  variant_hazard(config, cut, json.loads(args.planner_hazard)))}
        print(write_result(args.out, {**head, **res}))
        return
    if args.planner_hazard:
        import json

        res = planner_variant(config, company, cut, args.invoices,
                              json.loads(args.planner_hazard), args.run / "model_variant")
        print(write_result(args.out, {**head, "planner_hazard_variant": res}))
        return
    if args.planner_pessimism:
        ks = [float(k) for k in args.planner_pessimism.split(",")]
        print(write_result(args.out, {**head, "planner_pessimism": planner_pessimism(
            config, company, cut, args.invoices, args.planner_members or 5, ks,
            args.pessimism_on)}))
        return
    if args.planner_bootstrap:
        print(write_result(args.out, {**head, "planner_bootstrap": planner_bootstrap(
            config, company, cut, args.invoices, args.planner_members or 5)}))
        return
    if args.planner_members and not args.complaint_weights:
        res = planner_members(config, company, cut, args.invoices, args.planner_members)
        print(write_result(args.out, {**head, "planner_members": res}))
        return
    if args.planner_dynamics:
        import json

        res = planner_dynamics_variant(config, company, cut, args.invoices,
                                       json.loads(args.planner_dynamics))
        print(write_result(args.out, {**head, "planner_dynamics_variant": res}))
        return
    if args.complaint_weights:
        weights = [float(w) for w in args.complaint_weights.split(",")]
        print(write_result(args.out, {**head, "complaint_weights": complaint_weights(
            config, company, cut, args.invoices, weights, args.planner_members or 1)}))
        return
    if args.planner_only:
        print(write_result(args.out, {**head, "planner_truth": planner_alone(
            config, company, cut, args.invoices)}))
        return
    if args.reminder_lift_only:
        res = reminder_lift(config, company, cut, args.invoices)
        print(write_result(args.out, {**head, "reminder_lift_first_reminder": res}))
        return
    figures = diagnose(config, company, cut, args.invoices, args.seeds,
                       partial=lambda f: write_result(args.out, {**head, **f}),
                       simulate=args.simulate)
    figures.update(head)
    print(write_result(args.out, figures))


if __name__ == "__main__":
    main()
