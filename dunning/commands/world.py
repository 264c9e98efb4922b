"""CLI commands of the world area (see dunning/cli.py): ``dunning generate``."""

from __future__ import annotations

from pathlib import Path

import typer

from dunning.commands.common import console, user_errors
from engine.errors import InputError


@user_errors
def generate(
    scenario: str = typer.Option("default", help="Packaged scenario name or path to a YAML file."),
    customers: int = typer.Option(1000, min=1, help="Number of customers."),
    months: int = typer.Option(12, min=1, help="Months of invoices from the scenario start."),
    seed: int = typer.Option(0, help="Random seed (same seed => same files, byte for byte)."),
    out: Path = typer.Option(Path("dunning-data/generated"), help="Output directory."),
) -> None:
    """Generate a synthetic company's ERP export: customers, invoices, payments, actions CSVs
    plus summary.json, from the ground-truth world of a scenario."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from simulations.world import generate_company, load_scenario

    sc = load_scenario(scenario)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory (expected a directory)")
    with Progress(TextColumn("[bold]simulating days after due"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("days", total=sc.horizon_days)
        company = generate_company(sc, customers, months, seed,
                                   progress=lambda done, total: bar.update(task, completed=done))
    paths = company.write(out)
    s = company.summary

    def fmt(x: float | None, pattern: str) -> str:
        return "n/a" if x is None else pattern.format(x)

    console.print(
        f"scenario [bold]{sc.name}[/]: {s['n_customers']} customers, {s['n_invoices']} invoices, "
        f"{s['n_payments']} payments, {s['n_actions']} actions, as of {s['as_of']}\n"
        f"first-reminder pay rate {fmt(s['first_reminder_pay_rate'], '{:.3f}')}, "
        f"mean days invoice to payment {fmt(s['mean_days_invoice_to_payment'], '{:.1f}')}, "
        f"on-time rate {fmt(s['on_time_rate'], '{:.3f}')}"
    )
    console.print("wrote " + ", ".join(str(p) for p in paths))


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dunning app."""
    app.command("generate")(generate)
