"""CLI commands of the model area: ``train-model``, ``predict``, ``customers``.

``--as-of D`` means "at the end of day D" (the store's convention): features then use
every fact dated D or earlier. Default: the latest date in the store.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer

from dunning.commands.common import console, evaluation_table, user_errors
from engine.config import DEFAULT_DB
from engine.errors import DunningError


def _split(fields: str | None) -> tuple[str, ...]:
    return tuple(f.strip() for f in (fields or "").split(",") if f.strip())


def load_tables(db: Path, as_of: dt.datetime | None) -> tuple[dict[str, Any], dt.date]:
    """The store's tables known at the end of ``as_of`` (default: its latest date)."""
    from engine.store import Store

    if not db.is_file():
        raise DunningError(f"--db {db}: no store file found; run `dunning ingest FILES --db "
                           f"{db}` (or `dunning generate` then ingest) first")
    store = Store(db)
    latest = store.latest_date()
    if latest is None:
        raise DunningError(f"--db {db}: the store is empty; ingest invoices first "
                           "(`dunning ingest FILES`)")
    day = latest if as_of is None else as_of.date()
    if isinstance(day, dt.datetime):
        day = day.date()
    tables = store.tables(as_of=day)
    if len(tables["invoices"]) == 0:
        raise DunningError(f"--as-of {day}: before any data (no invoice dated on or before it; "
                           f"the latest date in the store is {latest}); choose a later date")
    return tables, day


@user_errors
def train_model(
    out: Path = typer.Option(..., "--out", help="Artifact directory to write."),
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store file."),
    as_of: dt.datetime = typer.Option(None, "--as-of", formats=["%Y-%m-%d"],
                                      help="Train on what was known at the end of this day "
                                      "(default: latest date in the store)."),
    very_late_days: int = typer.Option(30, "--very-late-days", min=0,
                                       help="N: late = 1..N days, very late = more; 0 = binary."),
    exclude_fields: str = typer.Option(None, "--exclude-fields",
                                       help="Comma-separated features to leave out."),
    include_fields: str = typer.Option(None, "--include-fields",
                                       help="Comma-separated opt-in features, e.g. "
                                       "disputed_flag."),
    hazard: bool = typer.Option(True, "--hazard/--no-hazard",
                                help="Also train the daily hazard model (same directory)."),
    seed: int = typer.Option(0, help="Random seed."),
    cluster: str = typer.Option(None, "--cluster", help="Train on a Dask cluster: `local` "
                                "or a scheduler address (see docs/scale-out.md)."),
) -> None:
    """Train the payment model (and the daily hazard model), evaluate on a time split and
    save a versioned artifact with a model card."""
    if cluster is not None:  # scale-out: lightgbm.dask on the store's Parquet export
        from dunning.commands.cluster import train_on_cluster

        train_on_cluster(cluster, db, as_of, out, very_late_days, _split(include_fields),
                         _split(exclude_fields), seed, hazard)
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from engine.models.training import TrainConfig, train_artifact

    tables, day = load_tables(db, as_of)
    cfg = TrainConfig(very_late_days=very_late_days, include_fields=_split(include_fields),
                      exclude_fields=_split(exclude_fields), hazard=hazard, seed=seed)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("preparing", total=None)
        result = train_artifact(tables, out, as_of=day + dt.timedelta(days=1), cfg=cfg,
                                progress=lambda msg: bar.update(task, description=msg))
    console.print(evaluation_table(result.card["evaluation"]))
    console.print(f"model [bold]{result.hash}[/] written to {result.out_dir} "
                  f"(model_card.md, model_card.json)", highlight=False)


