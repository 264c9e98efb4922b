"""Experiments: one YAML file describes a sweep of policies x scenarios x seeds; one JSON out.

::

    name: early-vs-late            # optional (default: the file's stem)
    policies: [never, fixed, "fixed[7:email;21:phone]", oracle]   # any --policies spec
                                   # (rl:DIR, tuned:FILE relative to this file)
    scenarios: [default, shifted]  # packaged names or YAML paths (relative to this file)
    seeds: 3                       # a count (0..K-1) or a list of seeds
    invoices: 300                  # invoices per seed
    reference: fixed               # optional: paired differences against this policy
                                   # (as listed, or its name in the results: rl for rl:DIR)
    rules: true                    # optional: false switches the legal rules off
    interval: t                    # optional: paired intervals, t or bootstrap
    bootstrap_resamples: 2000      # optional: resamples of interval: bootstrap

Every scenario runs :func:`simulations.evaluation.harness.evaluate_policies` on the same
invoices for every policy (common random numbers), or, given a Dask client, every
(scenario, policy, seed) cell is one task of :func:`simulations.evaluation.distributed.sweep`
with the same result. The result JSON holds the experiment as read, per scenario the full
evaluation (``EvaluationResult.to_dict()``: KPIs with intervals over seeds, paired
per-invoice differences, segments, timing), a short ``summary`` and, for every policy loaded
from an RL artifact, its ``training`` facts and learning curve.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.errors import InputError

KEYS = {"name": False, "policies": True, "scenarios": True, "seeds": True, "invoices": True,
        "reference": False, "rules": False, "interval": False, "bootstrap_resamples": False}


@dataclass(frozen=True)
class Experiment:
    """A sweep, as read from its file (scenario paths resolved against the file)."""

    name: str
    policies: list[str]
    scenarios: list[str]
    seeds: list[int]
    invoices: int
    reference: str | None = None
    rules: bool = True
    interval: str = "t"
    bootstrap_resamples: int = 2000


def load_experiment(path: str | Path) -> Experiment:
    """Read and check an experiment file; every problem is an :class:`InputError` that
    names the file and the field."""
    import yaml

    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{p}: no such experiment file") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{p}: not a readable YAML file ({exc.__class__.__name__})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{p}: expected a mapping of {', '.join(KEYS)}")
    for key in raw:
        if key not in KEYS:
            close = difflib.get_close_matches(str(key), list(KEYS), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(KEYS)}"
            raise InputError(f"{p}: unknown key {key!r}{hint}")
    for key, required in KEYS.items():
        if required and key not in raw:
            raise InputError(f"{p}: missing required key {key!r}")

    def strings(key: str) -> list[str]:
        v = raw[key]
        items = [v] if isinstance(v, str) else v
        if not isinstance(items, list) or not items or not all(
                isinstance(x, str) and x.strip() for x in items):
            raise InputError(f"{p}: {key!r}: expected a non-empty list of names")
        return [x.strip() for x in items]

    seeds = raw["seeds"]
    if isinstance(seeds, bool) or not (
            (isinstance(seeds, int) and seeds >= 1) or (isinstance(seeds, list) and seeds and all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds))):
        raise InputError(f"{p}: 'seeds': expected a positive count or a list of seeds >= 0")
    invoices = raw["invoices"]
    if isinstance(invoices, bool) or not isinstance(invoices, int) or invoices < 1:
        raise InputError(f"{p}: 'invoices': expected a positive integer, got {invoices!r}")
    rules = raw.get("rules", True)
    if not isinstance(rules, bool):
        raise InputError(f"{p}: 'rules': expected true or false, got {rules!r}")
    policies = strings("policies")
    if len(set(policies)) < len(policies):
        raise InputError(f"{p}: 'policies': a policy is listed twice")
    names = _result_names(p, policies)
    reference = raw.get("reference")
    if reference is not None:
        if not isinstance(reference, str) or (reference not in policies
                                              and reference not in names):
            raise InputError(f"{p}: 'reference': {reference!r} is not one of the policies "
                             f"({', '.join(names)})")
        reference = names[policies.index(reference)] if reference in policies else reference
    interval = raw.get("interval", "t")
    if interval not in ("t", "bootstrap"):
        raise InputError(f"{p}: 'interval': expected t or bootstrap, got {interval!r}")
    n_boot = raw.get("bootstrap_resamples", 2000)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 100:
        raise InputError(f"{p}: 'bootstrap_resamples': expected an integer >= 100, got "
                         f"{n_boot!r}")

    def scenario(name: str) -> str:  # a path relative to the experiment file
        rel = p.parent / name
        return str(rel) if name.endswith((".yaml", ".yml")) and rel.is_file() else name

    def policy(spec: str) -> str:  # rl:DIR and tuned:FILE relative to the experiment file
        kind, sep, arg = spec.partition(":")
        if sep and kind.lower() in ("rl", "tuned") and arg and not Path(arg).is_absolute() \
                and (p.parent / arg).exists():
            return f"{kind}:{p.parent / arg}"
        return spec

    name = raw.get("name", p.stem)
    return Experiment(name=str(name), policies=[policy(s) for s in policies],
                      scenarios=[scenario(s) for s in strings("scenarios")],
                      seeds=list(range(seeds)) if isinstance(seeds, int) else list(seeds),
                      invoices=invoices, reference=reference, rules=rules,
                      interval=interval, bootstrap_resamples=n_boot)


def _result_names(p: Path, policies: list[str]) -> list[str]:
    """The name each policy spec gets in the results (``rl:runs/a`` is ``rl``); two specs
    with one name would overwrite each other, so that is refused."""
    from policies.baselines.factory import policy_name

    names = [policy_name(spec) for spec in policies]
    for i, name in enumerate(names):
        if name in names[:i]:
            first = policies[names.index(name)]
            raise InputError(f"{p}: 'policies': {first!r} and {policies[i]!r} are both named "
                             f"{name!r} in the results; evaluate them in separate experiments")
    return names


def run_experiment(exp: Experiment, progress: Any = None, client: Any = None
                   ) -> dict[str, Any]:
    """Every scenario x policy x seed; returns the result JSON (see the module docstring).

    ``client`` (a ``distributed.Client``) runs every (scenario, policy, seed) as one Dask
    task; the figures are those of the local run, only ``config.seconds`` and
    ``config.cluster`` of each run (and the total ``seconds``) differ.
    """
    from policies.baselines.factory import make_policy
    from simulations.env import AllowAll, GroundTruthSource, LegalMask
    from simulations.evaluation.distributed import SweepItem, sweep
    from simulations.evaluation.harness import evaluate_policies
    from simulations.evaluation.learned_env import build_learned_source
    from simulations.world import load_scenario

    started = time.perf_counter()
    interval = {"method": exp.interval, "n_boot": exp.bootstrap_resamples}
    items: list[SweepItem] = []
    training: dict[str, Any] = {}
    for sc_name in exp.scenarios:
        sc = load_scenario(sc_name)
        if any(item.name == sc.name for item in items):
            raise InputError(f"scenario {sc.name!r} listed twice")
        policies = dict(make_policy(spec, learned_source=lambda sc=sc: build_learned_source(sc))
                        for spec in exp.policies)
        training.update(policy_training(policies))
        items.append(SweepItem(
            name=sc.name, policies=policies, source=GroundTruthSource(sc),
            mask=LegalMask() if exp.rules else AllowAll(), n_invoices=exp.invoices,
            seeds=list(exp.seeds),
            reference=exp.reference or ("fixed" if "fixed" in policies else None),
            interval=interval))
    if client is not None:
        results = sweep(client, items, progress)
    else:
        results = {item.name: evaluate_policies(
            item.policies, item.source.scenario, item.n_invoices, item.seeds,
            source=item.source, mask=item.mask, reference=item.reference,
            interval=item.interval, progress=progress) for item in items}
    return {"experiment": asdict(exp), "summary": summarize(results),
            "runs": {name: res.to_dict() for name, res in results.items()},
            "training": training, "seconds": round(time.perf_counter() - started, 1)}


def summarize(results: Mapping[str, Any]) -> dict[str, Any]:
    """``{scenario: {policy: {"npv": mean and CI over seeds, "paired_npv_vs_reference":
    the paired per-invoice interval (None for the reference)}}}`` of EvaluationResults."""
    return {sc: {name: {"npv": {k: res.overall[name]["npv"][k]
                                for k in ("mean", "ci_low", "ci_high")},
                        "paired_npv_vs_reference": (res.paired.get(name, {}).get("npv")
                                                    if name != res.reference else None)}
                 for name in res.policies}
            for sc, res in results.items()}


def policy_training(policies: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{name: facts + "curve"}`` of every policy loaded from an RL artifact (``rl:DIR``;
    also inside a veto counter): the learning curve the artifact stores
    (``training_curve.json``: timesteps, mean_reward, episodes), its content hash, timesteps,
    seed, training seconds and the environment and models it was trained on (no paths)."""
    out: dict[str, dict[str, Any]] = {}
    for name, policy in policies.items():
        artifact = getattr(policy, "artifact", None) or getattr(
            getattr(policy, "policy", None), "artifact", None)
        if artifact is None or not hasattr(artifact, "curve"):
            continue
        meta = dict(getattr(artifact, "metadata", {}) or {})
        prov = {k: v for k, v in (meta.get("provenance") or {}).items()
                if k not in ("db", "model_dir") and v is not None}
        out[name] = {"content_hash": meta.get("content_hash"),
                     "algorithm": meta.get("algorithm"), "timesteps": meta.get("timesteps"),
                     "seed": meta.get("seed"), "train_seconds": meta.get("train_seconds"),
                     "created_at": meta.get("created_at"), "provenance": prov,
                     "curve": dict(artifact.curve or {})}
    return out
