"""CLI commands of the data area: ``dunning ingest`` and ``dunning export``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dunning.commands.common import console, err_console, user_errors
from engine.config import DEFAULT_DB
from engine.errors import DunningError, InputError

if TYPE_CHECKING:
    from engine.ingest import IngestReport


EXIT_QUARANTINED = 3
"""`dunning ingest` exit code: rows were quarantined (the rest is loaded)."""
EXIT_TABLE_EMPTY = 4
"""`dunning ingest` exit code: a table of the input loaded nothing (every row quarantined),
or the store has no customers or no invoices after the ingest."""


@user_errors
def ingest(
    paths: list[Path] = typer.Argument(..., help="CSV or Parquet files (customers, invoices, "
                                       "payments, actions; or any export with --mapping)."),
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store file."),
    mapping: str = typer.Option(None, "--mapping", help="Mapping YAML for an ERP export, or "
                                "the name of a shipped one (ibm_ar, sap_fi, "
                                "business_central, datev_opos, lexware)."),
    effective: str = typer.Option(None, "--effective", help="Day changed customer or invoice "
                                  "rows take effect, YYYY-MM-DD (default: today UTC); the "
                                  "old version stays valid before it."),
) -> None:
    """Validate export files and load them into the store; bad rows go to quarantine.

    Exit codes: 0 all rows loaded (or already present, or updated); 2 a file is not a
    table (nothing loaded); 3 rows were quarantined; 4 a table loaded nothing or the store
    has no customers or invoices afterwards. Changed master data is a new version (audited).
    """
    import datetime as dt

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from dunning.ops.events import audit_master_data
    from engine.ingest import ingest as run_ingest
    from engine.store import Store

    try:
        day = None if effective is None else dt.date.fromisoformat(effective)
    except ValueError:
        raise InputError(f"--effective {effective!r}: expected a date YYYY-MM-DD") from None
    store = Store(db)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        progress.add_task(f"validating and loading {len(paths)} file(s)", total=None)
        report = run_ingest(paths, db=store, mapping=mapping, effective=day)
    audit_master_data(store, report)
    print_report(report)
    code = exit_code(report, store.counts())
    if code == EXIT_TABLE_EMPTY:
        empty = [t.table for t in report.tables.values()
                 if t.rows_in and t.loaded + t.already_present + t.updated == 0]
        where = ", ".join(map(str, report.quarantine_files)) or "quarantine"
        what = (f"nothing could be loaded into {', '.join(empty)}: "
                f"{report.quarantined} row(s) rejected, see {where}") if empty else \
            "the store has no customers or no invoices; ingest them first"
        err_console.print(f"[bold red]error:[/] {what}", highlight=False, soft_wrap=True)
    elif code == EXIT_QUARANTINED:
        err_console.print(f"[yellow]warning:[/] {report.quarantined} row(s) quarantined "
                          f"(exit code {EXIT_QUARANTINED})", highlight=False)
    if code:
        raise typer.Exit(code=code)


def exit_code(report: IngestReport, counts: dict[str, int]) -> int:
    """0, :data:`EXIT_QUARANTINED` or :data:`EXIT_TABLE_EMPTY` (which wins) for a report."""
    for t in report.tables.values():
        if t.rows_in and t.loaded + t.already_present + t.updated == 0:
            return EXIT_TABLE_EMPTY
    if not counts.get("customers") or not counts.get("invoices"):
        return EXIT_TABLE_EMPTY
    return EXIT_QUARANTINED if report.quarantined else 0


def print_report(report: IngestReport) -> None:
    """Rich summary: rows in / loaded / already present / quarantined per table."""
    from rich.table import Table

    t = Table(title=f"ingest into {report.db}")
    for col in ("table", "rows in", "loaded", "already present", "updated", "quarantined",
                "notes"):
        t.add_column(col, justify="left" if col in ("table", "notes") else "right")
    for r in report.tables.values():
        if not (r.rows_in or r.merged or r.skipped):
            continue
        notes = []
        if r.merged:
            notes.append(f"{r.merged} identical rows merged")
        if r.skipped:
            notes.append(f"{r.skipped} rows not for this table (filter)")
        if r.overpaid:
            notes.append(f"{r.overpaid} payment(s) above the invoice amount: "
                         f"{r.interest_fees:.2f} booked as interest and fees")
        t.add_row(r.table, str(r.rows_in), str(r.loaded), str(r.already_present),
                  str(r.updated), f"[red]{r.quarantined}[/]" if r.quarantined else "0",
                  "; ".join(notes))
    console.print(t)
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    for r in report.tables.values():
        if r.changes:
            shown = "; ".join(f"{k} ({', '.join(f)})" for k, f in r.changes[:10])
            more = f" and {len(r.changes) - 10} more" if len(r.changes) > 10 else ""
            console.print(f"{r.table}: {r.updated} row(s) updated, effective "
                          f"{report.effective}: {shown}{more}", highlight=False, markup=False)
    for r in report.tables.values():
        if not r.quarantined:
            continue
        console.print(f"{r.table}: {r.quarantined} row(s) quarantined; top reasons:",
                      highlight=False)
        for reason, n in r.top_reasons:
            console.print(f"  {n:>7} x {reason}", highlight=False, markup=False)
        console.print(f"  all rejected rows with line, field and reason: "
                      f"[bold]{r.quarantine_file}[/]", highlight=False)


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
