"""CLI commands of the sim area (see dunning/cli.py): ``simulate`` and ``evaluate``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from dunning.commands.common import console, user_errors
from engine.errors import InputError

_SCENARIO_HELP = "Packaged scenario name (default, shifted) or path to a scenario YAML file."
_CLUSTER_HELP = ("Run the seeds x policies as tasks on a Dask cluster: `local` or a scheduler "
                 "address (see docs/scale-out.md); same results as without.")
_DB_HELP = ("DuckDB store with the company's history, for the learned environment the tuned "
            "policy is searched in (with --model).")
_MODEL_HELP = ("Model directory from `dunning train-model`: its hazard model is the learned "
               "environment the tuned policy is searched in, and its payment model scores the "
               "evaluation invoices (held-out invoices of a company generated from the "
               "scenario), so rl: and plugin policies see real payment probabilities. Without "
               "it the tuned policy is searched in a learned environment fitted on a history "
               "generated from the scenario, and every observation carries (1/3, 1/3, 1/3).")
_POLICY_HELP = ("Policy: " + "never, fixed, fixed[14:email;30:letter] (or fixed:14:email,30:letter "
                "alone), tuned, tuned:FILE, oracle, rl:DIR, module:Class[:json-args] or an "
                "installed policy's name (entry points `dunning.policies`; docs/policies.md).")
SCORED_CUSTOMERS, SCORED_MONTHS, SCORED_HOLDOUT_MONTHS = 800, 12, 3


def scored_source(scenario: object, model: Path, seed: int,
                  status: Callable[[str], None] | None = None) -> object:
    """Ground truth whose invoices carry the payment model's probabilities (as in the demo):
    a company of ``SCORED_CUSTOMERS`` x ``SCORED_MONTHS`` generated from ``scenario`` (seed
    ``seed + 2000``), its invoices due in the last ``SCORED_HOLDOUT_MONTHS`` months replayed
    in the ground truth and scored by ``model``'s payment model as of their due dates."""
    from policies.rl.holdout import holdout_source, month_cut
    from simulations import world

    say = status or (lambda _m: None)
    say(f"scoring the evaluation invoices with the payment model in {model}")
    sc = world.load_scenario(scenario) if isinstance(scenario, str | Path) else scenario
    company = world.generate_company(sc, SCORED_CUSTOMERS, SCORED_MONTHS, seed + 2000)
    return holdout_source(company, sc, month_cut(company.as_of, SCORED_HOLDOUT_MONTHS), model)


