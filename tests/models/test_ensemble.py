"""HazardEnsemble (engine.models.ensemble): the planner's mean of hazard models fitted alike
with other seeds."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import DunningError
from engine.models.ensemble import ENSEMBLE_FILE, SEED_STRIDE, HazardEnsemble, load_hazard
from engine.models.hazard import SITUATION_INPUTS, HazardModel

AS_OF = "2025-06-01"
SMALL = {"n_estimators": 20, "learning_rate": 0.2, "min_child_samples": 50,
         "max_invoices": 300}


@pytest.fixture(scope="module")
def ensemble(prepared):
    first = HazardModel(random_state=3, **SMALL).fit_tables(prepared, AS_OF)
    return HazardEnsemble.grown_from(first, prepared, AS_OF, 3, SMALL)


def _rows(hazard_frame, n: int = 50):
    rows = np.random.default_rng(0).integers(0, len(hazard_frame.event), n)
    return rows, {k: v[rows] for k, v in hazard_frame.dynamic.items()}


def test_members_are_fitted_with_their_own_seeds_and_averaged(ensemble, hazard_frame):
    assert [m.random_state for m in ensemble.members] == [3, 3 + SEED_STRIDE,
                                                          3 + 2 * SEED_STRIDE]
    rows, dyn = _rows(hazard_frame)
    static = ensemble.static_matrix(hazard_frame.static.iloc[hazard_frame.static_index[rows]])
    each = np.array([m.predict_hazard(static, dyn) for m in ensemble.members])
    assert np.ptp(each, axis=0).max() > 1e-4  # the seeds give different models
    np.testing.assert_allclose(ensemble.predict_hazard(static, dyn), each.mean(axis=0))


def test_grid_is_the_mean_of_the_members_grids(ensemble, hazard_frame):
    rows, dyn = _rows(hazard_frame, 40)
    static = ensemble.static_matrix(hazard_frame.static.iloc[:6])
    situations = {k: dyn[k] for k in SITUATION_INPUTS}
    per_invoice = {k: v[:6] for k, v in dyn.items() if k not in SITUATION_INPUTS}
    grid = ensemble.predict_hazard_grid(static, situations, per_invoice)
    assert grid.shape == (6, 40)
    np.testing.assert_allclose(grid, np.mean([m.predict_hazard_grid(static, situations,
                                                                    per_invoice)
                                              for m in ensemble.members], axis=0))


def test_save_and_load_round_trip(ensemble, hazard_frame, tmp_path):
    h = ensemble.save(tmp_path)
    assert (tmp_path / ENSEMBLE_FILE).is_file()
    loaded = load_hazard(tmp_path)
    assert isinstance(loaded, HazardEnsemble) and loaded.hash_ == h
    rows, dyn = _rows(hazard_frame)
    static = ensemble.static_matrix(hazard_frame.static.iloc[hazard_frame.static_index[rows]])
    np.testing.assert_array_equal(loaded.predict_hazard(static, dyn),
                                  ensemble.predict_hazard(static, dyn))
    # member 0 is a plain hazard model in the directory itself
    assert isinstance(load_hazard(tmp_path / "member_1"), HazardModel)
    assert HazardModel.load(tmp_path).random_state == 3


def test_members_must_read_the_same_static_inputs(prepared, ensemble):
    other = HazardModel(features=["amount", "segment"], **SMALL).fit_tables(prepared, AS_OF)
    with pytest.raises(DunningError, match="member 1 reads other static inputs"):
        HazardEnsemble([ensemble.members[0], other])
    with pytest.raises(DunningError, match="at least one member"):
        HazardEnsemble([])
    with pytest.raises(DunningError, match="n_members >= 1"):  # PipelineConfig value 0
        HazardEnsemble.grown_from(ensemble.members[0], prepared, AS_OF, 0, SMALL)


def test_members_fitted_beforehand_are_the_ones_grown_here(prepared, ensemble, hazard_frame):
    """The pipeline's worker fits members 1.. while member 0 is trained (fit_members): they
    are the models grown_from fits, and grown_from takes them only for member 0's seeds."""
    from engine.models.ensemble import fit_members

    before = fit_members(3, prepared, AS_OF, 3, SMALL)
    rows, dyn = _rows(hazard_frame)
    static = ensemble.static_matrix(hazard_frame.static.iloc[hazard_frame.static_index[rows]])
    for mine, grown in zip(before, ensemble.members[1:], strict=True):
        np.testing.assert_array_equal(mine.predict_hazard(static, dyn),
                                      grown.predict_hazard(static, dyn))
    first = ensemble.members[0]
    taken = HazardEnsemble.grown_from(first, prepared, AS_OF, 3, SMALL, more=before)
    assert taken.members[1:] == before  # the same objects: not fitted again
    other_seed = HazardModel(random_state=4, **SMALL).fit_tables(prepared, AS_OF)
    refit = HazardEnsemble.grown_from(other_seed, prepared, AS_OF, 3, SMALL, more=before)
    assert [m.random_state for m in refit.members] == [4, 4 + SEED_STRIDE, 4 + 2 * SEED_STRIDE]
