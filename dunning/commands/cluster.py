"""The ``--cluster`` branches of ``train-model`` and ``predict`` (called from
dunning/commands/model.py; ``simulate``/``evaluate`` call
:func:`simulations.evaluation.distributed.evaluate_policies_distributed`).

The workers read the store's Parquet export, not the DuckDB file: it is written next to
the store (``<db>.parquet/``) and refreshed when the store is newer. Remote workers must
see that path (a shared file system), the same as the client.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from engine.errors import DunningError
from engine.scale.shards import ParquetExport


def store_export(db: Path) -> ParquetExport:
    """The Parquet export of ``db`` (``<db>.parquet/``), rewritten if older than the store."""
    from engine.store import Store

    if not db.is_file():
        raise DunningError(f"--db {db}: no store file found; run `dunning ingest FILES --db "
                           f"{db}` first")
    target = db.with_name(db.name + ".parquet")
    stamp = target / ".source_mtime"
    mtime = str(db.stat().st_mtime_ns)
    if not (stamp.is_file() and stamp.read_text() == mtime):
        Store(db).export_parquet(target)
        stamp.write_text(mtime)
    return ParquetExport(target)


def known_day(db: Path, as_of: dt.datetime | dt.date | None) -> dt.date:
    """The last day whose facts are used: ``--as-of`` or the store's latest date."""
    from engine.store import Store

    latest = Store(db).latest_date()
    if latest is None:
        raise DunningError(f"--db {db}: the store is empty; ingest invoices first")
    if as_of is None:
        day = latest
    else:
        day = as_of.date() if isinstance(as_of, dt.datetime) else as_of
    return day.date() if isinstance(day, dt.datetime) else day


def train_on_cluster(cluster: str, db: Path, as_of: Any, out: Path, very_late_days: int,
                     include: tuple[str, ...], exclude: tuple[str, ...], seed: int,
                     hazard: bool) -> None:
    """``dunning train-model --cluster``: prints the evaluation table like the local run."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from dunning.commands.common import console, evaluation_table
    from engine.scale.cluster import connect
    from engine.scale.train import DistributedTrainConfig, train_artifact_distributed

    export = store_export(db)
    day = known_day(db, as_of)
    cfg = DistributedTrainConfig(very_late_days=very_late_days, include_fields=include,
                                 exclude_fields=exclude, seed=seed, hazard=hazard)
    with connect(cluster) as client, Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
            console=console, transient=True) as bar:
        task = bar.add_task("connecting", total=None)
        result = train_artifact_distributed(
            client, export, out, day, cfg,
            progress=lambda msg: bar.update(task, description=msg))

    console.print(evaluation_table(result.card["evaluation"]))
    on = result.card["trained_on"]
    console.print(f"model [bold]{result.hash}[/] written to {result.out_dir} (model_card.md; "
                  f"trained on {on['workers']} Dask worker(s): {on['rows_fitted']:,} of "
                  f"{on['rows_built']:,} snapshot rows fitted)", highlight=False)


def predict_on_cluster(cluster: str, db: Path, as_of: Any, model: Any, top: int,
                       at_risk_threshold: float = 0.5) -> Any:
    """``dunning predict --cluster``: the scored open invoices (same frame as locally)
    and the day they were scored at."""
    from engine.scale.cluster import connect
    from engine.scale.score import score_distributed

    export = store_export(db)
    day = known_day(db, as_of)
    with connect(cluster) as client:
        return score_distributed(client, export, model, day, explain_top=top,
                                 at_risk_threshold=at_risk_threshold, outlook=True), day
