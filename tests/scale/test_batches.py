"""Generating a large company in customer batches (bounded memory) for the scale benchmark."""

from __future__ import annotations

import pandas as pd

from engine.store import Store
from simulations import world
from simulations.world.batches import generate_into_store


def test_batches_make_one_consistent_company(tmp_path):
    sc = world.load_scenario("default")
    loaded = generate_into_store(sc, 250, 6, seed=1, db=tmp_path / "a.duckdb",
                                 batch_customers=100)
    tables = Store(tmp_path / "a.duckdb").tables()
    assert {k: len(v) for k, v in tables.items()} == loaded
    cust, inv = tables["customers"], tables["invoices"]
    assert list(cust["customer_id"]) == [f"C{i:06d}" for i in range(1, 251)]
    assert list(inv["invoice_id"]) == [f"INV{i:08d}" for i in range(1, len(inv) + 1)]
    assert (cust["name"].str.split().str[1] == cust["customer_id"]).all()  # names follow ids
    assert inv["customer_id"].isin(cust["customer_id"]).all()
    for t in ("payments", "actions"):
        assert tables[t]["invoice_id"].isin(inv["invoice_id"]).all()
        assert tables[t].iloc[:, 0].is_unique
    # every batch has invoices (3 batches: 100, 100, 50 customers)
    owner = inv["customer_id"].str[1:].astype(int)
    assert set(pd.cut(owner, [0, 100, 200, 250]).value_counts() > 0) == {True}
    # same arguments, same store
    generate_into_store(sc, 250, 6, seed=1, db=tmp_path / "b.duckdb", batch_customers=100)
    again = Store(tmp_path / "b.duckdb").tables()
    for name, table in tables.items():
        pd.testing.assert_frame_equal(again[name], table)
