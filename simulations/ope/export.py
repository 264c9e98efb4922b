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
``logging_probs``      (N, 6) f32      the logging policy's probability of every action
                                       that day (support diagnostics); NaN where not known
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
from types import SimpleNamespace
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
    # (N, 6) the logging policy's probability of every action that day (NaN = not known);
    # None for a dataset exported before it was written
    logging_probs: np.ndarray | None = None

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
                   days=t.astype(np.int64), obs_columns=LAYOUT.column_names(),
                   logging_probs=(data.logging_probs[i, t].astype(np.float32)
                                  if data.logging_probs is not None
                                  else np.full((len(i), 6), np.nan, np.float32)))

    # -- tables ---------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per transition, one column per scalar (the Parquet layout)."""
        cols: dict[str, Any] = {"episode_id": self.episode_ids, "day": self.days,
                                "action": self.actions, "reward": self.rewards,
                                "terminal": self.terminals, "truncated": self.truncations,
                                "propensity": self.propensities}
        for k, name in enumerate(ACTION_NAMES):
            cols[f"mask.{name}"] = self.masks[:, k]
        if self.logging_probs is not None:
            for k, name in enumerate(ACTION_NAMES):
                cols[f"logging_prob.{name}"] = self.logging_probs[:, k]
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
            obs_columns=obs_cols,
            logging_probs=(df[[f"logging_prob.{a}" for a in ACTION_NAMES]].to_numpy(np.float32)
                           if f"logging_prob.{ACTION_NAMES[0]}" in df else None))

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
            arrays = {f.name: getattr(self, f.name) for f in fields(self)
                      if getattr(self, f.name) is not None}
            arrays["obs_columns"] = np.asarray(self.obs_columns, dtype=str)
            arrays["action_names"] = np.asarray(ACTION_NAMES, dtype=str)
            paths["npz"] = _atomic(out / "transitions.npz",
                                   lambda p: np.savez_compressed(p, **arrays))
        if "minari" in formats:
            paths["minari"] = self.save_minari(out / "minari")
        return paths

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Transitions:
        """From ``transitions.npz`` or ``transitions.parquet`` (or a directory holding one).

        Raises:
            InputError: naming the file and the field when one is missing or unreadable.
        """
        p = Path(path)
        if p.is_dir():
            p = next((p / f for f in ("transitions.npz", "transitions.parquet")
                      if (p / f).is_file()), p / "transitions.npz")
        if not p.is_file():
            raise InputError(f"{path}: no transitions.npz or transitions.parquet there")
        try:
            if p.suffix == ".parquet":
                df = pd.read_parquet(p)
                need = ["episode_id", "day", "action", "reward", "terminal", "truncated",
                        "propensity", *(f"mask.{a}" for a in ACTION_NAMES)]
                gone = [c for c in need if c not in df.columns]
                if gone or not any(c.startswith("obs.") for c in df.columns):
                    raise InputError(f"{p}: column {(gone or ['obs.*'])[0]!r} missing "
                                     "(not a `dunning dataset export` file?)")
                return cls.from_frame(df)
            with np.load(p, allow_pickle=False) as z:
                gone = [f.name for f in fields(cls) if f.name not in z.files
                        and f.name != "logging_probs"]
                if gone:
                    raise InputError(f"{p}: field {gone[0]!r} missing (not a `dunning "
                                     "dataset export` file?)")
                kw = {f.name: z[f.name] for f in fields(cls)
                      if f.name not in ("obs_columns", "logging_probs")}
                probs = z["logging_probs"] if "logging_probs" in z.files else None
                return cls(obs_columns=[str(c) for c in z["obs_columns"]],
                           logging_probs=probs, **kw)
        except InputError:
            raise
        except (OSError, ValueError, KeyError) as exc:  # not an npz / parquet, bad dtype
            raise InputError(f"{p}: cannot read it as a dataset ({exc})") from None

    def to_logged_dataset(self, source: str = "the dataset") -> LoggedDataset:
        """The episodes as a :class:`LoggedDataset` (the inverse of :meth:`from_dataset`),
        for the off-policy estimators (``estimate_all``): arrays (n, H) with ``H`` the
        longest episode, days after an episode's end inactive (its last observation and an
        all-allowed mask, as a finished invoice's stale row). No world state (the oracle
        cannot be a target) and no invoice parameters; the amount (FQE's scale) comes from
        the ``log_amount`` column. ``logging_probs`` is ``None`` where not known.

        Raises:
            InputError: naming ``source`` and the field when the arrays do not fit together.
        """
        from simulations.env.layout import LAYOUT

        self._check(source, LAYOUT)
        episodes = list(self.episodes())
        n, H = len(episodes), int(self.days.max()) + 1
        first = np.array([rows[0] for rows in episodes])
        ep = np.repeat(np.arange(n), [len(r) for r in episodes])
        t = self.days
        obs = np.repeat(self.next_observations[[r[-1] for r in episodes]][:, None], H, axis=1)
        obs[ep, t] = self.observations
        masks = np.ones((n, H, 6), dtype=bool)
        masks[ep, t] = self.masks
        action = np.zeros((n, H), dtype=np.int64)
        action[ep, t] = self.actions
        pscore, reward = np.ones((n, H)), np.zeros((n, H))
        pscore[ep, t], reward[ep, t] = self.propensities, self.rewards
        active = np.zeros((n, H), dtype=bool)
        active[ep, t] = True
        terminated = np.zeros((n, H), dtype=bool)
        terminated[ep, t] = self.terminals
        probs = None
        if self.logging_probs is not None and not np.isnan(self.logging_probs).all():
            probs = np.zeros((n, H, 6), dtype=np.float32)
            probs[ep, t] = self.logging_probs
        amount = 10.0 ** self.observations[first, LAYOUT["log_amount"]].astype(np.float64) - 1
        return LoggedDataset(
            obs=obs, masks=masks, action=action, pscore=pscore, reward=reward, active=active,
            batch=SimpleNamespace(amount=amount), invoice_ids=self.episode_ids[first],
            params=None, propensity_mismatch=0.0, refused_logged_actions=int(
                (~self.masks[np.arange(self.n), self.actions]).sum()),
            world_states=None, logging_probs=probs, terminated=terminated,
            final_obs=self.next_observations[[r[-1] for r in episodes]])

    def _check(self, source: str, layout: Any) -> None:
        """Shapes, ranges and episode structure, each problem naming the field."""
        N = self.n
        if N == 0:
            raise InputError(f"{source}: no transitions")
        if list(self.obs_columns) != layout.column_names():
            raise InputError(f"{source}: field 'obs_columns' does not match this version's "
                             f"observation ({len(self.obs_columns)} columns, expected "
                             f"{layout.dim}: docs/policies.md)")
        shapes = {"observations": (N, layout.dim), "next_observations": (N, layout.dim),
                  "masks": (N, 6), "rewards": (N,), "terminals": (N,), "propensities": (N,),
                  "episode_ids": (N,), "days": (N,)}
        if self.logging_probs is not None:
            shapes["logging_probs"] = (N, 6)
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise InputError(f"{source}: field {name!r} has shape "
                                 f"{getattr(self, name).shape}, expected {shape}")
        checks = {"actions": (self.actions < 0) | (self.actions >= 6),
                  "rewards": ~np.isfinite(self.rewards),
                  "propensities": (self.propensities <= 0) | (self.propensities > 1),
                  "observations": ~np.isfinite(self.observations).all(axis=1)}
        if self.logging_probs is not None:
            lp = self.logging_probs
            checks["logging_probs"] = ((lp < 0) | (lp > 1 + 1e-5)).any(axis=1)
        for name, bad in checks.items():
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise InputError(f"{source}: field {name!r}, row {k} (episode "
                                 f"{self.episode_ids[k]}, day {self.days[k]}): out of range "
                                 f"({np.asarray(getattr(self, name))[k]})")
        for rows in self.episodes():
            if not np.array_equal(self.days[rows], np.arange(len(rows))):
                raise InputError(f"{source}: field 'days', episode {self.episode_ids[rows[0]]}:"
                                 " expected the days 0, 1, 2, ... in order (rows of an "
                                 "episode contiguous)")
        if len(set(self.episode_ids.tolist())) != len(list(self.episodes())):
            raise InputError(f"{source}: field 'episode_ids': an episode's rows are not "
                             "contiguous")

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
        # absolute: minari 0.5.4 joins a relative root onto itself (ds/.minari-x/.../ds/...)
        directory = directory.resolve()
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