@user_errors
def predict(
    model: Path = typer.Option(..., "--model", help="Artifact directory from train-model."),
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store file."),
    as_of: dt.datetime = typer.Option(None, "--as-of", formats=["%Y-%m-%d"],
                                      help="Score invoices open at the end of this day "
                                      "(default: latest date in the store)."),
    out: Path = typer.Option(None, "--out", help="Write all rows to FILE.csv or FILE.parquet."),
    top: int = typer.Option(15, "--top", min=0, help="Riskiest invoices shown (and explained)."),
    cluster: str = typer.Option(None, "--cluster", help="Score on a Dask cluster: `local` "
                                "or a scheduler address (see docs/scale-out.md)."),
) -> None:
    """P(on time / late / very late) for every open invoice, with top risk factors."""
    from engine.models.payment import PaymentModel
    from engine.models.predict import score_open_invoices

    m = PaymentModel.load(model)
    if cluster is not None:  # scale-out: scored shard by shard from the Parquet export
        from dunning.commands.cluster import predict_on_cluster

        scored, day = predict_on_cluster(cluster, db, as_of, m, top)
    else:
        tables, day = load_tables(db, as_of)
        scored = score_open_invoices(tables, m, day + dt.timedelta(days=1), explain_top=top)
    if out is not None:
        _write(scored, out)
    _print_invoices(scored, top, day, m)


@user_errors
def customers(
    model: Path = typer.Option(..., "--model", help="Artifact directory from train-model."),
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store file."),
    as_of: dt.datetime = typer.Option(None, "--as-of", formats=["%Y-%m-%d"]),
    out: Path = typer.Option(None, "--out", help="Write all rows to FILE.csv or FILE.parquet."),
    top: int = typer.Option(15, "--top", min=0, help="Customers shown."),
) -> None:
    """Per customer: open balance, expected amounts per bucket, share predicted late and
    payment history."""
    from engine.features import prepare_tables
    from engine.models.payment import PaymentModel
    from engine.models.predict import customer_summary, score_open_invoices

    m = PaymentModel.load(model)
    tables, day = load_tables(db, as_of)
    p = prepare_tables(tables)
    scored = score_open_invoices(p, m, day + dt.timedelta(days=1), explain_top=0)
    summary = customer_summary(scored, p, day + dt.timedelta(days=1))
    if out is not None:
        _write(summary, out)
    from rich.table import Table

    t = Table(title=f"customers by expected very-late amount, as of {day} (model {m.hash_})")
    cols = ("customer_id", "open_invoices", "open_balance", "expected_on_time", "expected_late",
            "expected_very_late", "share_predicted_late", "invoices_paid", "paid_late",
            "avg_days_late", "trend_days_late")
    for c in cols:
        t.add_column(c.replace("_", " "), justify="left" if c == "customer_id" else "right")
    for _, r in summary.head(top).iterrows():
        t.add_row(*(_fmt(r[c]) for c in cols))
    console.print(t)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "-" if v != v else f"{v:,.2f}"
    return str(v)


def _write(frame: Any, out: Path) -> None:
    """Atomic write as CSV or Parquet by suffix."""
    if out.suffix not in (".csv", ".parquet"):
        raise DunningError(f"--out {out}: unknown file type {out.suffix!r}; expected .csv or "
                           ".parquet")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if out.suffix == ".csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_parquet(tmp, index=False)
    tmp.replace(out)
    console.print(f"wrote {len(frame)} rows to {out}", highlight=False)


def _print_invoices(scored: Any, top: int, day: dt.date, model: Any) -> None:
    from rich.table import Table

    n_risk = int(scored["at_risk"].sum()) if len(scored) else 0
    t = Table(title=f"riskiest open invoices as of {day}: {len(scored)} open, {n_risk} at risk "
                    f"(model {model.hash_})")
    for c in ("invoice", "customer", "overdue", "balance", "on time", "late", "very late",
              "top factors (+ raises risk)"):
        t.add_column(c, justify="left" if c in ("invoice", "customer") or c.startswith("top")
                     else "right", no_wrap=not c.startswith("top"))
    for _, r in scored.head(top).iterrows():
        t.add_row(r["invoice_id"], r["customer_id"], str(r["days_overdue"]),
                  f"{r['balance']:,.2f}", f"{r['p_on_time']:.2f}", f"{r['p_late']:.2f}",
                  f"{r['p_very_late']:.2f}", r["factors"])
    console.print(t)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dunning app."""
    app.command("train-model")(train_model)
    app.command("predict")(predict)
    app.command("customers")(customers)