def _run(policy_specs: list[str], scenario: str, invoices: int, seeds: int, out: Path | None,
         db: Path | None, model: Path | None, tuned: Path | None, tune_out: Path | None,
         no_rules: bool, seed_offset: int, cluster: str | None = None,
         reference: str | None = None, interval: str = "t", n_boot: int = 2000,
         report: Path | None = None) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from policies.baselines.factory import make_policy, policy_name
    from policies.tuned import TuningConfig
    from simulations.env import AllowAll, GroundTruthSource, LegalMask
    from simulations.evaluation.harness import evaluate_policies
    from simulations.evaluation.learned_env import build_learned_source
    from simulations.evaluation.tables import (
        overall_table,
        paired_table,
        segment_table,
        timing_table,
    )

    if invoices < 1 or seeds < 1:
        raise InputError(f"--invoices {invoices} / --seeds {seeds}: expected positive numbers")
    if out is not None and out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory (expected a directory)")
    if interval not in ("t", "bootstrap"):
        raise InputError(f"--interval {interval!r}: expected t or bootstrap")
    if n_boot < 100:
        raise InputError(f"--bootstrap-resamples {n_boot}: expected at least 100")
    if report is not None and report.exists() and not report.is_dir():
        raise InputError(f"--report {report}: exists and is not a directory")
    source = GroundTruthSource(scenario)
    if model is not None:  # the observation's payment probabilities from the model
        source = scored_source(source.scenario, model, seed_offset,
                               status=lambda m: console.print(f"[dim]{m}[/]"))
    mask = AllowAll() if no_rules else LegalMask()

    def learned():  # noqa: ANN202 - built only when a tuned policy must be searched
        return build_learned_source(source.scenario, db, model, seed=seed_offset,
                                    status=lambda m: console.print(f"[dim]{m}[/]"))

    def bar() -> Progress:
        return Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                        console=console, transient=True)

    def build(spec: str) -> tuple[str, object]:
        if spec.strip().lower() == "planner":
            if model is None:
                raise InputError("policy 'planner' needs --model (and --db): it plans in the "
                                 "learned model and reads each evaluation invoice's "
                                 "hazard-model inputs from it; or give planner:DIR")
            return make_policy(spec, learned_source=learned)
        if spec.strip().lower() != "tuned" or tuned is not None:
            return make_policy(spec, tuned_path=tuned)
        with bar() as tune_bar:  # searching the tuned schedule takes minutes: show it
            task = tune_bar.add_task("tuning", total=None)
            return make_policy(
                spec, learned_source=learned, tuning=TuningConfig(seed=seed_offset),
                progress=lambda msg, done, total: tune_bar.update(
                    task, completed=done, total=total, description=f"tuning: {msg}"))

    policies = {}
    for spec in policy_specs:
        name, policy = build(spec)
        if name in policies:
            raise InputError(f"--policies: {name!r} given twice")
        policies[name] = policy
        if name == "tuned" and tune_out is not None:
            console.print(f"tuned schedule saved to {policy.save(tune_out)}")
    with bar() as sim_bar:
        task = sim_bar.add_task("simulating", total=len(policies) * seeds)
        if reference is not None and reference not in policies:  # a spec: its name
            reference = policy_name(reference)
        if reference is not None and reference not in policies:
            raise InputError(f"--reference {reference!r}: not among the policies "
                             f"({', '.join(policies)})")
        args = (policies, source.scenario, invoices, [seed_offset + s for s in range(seeds)])
        kwargs = {"source": source, "mask": mask, "reference": reference or "fixed",
                  "interval": {"method": interval, "n_boot": n_boot, "seed": seed_offset},
                  "progress": lambda msg, done, total: sim_bar.update(
                      task, completed=done, description=msg)}
        if cluster is None:
            result = evaluate_policies(*args, **kwargs)
        else:  # scale-out: one Dask task per (seed, policy), same evaluation.json
            from engine.scale.cluster import connect
            from simulations.evaluation.distributed import evaluate_policies_distributed

            with connect(cluster) as client:
                result = evaluate_policies_distributed(client, *args, **kwargs)
    from dunning.experiment import policy_training

    training = policy_training(policies)
    if training:  # RL artifacts' learning curves, for the report
        result.config["training"] = training
    console.print(overall_table(result))
    paired = paired_table(result)
    if paired is not None:
        console.print(paired)
    console.print(segment_table(result))
    console.print(timing_table(result))
    if out is not None:
        console.print(f"results written to [bold]{result.save(out)}[/]")
    if report is not None:
        from dunning.report.research import render_evaluation_report, write_html
        from engine.serialization import jsonable

        index = write_html(render_evaluation_report(jsonable(result.to_dict())), report)
        console.print(f"report written to [bold]{index}[/]")


@user_errors
def simulate(
    policy: str = typer.Option("fixed", "--policy", help=_POLICY_HELP),
    scenario: str = typer.Option("default", "--scenario", help=_SCENARIO_HELP),
    invoices: int = typer.Option(1000, "--invoices", help="Invoices per seed."),
    seeds: int = typer.Option(3, "--seeds", help="Number of seeds (confidence intervals)."),
    out: Path = typer.Option(None, "--out", help="Directory for evaluation.json and outcomes.npz "
                             "(per-invoice outcomes; EvaluationResult.load(DIR))."),
    db: Path = typer.Option(None, "--db", help=_DB_HELP),
    model: Path = typer.Option(None, "--model", help=_MODEL_HELP),
    tuned: Path = typer.Option(None, "--tuned", help="Saved tuned schedule (JSON) to load."),
    no_rules: bool = typer.Option(False, "--no-rules", help="Switch the legal rules off "
                                  "(only to measure what they cost)."),
    seed: int = typer.Option(0, "--seed", help="First seed; seeds are SEED..SEED+K-1."),
    cluster: str = typer.Option(None, "--cluster", help=_CLUSTER_HELP),
) -> None:
    """Run one policy in the ground-truth world and report its KPIs with 95 % CIs."""
    _run([policy], scenario, invoices, seeds, out, db, model, tuned, None, no_rules, seed,
         cluster)


