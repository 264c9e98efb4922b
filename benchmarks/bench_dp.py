"""How fast are the exact DPs (oracle and planner), and what does grouping their states by
the rules' fact classes save?

On a finished default run (``--run``, default ``dunning-data/bench_rl``; ``dunning-data``
after ``make demo`` works too), solves ``--invoices`` held-out invoices (default 128) of
evaluation seed 0 exactly, under the packaged legal rules, twice each and back to back:

* ``classes``: the mask as the pipeline gives it (``LegalMask`` through ``FixedDateMask``
  for the oracle): the DP states of an invoice-day are grouped by the rules' fact classes
  (``VectorEvaluator.fact_classes``) and each group is judged once;
* ``distinct facts``: the same mask without ``fact_classes``: states are grouped by equal
  fact values only (what the DPs did before the classes).

Both must give the same values and tables (checked here, bit for bit); the ratio of the
times is the saving. Timings are wall seconds on this machine, compared within one run.
Writes ``benchmarks/results/dp.json``.
``python benchmarks/bench_dp.py [--run DIR] [--invoices N]``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_generality import _commit  # noqa: E402
from benchmarks.common import finished_rl_run_from_cli, timed_call, write_result  # noqa: E402


def _oracle(params: Any, scenario: Any, mask: Any, as_of: Any) -> dict[str, Any]:
    from policies.oracle import solve
    from simulations.env.masks import FixedDateMask

    fixed = FixedDateMask(mask, as_of)
    a, t_classes = timed_call(lambda: solve(params, scenario, fixed))
    # a plain function: the same mask without fact_classes
    b, t_plain = timed_call(lambda: solve(params, scenario, lambda facts: fixed(facts)))
    same = bool(np.array_equal(a.value, b.value) and np.array_equal(a.policy, b.policy))
    return {"states": a.space.size, "horizon": a.horizon,
            "seconds_classes": round(t_classes, 2), "seconds_distinct_facts": round(t_plain, 2),
            "speedup": round(t_plain / t_classes, 2), "identical": same}


def _planner(learned: Any, batch: Any, mask: Any) -> dict[str, Any]:
    from policies.planner import LearnedDynamics, PlannerPolicy

    dyn = LearnedDynamics.from_source(learned)
    a = PlannerPolicy(dyn, cache_size=0)
    b = PlannerPolicy(dyn, cache_size=0)
    va, t_classes = timed_call(lambda: a.plan(batch, mask=mask))
    vb, t_plain = timed_call(lambda: b.plan(batch, mask=lambda facts, as_of: mask(facts, as_of)))
    same = bool(np.array_equal(va, vb) and np.array_equal(a.table, b.table))
    return {"states": a.space.size, "horizon": dyn.horizon,
            "seconds_classes": round(t_classes, 2), "seconds_distinct_facts": round(t_plain, 2),
            "speedup": round(t_plain / t_classes, 2), "identical": same}


def main() -> None:
    from dunning.pipeline import evaluation_source, learned_source
    from simulations.env import LegalMask
    from simulations.env.arrays import take_rows

    args, config, company, cut = finished_rl_run_from_cli(__doc__, invoices=128)
    truth = evaluation_source(config, company, config.model_dir, cut, db=config.db_path)
    learned = learned_source(config, config.db_path, config.model_dir, as_of=cut)
    batch = truth.fresh_invoices(args.invoices, np.random.default_rng([0, 0]))
    batch = take_rows(batch, np.arange(min(args.invoices, len(batch.amount))))
    mask = LegalMask()
    oracle = _oracle(truth.params_of(batch), truth.scenario, mask, truth.scenario.start_date)
    planner = _planner(learned, batch, mask)
    print(f"oracle {oracle}\nplanner {planner}")
    print(write_result("dp", {
        "data": {"company": "default (finished pipeline run)", "cut_date": str(cut),
                 "invoices": int(len(batch.amount)), "evaluation_seed": 0},
        **_commit(), "oracle": oracle, "planner": planner,
        "note": "wall seconds for the whole batch (batches of 32), both variants back to "
                "back in one process; the hazard grid (predict_hazard_grid) is on in both"}))


if __name__ == "__main__":
    main()
