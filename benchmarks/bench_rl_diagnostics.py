"""Where does the RL policy lose to the oracle, and is it the learned environment or PPO?

On a finished ``bench_rl.py`` run:

1. **Gap by segment** (ground truth, held-out invoices): per segment, the share of the
   fixed-to-oracle NPV gap the RL policy closes, and the oracle's lead over RL per invoice.
2. **Probes**: the trained RL policy with one behaviour changed by hand, valued in the ground
   truth *and* in the learned environment on the same seeds. A probe that gains in both
   worlds is an improvement PPO could have found in its own training environment (an
   optimiser shortfall); one that gains in the truth but not in the learned environment is
   invisible to any policy trained there (a learned-environment shortfall).

   - ``calendar_first_reminder_<segment>``: the first reminder of a start-up (SaaS) invoice
     waits for the days around month end (quarter end), when the world's start-ups (SaaS
     firms) pay, and is then a call; before day 75 only.
   - ``agency_chain_from_day_80``: from day 80 an unpaid invoice the policy would leave
     alone gets the next legal step toward an agency handover (agency, else final notice,
     else an email reminder), so fewer invoices are written off at the horizon.

The probes are diagnostics, not policies to ship: they use knowledge of the generated
world's calendar. Writes ``benchmarks/results/rl_diagnostics.json``.
``python benchmarks/bench_rl_diagnostics.py [--run dunning-data/bench_rl]``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import finished_rl_run_from_cli, write_result  # noqa: E402
from engine.contract import Action, is_reminder  # noqa: E402
from simulations.env.layout import LAYOUT, SEGMENT_NAMES  # noqa: E402
from simulations.policy import Policy  # noqa: E402

SEEDS = [0, 1]
LAST_GATED_DAY = 75  # after this the probe no longer holds a first reminder back


class CalendarFirstReminder(Policy):
    """``base`` with the first reminder of ``segment`` invoices moved to the pay window.

    Window (observation days, 0 = last day of the period): month end for start-ups (last
    3-5 days or the first 2 of a month), quarter end for SaaS (last 4 days of the quarter or
    the first ~8 of the next). Outside it a first reminder becomes WAIT; inside it a WAIT
    becomes a call when the rules allow one.
    """

    def __init__(self, base: Policy, segment: str) -> None:
        self.base = base
        self.segment = SEGMENT_NAMES.index(segment)
        self.name = f"calendar_first_reminder_{segment}"

    def _in_window(self, obs: np.ndarray) -> np.ndarray:
        if SEGMENT_NAMES[self.segment] == "saas":
            q = obs[:, LAYOUT["days_to_quarter_end"]]
            return (q <= 3) | (q >= 84)
        m = obs[:, LAYOUT["days_to_month_end"]]
        return (m <= 4) | (m >= 29)

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        actions = self.base.act(observations, masks).copy()
        first = ((LAYOUT.segment_codes(observations) == self.segment)
                 & (LAYOUT.reminders_sent(observations) == 0)
                 & (observations[:, LAYOUT["days_overdue"]] < LAST_GATED_DAY))
        window = self._in_window(observations)
        actions[first & ~window & is_reminder(actions)] = Action.WAIT
        call = first & window & (actions == Action.WAIT) & masks[:, Action.PHONE]
        actions[call] = Action.PHONE
        return actions


class AgencyChain(Policy):
    """``base``, but from ``start_day`` a WAIT becomes the next legal step to the agency."""

    def __init__(self, base: Policy, start_day: int) -> None:
        self.base = base
        self.start_day = start_day
        self.name = f"agency_chain_from_day_{start_day}"

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        actions = self.base.act(observations, masks).copy()
        late = observations[:, LAYOUT["days_overdue"]] >= self.start_day
        for step in (Action.AGENCY, Action.FINAL_NOTICE, Action.EMAIL):
            pick = late & (actions == Action.WAIT) & masks[:, step]
            actions[pick] = step
        return actions


def _shares(ev: Any, name: str) -> dict[str, Any]:
    return {"overall": round(ev.overall[name]["npv_share"]["mean"], 4),
            "by_segment": {s: round(v["npv_share"]["mean"], 4)
                           for s, v in ev.by_segment[name].items()}}


def _gap_by_segment(ev: Any) -> dict[str, Any]:
    out = {}
    for seg in ev.by_segment["rl"]:
        npv = {p: ev.by_segment[p][seg]["npv"]["mean"] for p in ("fixed", "rl", "oracle")}
        gain = npv["oracle"] - npv["fixed"]
        out[seg] = {"oracle_gap_closed": round((npv["rl"] - npv["fixed"]) / gain, 3)
                    if gain > 0 else None,
                    "oracle_lead_per_invoice": round(npv["oracle"] - npv["rl"], 1)}
    return out


def main() -> None:
    from dunning.pipeline import evaluation_source, learned_source
    from policies.baselines.oracle import GroundTruthOracle
    from policies.baselines.schedule import FixedSchedulePolicy
    from policies.rl import RLPolicy
    from simulations.evaluation.harness import evaluate_policies

    args, config, company, cut = finished_rl_run_from_cli(__doc__, invoices=1500)
    rl = RLPolicy.load(config.policy_dir)
    probes: dict[str, Policy] = {p.name: p for p in (
        CalendarFirstReminder(rl, "startup"), CalendarFirstReminder(rl, "saas"),
        AgencyChain(rl, 80))}
    worlds = {
        "truth": evaluation_source(config, company, config.model_dir, cut, db=config.db_path),
        "learned": learned_source(config, config.db_path, config.model_dir, as_of=cut),
    }
    result: dict[str, Any] = {"probes": {name: {} for name in probes}}
    for world, source in worlds.items():
        policies: dict[str, Policy] = {"rl": rl, **probes}
        if world == "truth":  # the gap by segment needs both ends, only in the truth
            policies |= {"fixed": FixedSchedulePolicy(), "oracle": GroundTruthOracle()}
        ev = evaluate_policies(policies, config.scenario, n_invoices=args.invoices,
                               seeds=SEEDS, source=source, reference=None)
        base = _shares(ev, "rl")
        result[f"rl_npv_share_{world}"] = base
        for name in probes:
            probe = _shares(ev, name)
            result["probes"][name][f"gain_{world}"] = {
                "overall": round(probe["overall"] - base["overall"], 4),
                "by_segment": {s: round(v - base["by_segment"][s], 4)
                               for s, v in probe["by_segment"].items()}}
        if world == "truth":
            result["gap_by_segment"] = _gap_by_segment(ev)
            result["oracle_npv_share_truth"] = _shares(ev, "oracle")
    write_result("rl_diagnostics", {
        "data": {"run": str(args.run), "cut_date": cut.isoformat(),
                 "invoices_per_seed": args.invoices, "seeds": SEEDS,
                 "policy": str(config.policy_dir)},
        **result})
    for name, probe in result["probes"].items():
        print(f"{name}: gain in truth {probe['gain_truth']['overall']:+.4f}, "
              f"in learned env {probe['gain_learned']['overall']:+.4f} (NPV share)")


if __name__ == "__main__":
    main()
