"""CLI commands of the data area: ``dunning ingest`` and ``dunning export``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dunning.commands.common import console, user_errors
from engine.config import DEFAULT_DB
from engine.errors import DunningError

if TYPE_CHECKING:
    from engine.ingest import IngestReport


@user_errors
def ingest(
    paths: list[Path] = typer.Argument(..., help="CSV or Parquet files (customers, invoices, "
                                       "payments, actions; or any export with --mapping)."),
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store file."),
    mapping: str = typer.Option(None, "--mapping", help="Mapping YAML for an ERP export, or "
                                "the name of a shipped one (ibm_ar, sap_fi, "
                                "business_central, datev_opos, lexware)."),
) -> None:
    """Validate export files and load them into the store; bad rows go to quarantine."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from engine.ingest import ingest as run_ingest

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        progress.add_task(f"validating and loading {len(paths)} file(s)", total=None)
        report = run_ingest(paths, db=db, mapping=mapping)
    print_report(report)
    if report.loaded + report.already_present == 0:
        where = ", ".join(map(str, report.quarantine_files)) or "quarantine"
        raise DunningError(f"nothing could be loaded from {', '.join(map(str, paths))}: "
                           f"{report.quarantined} row(s) rejected, see {where}")


def print_report(report: IngestReport) -> None:
    """Rich summary: rows in / loaded / already present / quarantined per table."""
    from rich.table import Table

    t = Table(title=f"ingest into {report.db}")
    for col in ("table", "rows in", "loaded", "already present", "quarantined", "notes"):
        t.add_column(col, justify="left" if col in ("table", "notes") else "right")
    for r in report.tables.values():
        if not (r.rows_in or r.merged or r.skipped):
            continue
        notes = []
        if r.merged:
            notes.append(f"{r.merged} identical rows merged")
        if r.skipped:
            notes.append(f"{r.skipped} rows not for this table (filter)")
        t.add_row(r.table, str(r.rows_in), str(r.loaded), str(r.already_present),
                  f"[red]{r.quarantined}[/]" if r.quarantined else "0", "; ".join(notes))
    console.print(t)
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    for path in report.quarantine_files:
        console.print(f"rejected rows with line, field and reason: [bold]{path}[/]",
                      highlight=False)


@user_errors
def export(
    parquet: Path = typer.Option(None, "--parquet", help="Output folder (replaced atomically)."),
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store file."),
    recommendations: Path = typer.Option(None, "--recommendations", help="Write a day's "
                                         "recommendations to this CSV for the ERP instead."),
    as_of: str = typer.Option(None, "--as-of", help="Day of the recommendations "
                              "(YYYY-MM-DD; default: the latest stored)."),
    layout: str = typer.Option("generic", "--layout", help="ERP layout of --recommendations: "
                               "generic, sap_fi, business_central, datev, lexware."),
) -> None:
    """Write the four tables as Parquet, or a day's recommendations as an ERP import CSV."""
    from engine.store import Store

    if not db.exists():
        raise DunningError(f"{db}: store not found; run `dunning ingest` first")
    if (parquet is None) == (recommendations is None):
        raise DunningError("give exactly one of --parquet DIR or --recommendations FILE.csv")
    if recommendations is not None:
        import datetime as dt

        from dunning.business.erp_export import export_recommendations

        try:
            day = None if as_of is None else dt.date.fromisoformat(as_of)
        except ValueError:
            raise DunningError(f"--as-of: found {as_of!r}, expected a date YYYY-MM-DD"
                               ) from None
        done = export_recommendations(db, recommendations, day, layout)
        console.print(f"{done.rows} recommendations of {done.as_of} -> {done.path} "
                      f"({done.layout}: {', '.join(done.columns)})", highlight=False)
        if done.held:
            console.print(f"[yellow]{len(done.held)} row(s) left out: their human review is "
                          "not approved[/] (`dunning review list`): " + ", ".join(
                              f"{h['invoice_id']} {h['action']} (review {h['review_id'] or '-'}"
                              f" {h['status']})" for h in done.held[:20])
                          + (" ..." if len(done.held) > 20 else ""), highlight=False)
        return
    counts = Store(db).export_parquet(parquet)
    for name, n in counts.items():
        console.print(f"{name}: {n} rows -> {parquet / name}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dunning app."""
    app.command("ingest")(ingest)
    app.command("export")(export)
