"""Benchmark: ingest 1M invoices (CSV) including validation into a fresh DuckDB store.

Writes ``benchmarks/results/ingest.json``. Target: under 30 s for 1M invoices, measured
wall-clock from CSV files on disk to committed rows (reading, validation, reference checks,
bulk insert). The input is generated with numpy (seeded); 0.1 % of the invoice rows are
made invalid on purpose so the quarantine path is exercised too.

Usage: ``.venv/bin/python benchmarks/bench_ingest.py [--invoices N]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from benchmarks.common import write_result
from engine.contract import SEGMENTS
from engine.ingest import ingest
from engine.store import Store

TARGET_SECONDS_PER_MILLION = 30.0


def make_export(folder: Path, n_invoices: int, seed: int = 0) -> tuple[Path, Path, int]:
    """Write customers.csv and invoices.csv; return their paths and the number of bad rows."""
    rng = np.random.default_rng(seed)
    n_customers = max(10, n_invoices // 20)
    cust = pd.DataFrame({
        "customer_id": np.char.add("C", np.arange(n_customers).astype(str)),
        "segment": rng.choice(SEGMENTS, n_customers),
        "jurisdiction": rng.choice(["DE", "AT", "SE", "FR", "GB", "NL"], n_customers),
        "customer_type": rng.choice(["b2b", "b2c"], n_customers, p=[0.9, 0.1]),
    })
    start = np.datetime64("2022-01-01")
    inv_date = start + rng.integers(0, 730, n_invoices).astype("timedelta64[D]")
    due = inv_date + rng.choice([14, 30, 45, 60], n_invoices).astype("timedelta64[D]")
    amount = np.round(rng.lognormal(7, 1.2, n_invoices), 2).astype(str)
    bad = rng.random(n_invoices) < 0.001
    amount[bad] = "-1"  # quarantined: amount must be > 0
    inv = pd.DataFrame({
        "invoice_id": np.char.add("INV", np.arange(n_invoices).astype(str)),
        "customer_id": np.char.add("C", rng.integers(0, n_customers, n_invoices).astype(str)),
        "invoice_date": inv_date.astype(str),
        "due_date": due.astype(str),
        "amount": amount,
        "currency": rng.choice(["EUR", "SEK", "GBP"], n_invoices),
        "disputed": np.where(rng.random(n_invoices) < 0.03, "true", "false"),
    })
    cpath, ipath = folder / "customers.csv", folder / "invoices.csv"
    cust.to_csv(cpath, index=False)
    inv.to_csv(ipath, index=False)
    return cpath, ipath, int(bad.sum())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cpath, ipath, n_bad = make_export(folder, args.invoices)
        store = Store(folder / "db" / "dunning.duckdb")
        t0 = time.perf_counter()
        report = ingest([cpath, ipath], db=store)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = ingest([cpath, ipath], db=store)
        second = time.perf_counter() - t0
        inv = report.tables["invoices"]
        assert inv.quarantined == n_bad and inv.loaded == args.invoices - n_bad
        assert again.loaded == 0 and again.tables["invoices"].already_present == inv.loaded
        size_mb = ipath.stat().st_size / 2**20
    figures = {
        "invoices": args.invoices,
        "customers": report.tables["customers"].rows_in,
        "invoice_csv_mib": round(size_mb, 1),
        "invalid_rows_quarantined": inv.quarantined,
        "ingest_seconds": round(first, 2),
        "ingest_rows_per_second": round((inv.rows_in + report.tables["customers"].rows_in)
                                        / first),
        "target_seconds_for_1m_invoices": TARGET_SECONDS_PER_MILLION,
        "seconds_per_million_invoices": round(first / args.invoices * 1e6, 2),
        "meets_target": first / args.invoices * 1e6 < TARGET_SECONDS_PER_MILLION,
        "reingest_idempotent_seconds": round(second, 2),
        # the machine is shared: the load average says how contended the timing was
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
    }
    print(write_result("ingest", figures).read_text())


if __name__ == "__main__":
    main()
