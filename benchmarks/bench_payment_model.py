"""Speed of the payment and hazard models on a 1M-invoice contract-shaped company.

Targets (2 cores): training on 1M invoices < 300 s; scoring 1M open invoices end to end
(prepare tables + as-of features + calibrated probabilities, no explanations) < 10 s;
explanations for the 10,000 riskiest < 10 s; ``HazardModel.predict_hazard`` >= 200,000
rows/s at 4,000-16,000 rows per call.

``recipe``: what ``dunning train-model`` runs for the payment model
(``engine.models.training.train_artifact`` with :meth:`TrainConfig.recommended`, the hazard
model left out: it is measured under ``hazard``): the held-out evaluation of the three
candidates, their time-series cross-validation, the champion's refit on every row with the
days-late and payment-date regressors; seconds per stage, and scoring 1M invoices with the
shipped model (probabilities; with the payment-date outlook as a second figure).
``train`` / ``score``: the pipeline's LightGBM-only model (``dunning demo``).

Data: ``engine.models.synthetic.make_contract_tables`` (numpy, seconds for 1M invoices)
rather than ``simulations.world`` (same contract layout, but minutes to simulate 1M
invoices day by day). Run: ``.venv/bin/python benchmarks/bench_payment_model.py [N [THREADS]]``
(default 1M invoices, 1 LightGBM thread: on a machine whose 2 cores are shared, OpenMP
threads busy-wait and 2 threads run slower than 1).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_result  # noqa: E402
from engine.features import (  # noqa: E402
    build_hazard_frame,
    build_invoice_features,
    build_training_frame,
    prepare_tables,
)
from engine.models import PaymentModel  # noqa: E402
from engine.models.hazard import HazardModel  # noqa: E402
from engine.models.synthetic import make_contract_tables  # noqa: E402

CPU: dict[str, float] = {}  # label -> CPU seconds of this process (robust on a shared box)


def timed(fn, *args, label: str | None = None, **kwargs):
    """(result, wall seconds); CPU seconds of the call go to ``CPU[label]``."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    if label:
        CPU[label] = time.process_time() - c0
    return out, time.perf_counter() - t0


