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


def read_evaluation(path: Path) -> dict:
    """``dunning evaluate-model --out`` JSON, with a user error naming the file and line."""
    import json

    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DunningError(f"--evaluation {path}: no such file; write it with "
                           "`dunning evaluate-model --out FILE.json`") from None
    except json.JSONDecodeError as exc:
        raise DunningError(f"--evaluation {path}, line {exc.lineno}: not valid JSON "
                           f"({exc.msg})") from None


@user_errors
def report(
    path: Path = typer.Argument(
        None, help="What to render: a directory holding results.json (`dunning demo`) or "
        "evaluation.json (`dunning evaluate --out`), one of those files, or an experiment's "
        "result JSON (`dunning experiment run`). Default: --results."),
    results: Path = typer.Option(
        DEFAULT_DATA_DIR, "--results", help="Directory holding results.json (from `dunning "
        "demo`), used when PATH is not given."
    ),
    out: Path = typer.Option(
        None, "--out", help="Report directory (default: DIR/report for a directory, "
        "results.json or evaluation.json; NAME-report beside an experiment's NAME.json)."
    ),
    interval: str = typer.Option(
        None, "--interval", help="Recompute the paired intervals of an evaluation saved with "
        "its outcomes.npz: t or bootstrap (percentile, invoices resampled within seeds)."),
    n_boot: int = typer.Option(2000, "--bootstrap-resamples", help="Resamples for "
                               "--interval bootstrap."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap resampling."),
    evaluation: Path = typer.Option(
        None, "--evaluation", help="Add the time-split evaluation section from FILE.json "
        "(`dunning evaluate-model --out FILE.json`) to a demo run's report."
    ),
) -> None:
    """Render the self-contained HTML report of a demo run, an evaluation or an experiment
    (KPIs per policy, paired per-invoice differences to the reference, per scenario and
    segment, reminder timing, learning curves of RL policies)."""
    from dunning.report.research import (
        KIND_EVALUATION,
        KIND_RESULTS,
        load_report_input,
        recompute_paired,
        render_any,
        write_html,
    )
    from engine.errors import InputError

    kind, data, default_out = load_report_input(path if path is not None else results)
    if interval is not None:
        if interval not in ("t", "bootstrap"):
            raise InputError(f"--interval {interval!r}: expected t or bootstrap")
        if n_boot < 100:
            raise InputError(f"--bootstrap-resamples {n_boot}: expected at least 100")
        if kind != KIND_EVALUATION:
            raise InputError("--interval: only an evaluation's intervals can be recomputed "
                             "(it needs the per-invoice outcomes of `dunning evaluate --out`); "
                             "set `interval:` in the experiment file instead")
        data = recompute_paired(default_out.parent, interval, n_boot, seed)
    if evaluation is not None:
        if kind != KIND_RESULTS:
            raise InputError("--evaluation: only a demo run's report (results.json) takes the "
                             "payment model's evaluation section")
        data["evaluation"] = read_evaluation(evaluation)
    source = path if path is not None else results
    try:
        html = render_any(kind, data)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # the files are ours, but read back from disk: a hand-edited one is a user error
        raise InputError(f"{source}: not a well-formed {kind} file ({type(exc).__name__}: "
                         f"{exc}); re-create it with the command that wrote it") from None
    index = write_html(html, out or default_out)
    console.print(f"{kind} report written to [bold]{index}[/]")


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
