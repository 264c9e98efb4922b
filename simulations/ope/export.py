"""Offline-RL datasets: the logged transitions of a :class:`LoggedDataset`, saved and loaded.

One row per logged invoice-day on which the episode was running (``N`` rows, episodes in
the dataset's order, days in order within an episode):

=====================  ==============  ====================================================
field                  shape, dtype    meaning
=====================  ==============  ====================================================
``observations``       (N, dim) f32    what a policy saw (columns ``obs_columns``, the
                                       environment's ``LAYOUT.column_names()``)
``actions``            (N,) int64      logged action (0 wait, 1 email, 2 letter, 3 phone,
                                       4 final_notice, 5 agency: ``action_names``)
``rewards``            (N,) f64        money that day, discounted to the due date
``next_observations``  (N, dim) f32    the observation the next day (after the last step:
                                       the observation after it)
``terminals``          (N,) bool       the episode ended with this step (paid, agency,
                                       written off at the horizon)
``truncations``        (N,) bool       always False (the horizon is a true end)
``propensities``       (N,) f64        the logging policy's probability of the logged
                                       action; NaN where it is not known (a real history
                                       logs none for "wait" days; never invented)
``masks``              (N, 6) bool     the legal mask of today's rules that day
``episode_ids``        (N,) str        invoice id
``days``               (N,) int64      days after the due date (0 = the due date)
=====================  ==============  ====================================================

Formats: ``transitions.parquet`` (one column per observation column, prefixed ``obs.`` and
``next_obs.``, masks as ``mask.<action>``), ``transitions.npz`` (the arrays above plus
``obs_columns`` and ``action_names``) and a Minari dataset (the Farama offline-RL format,
arrow storage; episode ``k`` is the ``k``-th episode of the npz, propensities, masks and days
in each episode's ``infos``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.contract import Action
from engine.errors import InputError
from simulations.ope.dataset import LoggedDataset

ACTION_NAMES: tuple[str, ...] = tuple(a.channel for a in Action)
FORMATS: tuple[str, ...] = ("parquet", "npz", "minari")
MINARI_ID = "dunning/collections/logged-v0"


@dataclass
class Transitions:
    """Flat logged transitions (see the module docstring for every field)."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    truncations: np.ndarray
    propensities: np.ndarray
    masks: np.ndarray
    episode_ids: np.ndarray
    days: np.ndarray
    obs_columns: list[str]

    @property
    def n(self) -> int:
        return len(self.actions)

    @classmethod
    def from_dataset(cls, data: LoggedDataset) -> Transitions:
        """Flatten the running invoice-days of ``data`` (episode-major order)."""
        from simulations.env.layout import LAYOUT

        if data.terminated is None or data.final_obs is None:
            raise ValueError("this LoggedDataset has no terminated/final_obs: rebuild it")
        i, t = np.nonzero(data.active)
        H = data.active.shape[1]
        nxt = np.minimum(t + 1, H - 1)
        has_next = (t + 1 < H) & data.active[i, nxt]
        next_obs = np.where(has_next[:, None], data.obs[i, nxt], data.final_obs[i])
        return cls(observations=data.obs[i, t], actions=data.action[i, t].astype(np.int64),
                   rewards=data.reward[i, t].astype(np.float64),
                   next_observations=next_obs.astype(np.float32),
                   terminals=data.terminated[i, t].astype(bool),
                   truncations=np.zeros(len(i), dtype=bool),
                   propensities=data.pscore[i, t].astype(np.float64),
                   masks=data.masks[i, t].astype(bool),
                   episode_ids=np.asarray(data.invoice_ids, dtype=str)[i],
                   days=t.astype(np.int64), obs_columns=LAYOUT.column_names())

    # -- tables ---------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per transition, one column per scalar (the Parquet layout)."""
        cols: dict[str, Any] = {"episode_id": self.episode_ids, "day": self.days,
                                "action": self.actions, "reward": self.rewards,
                                "terminal": self.terminals, "truncated": self.truncations,
                                "propensity": self.propensities}
        for k, name in enumerate(ACTION_NAMES):
            cols[f"mask.{name}"] = self.masks[:, k]
        for k, name in enumerate(self.obs_columns):
            cols[f"obs.{name}"] = self.observations[:, k]
        for k, name in enumerate(self.obs_columns):
            cols[f"next_obs.{name}"] = self.next_observations[:, k]
        return pd.DataFrame(cols)

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> Transitions:
        obs_cols = [c[4:] for c in df.columns if c.startswith("obs.")]
        return cls(
            observations=df[[f"obs.{c}" for c in obs_cols]].to_numpy(np.float32),
            actions=df["action"].to_numpy(np.int64), rewards=df["reward"].to_numpy(np.float64),
            next_observations=df[[f"next_obs.{c}" for c in obs_cols]].to_numpy(np.float32),
            terminals=df["terminal"].to_numpy(bool), truncations=df["truncated"].to_numpy(bool),
            propensities=df["propensity"].to_numpy(np.float64),
            masks=df[[f"mask.{a}" for a in ACTION_NAMES]].to_numpy(bool),
            episode_ids=df["episode_id"].to_numpy(str), days=df["day"].to_numpy(np.int64),
            obs_columns=obs_cols)

    # -- files ----------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str],
             formats: Sequence[str] = FORMATS) -> dict[str, Path]:
        """Write ``transitions.parquet``, ``transitions.npz`` and/or ``minari/`` into
        ``directory`` (each written whole, then moved into place); returns the paths."""
        bad = [f for f in formats if f not in FORMATS]
        if bad:
            raise InputError(f"--format {bad[0]!r}: expected one of {', '.join(FORMATS)}")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        if "parquet" in formats:
            paths["parquet"] = _atomic(out / "transitions.parquet",
                                       lambda p: self.to_frame().to_parquet(p, index=False))
        if "npz" in formats:
            arrays = {f.name: getattr(self, f.name) for f in fields(self)}
            arrays["obs_columns"] = np.asarray(self.obs_columns, dtype=str)
            arrays["action_names"] = np.asarray(ACTION_NAMES, dtype=str)
            paths["npz"] = _atomic(out / "transitions.npz",
                                   lambda p: np.savez_compressed(p, **arrays))
        if "minari" in formats:
            paths["minari"] = self.save_minari(out / "minari")
        return paths

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Transitions:
        """From ``transitions.npz`` or ``transitions.parquet`` (or a directory holding one)."""
        p = Path(path)
        if p.is_dir():
            p = next((p / f for f in ("transitions.npz", "transitions.parquet")
                      if (p / f).is_file()), p / "transitions.npz")
        if not p.is_file():
            raise InputError(f"{path}: no transitions.npz or transitions.parquet there")
        if p.suffix == ".parquet":
            return cls.from_frame(pd.read_parquet(p))
        with np.load(p, allow_pickle=False) as z:
            kw = {f.name: z[f.name] for f in fields(cls) if f.name != "obs_columns"}
            return cls(obs_columns=[str(c) for c in z["obs_columns"]], **kw)

    def episodes(self) -> Iterator[np.ndarray]:
        """Row indices of each episode, in order (rows of an episode are contiguous)."""
        starts = np.flatnonzero(np.r_[True, self.episode_ids[1:] != self.episode_ids[:-1]])
        yield from np.split(np.arange(self.n), starts[1:])

    def save_minari(self, directory: Path) -> Path:
        """A Minari dataset (``MINARI_ID``) under ``directory`` (its datasets root): load it
        with ``MINARI_DATASETS_PATH=directory`` and ``minari.load_dataset(MINARI_ID)``."""
        import minari
        from minari.data_collector import EpisodeBuffer

        from simulations.env.spaces import action_space, observation_space

        buffers = []
        for k, rows in enumerate(self.episodes()):
            obs = np.concatenate([self.observations[rows], self.next_observations[rows[-1:]]])
            buffers.append(EpisodeBuffer(
                id=k, observations=obs, actions=self.actions[rows],
                rewards=self.rewards[rows], terminations=self.terminals[rows],
                truncations=self.truncations[rows],
                # 1-d infos as lists: minari 0.5.4 cannot read back 1-d numpy infos
                infos={"propensity": np.r_[self.propensities[rows], np.nan].tolist(),
                       "mask": np.concatenate([self.masks[rows], np.ones((1, 6), bool)]),
                       "day": np.r_[self.days[rows], self.days[rows[-1]] + 1].tolist()}))
        tmp = Path(tempfile.mkdtemp(prefix=".minari-", dir=directory.parent))
        try:
            with _minari_root(tmp), warnings.catch_warnings():
                # no env spec (a logged history, not an env run), author or permalink
                warnings.filterwarnings("ignore", category=UserWarning, module="minari")
                minari.create_dataset_from_buffers(
                    MINARI_ID, buffers, observation_space=observation_space(),
                    action_space=action_space(), algorithm_name="logging policy",
                    description="dunning: logged reminder decisions per invoice-day "
                                "(episode = invoice from its due date); infos: logging "
                                "propensity (NaN = not logged), legal mask, day after due",
                    data_format="arrow")
            if directory.exists():
                shutil.rmtree(directory)
            tmp.rename(directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return directory


@contextmanager
def _minari_root(path: Path) -> Iterator[None]:
    """Minari finds its datasets through ``MINARI_DATASETS_PATH`` only."""
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def _atomic(path: Path, write: Any) -> Path:
    """``write(tmp)`` then rename over ``path`` (no half-written file on a crash)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def save_dataset(data: LoggedDataset, directory: str | os.PathLike[str],
                 formats: Sequence[str] = FORMATS) -> dict[str, Path]:
    """``Transitions.from_dataset(data).save(directory, formats)``."""
    return Transitions.from_dataset(data).save(directory, formats)


__all__ = ["ACTION_NAMES", "FORMATS", "MINARI_ID", "Transitions", "save_dataset"]
