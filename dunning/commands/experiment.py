"""CLI commands of the experiment area (see dunning/cli.py): ``dunning experiment run``."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from dunning.commands.common import console, user_errors
from engine.errors import InputError


@user_errors
def run(
    file: Path = typer.Argument(..., help="Experiment YAML (policies, scenarios, seeds, "
                                "invoices; docs/experiments.md)."),
    out: Path = typer.Option(None, "--out", help="Result JSON (default: experiment-NAME.json "
                             "next to the file, NAME reduced to letters, digits, . _ -)."),
    cluster: str = typer.Option(None, "--cluster", help="Run every (scenario, policy, seed) "
                                "as a task on a Dask cluster: `local` or a scheduler address "
                                "(see docs/scale-out.md); same results as without."),
    report: Path = typer.Option(None, "--report", help="Also write the HTML report to "
                                "REPORT/index.html (later: `dunning report RESULT.json`)."),
) -> None:
    """Run a sweep of policies x scenarios x seeds in the ground truth; one JSON result with
    every scenario's evaluation (KPIs with intervals, paired per-invoice differences) and
    the learning curves of RL policies; optionally the HTML report."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from dunning.experiment import load_experiment, run_experiment
    from engine.files import atomic_write_json

    exp = load_experiment(file)
    # the name comes from the file: only a safe slug of it goes into a path
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", exp.name).strip(".-") or "experiment"
    target = out or file.parent / f"experiment-{slug}.json"
    if target.is_dir():
        raise InputError(f"--out {target}: is a directory (expected a JSON file path)")
    if report is not None and report.exists() and not report.is_dir():
        raise InputError(f"--report {report}: exists and is not a directory")
    console.print(f"[dim]{len(exp.policies)} policies x {len(exp.scenarios)} scenarios x "
                  f"{len(exp.seeds)} seeds x {exp.invoices} invoices"
                  f"{'' if cluster is None else ' on Dask cluster ' + cluster}[/]",
                  highlight=False)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("simulating", total=None)

        def progress(msg: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=msg)

        if cluster is None:
            result = run_experiment(exp, progress=progress)
        else:
            from engine.scale.cluster import connect

            with connect(cluster) as client:
                result = run_experiment(exp, progress=progress, client=client)
    table = Table(title=f"experiment {exp.name}: NPV per invoice (95 % CI over seeds)")
    for col in ("scenario", "policy", "NPV", "CI", "paired vs reference"):
        table.add_column(col)
    for sc, rows in result["summary"].items():
        for name, r in rows.items():
            npv, pr = r["npv"], r["paired_npv_vs_reference"]
            paired = "" if not pr else (f"{pr['mean']:+,.0f} [{pr['ci_low']:+,.0f}, "
                                        f"{pr['ci_high']:+,.0f}]")
            table.add_row(sc, name, f"{npv['mean']:,.0f}",
                          f"[{npv['ci_low']:,.0f}, {npv['ci_high']:,.0f}]", paired)
    console.print(table)
    console.print(f"results written to [bold]{atomic_write_json(target, result)}[/]")
    if report is not None:
        import json

        from dunning.report.research import render_experiment_report, write_html

        # from the JSON as written, so `dunning report RESULT.json` gives the same page
        index = write_html(render_experiment_report(json.loads(target.read_text())), report)
        console.print(f"report written to [bold]{index}[/]")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Sweeps described by one file.", no_args_is_help=True)
    group.command("run")(run)
    app.add_typer(group, name="experiment")