@user_errors
def evaluate(
    policies: str = typer.Option(None, "--policies", help="Comma-separated policies "
                                 "(default never,fixed,tuned,oracle); a schedule inside it is "
                                 "written fixed[14:email;30:letter]. " + _POLICY_HELP),
    policy: list[str] = typer.Option(None, "--policy", help="One more policy, the whole "
                                     "value one spec (commas allowed); repeat the option."),
    scenario: str = typer.Option("default", "--scenario", help=_SCENARIO_HELP),
    invoices: int = typer.Option(1000, "--invoices", help="Invoices per seed."),
    seeds: int = typer.Option(3, "--seeds", help="Number of seeds (confidence intervals)."),
    out: Path = typer.Option(None, "--out", help="Directory for evaluation.json and outcomes.npz "
                             "(per-invoice outcomes; EvaluationResult.load(DIR))."),
    db: Path = typer.Option(None, "--db", help=_DB_HELP),
    model: Path = typer.Option(None, "--model", help=_MODEL_HELP),
    tuned: Path = typer.Option(None, "--tuned", help="Saved tuned schedule (JSON) to load "
                               "instead of tuning."),
    tune_out: Path = typer.Option(None, "--tune-out", help="Save the tuned schedule here."),
    no_rules: bool = typer.Option(False, "--no-rules", help="Switch the legal rules off."),
    seed: int = typer.Option(0, "--seed", help="First seed; seeds are SEED..SEED+K-1."),
    cluster: str = typer.Option(None, "--cluster", help=_CLUSTER_HELP),
    reference: str = typer.Option(None, "--reference", help="Policy the paired differences "
                                  "are taken against (as listed, or its name: rl for "
                                  "rl:DIR; default: fixed when evaluated)."),
    interval: str = typer.Option("t", "--interval", help="Paired intervals over invoices x "
                                 "seeds: t (Student t on the per-invoice differences) or "
                                 "bootstrap (percentile, invoices resampled within seeds, "
                                 "seeded by --seed)."),
    n_boot: int = typer.Option(2000, "--bootstrap-resamples", help="Resamples for "
                               "--interval bootstrap."),
    report: Path = typer.Option(None, "--report", help="Also write the HTML report (KPIs, "
                                "paired intervals, segments, timing, learning curves of rl: "
                                "policies) to REPORT/index.html; `dunning report OUT` renders "
                                "it later from --out."),
) -> None:
    """Compare policies on the same invoices (common random numbers) in the ground truth:
    NPV, days to pay, DSO, pay rate after the first reminder, reminders, complaints, agency
    handovers and legal violations, overall and per segment, plus the reminder timing."""
    from policies.plugins import split_policy_specs

    extra = [p.strip() for p in policy or [] if p.strip()]
    if policies is None and not extra:
        policies = "never,fixed,tuned,oracle"
    specs = split_policy_specs(policies or "") + extra
    if not specs:
        raise InputError("--policies: expected at least one policy, e.g. never,fixed")
    _run(specs, scenario, invoices, seeds, out, db, model, tuned, tune_out, no_rules, seed,
         cluster, reference, interval, n_boot, report)


scenarios_app = typer.Typer(help="Scenario files: check one, print the JSON Schema, sample a "
                            "family of companies.",
                            no_args_is_help=True)


@scenarios_app.command("schema")
@user_errors
def scenarios_schema(
    out: Path = typer.Option(None, "--out", help="Write the schema to this file instead of "
                             "printing it (docs/scenario.schema.json is this output)."),
) -> None:
    """Print the JSON Schema of a scenario file (for editors: yaml-language-server)."""
    import json

    from simulations.world.scenario import scenario_schema

    text = json.dumps(scenario_schema(), indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    from engine.files import atomic_write_text

    atomic_write_text(out, text)
    console.print(f"schema written to [bold]{out}[/]")


@scenarios_app.command("check")
@user_errors
def scenarios_check(
    files: list[str] = typer.Argument(..., help="Scenario names or YAML paths."),
) -> None:
    """Load each scenario with every check the simulator applies; exit 2 on the first error."""
    from simulations.world import load_scenario

    for name in files:
        sc = load_scenario(name)
        console.print(f"{sc.source}: ok (scenario {sc.name!r}, {len(sc.segments)} segments, "
                      f"{len(sc.jurisdictions)} jurisdictions)", highlight=False, soft_wrap=True)


@scenarios_app.command("sample")
@user_errors
def scenarios_sample(
    n: int = typer.Option(8, "--n", min=1, max=10_000, help="How many scenario files."),
    seed: int = typer.Option(..., "--seed", min=0, help="Sampler seed: company i of seed S "
                             "is the same file whatever --n (2500 is the evaluation family of "
                             "benchmarks/bench_generality.py: never tune on it)."),
    out: Path = typer.Option(..., "--out", help="Folder for the YAML files (created)."),
) -> None:
    """Draw N scenario files around the default company's structure from the documented
    ranges (simulations/world/family.py, docs/world.md): segment mix, reminder-timing peaks,
    payment calendars, milestone spread, costs, complaint sensitivity, jurisdictions,
    logging schedule and exploration. Same seed, same bytes."""
    from simulations.world.family import write_family

    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    try:
        paths = write_family(n, seed, out)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write the scenario files ({exc.strerror})") \
            from None
    console.print(f"{len(paths)} scenario files written to [bold]{out}[/] "
                  f"({paths[0].name} .. {paths[-1].name})", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dunning app."""
    app.command("simulate")(simulate)
    app.command("evaluate")(evaluate)
    app.add_typer(scenarios_app, name="scenarios")
