"""Run policies on the same invoices with common random numbers and compare their KPIs.

For every seed the harness draws one set of invoices and, for each policy, steps them from
the due date to the end with the SAME random stream per day: the source draws a fixed
number of uniforms per invoice and day from ``default_rng([seed, day, 1])``, so two
policies that act alike on an invoice see the same outcome. Same seed => identical results.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.serialization import jsonable
from simulations.env.core import CollectionsSimulator
from simulations.env.layout import SEGMENT_NAMES
from simulations.env.masks import ActionMask, default_mask
from simulations.env.source import TransitionSource
from simulations.env.types import InvoiceBatch
from simulations.evaluation.metrics import (
    KPI_DOC,
    EpisodeLog,
    aggregate,
    kpis,
    pool_timing,
    summarize_timing,
    t_interval,
    timing_counts,
)
from simulations.policy import Policy

Progress = Callable[[str, int, int], None]  # (message, done, total)


@dataclass
class EvaluationResult:
    """KPIs per policy with 95 % confidence intervals over seeds.

    ``overall[policy][kpi]`` and ``by_segment[policy][segment][kpi]`` are
    ``{"mean", "ci_low", "ci_high", "per_seed"}``; ``timing[policy][segment]`` lists the
    1st/2nd/3rd reminder's share sent, day after due (mean, median, p10, p90) and channels;
    ``difference[policy]`` is the paired NPV difference to ``reference`` (same invoices,
    same draws) with its CI; ``vetoes[policy][rule_id]`` counts refused attempts per rule.
    """

    scenario: str
    n_invoices: int
    seeds: list[int]
    policies: list[str]
    overall: dict[str, dict[str, dict[str, Any]]]
    by_segment: dict[str, dict[str, dict[str, dict[str, Any]]]]
    timing: dict[str, dict[str, list[dict[str, Any]]]]
    difference: dict[str, dict[str, Any]]
    vetoes: dict[str, dict[str, int]]
    reference: str | None
    config: dict[str, Any] = field(default_factory=dict)

    def kpi(self, policy: str, name: str, segment: str | None = None) -> float:
        """Mean over seeds of one KPI."""
        table = self.overall[policy] if segment is None else self.by_segment[policy][segment]
        return float(table[name]["mean"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "n_invoices": self.n_invoices, "seeds": self.seeds,
            "policies": self.policies, "reference": self.reference, "kpi_doc": KPI_DOC,
            "overall": self.overall, "by_segment": self.by_segment, "timing": self.timing,
            "difference": self.difference, "vetoes": self.vetoes, "config": self.config,
        }

    def save(self, out_dir: str | Path) -> Path:
        """Write ``out_dir/evaluation.json`` atomically (temp file + rename)."""
        import json

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "evaluation.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(jsonable(self.to_dict()), indent=2) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> EvaluationResult:
        import json

        d = json.loads(Path(path).read_text())
        d.pop("kpi_doc", None)
        return cls(**d)


def run_policy(policy: Policy, sim: CollectionsSimulator, batch: InvoiceBatch, seed: int
               ) -> tuple[EpisodeLog, dict[str, int]]:
    """Step ``batch`` under ``policy`` until every invoice has ended.

    Returns the per-invoice log and refused attempts per vetoing rule id. A policy with a
    ``bind_simulator(sim)`` hook (the oracle's) is given the simulator first so it can read
    the true state of each row; ``act`` always receives all rows in batch order.
    """
    sim.load(batch)
    policy.bind_simulator(sim)
    log = EpisodeLog(sim.n)
    refused_by: dict[str, int] = {}
    for day in range(sim.horizon):
        if not sim.active.any():
            break
        obs, masks = sim.observations(), sim.action_masks()
        actions = np.asarray(policy.act(obs, masks), dtype=np.int64)
        refused = np.flatnonzero(sim.active & ~masks[np.arange(sim.n), actions])
        if len(refused):  # name the rules before the day moves on
            by = sim.vetoed_by(refused)[np.arange(len(refused)), actions[refused]]
            for b in by:
                rule = sim.mask.rule_ids[int(b)] if b >= 0 else "unknown"
                refused_by[rule] = refused_by.get(rule, 0) + 1
        res = sim.step(actions, np.random.default_rng([seed, day, 1]))
        log.record(res, masks)
    return log, refused_by


def segment_mean_npv(policy: Policy, sim: CollectionsSimulator, batch: InvoiceBatch,
                     seed: int, per_amount: bool = False) -> np.ndarray:
    """(len(SEGMENT_NAMES),) mean NPV per invoice of each segment under ``policy`` (NaN for a
    segment absent from ``batch``): the score searches compare candidates by.
    ``per_amount`` averages NPV / amount instead, so every invoice counts alike (in money a
    few large invoices carry most of the noise)."""
    log, _ = run_policy(policy, sim, batch, seed)
    value = log.npv / batch.amount if per_amount else log.npv
    out = np.full(len(SEGMENT_NAMES), np.nan)
    for s in range(len(SEGMENT_NAMES)):
        rows = batch.segment == s
        if rows.any():
            out[s] = value[rows].mean()
    return out


def paired_differences(overall: Mapping[str, Mapping[str, Any]], reference: str | None
                       ) -> dict[str, dict[str, Any]]:
    """Per policy of ``overall``: mean NPV per invoice minus ``reference``'s, paired by seed
    (same invoices, same draws), with its 95 % t-interval over seeds ({} without a
    reference)."""
    if reference is None:
        return {}
    ref = np.asarray(overall[reference]["npv"]["per_seed"], dtype=float)
    out: dict[str, dict[str, Any]] = {}
    for name, kpi in overall.items():
        mean, lo, hi = t_interval(np.asarray(kpi["npv"]["per_seed"], dtype=float) - ref)
        out[name] = {"npv_minus_reference": mean, "ci_low": lo, "ci_high": hi}
    return out


def combine_evaluations(parts: Sequence[EvaluationResult], order: Sequence[str] | None = None,
                        reference: str | None = "fixed") -> EvaluationResult:
    """One result from evaluations of disjoint sets of policies on the same invoices, draws
    and rules (same source, scenario, ``n_invoices``, seeds, horizon and rule set).

    Under common random numbers a policy's KPIs do not depend on which other policies ran
    beside it, so evaluating policies apart (e.g. in two processes) and combining them
    gives exactly what one :func:`evaluate_policies` call gives; the paired differences are
    recomputed against ``reference``. ``order`` lists the policies in the order wanted
    (default: as in ``parts``); ``config["seconds"]`` is the sum of the parts'.

    Raises:
        ValueError: if the parts were not run on the same invoices, or share a policy.
    """
    if not parts:
        raise ValueError("no evaluations to combine")
    first = parts[0]
    same = ("source", "horizon", "ruleset_hash")
    for part in parts[1:]:
        for what, a, b in (("scenario", first.scenario, part.scenario),
                           ("n_invoices", first.n_invoices, part.n_invoices),
                           ("seeds", first.seeds, part.seeds),
                           *((k, first.config.get(k), part.config.get(k)) for k in same)):
            if a != b:
                raise ValueError(f"cannot combine evaluations with different {what}: "
                                 f"{a!r} and {b!r}")
    names = [p for part in parts for p in part.policies]
    if len(set(names)) != len(names):
        raise ValueError(f"policies evaluated twice: {names}")
    order = list(order) if order is not None else names
    if sorted(order) != sorted(names):
        raise ValueError(f"order {order} does not list the evaluated policies {names}")
    owner = {p: part for part in parts for p in part.policies}
    overall = {p: owner[p].overall[p] for p in order}
    ref = reference if reference in overall else None
    return EvaluationResult(
        scenario=first.scenario, n_invoices=first.n_invoices, seeds=list(first.seeds),
        policies=order, overall=overall,
        by_segment={p: owner[p].by_segment[p] for p in order},
        timing={p: owner[p].timing[p] for p in order},
        difference=paired_differences(overall, ref),
        vetoes={p: owner[p].vetoes[p] for p in order}, reference=ref,
        config={**first.config,
                "seconds": round(sum(float(part.config.get("seconds", 0.0)) for part in parts),
                                 2)},
    )


def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    return list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]


def evaluate_policies(
    policies: Mapping[str, Policy],
    scenario: Any = "default",
    n_invoices: int = 2000,
    seeds: int | Sequence[int] = 5,
    *,
    source: TransitionSource | None = None,
    mask: ActionMask | None = None,
    horizon: int | None = None,
    reference: str | None = "fixed",
    progress: Progress | None = None,
) -> EvaluationResult:
    """Evaluate every policy on the same invoices of each seed (common random numbers).

    Args:
        policies: name -> policy (``act(observations, masks)``).
        scenario: scenario name, path or ``Scenario``; used to build the ground truth when
            ``source`` is None.
        n_invoices: invoices per seed.
        seeds: number of seeds (``0..K-1``) or the seeds themselves.
        source: transition source (default ``GroundTruthSource(scenario)``).
        mask: legal mask (default: the packaged rules).
        horizon: write-off day (default: the source's).
        reference: policy the paired NPV differences are taken against (if present).
        progress: called as ``progress(message, done, total)`` after each policy run.
    """
    if not policies:
        raise ValueError("no policies to evaluate")
    if source is None:
        from simulations.env.ground_truth import GroundTruthSource

        source = GroundTruthSource(scenario)
    sim = CollectionsSimulator(source, default_mask() if mask is None else mask,
                               horizon=horizon)
    seed_list = _seed_list(seeds)
    names = list(policies)
    per_seed: dict[str, list[dict[str, float]]] = {p: [] for p in names}
    per_seg: dict[str, dict[str, list[dict[str, float]]]] = {
        p: {s: [] for s in SEGMENT_NAMES} for p in names}
    timing_parts: dict[str, list[dict]] = {p: [] for p in names}
    vetoes: dict[str, dict[str, int]] = {p: {} for p in names}
    total, done = len(seed_list) * len(names), 0
    started = time.perf_counter()
    for seed in seed_list:
        batch = source.fresh_invoices(n_invoices, np.random.default_rng([seed, 0]))
        for name in names:
            log, refused_by = run_policy(policies[name], sim, batch, seed)
            per_seed[name].append(kpis(log, batch))
            for s, seg in enumerate(SEGMENT_NAMES):
                rows = np.flatnonzero(batch.segment == s)
                if len(rows):
                    per_seg[name][seg].append(kpis(log, batch, rows))
            timing_parts[name].append(timing_counts(log, batch))
            for rule, count in refused_by.items():
                vetoes[name][rule] = vetoes[name].get(rule, 0) + count
            done += 1
            if progress is not None:
                progress(f"seed {seed} {name}", done, total)
    overall = {p: aggregate(per_seed[p]) for p in names}
    ref = reference if reference in policies else None
    return EvaluationResult(
        scenario=str(getattr(getattr(source, "scenario", None), "name", scenario)),
        n_invoices=int(n_invoices),
        seeds=seed_list,
        policies=names,
        overall=overall,
        by_segment={p: {s: aggregate(v) for s, v in per_seg[p].items() if v} for p in names},
        timing={p: summarize_timing(pool_timing(timing_parts[p])) for p in names},
        difference=paired_differences(overall, ref),
        vetoes=vetoes,
        reference=ref,
        config={
            "source": source.name,
            "horizon": sim.horizon,
            "ruleset_hash": getattr(sim.mask, "ruleset_hash", ""),
            "seconds": round(time.perf_counter() - started, 2),
        },
    )
