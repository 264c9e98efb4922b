"""Tune one reminder schedule per segment with the cross-entropy method.

Search space per segment: 0..``max_steps`` reminders; the first on a day from ``day_grid``,
each later one ``gap_grid`` days after the previous; each by a channel from ``channels``.
Every iteration samples ``population`` candidate schedules per segment, runs each on the
same invoices with the same random draws (common random numbers, so candidates differ only
by their schedule), and moves each segment's sampling distribution towards its elite.
The fixed 14/30/45 schedule is always a candidate; a segment keeps it unless the winner
also beats it on fresh validation invoices (guards against picking noise).

Run it in the LEARNED environment (``LearnedSource``): tuning in the ground truth would
use knowledge no user has.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError
from engine.files import atomic_write_text
from policies.baselines.schedule import (
    DEFAULT_SCHEDULE,
    Schedule,
    ScheduleStep,
    SegmentSchedulePolicy,
)
from simulations.env.core import CollectionsSimulator
from simulations.env.layout import SEGMENT_NAMES
from simulations.env.masks import ActionMask, default_mask
from simulations.env.source import TransitionSource
from simulations.evaluation.harness import segment_mean_npv

FORMAT_VERSION = 1


@dataclass(frozen=True)
class TuningConfig:
    """Knobs of the search (all seeded by ``seed``)."""

    n_invoices: int = 3000  # invoices per candidate run
    iterations: int = 4
    population: int = 16
    elite_share: float = 0.25
    smoothing: float = 0.7  # weight of the elite frequencies in the update
    max_steps: int = 3
    day_grid: tuple[int, ...] = (0, 2, 4, 6, 8, 10, 14, 18, 21, 25, 30, 40)
    gap_grid: tuple[int, ...] = (7, 10, 14, 18, 21, 28)
    channels: tuple[str, ...] = ("email", "letter", "phone", "final_notice")
    validation_invoices: int = 3000
    seed: int = 0


@dataclass
class _Dist:
    """Categorical sampling distribution of one segment's schedule parameters."""

    steps: np.ndarray
    first: np.ndarray
    gaps: np.ndarray  # (max_steps - 1, len(gap_grid))
    chans: np.ndarray  # (max_steps, len(channels))

    @classmethod
    def uniform(cls, cfg: TuningConfig) -> _Dist:
        def u(k: int) -> np.ndarray:
            return np.full(k, 1.0 / k)

        return cls(u(cfg.max_steps + 1), u(len(cfg.day_grid)),
                   np.stack([u(len(cfg.gap_grid))] * max(cfg.max_steps - 1, 1)),
                   np.stack([u(len(cfg.channels))] * cfg.max_steps))


def _sample(dist: _Dist, cfg: TuningConfig, rng: np.random.Generator) -> tuple[int, ...]:
    """A candidate as indices: (steps, first, gap_1.., chan_1..)."""
    steps = int(rng.choice(len(dist.steps), p=dist.steps))
    first = int(rng.choice(len(dist.first), p=dist.first))
    gaps = [int(rng.choice(dist.gaps.shape[1], p=p)) for p in dist.gaps]
    chans = [int(rng.choice(dist.chans.shape[1], p=p)) for p in dist.chans]
    return (steps, first, *gaps, *chans)


def _decode(code: tuple[int, ...], cfg: TuningConfig) -> Schedule:
    k = cfg.max_steps
    steps, first = code[0], code[1]
    gaps, chans = code[2:2 + max(k - 1, 1)], code[2 + max(k - 1, 1):]
    out, day = [], cfg.day_grid[first]
    for i in range(steps):
        if i > 0:
            day += cfg.gap_grid[gaps[i - 1]]
        out.append(ScheduleStep(int(day), cfg.channels[chans[i]]))
    return tuple(out)


def _update(dist: _Dist, elite: list[tuple[int, ...]], cfg: TuningConfig) -> _Dist:
    a = cfg.smoothing
    k = cfg.max_steps

    def freq(values: list[int], size: int) -> np.ndarray:
        f = np.bincount(values, minlength=size).astype(float)
        return f / f.sum()

    def mix(old: np.ndarray, new: np.ndarray) -> np.ndarray:
        p = (1 - a) * old + a * new
        return p / p.sum()

    steps = mix(dist.steps, freq([c[0] for c in elite], len(dist.steps)))
    first = mix(dist.first, freq([c[1] for c in elite], len(dist.first)))
    gaps = np.stack([mix(dist.gaps[i], freq([c[2 + i] for c in elite], dist.gaps.shape[1]))
                     for i in range(dist.gaps.shape[0])])
    off = 2 + max(k - 1, 1)
    chans = np.stack([mix(dist.chans[i], freq([c[off + i] for c in elite], dist.chans.shape[1]))
                      for i in range(k)])
    return _Dist(steps, first, gaps, chans)


