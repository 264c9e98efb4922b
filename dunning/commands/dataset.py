"""CLI commands of the offline-RL area (see dunning/cli.py): ``dunning dataset export``."""

from __future__ import annotations

from pathlib import Path

import typer

from dunning.commands.common import console, open_store, user_errors
from engine.errors import InputError


@user_errors
def export(
    out: Path = typer.Option(Path("dunning-data/dataset"), help="Output directory."),
    db: Path | None = typer.Option(None, help="Export the ingested history of this store "
                                   "(`dunning ingest`) instead of a generated company."),
    as_of: str | None = typer.Option(None, "--as-of", help="With --db: the history as known "
                                     "on this date YYYY-MM-DD (default: its latest date)."),
    scenario: str = typer.Option("default", help="Scenario (name or YAML): costs and horizon "
                                 "of the rewards; without --db also the generated world."),
    customers: int = typer.Option(300, min=1, help="Generated company: customers."),
    months: int = typer.Option(12, min=1, help="Generated company: months of invoices."),
    seed: int = typer.Option(0, help="Seed of the generated company and of the subset."),
    max_invoices: int | None = typer.Option(None, min=1, help="Keep at most this many "
                                            "episodes (a seeded random subset)."),
    formats: str = typer.Option("parquet,npz,minari", "--format",
                                help="Comma-separated: parquet, npz, minari."),
) -> None:
    """Export the logged transitions of a history as an offline-RL dataset.

    One row per invoice-day of every complete logged episode (an invoice unpaid at its due
    date, horizon over): observation (named columns), logged action, reward, next
    observation, terminal/truncated, the logging propensity (missing where it was not
    logged, never invented), the legal mask, episode (invoice) id and day after due.
    Writes transitions.parquet, transitions.npz and a Minari dataset (docs/offline-rl.md).
    """
    import numpy as np

    from engine.files import atomic_write_json
    from simulations import world
    from simulations.env import LegalMask
    from simulations.ope.dataset import build_logged_dataset, logged_dataset_from_tables
    from simulations.ope.export import FORMATS, MINARI_ID, Transitions

    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory (expected a directory)")
    chosen = [f.strip().lower() for f in formats.split(",") if f.strip()]
    bad = [f for f in chosen if f not in FORMATS] or ([] if chosen else [formats])
    if bad:
        raise InputError(f"--format {bad[0]!r}: expected one or more of {', '.join(FORMATS)}")
    sc = world.load_scenario(scenario)
    if db is not None:
        import datetime as dt

        store = open_store(db)
        day = None
        if as_of is not None:
            try:
                day = dt.date.fromisoformat(as_of)
            except ValueError:
                raise InputError(f"--as-of {as_of!r}: expected a date YYYY-MM-DD") from None
        console.print(f"[dim]replaying the history in {db}[/]")
        data = logged_dataset_from_tables(store.tables(day), sc, day, LegalMask(),
                                          max_invoices, seed)
        source = {"kind": "store", "db": db.name, "as_of": as_of}
    else:
        console.print(f"[dim]generating {customers} customers x {months} months[/]")
        company = world.generate_company(sc, customers, months, seed)
        data = build_logged_dataset(company, LegalMask(), max_invoices, seed)
        source = {"kind": "generated", "customers": customers, "months": months,
                  "seed": seed}
    if data.n == 0:
        raise InputError("no complete logged episode in the history (an invoice unpaid at "
                         f"its due date whose {sc.horizon_days}-day horizon has ended)")
    tr = Transitions.from_dataset(data)
    paths = tr.save(out, chosen)
    missing = float(np.isnan(tr.propensities).mean())
    meta = {"source": source, "scenario": sc.name, "episodes": data.n, "transitions": tr.n,
            "propensity_missing_share": missing, "files": sorted(p.name for p in paths.values()),
            "minari_dataset_id": MINARI_ID if "minari" in paths else None,
            "logged_actions_vetoed_by_todays_rules": data.refused_logged_actions}
    atomic_write_json(out / "dataset.json", meta)
    console.print(f"{data.n} episodes, {tr.n} transitions ({missing:.1%} without a logged "
                  f"propensity) -> {', '.join(str(p) for p in paths.values())}")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Offline-RL datasets from the logged history.",
                        no_args_is_help=True)
    group.command("export")(export)
    app.add_typer(group, name="dataset")
