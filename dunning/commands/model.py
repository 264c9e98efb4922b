"""CLI commands of the model area: ``train-model``, ``evaluate-model``, ``predict``,
``customers``.

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
    customer_response: bool = typer.Option(
        False, "--customer-response/--no-customer-response",
        help="The hazard model also estimates each customer's own reminder response from "
        "its history, shrunk toward its segment, so the planner times customers "
        "individually (docs/rl.md, Individual timing)."),
    seed: int = typer.Option(0, help="Random seed."),
    cluster: str = typer.Option(None, "--cluster", help="Train on a Dask cluster: `local` "
                                "or a scheduler address (see docs/scale-out.md)."),
    select: bool = typer.Option(True, "--select/--lightgbm-only",
                                help="Choose LightGBM, logistic regression or the history "
                                "rule by time-series cross-validation (default), or train "
                                "the pipeline's LightGBM only (as `dunning demo` does)."),
    rows: str = typer.Option("weighted", "--rows",
                             help="Training rows with --select: weighted (every scoring "
                             "horizon, weighted alike), invoice (invoice date only) or "
                             "snapshots (unweighted)."),
) -> None:
    """Train the payment model (and the daily hazard model), evaluate on a time split and
    save a versioned artifact with a model card."""
    if cluster is not None and customer_response:
        raise DunningError("--customer-response is not available with --cluster yet; "
                           "train without --cluster")
    if cluster is not None:  # scale-out: lightgbm.dask on the store's Parquet export
        from dunning.commands.cluster import train_on_cluster

        train_on_cluster(cluster, db, as_of, out, very_late_days, _split(include_fields),
                         _split(exclude_fields), seed, hazard)
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from engine.models.training import train_artifact

    tables, day = load_tables(db, as_of)
    cfg = _config(very_late_days, include_fields, exclude_fields, seed, select, rows,
                  hazard=hazard, hazard_params=({"customer_response": True}
                                                if customer_response else {}))
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("preparing", total=None)
        result = train_artifact(tables, out, as_of=day + dt.timedelta(days=1), cfg=cfg,
                                progress=lambda msg: bar.update(task, description=msg))
    console.print(evaluation_table(result.card["evaluation"]))
    if "selection" in result.card:
        sel = result.card["selection"]
        console.print(f"shipped [bold]{sel['champion']}[/] (lowest log loss in time-series "
                      f"cross-validation); winners: " + ", ".join(
                          f"{k}: {v}" for k, v in sel["winners"].items()), highlight=False)
    console.print(f"model [bold]{result.hash}[/] written to {result.out_dir} "
                  f"(model_card.md, model_card.json)", highlight=False)


def _config(very_late_days: int, include_fields: str | None, exclude_fields: str | None,
            seed: int, select: bool, rows: str, **kw: Any) -> Any:
    from engine.models.training import ROW_DESIGNS, TrainConfig

    if rows not in ROW_DESIGNS:
        raise DunningError(f"--rows {rows!r}: expected one of {', '.join(ROW_DESIGNS)}")
    common = {"very_late_days": very_late_days, "include_fields": _split(include_fields),
              "exclude_fields": _split(exclude_fields), "seed": seed, **kw}
    return TrainConfig.recommended(rows=rows, **common) if select else TrainConfig(**common)


@user_errors
def evaluate_model(
    cut: dt.datetime = typer.Option(..., "--cut", formats=["%Y-%m-%d"],
                                    help="Train on what was known before this day; score "
                                    "every invoice issued on or after it at its invoice date."),
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store file."),
    very_late_days: int = typer.Option(30, "--very-late-days", min=0,
                                       help="N: late = 1..N days, very late = more; 0 = binary."),
    exclude_fields: str = typer.Option(None, "--exclude-fields",
                                       help="Comma-separated features to leave out."),
    include_fields: str = typer.Option(None, "--include-fields",
                                       help="Comma-separated opt-in features."),
    rows: str = typer.Option("weighted", "--rows", help="Training rows, as train-model."),
    out: Path = typer.Option(None, "--out", help="Write the evaluation to FILE.json."),
    report: Path = typer.Option(None, "--report", help="Write the evaluation as a "
                                "self-contained HTML page to DIR/index.html (metrics next to "
                                "the baselines, calibration, MAE of days)."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Time-split evaluation on the ingested ledger: the shipped model next to global-mean,
    customer-mean and logistic-regression baselines (classification and days)."""
    import json

    from engine.models.evaluation import evaluate_cut

    if out is not None and out.suffix != ".json":
        raise DunningError(f"--out {out}: expected a .json file")

    tables, _ = load_tables(db, None)
    cfg = _config(very_late_days, include_fields, exclude_fields, seed, True, rows,
                  hazard=False)
    with console.status("training before the cut and scoring after it"):
        ev = evaluate_cut(tables, cut.date(), cfg)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(ev, indent=2, default=str))
        tmp.replace(out)
    _print_evaluation(ev)
    if out is not None:
        console.print(f"wrote {out}", highlight=False)
    if report is not None:
        from dunning.report import write_evaluation_report

        # the page is rendered from the JSON form, as `dunning report` reads it back
        index = write_evaluation_report(json.loads(json.dumps(ev, default=str)), report)
        console.print(f"report written to {index}", highlight=False)