class TunedSchedulePolicy(SegmentSchedulePolicy):
    """A per-segment schedule found by :func:`tune_schedules`; saved/loaded as JSON."""

    name = "tuned"

    def __init__(self, schedules: dict[str, Schedule], meta: dict[str, Any] | None = None
                 ) -> None:
        super().__init__(schedules)
        self.meta: dict[str, Any] = dict(meta or {})

    def save(self, path: str | Path) -> Path:
        """Write the schedules and how they were found to ``path`` (JSON, atomic)."""
        path = Path(path)
        if path.suffix != ".json":
            path = path / "tuned_schedule.json"
        payload = {"format_version": FORMAT_VERSION, "policy": "tuned",
                   "schedules": self.to_dict(), "meta": self.meta}
        return atomic_write_text(path, json.dumps(payload, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> TunedSchedulePolicy:
        path = Path(path)
        if path.is_dir():
            path = path / "tuned_schedule.json"
        if not path.is_file():
            raise InputError(f"{path}: tuned schedule file not found (expected the JSON "
                             "written by tune_schedules / `dunning evaluate --tune-out`)")
        try:
            data = json.loads(path.read_text())
            schedules = {
                seg: tuple(ScheduleStep(int(s["day"]), str(s["channel"])) for s in steps)
                for seg, steps in data["schedules"].items()
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}: not a tuned schedule file ({exc}); expected "
                             "{'schedules': {segment: [{'day': int, 'channel': str}]}}") from None
        return cls(schedules, data.get("meta"))


def tune_schedules(source: TransitionSource, config: TuningConfig = TuningConfig(),
                   mask: ActionMask | None = None,
                   progress: Callable[[str, int, int], None] | None = None
                   ) -> TunedSchedulePolicy:
    """Cross-entropy search of one schedule per segment in ``source`` (see module doc)."""
    cfg = config
    rng = np.random.default_rng([cfg.seed, 17])
    sim = CollectionsSimulator(source, default_mask() if mask is None else mask)
    batch = source.fresh_invoices(cfg.n_invoices, np.random.default_rng([cfg.seed, 1]))
    n_seg = len(SEGMENT_NAMES)
    dists = [_Dist.uniform(cfg) for _ in range(n_seg)]
    fixed_score = segment_mean_npv(SegmentSchedulePolicy({}, DEFAULT_SCHEDULE), sim, batch,
                                  cfg.seed)
    best: list[tuple[float, Schedule]] = [(float(fixed_score[s]), DEFAULT_SCHEDULE)
                                          for s in range(n_seg)]
    total, done = cfg.iterations * cfg.population, 0
    history = []
    for it in range(cfg.iterations):
        codes = [[_sample(dists[s], cfg, rng) for s in range(n_seg)]
                 for _ in range(cfg.population)]
        scores = np.zeros((cfg.population, n_seg))
        for j, cand in enumerate(codes):
            schedules = {SEGMENT_NAMES[s]: _decode(cand[s], cfg) for s in range(n_seg)}
            scores[j] = segment_mean_npv(SegmentSchedulePolicy(schedules), sim, batch, cfg.seed)
            done += 1
            if progress is not None:
                progress(f"iteration {it + 1}", done, total)
        n_elite = max(1, int(round(cfg.elite_share * cfg.population)))
        for s in range(n_seg):
            if np.isnan(scores[:, s]).all():
                continue
            order = np.argsort(-np.nan_to_num(scores[:, s], nan=-np.inf), kind="stable")
            dists[s] = _update(dists[s], [codes[j][s] for j in order[:n_elite]], cfg)
            j = int(order[0])
            if scores[j, s] > best[s][0]:
                best[s] = (float(scores[j, s]), _decode(codes[j][s], cfg))
        history.append([float(np.nanmax(scores[:, s])) if not np.isnan(scores[:, s]).all()
                        else None for s in range(n_seg)])

    # Validate on fresh invoices and draws: keep the fixed schedule where the winner is not
    # better there (the search maximum is optimistic).
    val_batch = source.fresh_invoices(cfg.validation_invoices,
                                      np.random.default_rng([cfg.seed, 2]))
    winner = SegmentSchedulePolicy({SEGMENT_NAMES[s]: best[s][1] for s in range(n_seg)})
    val_win = segment_mean_npv(winner, sim, val_batch, cfg.seed + 1)
    val_fixed = segment_mean_npv(SegmentSchedulePolicy({}, DEFAULT_SCHEDULE), sim, val_batch,
                                cfg.seed + 1)
    final: dict[str, Schedule] = {}
    validation = {}
    for s, seg in enumerate(SEGMENT_NAMES):
        keep = not np.isnan(val_win[s]) and val_win[s] > val_fixed[s]
        final[seg] = best[s][1] if keep else DEFAULT_SCHEDULE
        validation[seg] = {"tuned_npv": None if np.isnan(val_win[s]) else float(val_win[s]),
                           "fixed_npv": None if np.isnan(val_fixed[s]) else float(val_fixed[s]),
                           "kept_tuned": bool(keep)}
    meta = {"source": source.name, "config": asdict(cfg), "validation": validation,
            "best_per_iteration": history}
    return TunedSchedulePolicy(final, meta)


__all__ = ["TunedSchedulePolicy", "TuningConfig", "tune_schedules"]
