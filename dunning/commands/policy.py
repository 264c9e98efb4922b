"""CLI commands of the policy area: ``train-policy``, ``demo`` and ``report``.

Thin layer over :mod:`dunning.pipeline` and :mod:`dunning.report`; heavy imports stay inside
the command bodies so ``dunning --help`` stays fast.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from dunning.commands.common import console, user_errors
from engine.config import DEFAULT_DATA_DIR, DEFAULT_DB
from engine.errors import DunningError


@user_errors
def report(
    results: Path = typer.Option(
        DEFAULT_DATA_DIR, "--results", help="Directory holding results.json (from `dunning demo`)."
    ),
    out: Path = typer.Option(
        None, "--out", help="Report directory [default: RESULTS/report]."
    ),
    evaluation: Path = typer.Option(
        None, "--evaluation", help="Add the time-split evaluation section from FILE.json "
        "(`dunning evaluate-model --out FILE.json`)."
    ),
) -> None:
    """Re-render the self-contained HTML report from a results directory."""
    import json

    from dunning.report import load_results, write_report

    data = load_results(results)
    if evaluation is not None:
        try:
            data["evaluation"] = json.loads(evaluation.read_text())
        except FileNotFoundError:
            raise DunningError(f"--evaluation {evaluation}: no such file; write it with "
                               "`dunning evaluate-model --out FILE.json`") from None
        except json.JSONDecodeError as exc:
            raise DunningError(f"--evaluation {evaluation}, line {exc.lineno}: not valid "
                               f"JSON ({exc.msg})") from None
    base = results if results.is_dir() else results.parent
    index = write_report(data, out or base / "report")
    console.print(f"report written to [bold]{index}[/]")


@user_errors
def train_policy(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store with the company's history."),
    model: Path = typer.Option(..., "--model", help="Payment/hazard model artifact directory."),
    out: Path = typer.Option(..., "--out", help="Directory for the RL policy artifact."),
    timesteps: int = typer.Option(None, "--timesteps", help="Environment steps to train for."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed => same policy)."),
    scenario: str = typer.Option(
        "default", "--scenario",
        help="Scenario whose costs and discount rate define the reward (name or YAML path).",
    ),
    timing_search: bool = typer.Option(
        True, "--timing-search/--no-timing-search",
        help="After training, search per-segment timing rules in the same environment.",
    ),
) -> None:
    """Train the MaskablePPO reminder policy in the environment learned from the store."""
    from dunning.pipeline import PipelineConfig, Progress, train_policy_step
    from policies.rl.training import RLTrainingConfig

    cfg = RLTrainingConfig(seed=seed, timing_search=timing_search)
    if timesteps is not None:
        cfg = replace(cfg, total_timesteps=timesteps)
    pconf = PipelineConfig(scenario=scenario, rl=cfg, seed=seed)
    with Progress.rich(console) as progress:
        artifact = train_policy_step(pconf, db=db, model_dir=model, out_dir=out,
                                     progress=progress)
    meta = artifact.metadata
    console.print(
        f"policy saved to [bold]{out}[/] (hash {meta['content_hash'][:12]}, "
        f"{meta['timesteps']:,} timesteps, {meta['train_seconds']:.0f} s)"
    )
    if timing_search:
        console.print(f"timing rules: {artifact.timing_rules.describe()}")


@user_errors
def demo(
    out: Path = typer.Option(DEFAULT_DATA_DIR, "--out", help="Working/results directory."),
    customers: int = typer.Option(None, "--customers", help="Customers of the company."),
    timesteps: int = typer.Option(None, "--timesteps", help="RL training timesteps."),
    seeds: int = typer.Option(None, "--seeds", help="Evaluation seeds."),
    eval_invoices: int = typer.Option(None, "--eval-invoices", help="Invoices per seed."),
    seed: int = typer.Option(0, "--seed", help="Master seed."),
    tiny: bool = typer.Option(
        False, "--tiny", help="Seconds-scale smoke run (tiny company; results not meaningful)."
    ),
) -> None:
    """Run the whole pipeline on the default company and write results + HTML report.

    generate -> ingest (DuckDB) -> payment + hazard models -> tuned schedule and RL policy
    (learned environment) -> never/fixed/tuned/RL/oracle in the ground truth on held-out
    invoices (+ the shifted scenario) -> OUT/results.json and OUT/report/index.html.
    """
    from dataclasses import replace

    from dunning.pipeline import PipelineConfig, Progress, print_headline, run_pipeline

    overrides = {k: v for k, v in {
        "n_customers": customers, "n_seeds": seeds, "n_eval_invoices": eval_invoices,
    }.items() if v is not None}
    if tiny:
        config = replace(PipelineConfig.tiny(out, seed=seed), **overrides)
        if timesteps is not None:
            config.rl = replace(config.rl_config, total_timesteps=timesteps)
    else:
        config = PipelineConfig.default(out_dir=out, seed=seed, rl_timesteps=timesteps,
                                        **overrides)
    with Progress.rich(console) as progress:
        result = run_pipeline(config, progress=progress)
    print_headline(result, console)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dunning app."""
    app.command("train-policy")(train_policy)
    app.command("demo")(demo)
    app.command("report")(report)
