"""Does the method generalise? The whole pipeline, unchanged, on a family of sampled companies.

Draws ``--n`` companies (default 8) of sampler seed ``--seed`` (default
``simulations.world.family.EVALUATION_SAMPLER_SEED`` = 2500, the evaluation family: nothing
may be tuned on it; tune on ``TUNING_SAMPLER_SEEDS``) with ``dunning scenarios sample``'s
code, runs ``dunning.pipeline.run_pipeline`` with ``PipelineConfig.default`` on each (the
configuration of ``dunning demo``; only ``scenario`` is set, the robustness scenario is
skipped because it is a second company the figures here do not use, and PPO is skipped
unless ``--ppo``: it takes about 4 minutes per company) into ``--out/<company>/`` (not
committed) and writes ``benchmarks/results/rl_generality.json``: per company the share of
the oracle's NPV gain over the fixed 14/30/45 schedule closed by the shipped scheduler and
by every other learned policy (tuned schedule, planner, RL with ``--ppo``), complaints,
agency handovers and legal violations per 1,000 invoices next to the oracle's (and, paired
on the same invoices, each policy's excess over 1.10 x the oracle's with its interval), which
scheduler the pipeline chose without the truth (learned-environment value + doubly robust
estimate) against the one the truth ranks first; then the median and minimum over
companies against the targets of issue 25. Nothing is tuned per company.

``python benchmarks/bench_generality.py [--n 8] [--seed 2500] [--ppo] [--eval-invoices N]
[--seeds S] [--tiny]``. ``--eval-invoices``/``--seeds`` shrink the ground-truth evaluation
(the same for every company; recorded in the result) when the machine is shared.
``--tiny`` runs ``PipelineConfig.tiny`` (seconds-scale, figures meaningless) and writes
``rl_generality_tiny.json`` so a smoke run never replaces the real figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_result  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BASE, BEST = "fixed", "oracle"  # the gap is the oracle's NPV gain over the fixed schedule
NOT_LEARNED = ("never", BASE, BEST)
SHIPPED_DEFAULT = "rl"  # what the pipeline ships today (results.json may name another)
TARGETS = {"median_gap": 0.85, "min_gap": 0.75, "max_ratio_to_oracle": 1.10}

# a company run's wall seconds beside its results.json, so --resume can still report them
SECONDS_FILE = "bench_seconds.json"
RunFn = Callable[[Any], dict[str, Any]]  # PipelineConfig -> results.json mapping


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from simulations.world.family import EVALUATION_SAMPLER_SEED

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=8, help="companies (default 8)")
    ap.add_argument("--seed", type=int, default=EVALUATION_SAMPLER_SEED,
                    help=f"sampler seed (default {EVALUATION_SAMPLER_SEED}: the evaluation "
                         "family, never used for tuning)")
    ap.add_argument("--out", type=Path, default=Path("dunning-data") / "bench_generality",
                    help="work folder: scenario files and one pipeline run per company")
    ap.add_argument("--tiny", action="store_true",
                    help="PipelineConfig.tiny (smoke run; writes rl_generality_tiny.json)")
    ap.add_argument("--scenario", action="append", default=None,
                    help="run this scenario (name or file; repeatable) instead of the sampled "
                         "family, e.g. --scenario default for the home company; writes "
                         "rl_generality_scenarios.json")
    ap.add_argument("--resume", action="store_true",
                    help="reuse a company's results.json already in --out (a run cut short)")
    ap.add_argument("--ppo", action="store_true",
                    help="also train and evaluate PPO (about 4 minutes per company)")
    ap.add_argument("--customer-response", choices=("on", "off"), default=None,
                    help="PipelineConfig.customer_response (default: the config's); the "
                         "result file's name then ends in _customer_response_on/off")
    ap.add_argument("--planner-members", type=int, default=None,
                    help="PipelineConfig.planner_hazard_members (default: the config's); the "
                         "result file's name then ends in _planner_members_N")
    ap.add_argument("--planner-min-support", type=int, default=None,
                    help="PipelineConfig.planner_min_support (default: the config's); the "
                         "result file's name then ends in _planner_min_support_M")
    ap.add_argument("--planner-complaint-weight", type=float, default=None,
                    help="PipelineConfig.planner_complaint_weight (default: the config's); "
                         "the result file's name then ends in _planner_complaint_weight_W")
    ap.add_argument("--hazard-counts-decreasing", action="store_true",
                    help="PipelineConfig.hazard_counts_decreasing (the hazard never rises with "
                         "a count of reminders sent); the result file's name then ends in "
                         "_hazard_counts_decreasing")
    ap.add_argument("--hazard-milestone-inputs", action="store_true",
                    help="PipelineConfig.hazard_milestone_inputs (the hazard model reads the "
                         "days past the project milestone); the result file's name then ends "
                         "in _hazard_milestone_inputs")
    ap.add_argument("--hazard-history-rates-only", action="store_true",
                    help="PipelineConfig.hazard_history_rates_only (the hazard model reads the "
                         "customer's history as shares and means, no counts since the history "
                         "begins); the result file's name then ends in "
                         "_hazard_history_rates_only")
    ap.add_argument("--eval-invoices", type=int, default=None,
                    help="held-out invoices per evaluation seed (default: the config's)")
    ap.add_argument("--seeds", type=int, default=None,
                    help="evaluation seeds (default: the config's)")
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error("--n must be >= 1")
    return args


def company_config(path: Path, out_dir: Path, tiny: bool, ppo: bool = False,
                   eval_invoices: int | None = None, seeds: int | None = None,
                   customer_response: bool | None = None,
                   planner_members: int | None = None,
                   planner_min_support: int | None = None,
                   planner_complaint_weight: float | None = None,
                   hazard_counts_decreasing: bool = False,
                   hazard_milestone_inputs: bool = False,
                   hazard_history_rates_only: bool = False) -> Any:
    """The pipeline's configuration for one sampled company: the default (or tiny) one with
    only the scenario set; the robustness company is skipped (not part of these figures);
    PPO only with ``ppo``; the evaluation's size when given (the same for every company);
    the customer response switch, the planner's hazard members, its minimum logged
    support and complaint weight, the hazard's decreasing counts, its milestone inputs and
    its history without counts when given."""
    from dunning.pipeline import PipelineConfig

    base = PipelineConfig.tiny(out_dir) if tiny else PipelineConfig.default(out_dir=out_dir)
    sizes = {k: v for k, v in (("n_eval_invoices", eval_invoices), ("n_seeds", seeds),
                               ("customer_response", customer_response),
                               ("planner_hazard_members", planner_members),
                               ("planner_min_support", planner_min_support),
                               ("planner_complaint_weight", planner_complaint_weight),
                               ("hazard_counts_decreasing", hazard_counts_decreasing or None),
                               ("hazard_milestone_inputs", hazard_milestone_inputs or None),
                               ("hazard_history_rates_only",
                                hazard_history_rates_only or None))
             if v is not None}
    return dataclasses.replace(base, scenario=str(path), robustness_scenario=None,
                               train_rl=ppo, **sizes)


def _ratio(a: float | None, b: float | None) -> float | None:
    """a / b; None when undefined (b is 0: then only :func:`_within` says whether it is ok)."""
    return None if a is None or not b else a / b


def _within(a: float | None, b: float | None) -> bool | None:
    """The target "no more than 10 % above the oracle's": a <= 1.10 * b (so 0 if b is 0)."""
    return None if a is None or b is None else a <= TARGETS["max_ratio_to_oracle"] * b + 1e-9


def company_figures(results: dict[str, Any]) -> dict[str, Any]:
    """Per-company figures from a pipeline ``results.json`` mapping.

    ``gap`` per learned policy: the pipeline's ``oracle_gap_closed`` (mean over evaluation
    seeds of (NPV - fixed) / (oracle - fixed)) when it has one, else the same ratio of the
    seed means. ``*_vs_oracle``: the policy's complaints / agency handovers per 1,000 over
    the oracle's (target <= 1.10).
    """
    pol = results["policies"]
    base, best = pol[BASE]["npv"], pol[BEST]["npv"]
    shipped = results.get("shipped_policy", SHIPPED_DEFAULT)
    oracle = pol[BEST]
    out: dict[str, Any] = {"shipped": shipped, "policies": {}}
    for name, k in pol.items():
        gap = k.get("oracle_gap_closed")
        if gap is None and name not in NOT_LEARNED and best != base:
            gap = (k["npv"] - base) / (best - base)
        out["policies"][name] = {
            "gap": gap, "npv": k.get("npv"),
            "complaints_per_1000": k.get("complaints_per_1000"),
            "agency_per_1000": k.get("agency_per_1000"),
            "violations": k.get("violations"),
            "complaints_vs_oracle": _ratio(k.get("complaints_per_1000"),
                                           oracle.get("complaints_per_1000")),
            "agency_vs_oracle": _ratio(k.get("agency_per_1000"), oracle.get("agency_per_1000")),
            "complaints_within_target": _within(k.get("complaints_per_1000"),
                                                oracle.get("complaints_per_1000")),
            "agency_within_target": _within(k.get("agency_per_1000"),
                                            oracle.get("agency_per_1000")),
        }
    out["shipped_gap"] = out["policies"].get(shipped, {}).get("gap")
    sel = results.get("selection") or {}
    learned = {n: p["gap"] for n, p in out["policies"].items()
               if n not in NOT_LEARNED and p["gap"] is not None}
    truth_best = max(learned, key=lambda n: learned[n]) if learned else None
    out["selection"] = {
        "chosen": sel.get("chosen", shipped), "reason": sel.get("reason"),
        "truth_best": truth_best, "chose_truth_best": truth_best == shipped,
        # what picking wrong cost: the truth-best's gap minus the chosen one's
        "gap_lost": (learned[truth_best] - learned[shipped]
                     if truth_best and shipped in learned else None),
        "estimates": {n: {"learned_value": c.get("learned_value"), "dr": c.get("dr"),
                          "truth_npv": c.get("truth_npv")}
                      for n, c in (sel.get("candidates") or {}).items()},
    }
    out["eval_invoices_per_seed"] = results.get("n_eval_invoices")
    out["eval_seeds"] = results.get("seeds")
    out["company_invoices"] = (results.get("holdout") or {}).get("company_invoices")
    return out


def paired_excess(run_dir: Path) -> dict[str, dict[str, Any]]:
    """``{policy: {kpi: interval}}`` for complaints and agency handovers per 1,000: the mean
    per-invoice difference of each learned policy to 1.10 x the oracle's on the same
    held-out invoices and draws, with its 95 % paired t interval
    (``simulations.evaluation.metrics.paired_interval``); ``ci_low`` above 0: the policy is
    over the target by more than the evaluation's noise, ``ci_high`` below 0: within it.
    Empty when ``run_dir`` has no per-invoice outcomes."""
    from simulations.evaluation.harness import OUTCOMES_FILE, EvaluationResult
    from simulations.evaluation.metrics import paired_interval, per_invoice_kpi

    path = Path(run_dir) / "evaluation.json"
    if not (path.is_file() and (Path(run_dir) / OUTCOMES_FILE).is_file()):
        return {}
    outcomes = EvaluationResult.load(path).outcomes
    if BEST not in outcomes:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name in outcomes:
        if name in NOT_LEARNED:
            continue
        out[name] = {kpi: paired_interval(
            per_invoice_kpi(outcomes[name], kpi)
            - TARGETS["max_ratio_to_oracle"] * per_invoice_kpi(outcomes[BEST], kpi))
            for kpi in ("complaints_per_1000", "agency_per_1000")}
    return out


def summary(companies: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Median / minimum over companies of each learned policy's gap, and the targets."""
    names = sorted({p for c in companies.values() for p in c["policies"]
                    if p not in NOT_LEARNED})
    gaps = {p: [c["policies"][p]["gap"] for c in companies.values()
                if c["policies"].get(p, {}).get("gap") is not None] for p in names}
    per_policy = {p: {"median_gap": statistics.median(g), "min_gap": min(g), "n": len(g)}
                  for p, g in gaps.items() if g}
    shipped = [c["shipped_gap"] for c in companies.values() if c["shipped_gap"] is not None]
    ship = [c["policies"][c["shipped"]] for c in companies.values()
            if c["shipped"] in c["policies"]]

    def worst(key: str) -> float | None:
        values = [p[key] for p in ship if p[key] is not None]
        return max(values) if values else None

    def over(key: str) -> int:
        return sum(p[key] is False for p in ship)

    def clearly_over(kpi: str) -> int:
        """Companies where the shipped scheduler is over 1.10 x the oracle's ``kpi`` by more
        than the evaluation's noise (the paired interval's low end above 0)."""
        return sum(bool(c.get("paired_excess", {}).get(c["shipped"], {}).get(kpi, {})
                        .get("ci_low", 0) > 0) for c in companies.values())

    picks = [c["selection"] for c in companies.values() if "selection" in c]
    lost = [p["gap_lost"] for p in picks if p.get("gap_lost") is not None]
    selection = {"companies": len(picks),
                 "chose_truth_best": sum(bool(p.get("chose_truth_best")) for p in picks),
                 "mean_gap_lost": statistics.fmean(lost) if lost else None,
                 "max_gap_lost": max(lost) if lost else None}
    med = statistics.median(shipped) if shipped else None
    low = min(shipped) if shipped else None
    ratio_target = f"<= {TARGETS['max_ratio_to_oracle']} x the oracle's in every company"
    return {
        "per_policy": per_policy,
        "selection": selection,
        "targets": {
            "shipped_median_gap": {"measured": med, "target": f">= {TARGETS['median_gap']}",
                                   "met": med is not None and med >= TARGETS["median_gap"]},
            "shipped_min_gap": {"measured": low, "target": f">= {TARGETS['min_gap']}",
                                "met": low is not None and low >= TARGETS["min_gap"]},
            "complaints_vs_oracle": {
                "worst_ratio": worst("complaints_vs_oracle"), "target": ratio_target,
                "companies_over": over("complaints_within_target"),
                "companies_clearly_over": clearly_over("complaints_per_1000"),
                "met": bool(ship) and over("complaints_within_target") == 0},
            "agency_vs_oracle": {
                "worst_ratio": worst("agency_vs_oracle"), "target": ratio_target,
                "companies_over": over("agency_within_target"),
                "companies_clearly_over": clearly_over("agency_per_1000"),
                "met": bool(ship) and over("agency_within_target") == 0},
            "violations_worst": {"measured": worst("violations"), "target": 0,
                                 "met": bool(ship) and worst("violations") == 0},
        },
    }


