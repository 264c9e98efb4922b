"""Does the learned environment rank reminder timing like the ground truth?

For single-reminder schedules ("phone on day d", "email on day d", d = 0..45) and the fixed
14/30/45 schedule, the NPV gain over never reminding (share of the amount, per segment) in
the LEARNED environment (hazard model of a finished ``bench_rl.py`` run, the company's
history before the cut) next to the same gain in the GROUND TRUTH on the held-out invoices.
A learned environment that gets this table wrong cannot teach the RL policy *when* to remind.
Also: repeated calls a week apart (starting day 1 or day 6; what the RL policy does is
"call early, then weekly"), and per segment the Spearman rank agreement of all schedules'
gains between the two environments, and the mean absolute error of the learned gains.
The same for a hazard model without the reminder lift (``engine.models.reminder_lift``, on
by default), the trees alone, fitted on the same history into ``<run>/model_trees_only``.
Writes
``benchmarks/results/learned_env.json``.
``python benchmarks/bench_learned_env.py [--run dunning-data/bench_rl]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import finished_rl_run_from_cli, write_result  # noqa: E402

DAYS = (0, 3, 6, 9, 14, 21, 30, 45)
CHANNELS = ("phone", "email")
REPEATED = {"phone_days_1_8": "1:phone,8:phone", "phone_days_6_13": "6:phone,13:phone",
            "phone_days_1_8_15": "1:phone,8:phone,15:phone",
            "phone_days_6_13_20": "6:phone,13:phone,20:phone",
            "phone_days_6_20": "6:phone,20:phone"}


TREES_ONLY = {"reminder_lift_smoothing": None}


def main() -> None:
    from dunning.pipeline import evaluation_source, learned_source
    from engine.models.training import TrainConfig, train_artifact
    from engine.store import Store
    from policies.baselines.schedule import FixedSchedulePolicy, NeverPolicy, parse_schedule
    from simulations.evaluation.harness import evaluate_policies

    args, config, company, cut = finished_rl_run_from_cli(__doc__, invoices=3000)
    trees_dir = args.run / "model_trees_only"
    train_artifact(Store(config.db_path).tables(cut), trees_dir, as_of=cut,
                   cfg=TrainConfig(hazard_params=TREES_ONLY))
    sources = {"learned": learned_source(config, config.db_path, config.model_dir, as_of=cut),
               "learned_trees_only": learned_source(config, config.db_path, trees_dir,
                                                    as_of=cut),
               "truth": evaluation_source(config, company, config.model_dir, cut,
                                          db=config.db_path)}
    policies = {"never": NeverPolicy(), "fixed": FixedSchedulePolicy()}
    for ch in CHANNELS:
        for d in DAYS:
            policies[f"{ch}_day{d}"] = FixedSchedulePolicy(parse_schedule(f"{d}:{ch}"))
    for name, schedule in REPEATED.items():
        policies[name] = FixedSchedulePolicy(parse_schedule(schedule))
    gains: dict[str, dict[str, dict[str, float]]] = {}
    for name, source in sources.items():
        ev = evaluate_policies(policies, config.scenario, n_invoices=args.invoices,
                               seeds=[0, 1], source=source, reference=None)
        for seg, by_policy in _gains(ev, policies).items():
            gains.setdefault(seg, {})[name] = by_policy
    effect = {name: _reminder_effect(src, "corporate") for name, src in sources.items()
              if name != "truth"}
    summary = {seg: _best_days(g) for seg, g in gains.items()}
    learned = ("learned", "learned_trees_only")
    agreement = {seg: {src: _rank_agreement(g, src) for src in learned}
                 for seg, g in gains.items()}
    error = {seg: {src: _mean_abs_error(g, src) for src in learned} for seg, g in gains.items()}
    for seg, s in summary.items():
        print(seg, s, agreement[seg], error[seg], flush=True)
    print(write_result("learned_env", {
        "run": str(args.run), "cut_date": str(cut), "invoices_per_seed": args.invoices,
        "seeds": [0, 1], "what": "NPV gain over never (share of amount) per segment and "
        "schedule, learned environment (default hazard model with the reminder lift, and "
        f"the trees alone {TREES_ONLY}) vs ground truth", "gain_over_never": gains,
        "best_single_reminder_day": summary,
        "rank_agreement_spearman": agreement, "mean_abs_error": error,
        "corporate_reminder_effect": {
            "what": "mean hazard of the 7 days after a first reminder sent on day d, over the "
                    "unreminded hazard of the same days (Tuesday, mid-month, 400 corporate "
                    "invoices of the pool); second_call_day9: a call on day 9 that is the "
                    "second reminder over the same call as the first",
            **effect,
            "history_7_day_pay_rate_after_first_reminder": _history_pay_rates(config, cut)}}))


EFFECT_DAYS = (1, 3, 6, 9, 14, 21)


def _reminder_effect(source: object, segment: str) -> dict[str, dict[str, float]]:
    """The learned hazard's lift after one reminder by send day (see the JSON's "what")."""
    import numpy as np

    from engine.contract import Action
    from engine.features import NO_REMINDER_DAYS, REMINDER_CHANNELS, reminder_dynamics
    from simulations.env.layout import SEGMENT_NAMES

    pool, hazard = source.pool, source.hazard
    rows = np.flatnonzero(pool.segment == SEGMENT_NAMES.index(segment))[:400]
    static, n = pool.params.static[rows], len(rows)
    calendar = {"weekday": np.ones(n), "days_to_month_end": np.full(n, 15.0),
                "days_to_quarter_end": np.full(n, 45.0), "is_holiday": np.zeros(n),
                "month_phase": np.full(n, 15.0), "quarter_phase": np.full(n, 45.0)}

    def week(send: int, counts: dict[str, int], channel: int, reminded: bool) -> float:
        total = 0.0
        for j in range(7):
            dyn = reminder_dynamics(
                np.full(n, float(send + j)),
                {f"n_{c}": np.full(n, float(counts.get(c, 0))) for c in REMINDER_CHANNELS},
                np.full(n, float(j if reminded else NO_REMINDER_DAYS)),
                np.full(n, float(channel if reminded else 0)), calendar)
            total += float(hazard.predict_hazard(static, dyn).mean())
        return total

    out: dict[str, dict[str, float]] = {}
    for name in ("email", "phone"):
        code = int(Action[name.upper()])
        out[name] = {str(d): round(week(d, {name: 1}, code, True) / week(d, {}, 0, False), 2)
                     for d in EFFECT_DAYS}
    phone = int(Action.PHONE)
    out["second_call_day9"] = round(week(9, {"phone": 2}, phone, True)
                                    / week(9, {"phone": 1}, phone, True), 3)
    return out


def _history_pay_rates(config: object, cut: object) -> dict[str, dict[str, list]]:
    """Corporates' share paid within 7 days of their first reminder, by channel and send
    day (0-4, 5-10, 11-20 after due): ``[rate, reminders]`` from the store as of ``cut``."""
    import pandas as pd

    from engine.store import Store

    t = Store(config.db_path).tables(cut)
    inv = t["invoices"].merge(t["customers"][["customer_id", "segment"]], on="customer_id")
    inv = inv.join(t["payments"].groupby("invoice_id")["payment_date"].max().rename("paid"),
                   on="invoice_id")
    first = t["actions"].sort_values("action_date").groupby("invoice_id").head(1)
    a = first.merge(inv[inv.segment == "corporate"], on="invoice_id")
    day = (pd.to_datetime(a.action_date) - pd.to_datetime(a.due_date)).dt.days
    after = (pd.to_datetime(a.paid) - pd.to_datetime(a.action_date)).dt.days
    a = a.assign(paid7=(after >= 0) & (after < 7), window=pd.cut(day, [-1, 4, 10, 20]))
    out: dict[str, dict[str, list]] = {}
    for (channel, window), g in a.dropna(subset=["window"]).groupby(["channel", "window"],
                                                                    observed=True):
        if channel in ("email", "letter", "phone"):
            out.setdefault(channel, {})[f"{window.left + 1:.0f}-{window.right:.0f}"] = [
                round(float(g.paid7.mean()), 3), int(len(g))]
    return out


def _gains(ev: object, policies: dict) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for seg, never in ev.by_segment["never"].items():
        base = never["npv_share"]["mean"]
        out[seg] = {p: round(ev.by_segment[p][seg]["npv_share"]["mean"] - base, 4)
                    for p in policies if p != "never"}
    return out


def _best_days(gains: dict[str, dict[str, float]]) -> dict[str, dict[str, int]]:
    """Day of the best single reminder per channel, learned vs truth."""
    out: dict[str, dict[str, int]] = {}
    for ch in CHANNELS:
        out[ch] = {src: max(DAYS, key=lambda d, g=g: g[f"{ch}_day{d}"])
                   for src, g in gains.items()}
    return out


def _rank_agreement(gains: dict[str, dict[str, float]], learned: str) -> float:
    """Spearman correlation of the schedules' gains, ``learned`` vs truth (1 = same order)."""
    from scipy.stats import spearmanr

    names = sorted(gains["truth"])
    rho = spearmanr([gains[learned][n] for n in names], [gains["truth"][n] for n in names])
    return round(float(rho.statistic), 3)


def _mean_abs_error(gains: dict[str, dict[str, float]], learned: str) -> float:
    """Mean |learned - truth| of the schedules' gains (share of the amount)."""
    names = sorted(gains["truth"])
    return round(sum(abs(gains[learned][n] - gains["truth"][n]) for n in names) / len(names), 4)


if __name__ == "__main__":
    main()