def main(n_invoices: int = 1_000_000, threads: int = 1) -> None:
    tables, t_gen = timed(make_contract_tables, n_customers=n_invoices // 20,
                          n_invoices=n_invoices, seed=0, days=1095)
    # the store hands dates over as datetime64 columns: do the same (no string parsing)
    import pandas as pd

    for name, cols in (("customers", ["customer_since"]), ("invoices", ["invoice_date",
                       "due_date", "dispute_opened"]), ("payments", ["payment_date"]),
                       ("actions", ["action_date"])):
        for c in cols:
            tables[name][c] = pd.to_datetime(tables[name][c])
    as_of = "2025-12-31"
    figures: dict = {"n_invoices": n_invoices, "threads": threads, "generate_seconds": t_gen,
                     "data": "engine.models.synthetic.make_contract_tables, 3 years",
                     "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    figures["recipe"] = recipe(tables, as_of, threads)
    print(figures["recipe"], flush=True)
    # -- training: prepare + point-in-time snapshot rows + fit (early-stopped, calibrated)
    print(f"generated {n_invoices} invoices in {t_gen:.1f}s", flush=True)
    p, t_prep = timed(prepare_tables, tables, label="train_prepare")
    frame, t_frame = timed(build_training_frame, p, as_of, 30, label="train_features")
    print(f"prepare {t_prep:.1f}s, {len(frame.X)} snapshot rows in {t_frame:.1f}s", flush=True)
    model = PaymentModel(very_late_days=30, n_jobs=threads)
    _, t_fit = timed(model.fit, frame.X, frame.days_late, frame.ref_day, label="train_fit")
    print(f"fit {t_fit:.1f}s", flush=True)
    figures["train"] = {
        "prepare_seconds": t_prep, "features_seconds": t_frame, "fit_seconds": t_fit,
        "total_seconds": t_prep + t_frame + t_fit, "target_seconds": 300,
        "training_rows": int(len(frame.X)), "trees_per_class": model.best_iteration_,
        "includes": "payment classifier + days-late regressor; the CLI also fits the "
                    "evaluation models and the hazard model"}
    print(figures["train"], flush=True)
    del frame
    # -- scoring every invoice as if open at as_of: prepare + features + probabilities
    ids = tables["invoices"]["invoice_id"].to_numpy()

    def score() -> np.ndarray:
        q = prepare_tables(tables)
        X = build_invoice_features(q, as_of, invoice_ids=ids)
        return model.predict_proba(X), X

    (proba, X), t_score = timed(score, label="score")
    figures["score"] = {"rows": int(len(X)), "seconds": t_score, "target_seconds": 10,
                        "rows_per_second": len(X) / t_score}
    print(figures["score"], flush=True)
    model.n_jobs = 2  # the same, with both cores for LightGBM's prediction
    (_, _), t_score2 = timed(score, label="score_2_threads")
    figures["score"]["seconds_2_threads"] = t_score2
    model.n_jobs = threads
    risky = np.argsort(proba[:, 0])[:10_000]
    _, t_exp = timed(model.explain, X.iloc[risky], 3, label="explain")
    model.n_jobs = 2
    _, t_exp2 = timed(model.explain, X.iloc[risky], 3, label="explain_2_threads")
    model.n_jobs = threads
    figures["explain"] = {"rows": 10_000, "seconds": t_exp, "seconds_2_threads": t_exp2,
                          "target_seconds": 10}
    print(figures["explain"], flush=True)
    # -- hazard model: fit on the invoice-day rows, then the simulation's call
    hframe, t_hframe = timed(build_hazard_frame, p, as_of)
    hazard = HazardModel(n_jobs=threads)
    _, t_hfit = timed(hazard.fit, hframe)
    S = hazard.static_matrix(hframe.static)
    rng = np.random.default_rng(0)
    calls = {}
    for n in (4_000, 16_000):
        idx = rng.integers(0, len(S), n)
        st = np.ascontiguousarray(S[idx])
        dyn = {k: v[rng.integers(0, len(v), n)] for k, v in hframe.dynamic.items()}
        hazard.predict_hazard(st, dyn)
        reps = 20
        _, t = timed(lambda st=st, dyn=dyn, reps=reps: [hazard.predict_hazard(st, dyn)
                                             for _ in range(reps)])
        calls[str(n)] = {"seconds_per_call": t / reps, "rows_per_second": n * reps / t}
    figures["cpu_seconds"] = dict(CPU)
    figures["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    figures["note"] = ("wall seconds; the machine may be shared (see load_average_at_end); "
                       "cpu_seconds is this process's CPU time. `score.seconds_2_threads` "
                       "uses both cores for LightGBM's prediction, as the 2-core target allows")
    figures["hazard"] = {"frame_seconds": t_hframe, "fit_seconds": t_hfit,
                         "rows": hazard.n_rows_, "trees": hazard.n_estimators,
                         "leaves": hazard.num_leaves, "predict": calls,
                         "target_rows_per_second": 200_000}
    print(figures["hazard"], flush=True)
    print(write_result("payment_model", figures))


def recipe(tables: dict, as_of: str, threads: int) -> dict:
    """``dunning train-model``'s payment model on ``tables``: wall and CPU seconds in total
    and per stage (from its progress messages), the selection's figures, then scoring every
    invoice as open at ``as_of`` with the shipped model."""
    import tempfile

    from engine.models import PaymentModel as Loaded
    from engine.models.training import TrainConfig, train_artifact

    stages: list[dict] = []
    t0, c0 = time.perf_counter(), time.process_time()

    def progress(msg: str) -> None:
        stages.append({"stage": msg, "wall": time.perf_counter() - t0,
                       "cpu": time.process_time() - c0})
        print(f"  {stages[-1]['wall']:7.1f}s {msg}", flush=True)

    cfg = TrainConfig.recommended(hazard=False, payment_params={"n_jobs": threads})
    with tempfile.TemporaryDirectory() as d:
        res, t_train = timed(train_artifact, tables, d, as_of, cfg, progress,
                             label="recipe_train")
        model = Loaded.load(d)
    ends = [*stages[1:], {"wall": t_train, "cpu": CPU["recipe_train"]}]
    sel, ev = res.card["selection"], res.card["evaluation"]
    out: dict = {
        "seconds": t_train, "cpu_seconds": CPU["recipe_train"], "target_seconds": 300,
        "stages": [{"stage": s["stage"], "seconds": e["wall"] - s["wall"],
                    "cpu_seconds": e["cpu"] - s["cpu"]} for s, e in zip(stages, ends,
                                                                        strict=True)],
        "training_rows": res.card["data_period"]["training_rows"],
        "cv_rows": sel["cv_rows"], "champion": sel["champion"],
        "cv_log_loss": {k: v["log_loss"] for k, v in sel["models"].items()},
        "holdout_at_invoice_date": {k: {m: v["at_invoice_date"][m] for m in
                                        ("log_loss", "accuracy", "macro_f1", "brier")}
                                    for k, v in ev["models"].items()},
    }
    ids = tables["invoices"]["invoice_id"].to_numpy()
    model.n_jobs = 2  # the 2-core target; the 1-thread figure below

    def score(outlook: bool) -> int:
        q = prepare_tables(tables)
        X = build_invoice_features(q, as_of, invoice_ids=ids)
        M = model.encode(X)  # one matrix for the classifier and the quantile regressors
        model.predict_proba(M)
        if outlook:
            model.predict_payment(M)
        return len(X)

    n, t2 = timed(score, False, label="recipe_score_2_threads")
    _, t2o = timed(score, True, label="recipe_score_outlook_2_threads")
    model.n_jobs = 1
    _, t1 = timed(score, False, label="recipe_score")
    out["score"] = {"rows": n, "seconds_2_threads": t2, "seconds": t1,
                    "seconds_2_threads_with_payment_dates": t2o, "target_seconds": 10}
    return out


def hazard_vs_world(n_customers: int = 1500, months: int = 24, days: int = 90) -> dict:
    """Learned hazard vs the ground truth: train on a world company's history before its
    last 6 months, then for the invoices due in those months compare, days 0..``days``
    after due and per segment, the predicted survival with the world's TRUE survival
    (``transition_probs``): (a) no reminders at all (WAIT every day; off the data's policy,
    so the model extrapolates), (b) the data's logging policy on one simulated path (true
    and predicted daily hazards averaged over the invoices still open and not disputed,
    chained; the true one is the world's hazard of an undisputed day), (c) on that
    path, per segment with a payment peak, the mean hazard on the world's peak days over
    the other business days, true and predicted, without (default) and with the calendar
    lift inputs. (a) and (b) also for the option that leaves the disputed days out of the
    rows (``exclude_disputed_days``). (d) A schedule the history never ran
    (:func:`_repeated_calls`): a call every 7 days from day 7 to 70, per segment the mean
    predicted over the mean true hazard after the k-th call, for the default model and the
    option ``reminder_count_input``.
    Writes ``payment_model_hazard_world.json``."""
    from engine.calendar import from_day, weekday
    from engine.features import (
        NO_REMINDER_DAYS,
        REMINDER_CHANNELS,
        calendar_dynamics,
        features_at,
        reminder_dynamics,
    )
    from simulations import world

    company = world.generate_company(world.load_scenario("default"), n_customers, months, 0)
    tables = {k: getattr(company, k) for k in ("customers", "invoices", "payments", "actions")}
    p = prepare_tables(tables)
    as_day = p.last_day + 1
    cut = as_day - 183
    hazard = HazardModel().fit_tables(p, from_day(cut))  # learns only from before the cut
    with_lift = HazardModel(calendar_lift_smoothing=30.0).fit_tables(p, from_day(cut))
    # the option that leaves the disputed days out of the rows (docs/planner.md)
    undisputed = HazardModel(exclude_disputed_days=True).fit_tables(p, from_day(cut))
    rows = np.flatnonzero(p.due_day >= cut)
    params = company.params.take(rows)
    state = world.initial_state(params)
    n = len(rows)
    true_s, pred_s = np.ones((n, days + 1)), np.ones((n, days + 1))
    pred_u = np.ones((n, days + 1))
    S = hazard.static_matrix(features_at(p, rows, p.due_day[rows]))
    jur, region = p.jurisdiction[p.cust[rows]], p.region[p.cust[rows]]
    wait = np.zeros(n, dtype=np.int64)
    none = np.zeros(n)
    for d in range(days):
        probs = world.transition_probs(params, state, wait)
        true_s[:, d + 1] = true_s[:, d] * (1.0 - probs.pay_hazard)
        state, _ = world.advance(params, state, wait, np.ones((3, n)))
        day = p.due_day[rows] + d
        dyn = reminder_dynamics(np.full(n, float(d)), {f"n_{c}": none for c in REMINDER_CHANNELS},
                                np.full(n, float(NO_REMINDER_DAYS)), none,
                                calendar_dynamics(day, jur, region, p.holidays))
        pred_s[:, d + 1] = pred_s[:, d] * (1.0 - hazard.predict_hazard(S, dyn))
        pred_u[:, d + 1] = pred_u[:, d] * (1.0 - undisputed.predict_hazard(S, dyn))
    seg = p.customers["segment"].astype(str).to_numpy()[p.cust[rows]]
    # on-policy: the logging policy of the data, one simulated path; at each day the mean
    # true vs mean predicted hazard over the invoices still open, chained into survival
    rng = np.random.default_rng(1)
    state = world.initial_state(params)
    counts = np.zeros((n, 4))
    last_day = np.full(n, -1)
    last_ch = np.zeros(n)
    h_true, h_pred, h_lift = np.zeros((n, days)), np.zeros((n, days)), np.zeros((n, days))
    h_undisputed = np.zeros((n, days))
    # the world's calendar factor of each day (0 = closed; on Mondays it also carries the
    # weekend's payments, so Mondays are left out of the peak comparison)
    calendar = np.zeros((n, days))
    at_risk = np.zeros((n, days), bool)
    for d in range(days):
        pol = world.logging_policy_probs(params, state)
        a = (rng.random(n)[:, None] > np.cumsum(pol, axis=1)).sum(axis=1).clip(0, 5)
        open_ = ~state.done & (a != 5)
        # today's reminder counts (it acts on today's payment, as in the training rows)
        remind = open_ & (a >= 1) & (a <= 4)
        counts[remind, a[remind] - 1] += 1
        last_day = np.where(remind, d, last_day)
        last_ch = np.where(remind, a, last_ch)
        day = p.due_day[rows] + d
        dyn = reminder_dynamics(np.full(n, float(d)),
                                {f"n_{c}": counts[:, j] for j, c in enumerate(REMINDER_CHANNELS)},
                                np.where(last_day < 0, NO_REMINDER_DAYS, d - last_day), last_ch,
                                calendar_dynamics(day, jur, region, p.holidays))
        # compared with the world's payment hazard of an undisputed day, on the undisputed
        # days: the day a dispute blocks payment is the dispute process's, not the hazard's
        # (the option leaves those days out of its rows: engine.features.in_dispute)
        h_true[:, d] = world.transition_probs(params, state, a).pay_hazard
        h_pred[:, d] = hazard.predict_hazard(S, dyn)
        h_lift[:, d] = with_lift.predict_hazard(S, dyn)
        h_undisputed[:, d] = undisputed.predict_hazard(S, dyn)
        calendar[:, d] = np.where(weekday(day) == 0, np.nan,
                                  world.dynamics.calendar_multiplier(params, state.t))
        at_risk[:, d] = open_ & ~state.disputed
        state, _ = world.step(params, state, a, rng)

    def chained(h: np.ndarray, m: np.ndarray) -> np.ndarray:
        s = np.ones(days + 1)
        for d in range(days):
            r = at_risk[m, d]
            s[d + 1] = s[d] * (1.0 - (h[m, d][r].mean() if r.any() else 0.0))
        return s

    pts = [0, 7, 14, 30, 45, 60, 90]
    out: dict = {"n_invoices_compared": n,
                 "trained_on_history_before": str(from_day(cut)),
                 "no_reminders": {}, "logging_policy": {},
                 "exclude_disputed_days": {"no_reminders": {}, "logging_policy": {}}}
    for name in ["all", *sorted(set(seg))]:
        m = np.ones(n, bool) if name == "all" else seg == name
        for where, key, (t, q) in (
                (out, "no_reminders", (true_s[m].mean(0), pred_s[m].mean(0))),
                (out, "logging_policy", (chained(h_true, m), chained(h_pred, m))),
                (out["exclude_disputed_days"], "no_reminders",
                 (true_s[m].mean(0), pred_u[m].mean(0))),
                (out["exclude_disputed_days"], "logging_policy",
                 (chained(h_true, m), chained(h_undisputed, m)))):
            where[key][name] = {
                "invoices": int(m.sum()), "days": pts, "true": [float(t[d]) for d in pts],
                "predicted": [float(q[d]) for d in pts],
                "max_abs_gap_days_0_90": float(np.abs(t - q).max()),
                "mean_abs_gap_days_0_90": float(np.abs(t - q).mean())}
            print(key, name, {k: v for k, v in where[key][name].items() if "gap" in k},
                  flush=True)
    with_calendar = [s.name for s in company.params.scenario.segments if s.calendar != "none"]
    out["calendar_peak_ratio"] = _calendar_peak_ratio(
        seg, at_risk, calendar, with_calendar,
        {"true": h_true, "predicted": h_pred, "predicted_with_calendar_lift": h_lift})
    print("calendar peak / off-peak hazard", out["calendar_peak_ratio"])
    counted = HazardModel(reminder_count_input=True).fit_tables(p, from_day(cut))
    out["repeated_calls"] = _repeated_calls(
        params, seg, S, {"default": hazard, "reminder_count_input": counted},
        lambda d: calendar_dynamics(p.due_day[rows] + d, jur, region, p.holidays),
        days)
    print("repeated calls, predicted / true hazard", out["repeated_calls"])
    print(write_result("payment_model_hazard_world", out))
    return out


def _repeated_calls(params: Any, seg: np.ndarray, static: np.ndarray,
                    models: dict[str, Any], calendar: Any, days: int) -> dict[str, Any]:
    """A schedule the history never ran: a call every 7 days from day 7 to day 70 (the
    planner's kind of schedule: many calls). One simulated path in the world; per segment
    and number of calls so far k (0..4, "4" = 4 or more, as the planner's states count),
    the mean predicted over the mean true hazard on the days at risk (open, undisputed, no
    complaint yet: the learned environment applies disputes and the complaint slowdown
    itself), with the invoice-days behind each figure."""
    from engine.contract import Action
    from engine.features import NO_REMINDER_DAYS, REMINDER_CHANNELS, reminder_dynamics
    from simulations import world

    n = len(seg)
    rng = np.random.default_rng(2)
    state = world.initial_state(params)
    calls = np.zeros(n)
    last_day = np.full(n, -1)
    names = sorted(set(seg))
    sums = {m: np.zeros((len(names), 5)) for m in ["true", *models]}
    at_risk_days = np.zeros((len(names), 5), dtype=np.int64)
    code = np.searchsorted(names, seg)
    none = np.zeros(n)
    for d in range(days):
        call = int(Action.PHONE) if (7 <= d <= 70 and d % 7 == 0) else int(Action.WAIT)
        a = np.full(n, call)
        open_ = ~state.done
        if call:
            calls += open_
            last_day = np.where(open_, d, last_day)
        dyn = reminder_dynamics(
            np.full(n, float(d)),
            {f"n_{c}": (calls if c == "phone" else none) for c in REMINDER_CHANNELS},
            np.where(last_day < 0, NO_REMINDER_DAYS, d - last_day),
            np.where(last_day < 0, 0.0, float(Action.PHONE)), calendar(d))
        r = open_ & ~state.disputed & ~state.complaint
        k = np.minimum(calls, 4).astype(np.int64)
        np.add.at(at_risk_days, (code[r], k[r]), 1)
        np.add.at(sums["true"], (code[r], k[r]),
                  world.transition_probs(params, state, a).pay_hazard[r])
        for name, model in models.items():
            np.add.at(sums[name], (code[r], k[r]), model.predict_hazard(static, dyn)[r])
        state, _ = world.step(params, state, a, rng)
    out: dict[str, Any] = {"calls": "every 7 days from day 7 to day 70 (phone)",
                           "calls_so_far": [0, 1, 2, 3, "4+"]}
    for i, name in enumerate(names):
        true = np.maximum(sums["true"][i], 1e-12)
        out[name] = {"invoice_days": at_risk_days[i].tolist(),
                     **{f"{m}_over_true": [round(float(x), 3) for x in sums[m][i] / true]
                        for m in models}}
    return out


def _calendar_peak_ratio(seg: np.ndarray, at_risk: np.ndarray, calendar: np.ndarray,
                         segments: list[str], hazards: dict[str, np.ndarray],
                         peak_factor: float = 2.0) -> dict:
    """Per segment of ``segments`` (those with a payment calendar): mean hazard over open
    invoice-days on peak days (world factor >= ``peak_factor``) / on the other business
    days, per series of ``hazards`` ((n, days) each, like ``at_risk`` and ``calendar``;
    NaN calendar days are left out)."""
    out = {}
    for name in segments:
        rows = (seg == name)[:, None] & at_risk
        peak = rows & (calendar >= peak_factor)
        off = rows & (calendar > 0) & (calendar < peak_factor)
        out[name] = {"peak_invoice_days": int(peak.sum()),
                     "off_peak_invoice_days": int(off.sum()),
                     **{k: round(float(h[peak].mean() / h[off].mean()), 2)
                        for k, h in hazards.items()}}
    return out


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "world":
        hazard_vs_world()
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000,
         int(sys.argv[2]) if len(sys.argv) > 2 else 1)
