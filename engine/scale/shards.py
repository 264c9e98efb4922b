"""Read the Parquet export one *customer shard* at a time.

``dunning export --parquet DIR`` writes the four tables partitioned by month. A model
feature of an invoice needs its customer's whole history (earlier invoices, payments,
reminders), which is spread over many months. So a worker does not take a month: it
takes a shard, ``hash(customer_id) % n_shards == k``, and reads from *every* month file
only its customers' rows (DuckDB scans the Parquet files with the filter pushed down,
streaming, within ``memory_limit``). Payments and actions carry no customer id; they are
taken through a semi-join on the shard's invoices. Each shard then holds the complete
history of its customers, so the per-customer history aggregates and the point-in-time
features computed on it (``engine.features``) are exactly those of a single-machine run,
while a worker never holds more than one shard in memory.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from engine.contract import TABLE_ORDER, TABLES
from engine.errors import DunningError


@dataclass(frozen=True)
class ParquetExport:
    """A folder written by ``dunning export --parquet DIR`` (or ``Store.export_parquet``)."""

    root: Path

    def __post_init__(self) -> None:
        root = Path(self.root)
        object.__setattr__(self, "root", root)
        missing = [t for t in TABLE_ORDER if not (root / t).is_dir()]
        if missing:
            raise DunningError(f"{root}: not a Parquet export (no folder(s) {missing}); "
                               "write one with `dunning export --parquet DIR`")

    def glob(self, table: str) -> str:
        """DuckDB glob of every Parquet file of ``table`` (all months)."""
        return str(self.root / table / "**" / "*.parquet").replace("'", "''")

    def count_invoices(self) -> int:
        import duckdb

        with duckdb.connect() as con:
            return int(con.execute(
                f"SELECT count(*) FROM read_parquet('{self.glob('invoices')}')").fetchone()[0])


def _columns(table: str) -> str:
    return ", ".join(f'"{c.name}"' for c in TABLES[table].columns)


SHARDS_DIR = "_shards"


def shard_layout(export: ParquetExport, n_shards: int) -> Path:
    """Folder of the export re-partitioned by customer shard (``<table>/shard=k/``)."""
    return export.root / SHARDS_DIR / f"n{int(n_shards)}"


def build_shard_layout(export: ParquetExport, n_shards: int, memory_limit: str = "2GB",
                       threads: int = 2) -> Path:
    """Write the export once more, partitioned by ``hash(customer_id) % n_shards`` (payments
    and actions by their invoice's customer), so that reading a shard touches only its own
    files: without it every shard scans every month file, and the total read cost grows with
    shards x data (quadratic in data size). One streaming DuckDB pass (linear; spills to disk
    above ``memory_limit``); atomic (temp folder, then rename); a no-op if already written.
    The folder lives inside the export, so re-exporting the store drops it with the data.
    """
    import shutil
    import tempfile

    import duckdb

    target = shard_layout(export, n_shards)
    if (target / "_complete").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".n{n_shards}.tmp-", dir=target.parent))
    shard = f"hash(customer_id) % {int(n_shards)}"

    def copy(con: duckdb.DuckDBPyConnection, select: str, table: str) -> None:
        con.execute(f"COPY ({select}) TO '{_sql(tmp / table)}' "
                    "(FORMAT PARQUET, PARTITION_BY (shard))")

    try:
        with duckdb.connect() as con:
            con.execute(f"SET memory_limit='{memory_limit}'")
            con.execute(f"SET threads={int(threads)}")
            con.execute("SET preserve_insertion_order=false")
            con.execute("SET enable_progress_bar=false")
            con.execute(f"SET temp_directory='{_sql(tmp / '.spill')}'")
            copy(con, f"SELECT {_columns('customers')}, {shard} AS shard FROM "
                      f"read_parquet('{export.glob('customers')}')", "customers")
            copy(con, f"SELECT {_columns('invoices')}, {shard} AS shard FROM "
                      f"read_parquet('{export.glob('invoices')}', hive_partitioning=false)",
                 "invoices")
            con.execute(f"CREATE TEMP TABLE owner AS SELECT invoice_id, {shard} AS shard FROM "
                        f"read_parquet('{export.glob('invoices')}', hive_partitioning=false)")
            for table in ("payments", "actions"):
                cols = ", ".join(f"t.{c}" for c in _columns(table).split(", "))
                copy(con, f"SELECT {cols}, o.shard FROM read_parquet('{export.glob(table)}', "
                          "hive_partitioning=false) t JOIN owner o USING (invoice_id)", table)
        shutil.rmtree(tmp / ".spill", ignore_errors=True)
        (tmp / "_complete").write_text(str(n_shards))
        if target.exists():  # written meanwhile by another process: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _sql(path: Path) -> str:
    return str(path).replace("'", "''")


def _source(export: ParquetExport, table: str, shard: int, n_shards: int) -> tuple[str, str]:
    """(``FROM`` source, extra ``WHERE`` condition) reading ``table`` rows of ``shard``: the
    shard's own files when :func:`build_shard_layout` wrote them, else a filtered scan of
    every month file."""
    layout = shard_layout(export, n_shards)
    if (layout / "_complete").is_file():
        part = layout / table / f"shard={int(shard)}"
        if not part.is_dir():  # no rows of this table in the shard: empty, with the schema
            return (f"read_parquet('{export.glob(table)}', hive_partitioning=false)", "false")
        return (f"read_parquet('{_sql(part)}/*.parquet', hive_partitioning=false)", "true")
    if table in ("payments", "actions"):  # taken by a semi-join on the shard's invoices
        return (f"read_parquet('{export.glob(table)}', hive_partitioning=false)", "true")
    return (f"read_parquet('{export.glob(table)}', hive_partitioning=false)",
            f"hash(customer_id) % {int(n_shards)} = {int(shard)}")


def read_shard(export: ParquetExport, shard: int, n_shards: int,
               as_of: dt.date | None = None, memory_limit: str = "2GB"
               ) -> dict[str, pd.DataFrame]:
    """The contract tables of the customers in ``shard`` (0..n_shards-1), as known at the
    end of ``as_of`` (same rules as :meth:`engine.store.Store.tables`: later invoices,
    payments and actions left out, disputes opened later hidden).

    Returns ``{"customers", "invoices", "payments", "actions"}`` DataFrames in the
    contract layout (extra mapping columns are not carried).
    """
    import duckdb

    from engine.store import Store, normalize_dtypes

    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} not in 0..{n_shards - 1}")
    inv_when = "" if as_of is None else " AND invoice_date <= $as_of"
    out: dict[str, pd.DataFrame] = {}
    with duckdb.connect() as con:
        con.execute(f"SET memory_limit='{memory_limit}'")
        con.execute("SET threads=1")  # one worker thread per task; parallelism is Dask's
        params = {} if as_of is None else {"as_of": as_of}
        src, cond = _source(export, "customers", shard, n_shards)
        con.execute(f"CREATE TEMP TABLE customers AS SELECT {_columns('customers')} FROM "
                    f"{src} WHERE {cond}")
        src, cond = _source(export, "invoices", shard, n_shards)
        con.execute(f"CREATE TEMP TABLE invoices AS SELECT {_columns('invoices')} FROM "
                    f"{src} WHERE {cond}{inv_when}", params)
        for table, date_col in (("payments", "payment_date"), ("actions", "action_date")):
            when = "" if as_of is None else f" AND {date_col} <= $as_of"
            src, cond = _source(export, table, shard, n_shards)
            con.execute(
                f"CREATE TEMP TABLE {table} AS SELECT {_columns(table)} FROM {src} "
                f"WHERE {cond} AND invoice_id IN (SELECT invoice_id FROM invoices){when}",
                params)
        for table in TABLE_ORDER:
            spec = {c.name: c.dtype for c in TABLES[table].columns}
            frame = con.execute(
                f'SELECT * FROM {table} ORDER BY "{TABLES[table].key}"').df()
            out[table] = normalize_dtypes(frame, spec)
        if as_of is not None:
            out["invoices"] = Store._hide_future_disputes(con, out["invoices"], as_of)
    return out
