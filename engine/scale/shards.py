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
    in_shard = f"hash(customer_id) % {int(n_shards)} = {int(shard)}"
    inv_when = "" if as_of is None else " AND invoice_date <= $as_of"
    out: dict[str, pd.DataFrame] = {}
    with duckdb.connect() as con:
        con.execute(f"SET memory_limit='{memory_limit}'")
        con.execute("SET threads=1")  # one worker thread per task; parallelism is Dask's
        params = {} if as_of is None else {"as_of": as_of}
        con.execute(f"CREATE TEMP TABLE customers AS SELECT {_columns('customers')} FROM "
                    f"read_parquet('{export.glob('customers')}') WHERE {in_shard}")
        con.execute(f"CREATE TEMP TABLE invoices AS SELECT {_columns('invoices')} FROM "
                    f"read_parquet('{export.glob('invoices')}', hive_partitioning=false) "
                    f"WHERE {in_shard}{inv_when}", params)
        for table, date_col in (("payments", "payment_date"), ("actions", "action_date")):
            when = "" if as_of is None else f" AND {date_col} <= $as_of"
            con.execute(
                f"CREATE TEMP TABLE {table} AS SELECT {_columns(table)} FROM "
                f"read_parquet('{export.glob(table)}', hive_partitioning=false) "
                f"WHERE invoice_id IN (SELECT invoice_id FROM invoices){when}", params)
        for table in TABLE_ORDER:
            spec = {c.name: c.dtype for c in TABLES[table].columns}
            frame = con.execute(
                f'SELECT * FROM {table} ORDER BY "{TABLES[table].key}"').df()
            out[table] = normalize_dtypes(frame, spec)
        if as_of is not None:
            out["invoices"] = Store._hide_future_disputes(con, out["invoices"], as_of)
    return out
