"""Shared fixtures of the data-area tests: a fresh store and small contract files."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.store import Store

CUSTOMERS = """customer_id,name,segment,jurisdiction,customer_type,language
C1,Alpha GmbH,corporate,DE,b2b,de
C2,Beta AB,startup,SE,b2b,sv
C3,Carla Rossi,,IT,b2c,it
"""
INVOICES = """invoice_id,customer_id,invoice_date,due_date,amount,currency,disputed,dispute_opened
I1,C1,2024-01-10,2024-02-09,1000.00,EUR,false,
I2,C1,2024-02-01,2024-03-02,250.50,EUR,true,2024-03-10
I3,C2,2024-03-05,2024-04-04,900,SEK,,
I4,C3,2024-04-01,2024-04-15,80,EUR,false,
"""
PAYMENTS = """payment_id,invoice_id,payment_date,amount
P1,I1,2024-02-20,600
P2,I1,2024-03-01,400
P3,I3,2024-04-10,900
"""
ACTIONS = """invoice_id,action_date,channel,decided_by,propensity,complaint
I1,2024-02-16,email,policy:fixed,1.0,false
I2,2024-03-05,letter,policy:fixed,0.5,true
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "db" / "dunning.duckdb")


@pytest.fixture
def contract_files(tmp_path: Path) -> list[Path]:
    src = tmp_path / "export"
    src.mkdir()
    return [write(src, "customers.csv", CUSTOMERS), write(src, "invoices.csv", INVOICES),
            write(src, "payments.csv", PAYMENTS), write(src, "actions.csv", ACTIONS)]


class Samples:
    """The sample texts and a writer, for tests (conftest is not importable under
    ``--import-mode=importlib``)."""

    CUSTOMERS = CUSTOMERS
    INVOICES = INVOICES
    PAYMENTS = PAYMENTS
    ACTIONS = ACTIONS
    write = staticmethod(write)


@pytest.fixture
def samples() -> type[Samples]:
    return Samples
