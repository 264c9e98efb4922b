"""How much of the oracle's lead comes from what no policy can observe?

The oracle solves each invoice's ground-truth MDP exactly, knowing the customer's latent
reliability (a lognormal hazard multiplier, mean 1). The rest of what it uses (day, reminders
by channel, days since the last one, calendar, complaint, dispute, project milestone) is in
the policy's observation. Here the oracle is solved once with the true reliability and once
with every reliability set to a constant (the mean 1, and 0.8) and played in the ground truth
on the held-out invoices of a finished ``bench_rl.py`` run. If the reliability-blind oracle
keeps the oracle's NPV, the gap RL leaves is not missing information but learning (the
learned environment and the optimiser). Likewise blind to the customer's own reminder
response (``InvoiceParams.response``, all 1 unless the scenario spreads it, e.g.
``individual_response``): what knowing how each customer answers reminders is worth; and
blind to the customer's own reminder timing (``InvoiceParams.timing_shift``, all 0 unless the
scenario spreads it, e.g. ``individual_timing``): what knowing on which days each customer
answers best is worth.
Writes ``benchmarks/results/oracle_information.json`` (``oracle_information_<scenario>.json``
for another company's run).
``python benchmarks/bench_oracle_information.py [--run dunning-data/bench_rl]
[--scenario NAME]``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_generality import _commit  # noqa: E402
from benchmarks.common import finished_rl_run_from_cli, write_result  # noqa: E402
from policies.baselines.oracle import GroundTruthOracle  # noqa: E402

SEEDS = [0, 1, 2, 3, 4]


class ReliabilityBlindOracle(GroundTruthOracle):
    """The oracle solved with every invoice's latent reliability replaced by ``value``."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def solved_params(self, params: Any) -> Any:
        reliability = np.full_like(params.reliability, self.value)
        return dataclasses.replace(params, reliability=reliability)


class ResponseBlindOracle(GroundTruthOracle):
    """The oracle solved as if every customer answered reminders like its segment
    (``response`` 1)."""

    def solved_params(self, params: Any) -> Any:
        return dataclasses.replace(params, response=np.ones_like(params.response))


class TimingBlindOracle(GroundTruthOracle):
    """The oracle solved as if every customer answered reminders on its segment's days
    (``timing_shift`` 0)."""

    def solved_params(self, params: Any) -> Any:
        return dataclasses.replace(params, timing_shift=np.zeros_like(params.timing_shift))


def main() -> None:
    from dunning.pipeline import evaluation_source
    from policies.baselines.schedule import FixedSchedulePolicy
    from simulations.evaluation.harness import evaluate_policies

    args, config, company, cut = finished_rl_run_from_cli(__doc__, invoices=600)
    truth = evaluation_source(config, company, config.model_dir, cut, db=config.db_path)
    policies = {"fixed": FixedSchedulePolicy(), "oracle": GroundTruthOracle(),
                "oracle_reliability_1": ReliabilityBlindOracle(1.0),
                "oracle_reliability_0.8": ReliabilityBlindOracle(0.8),
                "oracle_response_1": ResponseBlindOracle(),
                "oracle_timing_shift_0": TimingBlindOracle()}
    ev = evaluate_policies(policies, config.scenario, n_invoices=args.invoices, seeds=SEEDS,
                           source=truth, reference=None)
    npv = {name: ev.overall[name]["npv"]["mean"] for name in policies}
    gap = {name: round((npv[name] - npv["fixed"]) / (npv["oracle"] - npv["fixed"]), 4)
           for name in policies if name.startswith("oracle_")}
    by_segment = {name: {seg: round(v["npv_share"]["mean"], 4)
                         for seg, v in ev.by_segment[name].items()} for name in policies}
    for name, g in gap.items():
        print(f"{name}: {g:.1%} of the oracle's gain over fixed", flush=True)
    name = "oracle_information" + ("" if args.scenario == "default"
                                   else f"_{Path(args.scenario).stem}")
    print(write_result(name, {
        **_commit(), "run": args.run.name, "scenario": args.scenario, "cut_date": str(cut),
        "invoices_per_seed": args.invoices, "seeds": SEEDS,
        "what": "oracle solved without the latent reliability (set to a constant), or without "
                "the customers' own reminder response (set to 1) or timing (shift 0), played "
                "in the ground truth on held-out invoices: share of the true oracle's NPV "
                "gain over the fixed schedule it keeps",
        "npv": {k: round(v, 1) for k, v in npv.items()},
        "oracle_gap_closed": gap, "npv_share_by_segment": by_segment}))


if __name__ == "__main__":
    main()
