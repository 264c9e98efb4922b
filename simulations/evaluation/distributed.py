"""Simulation and evaluation sweeps as Dask tasks, gathered into the SAME result as a local run.

One task = one (scenario, seed, policy): it redraws the seed's invoices
(``default_rng([seed, 0])``, exactly as :func:`~simulations.evaluation.harness.evaluate_policies`
does), runs the policy with :func:`~simulations.evaluation.harness.run_policy` (same random
stream ``default_rng([seed, day, 1])``) and returns the raw per-seed parts (KPIs, per-segment
KPIs, timing counts, vetoes). The client assembles them in the harness's seed and
policy order with the harness's own functions (``aggregate``, ``pool_timing``,
``summarize_timing``, ``paired_differences``), so every figure equals the local run's; only
``config.seconds`` (wall time) differs, and ``config.cluster`` records where it ran.

Sources, masks and policies are sent to the workers once (``client.scatter``) and must be
picklable (all packaged ones are).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from simulations.env.core import CollectionsSimulator
from simulations.env.layout import SEGMENT_NAMES
from simulations.env.masks import ActionMask, default_mask
from simulations.env.source import TransitionSource
from simulations.evaluation.harness import (
    DEFAULT_INTERVAL,
    EvaluationResult,
    Progress,
    invoice_columns,
    paired_differences,
    paired_table,
    run_policy,
    seeds_of,
    stack_rows,
)
from simulations.evaluation.metrics import (
    aggregate,
    invoice_outcomes,
    kpis,
    pool_timing,
    summarize_timing,
    timing_counts,
)

if TYPE_CHECKING:
    from distributed import Client

    from simulations.policy import Policy


@dataclass
class SeedPolicyPart:
    """What one (seed, policy) task returns: the harness's per-seed ingredients."""

    seed: int
    policy: str
    overall: dict[str, float]
    by_segment: dict[str, dict[str, float]]
    timing: dict[str, list[dict[str, object]]]
    vetoes: dict[str, int]
    outcomes: dict[str, np.ndarray] | None = None  # per invoice, (n,) per field
    invoices: dict[str, np.ndarray] | None = None  # segment, amount, (n,)


def run_seed_policy(name: str, policy: Policy, source: TransitionSource, mask: ActionMask,
                    horizon: int | None, n_invoices: int, seed: int) -> SeedPolicyPart:
    """Run ``policy`` on seed ``seed``'s invoices (a Dask task; pure function of its inputs)."""
    sim = CollectionsSimulator(source, mask, horizon=horizon)
    batch = source.fresh_invoices(n_invoices, np.random.default_rng([seed, 0]))
    log, refused_by = run_policy(policy, sim, batch, seed)
    by_segment = {}
    for s, seg in enumerate(SEGMENT_NAMES):
        rows = np.flatnonzero(batch.segment == s)
        if len(rows):
            by_segment[seg] = kpis(log, batch, rows)
    return SeedPolicyPart(seed=seed, policy=name, overall=kpis(log, batch),
                          by_segment=by_segment, timing=timing_counts(log, batch),
                          vetoes=refused_by, outcomes=invoice_outcomes(log),
                          invoices=invoice_columns(batch))


def assemble(parts: Sequence[SeedPolicyPart], names: Sequence[str], seed_list: Sequence[int],
             scenario_name: str, n_invoices: int, reference: str | None,
             config: dict[str, Any]) -> EvaluationResult:
    """Combine task parts into an :class:`EvaluationResult` in the harness's order."""
    by_key = {(p.seed, p.policy): p for p in parts}
    ordered = {n: [by_key[(s, n)] for s in seed_list] for n in names}
    vetoes: dict[str, dict[str, int]] = {}
    for n in names:
        vetoes[n] = {}
        for part in ordered[n]:
            for rule, count in part.vetoes.items():
                vetoes[n][rule] = vetoes[n].get(rule, 0) + count
    by_segment = {}
    for n in names:
        segs = {s: [p.by_segment[s] for p in ordered[n] if s in p.by_segment]
                for s in SEGMENT_NAMES}
        by_segment[n] = {s: aggregate(v) for s, v in segs.items() if v}
    overall = {n: aggregate([p.overall for p in ordered[n]]) for n in names}
    ref = reference if reference in names else None
    complete = all(p.outcomes is not None for p in parts)
    outcomes = ({n: stack_rows([p.outcomes for p in ordered[n]]) for n in names}  # type: ignore[misc]
                if complete else {})
    invoices = (stack_rows([ordered[names[0]][k].invoices for k in range(len(seed_list))])  # type: ignore[misc]
                if complete and names else {})
    interval = {**DEFAULT_INTERVAL, **config.get("interval", {})}
    config = {**config, "interval": interval}
    return EvaluationResult(
        scenario=scenario_name, n_invoices=int(n_invoices), seeds=list(seed_list),
        policies=list(names), overall=overall,
        by_segment=by_segment,
        timing={n: summarize_timing(pool_timing([p.timing for p in ordered[n]]))
                for n in names},
        difference=paired_differences(overall, ref), vetoes=vetoes, reference=ref,
        config=config, paired=paired_table(outcomes, ref, interval), outcomes=outcomes,
        invoices=invoices)