def _commit() -> dict[str, Any]:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True,
                              check=False).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"),
            "code_changed_since_commit": bool(git("status", "--porcelain", "dunning",
                                                  "policies", "simulations", "engine"))}


def _pipeline(config: Any) -> dict[str, Any]:
    from dunning.pipeline import run_pipeline

    return run_pipeline(config).results


def run(args: argparse.Namespace, run_fn: RunFn = _pipeline,
        say: Callable[[str], None] = print) -> Path:
    """Sample the family, run ``run_fn`` on each company, write the result file."""
    from simulations.world.family import write_family

    named = getattr(args, "scenario", None)
    paths = ([Path(s) for s in named] if named
             else write_family(args.n, args.seed, Path(args.out) / "scenarios"))
    companies: dict[str, dict[str, Any]] = {}
    config_dict: dict[str, Any] = {}
    for path in paths:
        config = company_config(
            path, Path(args.out) / path.stem, args.tiny, ppo=getattr(args, "ppo", False),
            eval_invoices=getattr(args, "eval_invoices", None),
            seeds=getattr(args, "seeds", None), customer_response=_switch(args),
            planner_members=getattr(args, "planner_members", None),
            planner_min_support=getattr(args, "planner_min_support", None),
            planner_complaint_weight=getattr(args, "planner_complaint_weight", None),
            hazard_counts_decreasing=getattr(args, "hazard_counts_decreasing", False),
            hazard_milestone_inputs=getattr(args, "hazard_milestone_inputs", False),
            hazard_history_rates_only=getattr(args, "hazard_history_rates_only", False))
        say(f"{path.stem}: running the pipeline ({'tiny' if args.tiny else 'default'})")
        t0 = time.perf_counter()
        done = Path(config.out_dir) / "results.json"
        timed = Path(config.out_dir) / SECONDS_FILE
        if getattr(args, "resume", False) and done.is_file():
            results = json.loads(done.read_text())
            seconds = json.loads(timed.read_text()) if timed.is_file() else None
            say(f"{path.stem}: reusing {done}")
        else:
            results = run_fn(config)
            seconds = round(time.perf_counter() - t0, 1)
            timed.parent.mkdir(parents=True, exist_ok=True)
            timed.write_text(json.dumps(seconds))
        figures = company_figures(results)
        figures["paired_excess"] = paired_excess(Path(config.out_dir))
        figures["seconds"] = seconds
        companies[path.stem] = figures
        gaps = ", ".join(f"{n} {_pct(p['gap'])}" for n, p in figures["policies"].items()
                         if n not in NOT_LEARNED)
        say(f"{path.stem}: shipped ({figures['shipped']}) closes "
            f"{_pct(figures['shipped_gap'])} of the oracle gap ({gaps}; "
            f"{figures['seconds'] or 0:.0f} s)")
        config_dict = {k: v for k, v in config.to_dict().items()
                       if k not in ("out_dir", "db", "scenario")}
        out = _write(args, companies, config_dict, named, len(paths))
    return out


