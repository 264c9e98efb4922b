"""Per-segment timing rules for a trained policy, searched in the learned environment.

Why: PPO improves a policy one day at a time. A policy that calls corporates on day 1 and
then weekly compares "call today" with "wait a day, then do what the policy does", never
with "move the whole schedule five days later", so it stays in that local optimum even
when the learned environment values the later schedule more (docs/rl.md). A timing rule
moves the whole schedule at once: no first reminder before day ``first_reminder_day``
after due, no further reminder fewer than ``min_days_between`` days after the last one.
On the days a rule holds an invoice back, the policy may only WAIT; on every other day it
decides as trained.

The rules are a function of the observation alone (days overdue, reminders sent, days
since the last reminder), so the policy stays stateless: the daily recommendation, the
evaluation and the simulator all apply them from the same observation.

:func:`search_timing_rules` picks them in the LEARNED environment (never the ground truth)
with common random numbers, like :func:`policies.tuned.tune_schedules`, by the mean NPV per
unit of amount (what the policy was trained on; in money a few large invoices carry most
of the noise). Every pair of earliest first reminder and shortest gap on the grid is run
(jointly: a later first reminder can pay only with a longer gap, measured so), each for all
segments at once since invoices are independent; a segment keeps its best pair only if it
also wins on fresh validation invoices and draws.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from policies.rl.timing_rules import TimingRule, TimingRules
from simulations.env.core import CollectionsSimulator
from simulations.env.layout import SEGMENT_NAMES
from simulations.env.masks import ActionMask, default_mask
from simulations.env.source import TransitionSource
from simulations.evaluation.harness import segment_mean_npv
from simulations.policy import Policy


class TimedPolicy(Policy):
    """``base`` with ``rules`` applied to its masks: held rows WAIT, the rest as ``base``."""

    def __init__(self, base: Policy, rules: TimingRules) -> None:
        self.base, self.rules = base, rules
        self.name = getattr(base, "name", "policy")

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return self.base.act(observations, self.rules.apply(observations, masks))


@dataclass(frozen=True)
class TimingSearchConfig:
    """Grids and sample sizes of :func:`search_timing_rules` (seeded by ``seed``).

    ``first_reminder_days`` and ``min_days_between`` must include 0 (the policy alone).
    ``n_invoices`` are drawn once and shared by every candidate (common random numbers);
    ``validation_invoices`` are fresh ones for the keep-or-drop check.
    """

    first_reminder_days: tuple[int, ...] = (0, 3, 6, 9, 15, 30)
    min_days_between: tuple[int, ...] = (0, 10, 14)
    n_invoices: int = 2000
    validation_invoices: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("first_reminder_days", "min_days_between"):
            if 0 not in getattr(self, name):
                raise ValueError(f"TimingSearchConfig.{name} must include 0 (no rule)")


def search_timing_rules(policy: Policy, source: TransitionSource,
                        config: TimingSearchConfig = TimingSearchConfig(),
                        mask: ActionMask | None = None,
                        progress: Callable[[str, int, int], None] | None = None
                        ) -> tuple[TimingRules, dict[str, Any]]:
    """Search one :class:`TimingRule` per segment for ``policy`` in ``source``.

    Returns the rules (segments where no rule beat the policy alone get none) and a report:
    mean NPV per unit of amount per segment of every candidate (``candidates[segment]
    ["first/gap"]``), the validation, what was kept and the ``seconds`` it took.
    """
    cfg = config
    started = time.perf_counter()
    sim = CollectionsSimulator(source, default_mask() if mask is None else mask)
    batch = source.fresh_invoices(cfg.n_invoices, np.random.default_rng([cfg.seed, 3]))
    total = len(cfg.first_reminder_days) * len(cfg.min_days_between) + 2
    done = 0

    def score(rules: TimingRules, on: Any = batch, seed: int = cfg.seed) -> np.ndarray:
        nonlocal done
        out = segment_mean_npv(TimedPolicy(policy, rules), sim, on, seed, per_amount=True)
        done += 1
        if progress is not None:
            progress("timing rules", done, total)
        return out

    grid = [TimingRule(first, gap) for first in cfg.first_reminder_days
            for gap in cfg.min_days_between]
    # (len(grid), n_segments); the same rule for every segment in one run
    table = np.vstack([score(TimingRules(dict.fromkeys(SEGMENT_NAMES, rule))) for rule in grid])
    chosen: dict[str, TimingRule] = {}
    report: dict[str, Any] = {"candidates": {}}
    for s, seg in enumerate(SEGMENT_NAMES):
        report["candidates"][seg] = {f"{r.first_reminder_day}/{r.min_days_between}":
                                     _num(table[i, s]) for i, r in enumerate(grid)}
        if not np.isnan(table[:, s]).all():
            chosen[seg] = grid[int(np.nanargmax(table[:, s]))]

    # The search maximum is optimistic: keep a segment's rule only if it also wins on fresh
    # invoices and draws.
    val = source.fresh_invoices(cfg.validation_invoices, np.random.default_rng([cfg.seed, 4]))
    with_rules = score(TimingRules(chosen), val, cfg.seed + 1)
    alone = score(TimingRules(), val, cfg.seed + 1)
    kept: dict[str, TimingRule] = {}
    validation = {}
    for s, seg in enumerate(SEGMENT_NAMES):
        rule = chosen.get(seg, TimingRule())
        keep = (not rule.is_noop and not np.isnan(with_rules[s])
                and with_rules[s] > alone[s])
        if keep:
            kept[seg] = rule
        validation[seg] = {"rule": asdict(rule), "npv_per_amount_with_rule": _num(with_rules[s]),
                           "npv_per_amount_policy_alone": _num(alone[s]), "kept": bool(keep)}
    report.update({"source": source.name, "config": asdict(cfg), "validation": validation,
                   "seconds": round(time.perf_counter() - started, 2)})
    return TimingRules(kept), report


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


__all__ = ["TimedPolicy", "TimingRule", "TimingRules", "TimingSearchConfig",
           "search_timing_rules"]
