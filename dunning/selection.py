"""Choose the shipped scheduler without the ground truth.

Each candidate (tuned schedule, RL policy, planner) gets two estimates of its NPV per
invoice, both from what the company has, never from the world that generated it:

- ``learned_value``: its value in the LEARNED environment (the direct method: the learned
  model's expected return of following it from the due date) on the logged invoices below;
- ``dr``: the doubly robust off-policy estimate on held-out logged history: the complete
  logged episodes of invoices due in the ``ope_days`` before the cut date (their outcomes
  after the cut were never seen by the models), with a bootstrap 95 % interval.

Rule (:func:`choose`): the candidate with the highest DR estimate ships; when the runner-up's
paired DR difference to it is not significant (its 95 % bootstrap interval contains 0), the
one of the two with the higher learned-environment value ships. The truth is only shown
beside the estimates afterwards.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

OPE_DAYS = 60  # due dates of the held-out logged episodes: this many days before the cut
N_BOOT = 400


def logged_holdout(company: Any, cut: dt.date, mask: Any, max_invoices: int, seed: int,
                   ope_days: int = OPE_DAYS) -> tuple[Any, dict[str, Any]]:
    """``(LoggedDataset, info)``: complete logged episodes of invoices due in the
    ``ope_days`` before ``cut`` (at most ``max_invoices``, a seeded subset)."""
    from dunning.business.promotion import logged_episodes

    horizon = int(company.params.scenario.horizon_days)
    end = min(cut - dt.timedelta(days=1), company.as_of - dt.timedelta(days=horizon))
    start = end - dt.timedelta(days=ope_days)
    data = logged_episodes(company, start, end, mask, max_invoices, seed)
    return data, {"due_from": str(start), "due_to": str(end), "episodes": int(data.n)}


def prepare(policy: Any, data: Any, learned: Any, mask: Any) -> None:
    """Let a policy that plans per invoice (the planner) plan the logged invoices, in the
    dataset's order, with their inputs from the learned environment."""
    if not hasattr(policy, "plan"):
        return
    from simulations.env.arrays import take_rows

    index = {v: i for i, v in enumerate(learned.invoice_ids)}
    rows = np.array([index[v] for v in data.invoice_ids], dtype=np.int64)
    policy.plan(take_rows(learned.pool, rows), mask=mask)


def estimates(policy: Any, data: Any, learned: Any, mask: Any, seed: int = 0
              ) -> dict[str, Any]:
    """``learned_value`` and ``dr`` (+ ``dr_ci`` and the per-invoice DR terms
    ``dr_per_invoice`` for paired comparisons) of ``policy`` on ``data`` (money per
    invoice at the due date)."""
    from simulations.ope import DoublyRobust, direct_values, target_actions
    from simulations.ope.estimators import bootstrap_counts

    prepare(policy, data, learned, mask)
    pi = target_actions(policy, data)
    prepare(policy, data, learned, mask)  # fresh per-row tracking for the second pass
    values = direct_values(policy, data, learned, mask)
    per = DoublyRobust().per_invoice(data, pi, values)
    boot = bootstrap_counts(data.n, N_BOOT, seed) @ per / data.n
    return {"learned_value": float(values[:, 0].mean()), "dr": float(per.mean()),
            "dr_ci": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
            "dr_per_invoice": per.tolist()}


def choose(candidates: dict[str, dict[str, Any]], seed: int = 0) -> tuple[str, str]:
    """``(name, reason)`` of the shipped scheduler by the rule of the module docstring."""
    from simulations.ope.estimators import bootstrap_counts

    names = sorted(candidates, key=lambda n: -candidates[n]["dr"])
    best = names[0]
    if len(names) == 1:
        return best, f"{best}: the only candidate"
    second = names[1]
    diff = (np.asarray(candidates[best]["dr_per_invoice"])
            - np.asarray(candidates[second]["dr_per_invoice"]))
    boot = bootstrap_counts(len(diff), N_BOOT, seed) @ diff / len(diff)
    lo, hi = float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))
    txt = (f"DR {best} {candidates[best]['dr']:,.1f} vs {second} "
           f"{candidates[second]['dr']:,.1f} per invoice (difference 95 % CI "
           f"[{lo:,.1f}, {hi:,.1f}])")
    if lo > 0:
        return best, f"{txt}: {best} is significantly better by DR"
    by_model = max((best, second), key=lambda n: candidates[n]["learned_value"])
    return by_model, (f"{txt}: not significant, so the higher value in the learned "
                      f"environment decides ({by_model}: "
                      f"{candidates[by_model]['learned_value']:,.1f})")


def selection_block(candidates: dict[str, dict[str, Any]], truth: dict[str, dict[str, Any]],
                    info: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """The ``selection`` section of results.json: the choice, both estimates per candidate
    and the truth next to them (the truth was not used)."""
    chosen, reason = choose(candidates, seed)
    rows = {}
    for name, est in candidates.items():
        t = truth.get(name, {})
        rows[name] = {"learned_value": est["learned_value"], "dr": est["dr"],
                      "dr_ci": est["dr_ci"], "truth_npv": t.get("npv"),
                      "truth_oracle_gap_closed": t.get("oracle_gap_closed")}
    best_truth = max((n for n in rows if rows[n]["truth_npv"] is not None),
                     key=lambda n: rows[n]["truth_npv"], default=None)
    return {"chosen": chosen, "reason": reason, "candidates": rows,
            "truth_best": best_truth, "chose_truth_best": best_truth == chosen,
            "held_out_episodes": info,
            "rule": "highest doubly robust estimate on held-out logged episodes; when not "
                    "significantly ahead of the runner-up, the higher learned-environment "
                    "value of the two (the ground truth is never used)"}