def _write(args: argparse.Namespace, companies: dict[str, dict[str, Any]],
           config_dict: dict[str, Any], named: list[str] | None, planned: int) -> Path:
    """Write the result file for the companies done so far (after every company, so a run
    cut short still leaves its figures; ``data.companies_done`` says how many)."""
    from simulations.world.family import FAMILY_VERSION, RANGES

    figures = {
        "what": (f"PipelineConfig.{'tiny (smoke run, meaningless)' if args.tiny else 'default'}"
                 f" unchanged on each sampled company "
                 f"({'with PPO' if getattr(args, 'ppo', False) else 'without PPO'}; evaluation "
                 "size as in data.pipeline_config); gap = share of the oracle's NPV gain over "
                 "the fixed 14/30/45 schedule"),
        "data": {"sampler_seed": args.seed, "companies": planned,
                 "companies_done": len(companies),
                 "family_version": FAMILY_VERSION, "ranges": dataclasses.asdict(RANGES),
                 "pipeline_config": config_dict, **_commit()},
        "companies": companies,
        **summary(companies),
    }
    if named:
        # a scenario file by its name only: no path of this machine in a result file
        figures["data"].update(scenarios=[Path(p).name for p in named], sampler_seed=None,
                               companies=len(named))
    name = "rl_generality" + ("_scenarios" if named else "") + ("_tiny" if args.tiny else "")
    if _switch(args) is not None:
        name += f"_customer_response_{args.customer_response}"
    if getattr(args, "planner_members", None) is not None:
        name += f"_planner_members_{args.planner_members}"
    if getattr(args, "planner_min_support", None) is not None:
        name += f"_planner_min_support_{args.planner_min_support}"
    if getattr(args, "planner_complaint_weight", None) is not None:
        name += f"_planner_complaint_weight_{args.planner_complaint_weight:g}"
    if getattr(args, "hazard_counts_decreasing", False):
        name += "_hazard_counts_decreasing"
    if getattr(args, "hazard_milestone_inputs", False):
        name += "_hazard_milestone_inputs"
    if getattr(args, "hazard_history_rates_only", False):
        name += "_hazard_history_rates_only"
    return write_result(name, figures)


def _switch(args: argparse.Namespace) -> bool | None:
    """``--customer-response`` as a bool (None: the config's default)."""
    value = getattr(args, "customer_response", None)
    return None if value is None else value == "on"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def main(argv: Sequence[str] | None = None) -> None:
    print(f"wrote {run(parse_args(argv))}")


if __name__ == "__main__":
    main()
