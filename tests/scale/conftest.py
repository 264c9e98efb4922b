"""Shared fixtures of the scale-out tests: one real LocalCluster (2 worker processes)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def client():
    """A real ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``."""
    from engine.scale.cluster import LocalClusterConfig, connect

    with connect("local", LocalClusterConfig(n_workers=2, threads_per_worker=1,
                                             processes=True, memory_limit="3GiB")) as c:
        yield c


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory):
    """A real DuckDB store of a small generated company (400 customers, 18 months) and its
    Parquet export (``dunning export --parquet``)."""
    from engine.ingest import ingest
    from engine.store import Store
    from simulations import world

    d = tmp_path_factory.mktemp("scale")
    company = world.generate_company(world.load_scenario("default"), 400, 18, seed=3)
    csvs = [p for p in company.write(d / "csv") if p.suffix == ".csv"]
    ingest(csvs, db=d / "dunning.duckdb")
    Store(d / "dunning.duckdb").export_parquet(d / "parquet")
    return d


@pytest.fixture(scope="session")
def store(store_dir):
    from engine.store import Store

    return Store(store_dir / "dunning.duckdb")


@pytest.fixture(scope="session")
def export(store_dir):
    from engine.scale.shards import ParquetExport

    return ParquetExport(store_dir / "parquet")
