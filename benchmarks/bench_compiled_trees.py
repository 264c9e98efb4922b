"""How much faster does the planner plan with the hazard model's trees compiled (lleaves),
with one hazard model and with the mean of several, and are its plans the same?

On a finished default run (``--run``, default ``dunning-data/bench_rl``; ``dunning-data``
after ``make demo`` works too), ``--invoices`` held-out invoices (default 128) of evaluation
seed 0 are planned under the packaged legal rules:

* ``predict``: every booster input row the planner asks the run's hazard model for while
  planning the first 32 invoices, predicted by LightGBM and by the compiled trees (µs per
  row, one thread each; the two must give the same bits);
* ``plan``: the whole batch planned with one model and with the mean of ``--members``
  (default 5; the run's model and members fitted alike as the pipeline does), each with
  LightGBM's predict (``DUNNING_COMPILED_TREES=0``) and with the compiled trees, back to back
  in one process; the compiled trees' compile time is inside its planning time. The
  values and tables must be the same bit for bit (checked here).

Timings are wall seconds on this machine, compared within one run. Writes
``benchmarks/results/compiled_trees.json``.
``python benchmarks/bench_compiled_trees.py [--run DIR] [--invoices N] [--members M]``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_generality import _commit  # noqa: E402
from benchmarks.common import finished_rl_run_from_cli, timed_call, write_result  # noqa: E402


def _booster_rows(dyn: Any, batch: Any, mask: Any) -> np.ndarray:
    """Every booster input row one planning of ``batch`` asks ``dyn.hazard`` for."""
    from policies.planner import PlannerPolicy

    hazard, rows = dyn.hazard, []
    trees = hazard._trees
    hazard._trees = lambda M: (rows.append(M.copy()), trees(M))[1]  # noqa: N803
    try:
        PlannerPolicy(dyn, cache_size=0).plan(batch, mask=mask)
    finally:
        del hazard._trees
    return np.vstack(rows)


def _predict(hazard: Any, rows: np.ndarray) -> dict[str, Any]:
    from engine.models.compiled import BoosterPredictor

    compiled = BoosterPredictor(hazard.booster_, compile_after_rows=0)
    _, t_compile = timed_call(lambda: compiled.predict(rows[:1]))
    assert compiled.compiled_, "lleaves could not compile the trees (see the warning)"
    ref, t_lgb = timed_call(lambda: hazard.booster_.predict(rows, num_threads=1))
    out, t_compiled = timed_call(lambda: compiled.predict(rows))
    return {"rows": int(len(rows)), "trees": int(hazard.booster_.num_trees()),
            "compile_seconds": round(t_compile, 2),
            "lightgbm_us_per_row": round(1e6 * t_lgb / len(rows), 3),
            "compiled_us_per_row": round(1e6 * t_compiled / len(rows), 3),
            "speedup": round(t_lgb / t_compiled, 1),
            "identical": bool(np.array_equal(out, ref))}


def _plan(dyn: Any, batch: Any, mask: Any, compiled: bool) -> tuple[np.ndarray, np.ndarray,
                                                                   float]:
    """(values, action table, seconds) of planning ``batch`` on fresh copies of the hazard
    model(s), so the compiled variant compiles inside its time."""
    import copy
    import dataclasses

    from policies.planner import PlannerPolicy

    os.environ["DUNNING_COMPILED_TREES"] = "1" if compiled else "0"
    fresh = dataclasses.replace(dyn, hazard=copy.deepcopy(dyn.hazard))  # no compiled trees
    policy = PlannerPolicy(fresh, cache_size=0)
    values, seconds = timed_call(lambda: policy.plan(batch, mask=mask))
    return values, policy.table, seconds


def _compare(dyn: Any, batch: Any, mask: Any) -> dict[str, Any]:
    v_lgb, a_lgb, t_lgb = _plan(dyn, batch, mask, compiled=False)
    v_c, a_c, t_c = _plan(dyn, batch, mask, compiled=True)
    return {"lightgbm_seconds": round(t_lgb, 2), "compiled_seconds": round(t_c, 2),
            "speedup": round(t_lgb / t_c, 2),
            "identical": bool(np.array_equal(v_lgb, v_c) and np.array_equal(a_lgb, a_c))}


def main() -> None:
    import dataclasses

    from dunning.pipeline import evaluation_source, learned_source, train_config
    from engine.models.ensemble import HazardEnsemble
    from engine.store import Store
    from policies.planner import LearnedDynamics
    from simulations.env import LegalMask
    from simulations.env.arrays import take_rows

    args, config, company, cut = finished_rl_run_from_cli(
        __doc__, invoices=128,
        more=lambda ap: ap.add_argument("--members", type=int, default=5))
    members = args.members
    truth = evaluation_source(config, company, config.model_dir, cut, db=config.db_path)
    learned = learned_source(config, config.db_path, config.model_dir, as_of=cut)
    batch = truth.fresh_invoices(args.invoices, np.random.default_rng([0, 0]))
    batch = take_rows(batch, np.arange(min(args.invoices, len(batch.amount))))
    mask = LegalMask()
    dyn = LearnedDynamics.from_source(learned)
    rows = _booster_rows(dyn, take_rows(batch, np.arange(min(32, len(batch.amount)))), mask)
    predict = _predict(learned.hazard, rows)
    print(f"predict {predict}", flush=True)
    one = _compare(dyn, batch, mask)
    print(f"one model {one}", flush=True)
    ensemble, t_fit = timed_call(lambda: HazardEnsemble.grown_from(
        learned.hazard, Store(config.db_path).tables(cut), cut, members,
        train_config(config).hazard_params))
    several = _compare(dataclasses.replace(dyn, hazard=ensemble), batch, mask)
    print(f"{members} models {several}", flush=True)
    print(write_result("compiled_trees", {
        "data": {"company": "default (finished pipeline run)", "cut_date": str(cut),
                 "invoices": int(len(batch.amount)), "evaluation_seed": 0,
                 "members": members},
        **_commit(), "predict": predict, "plan_one_model": one,
        f"plan_{members}_models": several,
        "fit_extra_members_seconds": round(t_fit, 1),
        "one_model_lightgbm_over_members_compiled": round(
            one["lightgbm_seconds"] / several["compiled_seconds"], 2),
        "note": "wall seconds, one process, one thread per predict; planning in batches of "
                "32 under the packaged legal rules; each compiled run compiles its "
                "model(s) inside its time"}))


if __name__ == "__main__":
    main()
