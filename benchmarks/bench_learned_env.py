"""Does the learned environment rank reminder timing like the ground truth?

For single-reminder schedules ("phone on day d", "email on day d", d = 0..45) and the fixed
14/30/45 schedule, the NPV gain over never reminding (share of the amount, per segment) in
the LEARNED environment (hazard model of a finished ``bench_rl.py`` run, the company's
history before the cut) next to the same gain in the GROUND TRUTH on the held-out invoices.
A learned environment that gets this table wrong cannot teach the RL policy *when* to remind.
Also: repeated calls a week apart (starting day 1 or day 6; what the RL policy does is
"call early, then weekly"), and per segment the Spearman rank agreement of all schedules'
gains between the two environments. Writes ``benchmarks/results/learned_env.json``.
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


def main() -> None:
    from engine.pipeline import evaluation_source, learned_source
    from policies.baselines.schedule import FixedSchedulePolicy, NeverPolicy, parse_schedule
    from simulations.evaluation.harness import evaluate_policies

    args, config, company, cut = finished_rl_run_from_cli(__doc__, invoices=3000)
    sources = {"learned": learned_source(config, config.db_path, config.model_dir, as_of=cut),
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
    summary = {seg: _best_days(g) for seg, g in gains.items()}
    agreement = {seg: _rank_agreement(g) for seg, g in gains.items()}
    for seg, s in summary.items():
        print(seg, s, flush=True)
    print(write_result("learned_env", {
        "run": str(args.run), "cut_date": str(cut), "invoices_per_seed": args.invoices,
        "seeds": [0, 1], "what": "NPV gain over never (share of amount) per segment and "
        "schedule, learned environment vs ground truth", "gain_over_never": gains,
        "best_single_reminder_day": summary,
        "rank_agreement_spearman": agreement}))


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


def _rank_agreement(gains: dict[str, dict[str, float]]) -> float:
    """Spearman correlation of the schedules' gains, learned vs truth (1 = same order)."""
    from scipy.stats import spearmanr

    names = sorted(gains["truth"])
    rho = spearmanr([gains["learned"][n] for n in names], [gains["truth"][n] for n in names])
    return round(float(rho.statistic), 3)


if __name__ == "__main__":
    main()
