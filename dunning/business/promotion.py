"""Promote a policy (RL artifact or tuned schedule) only if off-policy evaluation says it is
at least as good as the current one (used by ``dunning retrain --policy-candidate``).

The gate values both policies on the same logged episodes of the store's history after a
time cut (``simulations.ope``): doubly robust (DR, the decision estimator: the learned hazard
model's values corrected by importance weights) and self-normalised IPS (SNIPS, a check that
needs no model). Differences are paired: the same bootstrap resamples of invoices for both
policies. Rule (non-inferiority with margin ``tol = tolerance_share * |DR(current)|``,
money per invoice at the due date):

- DR: the lower end of the 95 % interval of ``DR(candidate) - DR(current)`` is ``>= -tol``
  (the candidate is shown to be not worse by more than the margin);
- SNIPS: its point estimate of the difference is ``>= -tol`` (it does not point the other
  way). SNIPS is not required to show non-inferiority with its interval: a deterministic
  target far from the logging policy matches few logged episodes, its SNIPS interval is
  then wide and would refuse every new policy (docs/simulation.md). But when the two
  estimators disagree, DR rests on its model part alone, which is biased exactly there
  (on the demo, a tuned schedule matching 2.5 % of the episodes: DR +1,747 per invoice,
  SNIPS -1,326, ground truth -73): the current policy stays;
- and, when a payment model was retrained in the same run, the model gate passed.

Logging-policy probabilities of every logged day (the "wait" days too) are needed. The
store holds them only for action days (``actions.propensity``), so the gate needs the
generated company (``summary.json`` of ``dunning generate``/``dunning demo``: scenario,
customers, months, seed), which is regenerated and checked against the store. A company's
own ERP history cannot be evaluated this way unless its logging policy is known.

Every decision is appended as one JSON line to ``<policy>.promotion-log.jsonl``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import DunningError, InputError
from simulations.policy import Policy


@dataclass(frozen=True)
class PolicyGateConfig:
    """Options of the OPE gate.

    Attributes:
        tolerance_share: non-inferiority margin as a share of the current policy's DR value
            per invoice (0.01 = the candidate may be at most 1 % worse, within noise).
        alpha: two-sided level of the bootstrap intervals (0.05 -> 95 %).
        n_boot: bootstrap resamples of invoices.
        seed: bootstrap and episode-subset seed.
        max_invoices: at most this many logged episodes (a seeded random subset).
        ope_days: default window: episodes due in the last ``ope_days`` before the latest
            complete episode (due date + horizon <= the store's as-of date).
    """

    tolerance_share: float = 0.01
    alpha: float = 0.05
    n_boot: int = 500
    seed: int = 0
    max_invoices: int = 3000
    ope_days: int = 180

    def __post_init__(self) -> None:
        if not 0 <= self.tolerance_share < 1:
            raise InputError(f"--tolerance: found {self.tolerance_share}, expected a share in "
                             "[0, 1)")
        if not 0 < self.alpha < 1 or self.n_boot < 10 or self.ope_days < 1:
            raise InputError("policy gate: alpha in (0, 1), n_boot >= 10 and ope_days >= 1 "
                             f"expected, found {self.alpha}, {self.n_boot}, {self.ope_days}")


@dataclass
class PolicyDecision:
    """One policy-gate run: what was compared on which episodes, and what was decided."""

    date: str
    current: str
    candidate: str
    current_hash: str | None
    candidate_hash: str | None
    ope_from: str
    ope_to: str
    episodes: int
    tolerance: float
    estimates: dict[str, dict[str, Any]]
    ope_passed: bool
    model_gate: bool | None
    promoted: bool
    reason: str
    previous: str | None = None
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ policies
def load_policy(path: str | Path, option: str = "--policy") -> tuple[Policy, str | None]:
    """``(policy, content hash)`` from an RL artifact directory (``policy.json``) or a tuned
    schedule JSON (a file, or a directory holding ``tuned_schedule.json``)."""
    import hashlib

    p = Path(path)
    if (p / "policy.json").exists():
        from policies.rl import RLPolicy

        policy = RLPolicy.load(p)
        return policy, policy.content_hash
    tuned = p / "tuned_schedule.json" if p.is_dir() else p
    if tuned.is_file() and tuned.suffix == ".json":
        from policies.tuned import TunedSchedulePolicy

        return (TunedSchedulePolicy.load(tuned),
                hashlib.sha256(tuned.read_bytes()).hexdigest()[:16])
    raise InputError(f"{option} {p}: not found or not a policy; expected an RL policy "
                     "directory (policy.json, from `dunning train-policy`) or a tuned "
                     "schedule JSON")


# ---------------------------------------------------------------------------- logged data
def company_for_store(company_dir: str | Path, db: str | Path) -> Any:
    """Regenerate the synthetic company described by ``company_dir/summary.json`` and
    check it is the one in the store ``db`` (same invoice ids)."""
    from engine.store import Store
    from simulations import world

    summary_path = Path(company_dir) / "summary.json"
    if not summary_path.is_file():
        raise InputError(f"--company {company_dir}: no summary.json; the OPE gate needs the "
                         "logging policy's probabilities, known only for a generated company "
                         "(the directory `dunning generate`/`dunning demo` wrote)")
    try:
        s = json.loads(summary_path.read_text())
        spec = (str(s["scenario"]), int(s["n_customers"]), int(s["months"]), int(s["seed"]))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{summary_path}: expected scenario, n_customers, months and seed "
                         f"({type(exc).__name__}: {exc})") from None
    company = world.generate_company(world.load_scenario(spec[0]), spec[1], spec[2], spec[3])
    stored = set(Store(db).tables()["invoices"]["invoice_id"].astype(str))
    generated = set(company.invoices["invoice_id"].astype(str))
    if stored != generated:
        raise InputError(f"--company {company_dir}: its invoices differ from the store {db} "
                         f"({len(generated ^ stored)} ids in only one of them); give the "
                         "company directory the store was ingested from")
    return company


def episode_window(company: Any, ope_from: dt.date | None, ope_days: int
                   ) -> tuple[dt.date, dt.date]:
    """``[from, to]`` due dates of complete logged episodes (due + horizon <= as-of)."""
    horizon = int(company.params.scenario.horizon_days)
    last_due = company.as_of - dt.timedelta(days=horizon)
    start = ope_from or last_due - dt.timedelta(days=ope_days)
    if start > last_due:
        raise InputError(f"--ope-from {start}: no complete logged episode is due after it "
                         f"(episodes last {horizon} days after due and the history ends "
                         f"{company.as_of}); choose a date on or before {last_due}")
    return start, last_due


def logged_episodes(company: Any, start: dt.date, end: dt.date, mask: Any,
                    max_invoices: int, seed: int) -> Any:
    """``simulations.ope.LoggedDataset`` of the episodes of invoices due in [start, end]."""
    import pandas as pd

    from simulations.ope import build_logged_dataset

    due = pd.to_datetime(company.invoices["due_date"]).dt.date.to_numpy()
    rows = np.flatnonzero((due >= start) & (due <= end))
    part = dataclasses.replace(
        company, invoices=company.invoices.iloc[rows].reset_index(drop=True),
        params=company.params.take(rows))
    data = build_logged_dataset(part, mask, max_invoices=max_invoices, seed=seed)
    if data.n < 30:
        raise InputError(f"only {data.n} complete logged episodes due {start} .. {end} "
                         "(need 30); choose an earlier --ope-from")
    return data


# ------------------------------------------------------------------------------ estimates
def compare_policies(data: Any, learned: Any, current: Policy, candidate: Policy, mask: Any,
                     cfg: PolicyGateConfig = PolicyGateConfig()) -> dict[str, dict[str, Any]]:
    """DR and SNIPS value of both policies and of their paired difference (with intervals).

    Returns ``{"dr": {...}, "snips": {...}}``, each with ``current``, ``candidate``,
    ``difference`` and ``difference_ci`` (money per invoice at the due date), plus
    ``match_rate`` of each policy (share of episodes whose every logged action it takes).
    """
    from simulations.ope import (
        DoublyRobust,
        SelfNormalizedIPS,
        direct_values,
        importance_weights,
        match_rate,
        target_actions,
    )
    from simulations.ope.estimators import bootstrap_counts

    lo_q, hi_q = cfg.alpha / 2, 1 - cfg.alpha / 2
    counts = bootstrap_counts(data.n, cfg.n_boot, cfg.seed)  # shared: paired differences
    dr_inv, snips_boot, snips_point, matches = {}, {}, {}, {}
    for key, policy in (("current", current), ("candidate", candidate)):
        pi = target_actions(policy, data)
        values = direct_values(policy, data, learned, mask)
        dr_inv[key] = DoublyRobust().per_invoice(data, pi, values)
        rho, _ = importance_weights(data, pi)
        rr = rho * data.reward
        snips_point[key] = SelfNormalizedIPS._from_sums(rr.sum(0), rho.sum(0))
        snips_boot[key] = SelfNormalizedIPS._from_sums(counts @ rr, counts @ rho)
        matches[key] = match_rate(data, pi)
    diff_boot = counts @ (dr_inv["candidate"] - dr_inv["current"]) / data.n
    snips_diff = snips_boot["candidate"] - snips_boot["current"]
    return {
        "dr": {"current": float(dr_inv["current"].mean()),
               "candidate": float(dr_inv["candidate"].mean()),
               "difference": float((dr_inv["candidate"] - dr_inv["current"]).mean()),
               "difference_ci": [float(np.quantile(diff_boot, lo_q)),
                                 float(np.quantile(diff_boot, hi_q))]},
        "snips": {"current": float(snips_point["current"]),
                  "candidate": float(snips_point["candidate"]),
                  "difference": float(snips_point["candidate"] - snips_point["current"]),
                  "difference_ci": [float(np.quantile(snips_diff, lo_q)),
                                    float(np.quantile(snips_diff, hi_q))]},
        "match_rate": {k: float(v) for k, v in matches.items()},
    }


def ope_rule(estimates: dict[str, dict[str, Any]], tolerance: float) -> tuple[bool, str]:
    """The non-inferiority rule of the module docstring: ``(passed, reason)``."""
    dr_lo = estimates["dr"]["difference_ci"][0]
    dr_txt = (f"DR difference {estimates['dr']['difference']:+.2f} per invoice, 95 % CI "
              f"[{dr_lo:.2f}, {estimates['dr']['difference_ci'][1]:.2f}]")
    sn_txt = (f"SNIPS difference {estimates['snips']['difference']:+.2f}, 95 % CI "
              f"[{estimates['snips']['difference_ci'][0]:.2f}, "
              f"{estimates['snips']['difference_ci'][1]:.2f}]")
    if dr_lo < -tolerance:
        return False, (f"{dr_txt}: lower bound below -{tolerance:.2f} (the candidate may be "
                       "worse by more than the margin)")
    if estimates["snips"]["difference"] < -tolerance:
        match = estimates.get("match_rate", {}).get("candidate")
        support = "" if match is None else f"; the candidate takes every logged action in " \
            f"only {match:.1%} of the episodes"
        return False, (f"{sn_txt} points the other way (below -{tolerance:.2f}): the "
                       f"estimators disagree{support}, so DR rests on its model alone; keep "
                       "the current policy and test the candidate in a pilot")
    return True, f"{dr_txt} >= -{tolerance:.2f}; {sn_txt} does not point the other way"


def decide(estimates: dict[str, dict[str, Any]], cfg: PolicyGateConfig,
           model_gate: bool | None) -> tuple[float, bool, bool, str]:
    """``(tolerance, ope_passed, promoted, reason)`` from the estimates and the model gate
    (``None``: no model was retrained in this run)."""
    tolerance = cfg.tolerance_share * abs(estimates["dr"]["current"])
    passed, reason = ope_rule(estimates, tolerance)
    if passed and model_gate is False:
        return tolerance, True, False, (f"{reason}; but the retrained payment model was not "
                                        "promoted, so the policy stays too")
    return tolerance, passed, passed, reason


# ----------------------------------------------------------------------------- the gate
def evaluate_candidate(db: Path, model_dir: Path, policy: Path, candidate: Path,
                       company_dir: Path, ope_from: dt.date | None = None,
                       cfg: PolicyGateConfig = PolicyGateConfig(), learned: Any = None,
                       ) -> dict[str, Any]:
    """Load both policies and the logged episodes and estimate both (no side effects).

    ``learned`` (a ``LearnedSource`` that knows the logged invoices) defaults to one built
    from the store and the hazard model in ``model_dir``. Returns the pieces
    :func:`finish` needs.
    """
    from simulations.env.masks import default_mask

    for option, path in (("--db", db), ("--policy", policy),
                         ("--policy-candidate", candidate), ("--company", company_dir)):
        if not Path(path).exists():
            raise InputError(f"{option} {path}: not found")
    cur, cur_hash = load_policy(policy, "--policy")
    cand, cand_hash = load_policy(candidate, "--policy-candidate")
    company = company_for_store(company_dir, db)
    start, end = episode_window(company, ope_from, cfg.ope_days)
    mask = default_mask()
    data = logged_episodes(company, start, end, mask, cfg.max_invoices, cfg.seed)
    if learned is None:
        learned = _learned_source(db, model_dir, company.params.scenario)
    estimates = compare_policies(data, learned, cur, cand, mask, cfg)
    notes = [f"{data.propensity_mismatch:.1%} of logged action days had a recomputed "
             "propensity differing from the recorded one (the recorded one is used)"]
    return {"estimates": estimates, "start": start, "end": end, "episodes": data.n,
            "current_hash": cur_hash, "candidate_hash": cand_hash, "notes": notes}


def _learned_source(db: Path, model_dir: Path, scenario: Any) -> Any:
    from simulations.env import LearnedSource

    if not (Path(model_dir) / "hazard_model.json").exists():
        raise InputError(f"--model {model_dir}: no hazard model (hazard_model.json); the OPE "
                         "gate's doubly robust estimate needs it (`dunning train-model` "
                         "trains it by default)")
    try:
        return LearnedSource.from_store(db, model_dir, scenario)
    except DunningError as exc:
        raise InputError(f"--model {model_dir}: {exc}") from None


def finish(evaluation: dict[str, Any], policy: Path, candidate: Path,
           cfg: PolicyGateConfig = PolicyGateConfig(), model_gate: bool | None = None,
           today: dt.date | None = None) -> PolicyDecision:
    """Decide, swap the candidate in when promoted (old one kept as ``<policy>.previous``),
    and append the decision to :func:`promotion_log_path`."""
    tolerance, passed, promote, reason = decide(evaluation["estimates"], cfg, model_gate)
    decision = PolicyDecision(
        date=str(today or dt.date.today()), current=str(policy), candidate=str(candidate),
        current_hash=evaluation["current_hash"], candidate_hash=evaluation["candidate_hash"],
        ope_from=str(evaluation["start"]), ope_to=str(evaluation["end"]),
        episodes=int(evaluation["episodes"]), tolerance=tolerance,
        estimates=evaluation["estimates"], ope_passed=passed, model_gate=model_gate,
        promoted=promote, reason=reason, notes=list(evaluation["notes"]))
    if promote:
        decision.previous = _swap(Path(policy), Path(candidate))
    append_log(promotion_log_path(Path(policy)), asdict(decision))
    return decision


def promote_policy(db: Path, model_dir: Path, policy: Path, candidate: Path,
                   company_dir: Path, ope_from: dt.date | None = None,
                   cfg: PolicyGateConfig = PolicyGateConfig(), model_gate: bool | None = None,
                   learned: Any = None, today: dt.date | None = None) -> PolicyDecision:
    """:func:`evaluate_candidate` then :func:`finish` (the whole gate in one call)."""
    evaluation = evaluate_candidate(db, model_dir, policy, candidate, company_dir, ope_from,
                                    cfg, learned)
    return finish(evaluation, policy, candidate, cfg, model_gate, today)


def _swap(policy: Path, candidate: Path) -> str:
    """Copy ``candidate`` into ``policy``'s place; the old one becomes ``<policy>.previous``."""
    previous = policy.with_name(f"{policy.name}.previous")
    if previous.is_dir():
        shutil.rmtree(previous)
    elif previous.exists():
        previous.unlink()
    staging = policy.with_name(f".{policy.name}.incoming")
    if staging.is_dir():
        shutil.rmtree(staging)
    if candidate.is_dir():
        shutil.copytree(candidate, staging)
    else:
        shutil.copy2(candidate, staging)
    policy.rename(previous)
    staging.rename(policy)
    return str(previous)


def promotion_log_path(policy: Path) -> Path:
    """``<parent>/<policy name>.promotion-log.jsonl``: one JSON object per line, appended."""
    return Path(policy).parent / f"{Path(policy).name}.promotion-log.jsonl"


def append_log(path: Path, entry: dict[str, Any]) -> None:
    """Append one line (never rewrites earlier decisions)."""
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry, default=str, sort_keys=True) + "\n")
