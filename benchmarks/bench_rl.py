"""RL scheduler vs baselines and the oracle, judged in the ground truth on held-out invoices.

Runs the whole demo pipeline (``engine.pipeline.run_pipeline``, default configuration) into
``dunning-data/bench_rl/`` (store, models, policy, report; not committed) and writes
``benchmarks/results/rl.json``: every KPI per policy (mean and 95 % CI over seeds), the
targets next to the measured values, the learned policy's per-segment timing and the
robustness drop on the shifted scenario.
``python benchmarks/bench_rl.py [--timesteps N] [--seeds K]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_result  # noqa: E402


def figures_from(results: dict, seconds: float) -> dict:
    pol = results["policies"]
    rl, fixed, tuned, oracle = (pol.get(k, {}) for k in ("rl", "fixed", "tuned", "oracle"))
    gap = rl.get("oracle_gap_closed")

    def npv_gain(p: dict) -> float | None:
        return None if p.get("npv") is None else p["npv"] / fixed["npv"] - 1

    rob = results.get("robustness", {}).get("policies", {})
    return {
        "data": {"company_invoices": results["holdout"]["company_invoices"],
                 "holdout_invoices": results["holdout"]["invoices"],
                 "cut_date": results["holdout"]["cut_date"],
                 "eval_invoices_per_seed": results["n_eval_invoices"],
                 "seeds": results["seeds"], "config": results["config"]},
        "policies": pol,
        "targets": {
            "oracle_gap_closed": {"measured": gap,
                                  "ci": rl.get("oracle_gap_closed_ci"),
                                  "target": ">= 0.80 (aim 0.95)",
                                  "met": gap is not None and gap >= 0.8},
            "rl_beats_tuned_npv": {"rl": rl.get("npv"), "tuned": tuned.get("npv"),
                                   "met": (rl.get("npv") or 0) > (tuned.get("npv") or 0)},
            "violations": {"rl": rl.get("violations"), "target": 0,
                           "met": rl.get("violations") == 0},
            "complaints_below_fixed": {"rl": rl.get("complaints_per_1000"),
                                       "fixed": fixed.get("complaints_per_1000"),
                                       "met": (rl.get("complaints_per_1000") or 1e9)
                                       < (fixed.get("complaints_per_1000") or 0)},
            "first_reminder_pay_rate": {"fixed": fixed.get("first_reminder_pay_rate"),
                                        "rl": rl.get("first_reminder_pay_rate"),
                                        "oracle": oracle.get("first_reminder_pay_rate"),
                                        "real_project": "0.23 -> 0.41"},
            "mean_days_to_pay": {"fixed": fixed.get("mean_days_to_pay"),
                                 "rl": rl.get("mean_days_to_pay"),
                                 "oracle": oracle.get("mean_days_to_pay"),
                                 "real_project": "67 -> 43"},
            "train_seconds": {"measured": results.get("training", {}).get("train_seconds"),
                              "target": "< 600 (aim 180-300)"},
            "pipeline_seconds": {"measured": round(seconds, 1), "target": "< 600"},
        },
        "npv_gain_vs_fixed": {k: npv_gain(v) for k, v in pol.items()},
        "robustness": {"scenario": results.get("robustness", {}).get("scenario"),
                       "npv_change": {k: (rob[k]["npv"] / pol[k]["npv"] - 1)
                                      if rob.get(k, {}).get("npv") and pol[k].get("npv")
                                      else None for k in pol},
                       "oracle_gap_closed": {k: rob[k].get("oracle_gap_closed")
                                             for k in rob if k in ("rl", "tuned")}},
        "rl_timing": results["timing"].get("rl"),
        "step_seconds": results["step_seconds"],
        "training": {k: v for k, v in results.get("training", {}).items() if k != "curve"},
    }


def main() -> None:
    from rich.console import Console

    from engine.pipeline import PipelineConfig, Progress, print_headline, run_pipeline

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--timesteps", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("dunning-data") / "bench_rl")
    args = ap.parse_args()
    overrides = {"n_seeds": args.seeds} if args.seeds else {}
    config = PipelineConfig.default(out_dir=args.out, rl_timesteps=args.timesteps, **overrides)
    console = Console()
    t0 = time.perf_counter()
    with Progress.rich(console) as progress:
        result = run_pipeline(config, progress=progress)
    seconds = time.perf_counter() - t0
    print_headline(result, console)
    path = write_result("rl", figures_from(result.results, seconds))
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
