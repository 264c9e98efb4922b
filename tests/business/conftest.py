"""Shared fixtures: real DuckDB stores built through `engine.ingest` (no mocks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.ingest import ingest


def write_store(tmp: Path, tables: dict[str, pd.DataFrame]) -> Path:
    """Write the contract tables as CSVs and ingest them into ``tmp/store.duckdb``."""
    tmp.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in tables.items():
        path = tmp / f"{name}.csv"
        frame.to_csv(path, index=False)
        paths.append(path)
    db = tmp / "store.duckdb"
    report = ingest(paths, db=db)
    assert report.quarantined == 0, report.quarantine_files
    return db


@pytest.fixture(scope="session")
def world_store(tmp_path_factory) -> Path:
    """A generated company (default scenario, 160 customers, 12 months) in a store."""
    from simulations.world import generate_company, load_scenario

    company = generate_company(load_scenario("default"), 160, 12, seed=5)
    tmp = tmp_path_factory.mktemp("world")
    return write_store(tmp, {n: getattr(company, n)
                             for n in ("customers", "invoices", "payments", "actions")})


PILOT_START = pd.Timestamp("2025-01-01")
PLANTED_DAYS = 12.0


def planted_tables(n_customers: int = 200, seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """A pilot with a known effect: customers of the learned arm pay 12 days sooner.

    Returns the contract tables and the assignment (even customer index = current).
    Every invoice gets an email 7 days after due; complaints are equally likely per arm.
    """
    rng = np.random.default_rng(seed)
    ids = [f"K{i:04d}" for i in range(n_customers)]
    arm = np.where(np.arange(n_customers) % 2 == 0, "current", "learned")
    customers = pd.DataFrame({"customer_id": ids, "jurisdiction": "DE", "customer_type": "b2b",
                              "segment": rng.choice(["corporate", "startup"], n_customers)})
    speed = rng.normal(0, 8, n_customers)  # customer-level differences
    rows, pays, acts = [], [], []
    for c in range(n_customers):
        for k in range(4):
            inv_id = f"INV{c:04d}{k}"
            inv_date = PILOT_START + pd.Timedelta(days=int(rng.integers(0, 90)))
            due = inv_date + pd.Timedelta(days=30)
            delay = 45 + speed[c] + rng.normal(0, 10) - (PLANTED_DAYS if arm[c] == "learned"
                                                         else 0.0)
            pay = inv_date + pd.Timedelta(days=int(max(round(delay), 1)))
            amount = float(rng.integers(100, 5000))
            rows.append((inv_id, ids[c], inv_date, due, amount))
            pays.append((inv_id, pay, amount))
            first = due + pd.Timedelta(days=7)
            if pay > first:
                acts.append((inv_id, first, "email", bool(rng.random() < 0.05)))
    invoices = pd.DataFrame(rows, columns=["invoice_id", "customer_id", "invoice_date",
                                           "due_date", "amount"]).assign(currency="EUR")
    payments = pd.DataFrame(pays, columns=["invoice_id", "payment_date", "amount"])
    actions = pd.DataFrame(acts, columns=["invoice_id", "action_date", "channel", "complaint"])
    for frame, cols in ((invoices, ["invoice_date", "due_date"]), (payments, ["payment_date"]),
                        (actions, ["action_date"])):
        for col in cols:
            frame[col] = frame[col].dt.strftime("%Y-%m-%d")
    tables = {"customers": customers, "invoices": invoices, "payments": payments,
              "actions": actions}
    assignment = pd.DataFrame({"customer_id": ids, "arm": arm, "stratum": "all"})
    return tables, assignment


@pytest.fixture(scope="session")
def planted_store(tmp_path_factory) -> dict:
    """``{"db", "assignment", "start", "planted_days"}`` of the planted pilot."""
    tables, assignment = planted_tables()
    db = write_store(tmp_path_factory.mktemp("planted"), tables)
    return {"db": db, "assignment": assignment, "start": PILOT_START.date(),
            "planted_days": PLANTED_DAYS}


WORLD_MODEL_AS_OF = "2024-09-01"


@pytest.fixture(scope="session")
def world_tables(world_store):
    from engine.store import Store

    return Store(world_store).tables()


def save_payment_model(tables, as_of: str, out: Path, **params) -> Path:
    """Fit a (small) PaymentModel on what was known at ``as_of`` and save it with its period."""
    import datetime as dt

    from engine.features import build_training_frame, prepare_tables
    from engine.models import PaymentModel

    frame = build_training_frame(prepare_tables(tables), dt.date.fromisoformat(as_of), 30)
    model = PaymentModel(30, fit_days_late=False, **params)
    model.fit(frame.X, frame.days_late, frame.ref_day)
    model.save(out, extra={"data_period": {"first_invoice": "2024-01-01", "as_of": as_of}})
    return out


@pytest.fixture(scope="session")
def world_model(world_tables, tmp_path_factory) -> Path:
    """A payment model trained on the world store up to 2024-09-01 (30 trees)."""
    out = tmp_path_factory.mktemp("models") / "payment"
    return save_payment_model(world_tables, WORLD_MODEL_AS_OF, out, n_estimators=30)


@pytest.fixture(scope="session")
def store_writer():
    """``write_store(tmp, tables) -> db``, for tests that build their own store."""
    return write_store


@pytest.fixture(scope="session")
def save_model():
    """``save_payment_model(tables, as_of, out, **params) -> out``."""
    return save_payment_model
