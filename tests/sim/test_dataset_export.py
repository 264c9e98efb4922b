"""`dunning dataset export`: logged transitions of a generated company and of an ingested
history, written as Parquet, npz and Minari, read back and checked against the replay."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dunning.cli import app
from engine.ingest import ingest
from engine.store import Store
from simulations import world
from simulations.env import LegalMask
from simulations.env.layout import LAYOUT
from simulations.ope.dataset import build_logged_dataset, logged_dataset_from_tables
from simulations.ope.export import MINARI_ID, Transitions

runner = CliRunner()
CUSTOMERS, MONTHS, SEED = 50, 6, 4


@pytest.fixture(scope="module")
def company():
    return world.generate_company(world.load_scenario("default"), CUSTOMERS, MONTHS, SEED)


@pytest.fixture(scope="module")
def replay(company):
    return build_logged_dataset(company, LegalMask(), None, SEED)


def _row(tr: Transitions, episode: str, day: int) -> int:
    hit = np.flatnonzero((tr.episode_ids == episode) & (tr.days == day))
    assert len(hit) == 1
    return int(hit[0])


def _check_against_replay(tr: Transitions, data, rng: np.random.Generator) -> None:
    """Shapes, one terminal per episode, and 25 random transitions equal to the replay's."""
    n_rows = int(data.active.sum())
    assert tr.observations.shape == tr.next_observations.shape == (n_rows, LAYOUT.dim)
    assert tr.masks.shape == (n_rows, 6) and tr.obs_columns == LAYOUT.column_names()
    assert tr.terminals.sum() == data.n and not tr.truncations.any()
    assert len(set(tr.episode_ids)) == data.n
    i_all, t_all = np.nonzero(data.active)
    for k in rng.choice(len(i_all), 25, replace=False):
        i, t = int(i_all[k]), int(t_all[k])
        r = _row(tr, str(data.invoice_ids[i]), t)
        np.testing.assert_array_equal(tr.observations[r], data.obs[i, t])
        assert tr.actions[r] == data.action[i, t]
        assert tr.rewards[r] == pytest.approx(data.reward[i, t])
        np.testing.assert_array_equal(tr.masks[r], data.masks[i, t])
        np.testing.assert_equal(tr.propensities[r], data.pscore[i, t])
        if t + 1 < data.active.shape[1] and data.active[i, t + 1]:
            assert not tr.terminals[r]
            np.testing.assert_array_equal(tr.next_observations[r], data.obs[i, t + 1])
        else:
            assert tr.terminals[r]


def test_export_of_a_generated_company_reloads_as_the_replay(tmp_path, replay, monkeypatch):
    out = tmp_path / "ds"
    res = runner.invoke(app, ["dataset", "export", "--customers", str(CUSTOMERS), "--months",
                              str(MONTHS), "--seed", str(SEED), "--out", str(out)])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["episodes"] == replay.n and meta["propensity_missing_share"] == 0.0
    npz = Transitions.load(out / "transitions.npz")
    pq = Transitions.load(out / "transitions.parquet")
    for a, b in ((npz.observations, pq.observations), (npz.next_observations,
                 pq.next_observations), (npz.propensities, pq.propensities),
                 (npz.episode_ids, pq.episode_ids), (npz.masks, pq.masks)):
        np.testing.assert_array_equal(a, b)
    _check_against_replay(npz, replay, np.random.default_rng(0))
    assert ((npz.propensities > 0) & (npz.propensities <= 1)).all()

    import minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(out / "minari"))
    ds = minari.load_dataset(MINARI_ID)
    assert ds.total_episodes == replay.n and ds.total_steps == npz.n
    rows = next(npz.episodes())
    ep = next(ds.iterate_episodes())
    np.testing.assert_array_equal(ep.actions, npz.actions[rows])
    np.testing.assert_allclose(ep.observations[:-1], npz.observations[rows])
    np.testing.assert_allclose(ep.infos["propensity"][:-1], npz.propensities[rows])


def test_export_of_an_ingested_history_marks_unlogged_propensities_missing(
        tmp_path, company, replay):
    files = company.write(tmp_path / "erp")
    csvs = sorted(p for p in (tmp_path / "erp").glob("*.csv"))
    assert csvs, files
    db = tmp_path / "store.duckdb"
    ingest(csvs, db=db)
    out = tmp_path / "ds"
    res = runner.invoke(app, ["dataset", "export", "--db", str(db), "--format", "npz,parquet",
                              "--as-of", str(company.as_of), "--out", str(out)])
    assert res.exit_code == 0, res.output
    tr = Transitions.load(out)
    sc = world.load_scenario("default")
    data = logged_dataset_from_tables(Store(db).tables(company.as_of), sc, company.as_of,
                                      LegalMask())
    _check_against_replay(tr, data, np.random.default_rng(1))
    # the same episodes, actions and money as the replay of the generated company
    assert sorted(data.invoice_ids) == sorted(replay.invoice_ids)
    order = {v: i for i, v in enumerate(replay.invoice_ids)}
    idx = np.array([order[v] for v in data.invoice_ids])
    np.testing.assert_array_equal(data.action, replay.action[idx])
    np.testing.assert_allclose(data.reward, replay.reward[idx])
    # propensities: the logged one on action days, missing (NaN) on every wait day
    acted = tr.actions > 0
    assert not np.isnan(tr.propensities[acted]).any()
    assert np.isnan(tr.propensities[~acted]).all()
    np.testing.assert_allclose(data.pscore[data.active & (data.action > 0)],
                               replay.pscore[idx][data.active & (data.action > 0)])
    assert data.logging_probs is None
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["source"]["kind"] == "store" and 0 < meta["propensity_missing_share"] < 1


def test_bad_format_and_missing_store_are_clean_errors(tmp_path):
    res = runner.invoke(app, ["dataset", "export", "--format", "hdf5", "--out",
                              str(tmp_path / "x")])
    assert res.exit_code == 2 and "--format 'hdf5'" in res.output
    res = runner.invoke(app, ["dataset", "export", "--db", str(tmp_path / "none.duckdb")])
    assert res.exit_code == 2 and "no store file" in res.output
    assert "Traceback" not in res.output
