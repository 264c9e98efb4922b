"""A bagged hazard model: the mean hazard of models fitted alike with different seeds.

Why a planner may plan on it (``PipelineConfig.planner_hazard_members``, docs/planner.md):
planning exactly in a learned model picks the actions whose value that model overestimates
most, the optimiser's curse of certainty-equivalent planning. Measured on a tuning company,
the planner's own table was worth 786 payments per 1,000 in its learned model and 698 in the
truth, where the oracle's table was judged about right (724 against 736). Each seed's fit
has its own errors where the history is thin (LightGBM's row bagging and feature fractions,
the hazard frame's subsampling); in their mean they partly cancel, so there is less for the
planner to exploit. The members share the static inputs (the same history, features and
categories), so one static row serves them all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import DunningError
from engine.features import PreparedTables
from engine.files import atomic_write_text
from engine.models.hazard import HazardModel

ENSEMBLE_FILE = "hazard_ensemble.json"
# member i is fitted with seed first + i * SEED_STRIDE: ensembles grown from models of
# neighbouring seeds (bench_rl.py --planner-seeds) share no member
SEED_STRIDE = 1000


class HazardEnsemble:
    """The mean of ``members``' hazards (member 0 also gives the static inputs).

    Parameters
    ----------
    members : fitted :class:`HazardModel` s with the same ``static_features_`` and
        ``categories_`` (checked: a static row means the same to each).

    Attributes: ``members``, ``static_features_``, ``hash_`` (after :meth:`save` or
    :meth:`load`).
    """

    def __init__(self, members: Sequence[HazardModel]) -> None:
        if not members:
            raise DunningError("a hazard ensemble needs at least one member")
        first = members[0]
        for i, m in enumerate(members[1:], start=1):
            if m.static_features_ != first.static_features_ or m.categories_ != first.categories_:
                raise DunningError(f"hazard ensemble member {i} reads other static inputs than "
                                   "member 0 (features or categories differ): fit every member "
                                   "on the same history")
        self.members = list(members)

    @classmethod
    def grown_from(cls, first: HazardModel, tables: Mapping[str, pd.DataFrame] | PreparedTables,
                   as_of: object, n_members: int, params: Mapping[str, Any] | None = None,
                   more: Sequence[HazardModel] | None = None) -> HazardEnsemble:
        """``first`` (fitted) and ``n_members - 1`` models fitted with ``params`` on
        ``tables`` known at ``as_of`` with seeds ``first.random_state + i *``
        :data:`SEED_STRIDE` (``params``: the settings ``first`` was fitted with, without
        ``random_state``). ``more``: those models fitted before (e.g. by another process
        with :func:`fit_members` while ``first`` was trained), used when their seeds are
        the ones ``first`` calls for, else fitted again."""
        if n_members < 1:
            raise DunningError(f"a hazard ensemble needs n_members >= 1, got {n_members}")
        seeds = member_seeds(first.random_state, n_members)
        if more is None or [m.random_state for m in more] != seeds:
            more = fit_members(first.random_state, tables, as_of, n_members, params)
        return cls([first, *more])

    @property
    def static_features_(self) -> list[str]:
        return self.members[0].static_features_

    def static_matrix(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        return self.members[0].static_matrix(X)

    def static_for_invoices(self, tables: Mapping[str, pd.DataFrame] | PreparedTables,
                            invoice_ids: Sequence[str] | None = None) -> np.ndarray:
        return self.members[0].static_for_invoices(tables, invoice_ids)

    def predict_hazard(self, static: np.ndarray, dynamic: Mapping[str, np.ndarray]
                       ) -> np.ndarray:
        """(n,) the members' mean of :meth:`HazardModel.predict_hazard`."""
        return np.mean([m.predict_hazard(static, dynamic) for m in self.members], axis=0)

    def predict_hazard_grid(self, static: np.ndarray, situations: Mapping[str, np.ndarray],
                            per_invoice: Mapping[str, np.ndarray]) -> np.ndarray:
        """(B, m) the members' mean of :meth:`HazardModel.predict_hazard_grid`."""
        return np.mean([m.predict_hazard_grid(static, situations, per_invoice)
                        for m in self.members], axis=0)

    # -- persistence
    def save(self, directory: str | Path) -> str:
        """Member 0 as a plain hazard model in ``directory`` (what reads one finds it), the
        others in ``member_<i>/``, and :data:`ENSEMBLE_FILE`; returns the content hash."""
        d = Path(directory)
        hashes = [m.save(d if i == 0 else d / f"member_{i}") for i, m in enumerate(self.members)]
        h = hashlib.sha256(json.dumps(hashes).encode()).hexdigest()[:16]
        atomic_write_text(d / ENSEMBLE_FILE, json.dumps(
            {"kind": "hazard_ensemble", "members": len(hashes), "member_hashes": hashes,
             "hash": h}, indent=2))
        self.hash_ = h
        return h

    @classmethod
    def load(cls, directory: str | Path) -> HazardEnsemble:
        d = Path(directory)
        meta = json.loads((d / ENSEMBLE_FILE).read_text())
        ens = cls([HazardModel.load(d if i == 0 else d / f"member_{i}")
                   for i in range(int(meta["members"]))])
        ens.hash_ = meta["hash"]
        return ens


def load_hazard(directory: str | Path) -> HazardModel | HazardEnsemble:
    """The hazard model saved in ``directory``: an ensemble when it holds
    :data:`ENSEMBLE_FILE`, else a single :class:`HazardModel`."""
    d = Path(directory)
    return HazardEnsemble.load(d) if (d / ENSEMBLE_FILE).is_file() else HazardModel.load(d)


def member_seeds(first_seed: int, n_members: int) -> list[int]:
    """The seeds of members 1 .. ``n_members - 1`` of an ensemble grown from a model fitted
    with ``first_seed``."""
    return [first_seed + i * SEED_STRIDE for i in range(1, n_members)]


def fit_members(first_seed: int, tables: Mapping[str, pd.DataFrame] | PreparedTables,
                as_of: object, n_members: int, params: Mapping[str, Any] | None = None
                ) -> list[HazardModel]:
    """Members 1 .. ``n_members - 1`` of :meth:`HazardEnsemble.grown_from`, fitted with
    ``params`` on ``tables`` known at ``as_of``: they do not need member 0, so they can be
    fitted while it is."""
    return [HazardModel(random_state=seed, **dict(params or {})).fit_tables(tables, as_of)
            for seed in member_seeds(first_seed, n_members)]
