"""Shared fixtures for the ops tests: a real store built by the real ingest from small
deterministic contract tables, copied per test so every test starts from the same state;
and the real API server (uvicorn) on a free local port."""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from dunning.api import wait_until_healthy

AS_OF = dt.date(2024, 12, 2)  # a Monday; the synthetic data runs 2023-01-01 .. 2024-12-31


def make_tables(n_customers: int = 60, n_invoices: int = 900, seed: int = 3) -> dict:
    """Deterministic contract tables: 2023-01-01 .. 2024-12-31, several jurisdictions."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    jur = rng.choice(np.array(["DE", "SE", "GB", "FR", "NL", "AT", "US"]), n_customers)
    lang = {"DE": "de", "AT": "de", "SE": "sv", "GB": "en", "FR": "fr", "NL": "nl", "US": "en"}
    customers = pd.DataFrame({
        "customer_id": [f"C{i:06d}" for i in range(n_customers)],
        "name": [f"Customer {i}" for i in range(n_customers)],
        "segment": rng.choice(np.array(["corporate", "family_business", "startup",
                                        "construction", "saas"]), n_customers),
        "industry": rng.choice(np.array(["manufacturing", "software", "construction"]),
                               n_customers),
        "jurisdiction": jur,
        "customer_type": rng.choice(np.array(["b2b", "b2c"]), n_customers, p=[0.7, 0.3]),
        "language": [lang[j] for j in jur],
        "reminder_fee_agreed": rng.random(n_customers) < 0.5,
        "agency_consent": True,
    })
    t0 = np.datetime64("2023-01-01", "D")
    cust = rng.integers(0, n_customers, n_invoices)
    inv_day = t0 + np.sort(rng.integers(0, 730, n_invoices)).astype("timedelta64[D]")
    due = inv_day + rng.choice(np.array([14, 30]), n_invoices).astype("timedelta64[D]")
    amount = np.round(rng.lognormal(7.0, 1.0, n_invoices), 2)
    late = np.round(rng.gumbel(5, 15, n_invoices)).astype(int)
    settle = np.maximum(due + late.astype("timedelta64[D]"), inv_day)
    paid = (settle <= np.datetime64("2024-12-31")) & (rng.random(n_invoices) > 0.03)
    disputed = rng.random(n_invoices) < 0.03
    invoices = pd.DataFrame({
        "invoice_id": [f"I{i:08d}" for i in range(n_invoices)],
        "customer_id": customers["customer_id"].to_numpy()[cust],
        "invoice_date": inv_day.astype(str), "due_date": due.astype(str), "amount": amount,
        "currency": np.where(jur[cust] == "SE", "SEK", np.where(jur[cust] == "GB", "GBP",
                             np.where(jur[cust] == "US", "USD", "EUR"))),
        "disputed": disputed,
        "dispute_opened": np.where(disputed, (due + 3).astype(str), None),
    })
    idx = np.flatnonzero(paid)
    payments = pd.DataFrame({"invoice_id": invoices["invoice_id"].to_numpy()[idx],
                             "payment_date": settle[idx].astype(str), "amount": amount[idx]})
    return {"customers": customers, "invoices": invoices, "payments": payments}


def build_store(folder: Path, **kwargs) -> Path:
    """Ingest :func:`make_tables` through the real ingest into a new store; return its path."""
    from engine.ingest import ingest

    tables = make_tables(**kwargs)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for name, frame in tables.items():
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        files.append(path)
    db = folder / "store" / "dunning.duckdb"
    report = ingest(files, db=db)
    assert report.quarantined == 0, report.quarantine_files
    return db


def _plant_actions(db: Path, rows: list[tuple[str, str, dt.date]], folder: Path) -> None:
    """History for a test: actions ``(invoice_id, channel, date)`` through the real ingest
    (the ERP's action export, which records what happened without a legal check), not
    through ``record_action`` (which refuses, e.g., a final notice dated on a weekend)."""
    import pandas as pd

    from engine.ingest import ingest

    path = folder / "planted_actions.csv"
    pd.DataFrame([{"invoice_id": i, "action_date": d.isoformat(), "channel": c,
                   "decided_by": "test", "complaint": False} for i, c, d in rows]
                 ).to_csv(path, index=False)
    report = ingest([path], db=db).tables["actions"]
    assert report.loaded == len(rows) and not report.quarantined


@pytest.fixture(scope="session")
def base_db(tmp_path_factory) -> Path:
    return build_store(tmp_path_factory.mktemp("ops-base"))


@pytest.fixture
def db(base_db, tmp_path) -> Path:
    """A fresh copy of the base store for one test."""
    target = tmp_path / "store" / "dunning.duckdb"
    target.parent.mkdir(parents=True)
    shutil.copyfile(base_db, target)
    return target


@pytest.fixture(scope="session")
def as_of() -> dt.date:
    return AS_OF


@pytest.fixture(scope="session")
def serve():
    """``with serve(app) as url:`` runs the real uvicorn server on a free local port."""
    return running_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(app, port: int | None = None) -> Iterator[str]:  # noqa: ANN001
    """Serve ``app`` until the block ends; yields the base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(url, 30, is_running=thread.is_alive)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def make_ops_tables():
    """:func:`make_tables`, for tests that plant extra rows before ingesting."""
    return make_tables


@pytest.fixture(scope="session")
def plant_actions():
    """:func:`_plant_actions`: ``plant_actions(db, [(invoice, channel, date)], folder)``."""
    return _plant_actions


# Reference rates for the letter tests: TEST VALUES, not legal figures (the packaged table
# holds only the published ones). Each series is replaced as a whole, so the tests do not
# depend on which periods rates.yaml has: (name, jurisdiction, value, valid_from, valid_to).
LETTER_TEST_RATES = (
    ("base_rate", "DE", 3.37, "2024-07-01", "2024-12-31"),
    ("base_rate", "DE", 2.27, "2025-01-01", "2025-06-30"),
    ("base_rate", "DE", 1.27, "2025-07-01", "2025-12-31"),
    ("base_rate", "DE", 1.27, "2026-01-01", "2026-06-30"),
    ("base_rate", "AT", 1.38, "2025-07-01", "2026-06-30"),
    ("ecb_rate", "EU", 2.15, "2025-07-01", "2026-06-30"),
    ("boe_rate", "GB", 4.0, "2025-07-01", "2025-12-31"),
    ("boe_rate", "GB", 3.75, "2026-01-01", "2026-06-30"),
    ("reference_rate", "SE", 1.75, "2025-07-01", "2026-06-30"),
)


def with_test_rates(ruleset, rates=LETTER_TEST_RATES):
    """``ruleset`` whose rate series named in ``rates`` are replaced by those test values."""
    from dataclasses import replace

    from legal_rules.model import Rate

    series = {(n, j) for n, j, *_ in rates}
    kept = tuple(r for r in ruleset.rates if (r.name, r.jurisdiction) not in series)
    new = tuple(Rate(name=n, jurisdiction=j, value=v, valid_from=dt.date.fromisoformat(f),
                     valid_to=dt.date.fromisoformat(t), citation="test value")
                for n, j, v, f, t in rates)
    return replace(ruleset, rates=kept + new)


def resolved(decision, ruleset, facts: dict):
    """``decision`` with its caps resolved on its date by ``ruleset`` (its test rates)."""
    from dataclasses import replace

    return replace(decision, caps=tuple(ruleset.cap_value(ruleset.rule(c.rule_id),
                                                          decision.as_of, facts)
                                        for c in decision.caps))


@pytest.fixture(scope="session")
def letter_ruleset():
    """The packaged rules with the test rate table (:data:`LETTER_TEST_RATES`)."""
    from legal_rules.loader import load_rules

    return with_test_rates(load_rules())


@pytest.fixture(scope="session")
def resolve_caps():
    """:func:`resolved`: a decision's caps resolved by a ruleset with test rates."""
    return resolved
