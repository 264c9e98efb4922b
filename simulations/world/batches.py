"""Generate a large company in independent customer batches, with bounded memory.

:func:`~simulations.world.generate.generate_company` holds every invoice of the company (and
its simulation arrays) in one process: fine for a few million invoices, not for tens of
millions. Customers are independent in the world (an invoice's dynamics depend only on its
own customer's draws), so a company of ``n_customers`` is the union of batches, each a
``generate_company`` of ``batch_customers`` customers with its own seed, whose ids are
renumbered to follow the previous batches (``C000001..``, ``INV00000001..``, ``PAY..``,
``ACT..``). Every batch goes straight into a DuckDB store through the normal ``ingest``
(validated like any ERP export), so peak memory is that of one batch.

Same arguments => identical store. The result is not row-for-row the one-process
``generate_company(n_customers)`` (the random streams differ) but has the same distribution.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from simulations.world.generate import Company, generate_company
from simulations.world.scenario import Scenario

BatchProgressFn = Callable[[int, int], None]


@dataclasses.dataclass
class _Offsets:
    """How many customers / invoices / payments / actions earlier batches used."""

    customers: int = 0
    invoices: int = 0
    payments: int = 0
    actions: int = 0


def _renumber(ids: pd.Series, prefix: str, width: int, offset: int) -> np.ndarray:
    """``PREFIX000042`` -> ``PREFIX{42 + offset:0width}`` (vectorised)."""
    num = ids.str.slice(len(prefix)).astype(np.int64).to_numpy() + offset
    return np.char.add(prefix, np.char.zfill(num.astype(str), width))


def _shift(company: Company, off: _Offsets) -> Company:
    """The batch's tables with ids following the earlier batches (in place)."""
    cust, inv = company.customers, company.invoices
    new_cust = _renumber(cust["customer_id"], "C", 6, off.customers)
    # the generator's names embed the id ("Company C000001 GmbH", "Person C000001")
    cust["name"] = [n.replace(o, c) for n, o, c in zip(cust["name"], cust["customer_id"],
                                                        new_cust, strict=True)]
    cust["customer_id"] = new_cust
    inv["customer_id"] = _renumber(inv["customer_id"], "C", 6, off.customers)
    inv["invoice_id"] = _renumber(inv["invoice_id"], "INV", 8, off.invoices)
    for table, key, prefix, n_before in (("payments", "payment_id", "PAY", off.payments),
                                         ("actions", "action_id", "ACT", off.actions)):
        frame = getattr(company, table)
        frame[key] = _renumber(frame[key], prefix, 8, n_before)
        frame["invoice_id"] = _renumber(frame["invoice_id"], "INV", 8, off.invoices)
    return company


def batch_seed(seed: int, batch: int) -> int:
    """Independent seed of batch ``batch`` (a SeedSequence child, stable across versions)."""
    return int(np.random.SeedSequence([seed, batch]).generate_state(1)[0])


def generate_batches(scenario: Scenario, n_customers: int, months: int, seed: int,
                     batch_customers: int = 60_000) -> Iterator[Company]:
    """Yield the company of ``n_customers`` as consecutive batches of at most
    ``batch_customers`` customers (ids already renumbered; ``params``/``outcomes`` are the
    batch's own). About 16 invoices per customer-year in the default scenario, so the
    default batch is ~1M invoices over 12 months."""
    if n_customers < 1 or batch_customers < 1:
        raise ValueError("n_customers and batch_customers must be >= 1")
    off = _Offsets()
    for b, start in enumerate(range(0, n_customers, batch_customers)):
        n = min(batch_customers, n_customers - start)
        company = _shift(generate_company(scenario, n, months, batch_seed(seed, b)), off)
        yield company
        off = _Offsets(off.customers + n, off.invoices + len(company.invoices),
                       off.payments + len(company.payments), off.actions + len(company.actions))


def generate_into_store(scenario: Scenario, n_customers: int, months: int, seed: int,
                        db: str | Path, batch_customers: int = 60_000,
                        progress: BatchProgressFn | None = None) -> dict[str, int]:
    """Generate the company batch by batch and ``ingest`` each batch into the store ``db``.

    Returns the rows loaded per table. ``progress(batches_done, batches_total)``.
    """
    from engine.ingest import ingest

    total = -(-n_customers // batch_customers)
    loaded = {"customers": 0, "invoices": 0, "payments": 0, "actions": 0}
    tmp = Path(tempfile.mkdtemp(prefix=".batch-", dir=Path(db).parent))
    try:
        for b, company in enumerate(generate_batches(scenario, n_customers, months, seed,
                                                     batch_customers)):
            csvs = [p for p in company.write(tmp) if p.suffix == ".csv"]
            for table in loaded:
                loaded[table] += len(getattr(company, table))
            del company
            report = ingest(csvs, db=db)
            if report.quarantined:
                raise RuntimeError(f"batch {b}: {report.quarantined} generated rows were "
                                   "quarantined by ingest; the generator and the contract "
                                   "disagree")
            if progress:
                progress(b + 1, total)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return loaded
