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

from engine.errors import InputError
from engine.files import atomic_write_text
from engine.serialization import jsonable
from simulations.env.core import CollectionsSimulator
from simulations.env.layout import SEGMENT_NAMES
from simulations.env.masks import ActionMask, default_mask
from simulations.env.source import TransitionSource
from simulations.env.types import InvoiceBatch
from simulations.evaluation.metrics import (
    KPI_DOC,
    OUTCOME_FIELDS,
    PAIRED_KPIS,
    EpisodeLog,
    aggregate,
    invoice_outcomes,
    kpis,
    paired_interval,
    per_invoice_kpi,
    pool_timing,
    summarize_timing,
    t_interval,
    timing_counts,
)
from simulations.policy import Policy

Progress = Callable[[str, int, int], None]  # (message, done, total)


EVALUATION_FILE = "evaluation.json"
OUTCOMES_FILE = "outcomes.npz"
DEFAULT_INTERVAL: dict[str, Any] = {"method": "t", "level": 0.95, "n_boot": 2000, "seed": 0}


@dataclass
class EvaluationResult:
    """KPIs per policy with 95 % confidence intervals over seeds, and per-invoice outcomes.

    ``overall[policy][kpi]`` and ``by_segment[policy][segment][kpi]`` are
    ``{"mean", "ci_low", "ci_high", "per_seed"}``; ``timing[policy][segment]`` lists the
    1st/2nd/3rd reminder's share sent, day after due (mean, median, p10, p90) and channels;
    ``difference[policy]`` is the paired NPV difference to ``reference`` (same invoices,
    same draws) with its CI over seeds; ``vetoes[policy][rule_id]`` counts refused attempts
    per rule.

    ``outcomes[policy][field]`` is a (seeds, invoices) array per field of
    :data:`~simulations.evaluation.metrics.OUTCOME_FIELDS` (row = seed in ``seeds`` order,
    column = invoice; the same column is the same invoice and draws for every policy);
    ``invoices["segment"|"amount"]`` are (seeds, invoices) too. ``paired[policy][kpi]`` is
    the mean per-invoice difference to ``reference`` of every KPI of
    :data:`~simulations.evaluation.metrics.PAIRED_KPIS` with its interval over invoices x
    seeds (``{"mean", "ci_low", "ci_high", "n", "method", "level"}``; method and level in
    ``config["interval"]``); :meth:`paired_difference` computes any other pairing.
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
    paired: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    outcomes: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    invoices: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def kpi(self, policy: str, name: str, segment: str | None = None) -> float:
        """Mean over seeds of one KPI."""
        table = self.overall[policy] if segment is None else self.by_segment[policy][segment]
        return float(table[name]["mean"])

    def paired_difference(self, policy: str, kpi: str = "npv", reference: str | None = None,
                          *, segment: str | None = None, method: str = "t",
                          level: float = 0.95, n_boot: int = 2000, seed: int = 0
                          ) -> dict[str, Any]:
        """Mean per-invoice difference ``policy - reference`` of ``kpi`` (a KPI of
        :data:`PAIRED_KPIS`) over invoices x seeds, with a paired t or bootstrap interval
        (see :func:`~simulations.evaluation.metrics.paired_interval`); ``segment`` keeps
        that segment's invoices only.

        Raises:
            ValueError: without per-invoice outcomes (an evaluation.json saved alone), for
                an unknown policy or a KPI that is not a mean over invoices.
        """
        ref = reference or self.reference
        for name in (policy, ref):
            if name is None or name not in self.outcomes:
                raise ValueError(f"no per-invoice outcomes of policy {name!r} (have: "
                                 f"{', '.join(self.outcomes) or 'none'}; an evaluation.json "
                                 f"loaded without its {OUTCOMES_FILE} has none)")
        diff = (per_invoice_kpi(self.outcomes[policy], kpi)
                - per_invoice_kpi(self.outcomes[ref], kpi))
        if segment is not None:
            if segment not in SEGMENT_NAMES:
                raise ValueError(f"segment {segment!r}: expected one of "
                                 f"{', '.join(SEGMENT_NAMES)}")
            keep = np.asarray(self.invoices["segment"]) == SEGMENT_NAMES.index(segment)
            diff = diff[keep]
        return paired_interval(diff, method, level, n_boot, seed)

    def to_dict(self) -> dict[str, Any]:
        """The JSON part (evaluation.json): everything but the per-invoice arrays."""
        return {
            "scenario": self.scenario, "n_invoices": self.n_invoices, "seeds": self.seeds,
            "policies": self.policies, "reference": self.reference, "kpi_doc": KPI_DOC,
            "overall": self.overall, "by_segment": self.by_segment, "timing": self.timing,
            "difference": self.difference, "vetoes": self.vetoes, "config": self.config,
            "paired": self.paired,
        }

    def save(self, out_dir: str | Path) -> Path:
        """Write ``out_dir/evaluation.json`` and, with per-invoice outcomes,
        ``out_dir/outcomes.npz`` (arrays ``p{i}__{field}`` for the i-th policy and
        ``invoice__segment|amount``), each atomically (temp file + rename). Returns the
        JSON's path; :meth:`load` takes the directory or that path."""
        import json

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        if self.outcomes:
            arrays = {f"p{i}__{k}": v for i, p in enumerate(self.policies)
                      for k, v in self.outcomes[p].items()}
            arrays.update({f"invoice__{k}": v for k, v in self.invoices.items()})
            tmp_npz = out_dir / (OUTCOMES_FILE + ".tmp")
            with open(tmp_npz, "wb") as fh:
                np.savez_compressed(fh, **arrays)
            tmp_npz.replace(out_dir / OUTCOMES_FILE)
        return atomic_write_text(out_dir / EVALUATION_FILE,
                                 json.dumps(jsonable(self.to_dict()), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> EvaluationResult:
        """Read what :meth:`save` wrote: the directory or its evaluation.json (the
        per-invoice outcomes too when outcomes.npz is beside it)."""
        import json

        path = Path(path)
        if path.is_dir():
            path = path / EVALUATION_FILE
        d = json.loads(path.read_text())
        d.pop("kpi_doc", None)
        res = cls(**d)
        npz = path.parent / OUTCOMES_FILE
        if npz.is_file():
            with np.load(npz) as z:
                res.outcomes = {p: {k: z[f"p{i}__{k}"] for k in OUTCOME_FIELDS
                                    if f"p{i}__{k}" in z.files}
                                for i, p in enumerate(res.policies)}
                res.invoices = {k.split("__", 1)[1]: z[k] for k in z.files
                                if k.startswith("invoice__")}
        return res


def paired_table(outcomes: Mapping[str, Mapping[str, np.ndarray]], reference: str | None,
                 interval: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """``{policy: {kpi: paired interval}}`` against ``reference`` for every KPI of
    :data:`PAIRED_KPIS` ({} without a reference or per-invoice outcomes)."""
    if reference is None or reference not in outcomes:
        return {}
    cfg = {**DEFAULT_INTERVAL, **(interval or {})}
    out: dict[str, dict[str, Any]] = {}
    for name, oc in outcomes.items():
        out[name] = {
            kpi: paired_interval(per_invoice_kpi(oc, kpi)
                                 - per_invoice_kpi(outcomes[reference], kpi),
                                 cfg["method"], cfg["level"], cfg["n_boot"], cfg["seed"])
            for kpi in PAIRED_KPIS}
    return out


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
        actions = checked_actions(policy, policy.act(obs, masks), masks.shape)
        refused = np.flatnonzero(sim.active & ~masks[np.arange(sim.n), actions])
        if len(refused):  # name the rules before the day moves on
            by = sim.vetoed_by(refused)[np.arange(len(refused)), actions[refused]]
            for b in by:
                rule = sim.mask.rule_ids[int(b)] if b >= 0 else "unknown"
                refused_by[rule] = refused_by.get(rule, 0) + 1
        res = sim.step(actions, np.random.default_rng([seed, day, 1]))
        log.record(res, masks)
    return log, refused_by


def checked_actions(policy: Policy, actions: Any, shape: tuple[int, int]) -> np.ndarray:
    """``actions`` as int64 (n,), or a clear error naming the policy (a plugin's mistake
    would otherwise surface as an IndexError deep in the simulator)."""
    out = np.asarray(actions)
    n, n_actions = shape
    where = f"policy {type(policy).__name__}.act"
    if out.shape != (n,):
        raise InputError(f"{where} returned shape {out.shape}, expected ({n},): one action "
                         "per row, finished rows included (docs/policies.md)")
    if out.dtype.kind not in "iu" and not (out.dtype.kind == "f" and np.all(out == out.round())):
        raise InputError(f"{where} returned {out.dtype} values, expected integer actions")
    out = out.astype(np.int64)
    if n and (out.min() < 0 or out.max() >= n_actions):
        raise InputError(f"{where} returned action {int(out.min() if out.min() < 0 else out.max())}"
                         f", expected 0..{n_actions - 1} (engine.contract.Action)")
    return out


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
    outcomes = {p: owner[p].outcomes[p] for p in order if p in owner[p].outcomes}
    if len(outcomes) < len(order):
        outcomes = {}  # a part without per-invoice outcomes: no paired intervals
    invoices = first.invoices if outcomes else {}
    for part in parts[1:]:
        if outcomes and not np.array_equal(part.invoices.get("amount"),
                                           first.invoices.get("amount")):
            raise ValueError("cannot combine evaluations with different invoices "
                             "(their amounts differ)")
    interval = first.config.get("interval", DEFAULT_INTERVAL)
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
        paired=paired_table(outcomes, ref, interval), outcomes=outcomes, invoices=invoices,
    )


def seeds_of(seeds: int | Sequence[int]) -> list[int]:
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
    interval: Mapping[str, Any] | None = None,
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
        interval: how ``paired`` intervals are computed: ``{"method": "t"|"bootstrap",
            "level", "n_boot", "seed"}`` (default :data:`DEFAULT_INTERVAL`, paired t).
    """
    if not policies:
        raise ValueError("no policies to evaluate")
    if source is None:
        from simulations.env.ground_truth import GroundTruthSource

        source = GroundTruthSource(scenario)
    sim = CollectionsSimulator(source, default_mask() if mask is None else mask,
                               horizon=horizon)
    seed_list = seeds_of(seeds)
    names = list(policies)
    per_seed: dict[str, list[dict[str, float]]] = {p: [] for p in names}
    per_seg: dict[str, dict[str, list[dict[str, float]]]] = {
        p: {s: [] for s in SEGMENT_NAMES} for p in names}
    timing_parts: dict[str, list[dict]] = {p: [] for p in names}
    vetoes: dict[str, dict[str, int]] = {p: {} for p in names}
    outcome_rows: dict[str, list[dict[str, np.ndarray]]] = {p: [] for p in names}
    invoice_rows: list[dict[str, np.ndarray]] = []
    total, done = len(seed_list) * len(names), 0
    started = time.perf_counter()
    for seed in seed_list:
        batch = source.fresh_invoices(n_invoices, np.random.default_rng([seed, 0]))
        invoice_rows.append(invoice_columns(batch))
        for name in names:
            log, refused_by = run_policy(policies[name], sim, batch, seed)
            per_seed[name].append(kpis(log, batch))
            outcome_rows[name].append(invoice_outcomes(log))
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
    outcomes = {p: stack_rows(outcome_rows[p]) for p in names}
    cfg = {**DEFAULT_INTERVAL, **(interval or {})}
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
            "interval": cfg,
        },
        paired=paired_table(outcomes, ref, cfg), outcomes=outcomes,
        invoices=stack_rows(invoice_rows),
    )


def invoice_columns(batch: InvoiceBatch) -> dict[str, np.ndarray]:
    """The invoice columns kept beside the outcomes: segment index and amount, (n,)."""
    return {"segment": np.asarray(batch.segment, np.int16),
            "amount": np.asarray(batch.amount, np.float64)}


def stack_rows(rows: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-seed ``{field: (n,)}`` dicts -> ``{field: (seeds, n)}``."""
    if not rows:
        return {}
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}