def _print_evaluation(ev: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(title=f"trained before {ev['cut']} ({ev['train_invoices']:,} invoices), "
                    f"scored {ev['test_invoices']:,} invoices issued from it at their invoice "
                    f"date (late share {ev['test_late_share']:.0%}); shipped: {ev['shipped']}")
    cols = ("accuracy", "late_f1", "auc_late", "log_loss", "brier", "mae_days_to_pay",
            "mae_days_late")
    t.add_column("model")
    for c in cols:
        t.add_column(c.replace("_", " "), justify="right")
    for name, m in ev["models"].items():
        cells = [_fmt(m.get(c, float("nan"))) if c.startswith("mae") else
                 "-" if m.get(c) is None or m.get(c) != m.get(c) else f"{m[c]:.3f}"
                 for c in cols]
        t.add_row(name + (" (shipped)" if name == ev["shipped"] else ""), *cells)
    console.print(t)
    shipped = ev["models"][ev["shipped"]]
    console.print(f"shipped model's late F1 at its cross-validated threshold "
                  f"{ev['threshold']:.2f}: {shipped['late_f1_at_threshold']:.3f}",
                  highlight=False)
    for h, r in ev.get("horizons", {}).items():
        m = r["models"][ev["shipped"]]
        console.print(f"at {h}: {r['n']:,} invoices still unpaid (late share "
                      f"{r['late_share']:.0%}): accuracy {m['accuracy']:.3f}, log loss "
                      f"{m['log_loss']:.3f}, AUC {m['auc_late']:.3f}", highlight=False)


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
    at_risk_threshold: float = typer.Option(0.5, "--at-risk-threshold", min=0.0, max=1.0,
                                            help="at_risk = P(on time) below this (also for "
                                            "invoices not yet due)."),
    attention: int = typer.Option(10, "--attention", min=0,
                                  help="Needs-attention list shown: the largest expected "
                                  "losses (balance x P(very late))."),
) -> None:
    """P(on time / late / very late) for every open invoice, with top risk factors, the
    predicted payment date and days late (80 % interval) and a needs-attention list."""
    from engine.models.payment import PaymentModel
    from engine.models.predict import score_open_invoices

    m = PaymentModel.load(model)
    if cluster is not None:  # scale-out: scored shard by shard from the Parquet export
        from dunning.commands.cluster import predict_on_cluster

        scored, day = predict_on_cluster(cluster, db, as_of, m, top, at_risk_threshold)
    else:
        tables, day = load_tables(db, as_of)
        scored = score_open_invoices(tables, m, day + dt.timedelta(days=1), explain_top=top,
                                     at_risk_threshold=at_risk_threshold, outlook=True)
    if out is not None:
        _write(scored, out)
    _print_invoices(scored, top, day, m, at_risk_threshold)
    if attention and "attention_rank" in scored.columns and len(scored):
        _print_attention(scored, attention)


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


def _print_invoices(scored: Any, top: int, day: dt.date, model: Any,
                    threshold: float = 0.5) -> None:
    from rich.table import Table

    n_risk = int(scored["at_risk"].sum()) if len(scored) else 0
    not_due = scored["days_overdue"] <= 0 if len(scored) else scored["at_risk"]
    n_nd, n_nd_risk = int(not_due.sum()), int((scored["at_risk"] & not_due).sum())
    t = Table(title=f"riskiest open invoices as of {day}: {len(scored)} open, {n_risk} at risk "
                    f"(P(on time) < {threshold:g}; {n_nd_risk} of the {n_nd} not yet due) "
                    f"(model {model.hash_})")
    outlook = "predicted_payment_date" in scored.columns
    cols = ["invoice", "customer", "overdue", "balance", "on time", "late", "very late"]
    if outlook:
        cols += ["pay date", "days late (80 %)"]
    for c in [*cols, "top factors (+ raises risk)"]:
        t.add_column(c, justify="left" if c in ("invoice", "customer", "pay date")
                     or c.startswith("top") else "right", no_wrap=not c.startswith("top"))
    for _, r in scored.head(top).iterrows():
        cells = [r["invoice_id"], r["customer_id"], str(r["days_overdue"]),
                 f"{r['balance']:,.2f}", f"{r['p_on_time']:.2f}", f"{r['p_late']:.2f}",
                 f"{r['p_very_late']:.2f}"]
        if outlook:
            cells += _outlook_cells(r)
        t.add_row(*cells, r["factors"])
    console.print(t)


def _outlook_cells(r: Any) -> list[str]:
    if r["predicted_payment_date"] is None or r["predicted_days_late"] != r["predicted_days_late"]:
        return ["-", "-"]
    return [str(r["predicted_payment_date"]),
            f"{r['predicted_days_late']:.0f} [{r['days_late_low']:.0f}, "
            f"{r['days_late_high']:.0f}]"]


def _print_attention(scored: Any, n: int) -> None:
    from rich.table import Table

    top = scored.sort_values("attention_rank").head(n)
    t = Table(title="needs attention: largest expected loss (balance x P(very late))")
    for c in ("rank", "invoice", "customer", "overdue", "balance", "expected loss"):
        t.add_column(c, justify="left" if c in ("invoice", "customer") else "right")
    for _, r in top.iterrows():
        t.add_row(str(r["attention_rank"]), r["invoice_id"], r["customer_id"],
                  str(r["days_overdue"]), f"{r['balance']:,.2f}", f"{r['expected_loss']:,.2f}")
    console.print(t)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dunning app."""
    app.command("train-model")(train_model)
    app.command("evaluate-model")(evaluate_model)
    app.command("predict")(predict)
    app.command("customers")(customers)