@dataclass
class SweepItem:
    """One evaluation of a sweep: a name, the policies and where/how to run them."""

    name: str
    policies: Mapping[str, Policy]
    source: TransitionSource
    mask: ActionMask
    n_invoices: int
    seeds: list[int]
    horizon: int | None = None
    reference: str | None = "fixed"
    interval: Mapping[str, Any] | None = None  # paired intervals (harness DEFAULT_INTERVAL)


def sweep(client: Client, items: Sequence[SweepItem], progress: Progress | None = None
          ) -> dict[str, EvaluationResult]:
    """Run several evaluations (e.g. scenarios) at once: every (item, seed, policy) is a task.

    Returns ``{item.name: EvaluationResult}``, each identical to ``evaluate_policies`` on
    the same inputs (except ``config.seconds``).
    """
    from distributed import as_completed

    started = time.perf_counter()
    futures, owner = [], {}
    for i, item in enumerate(items):
        # hash=False: fresh keys. With content-hashed keys, scattering the same object
        # again right after an earlier sweep released it races with the release
        # ("Could not find data" on a worker), e.g. the same LegalMask in two sweeps.
        source, mask = client.scatter([item.source, item.mask], broadcast=True, hash=False)
        for name, policy in item.policies.items():
            pol = client.scatter(policy, broadcast=True, hash=False)
            for seed in item.seeds:
                fut = client.submit(run_seed_policy, name, pol, source, mask, item.horizon,
                                    item.n_invoices, seed, pure=False)
                futures.append(fut)
                owner[fut.key] = i
    parts: list[list[SeedPolicyPart]] = [[] for _ in items]
    for done, fut in enumerate(as_completed(futures), start=1):
        part = fut.result()  # re-raises a worker's exception here
        parts[owner[fut.key]].append(part)
        if progress is not None:
            progress(f"seed {part.seed} {part.policy}", done, len(futures))
    seconds = round(time.perf_counter() - started, 2)
    out: dict[str, EvaluationResult] = {}
    for item, mine in zip(items, parts, strict=True):
        sim = CollectionsSimulator(item.source, item.mask, horizon=item.horizon)
        config = {"source": item.source.name, "horizon": sim.horizon,
                  "ruleset_hash": getattr(sim.mask, "ruleset_hash", ""), "seconds": seconds,
                  "interval": {**DEFAULT_INTERVAL, **(item.interval or {})},
                  "cluster": {"address": client.scheduler.address, "tasks": len(futures)}}
        out[item.name] = assemble(
            mine, list(item.policies), item.seeds,
            str(getattr(getattr(item.source, "scenario", None), "name", item.name)),
            item.n_invoices, item.reference, config)
    return out


def evaluate_policies_distributed(
    client: Client,
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
    interval: Mapping[str, Any] | None = None,
) -> EvaluationResult:
    """:func:`~simulations.evaluation.harness.evaluate_policies` with one Dask task per
    (seed, policy); same arguments, same result (``config.seconds`` aside)."""
    if not policies:
        raise ValueError("no policies to evaluate")
    if source is None:
        from simulations.env.ground_truth import GroundTruthSource

        source = GroundTruthSource(scenario)
    item = SweepItem(name=str(getattr(getattr(source, "scenario", None), "name", scenario)),
                     policies=policies, source=source,
                     mask=default_mask() if mask is None else mask, n_invoices=n_invoices,
                     seeds=seeds_of(seeds), horizon=horizon, reference=reference,
                     interval=interval)
    return sweep(client, [item], progress)[item.name]
