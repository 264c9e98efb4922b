"""Support diagnostics: when an off-policy estimate can be trusted, and a warning when not.

Importance sampling reweights logged episodes by ``prod_t 1{a_t = pi_t} / mu(a_t | x_t)``.
Two things break it for a deterministic target ``pi``:

- **missing support**: on a day the logging policy gives the target's action probability
  0 (e.g. "wait" on the last day of a jitter window, where the schedule always sends), an
  episode that still followed the target so far can never be matched: IPS and SNIPS then
  only see the part of such episodes before that day and are biased (typically far off),
  whatever the number of episodes;
- **few effective episodes**: the weights of the matched episodes are products of
  ``1 / mu`` over up to the horizon's days; a handful of episodes carry most of the
  weight and the effective sample size ``(sum w)^2 / sum w^2`` is tiny.

:func:`support_diagnostics` measures both on the logged data; :func:`estimate_all` runs
the estimators and returns, per estimator, a number or - for IPS / SNIPS without support or
with too small an effective sample - ``None`` and the reason. Doubly robust keeps its
number (where support is missing it falls back to the model's value) with a warning that
says how much of it is the model's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulations.ope.dataset import LoggedDataset
from simulations.ope.estimators import (
    DirectMethod,
    DoublyRobust,
    InverseProbabilityWeighting,
    SelfNormalizedIPS,
    WeightedDoublyRobust,
    importance_weights,
)
from simulations.ope.fqe import DoublyRobustFQE, FittedQEvaluation

# Every estimator, in report order: importance sampling, DR / WDR and DM on the hazard
# model's values (``direct_values``), then FQE and DR-FQE (fitted from the logs alone).
ESTIMATORS: tuple[Any, ...] = (InverseProbabilityWeighting(), SelfNormalizedIPS(),
                               DoublyRobust(), WeightedDoublyRobust(), DirectMethod(),
                               FittedQEvaluation(), DoublyRobustFQE())


@dataclass(frozen=True)
class SupportThresholds:
    """When an estimate is replaced by a warning.

    ``max_unsupported_episodes``: share of episodes that reach (still matching the target) a
    day where the target's action has logging probability 0; ``min_ess``: effective number
    of episodes below which IPS / SNIPS are not reported.
    """

    max_unsupported_episodes: float = 0.01
    min_ess: float = 30.0


@dataclass
class SupportDiagnostics:
    """How well the logged data covers a target policy (all shares in [0, 1]).

    ``match_rate``: episodes whose every logged action equals the target's;
    ``ess``: effective sample size of the episodes' final importance weights (0 if none
    matches); ``max_weight_share``: the largest episode weight / the sum of weights;
    ``unsupported_decisions``: logged invoice-days where the target's action has logging
    probability 0; ``unsupported_episodes``: episodes that reach such a day while still
    matching the target (the ones IPS cannot represent); ``warnings``: what follows.
    """

    n_episodes: int
    match_rate: float
    ess: float
    max_weight_share: float
    unsupported_decisions: float
    unsupported_episodes: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (
            "n_episodes", "match_rate", "ess", "max_weight_share", "unsupported_decisions",
            "unsupported_episodes", "warnings")}


def target_logging_probability(data: LoggedDataset, pi: np.ndarray) -> np.ndarray:
    """(n, H) the logging policy's probability of the target's action on each logged day
    (1 after the episode ended). Where the target's action is the logged one, the recorded
    propensity counts too (the replayed state can be off after repeated disputes)."""
    if data.logging_probs is None:
        raise ValueError("this LoggedDataset has no logging_probs (built by an older "
                         "version): rebuild it with build_logged_dataset")
    n, H = pi.shape
    mu = np.take_along_axis(data.logging_probs[:, :H], pi[:, :, None], axis=2)[..., 0]
    mu = np.where(pi == data.action[:, :H], np.maximum(mu, data.pscore[:, :H]), mu)
    return np.where(data.active[:, :H], mu, 1.0)


def support_diagnostics(data: LoggedDataset, pi: np.ndarray,
                        thresholds: SupportThresholds | None = None) -> SupportDiagnostics:
    """Coverage of the target ``pi`` ((n, H) actions, :func:`target_actions`) by the logs."""
    th = thresholds or SupportThresholds()
    mu = target_logging_probability(data, pi)
    rho, rho_prev = importance_weights(data, pi)
    zero = data.active & (mu <= 0)
    unsupported_ep = (zero & (rho_prev > 0)).any(axis=1)
    w = rho[:, -1]
    total = float(w.sum())
    ess = total ** 2 / float((w ** 2).sum()) if total > 0 else 0.0
    diag = SupportDiagnostics(
        n_episodes=data.n, match_rate=float((w > 0).mean()), ess=ess,
        max_weight_share=float(w.max() / total) if total > 0 else 1.0,
        unsupported_decisions=float(zero.sum() / max(int(data.active.sum()), 1)),
        unsupported_episodes=float(unsupported_ep.mean()))
    if diag.unsupported_episodes > th.max_unsupported_episodes:
        diag.warnings.append(
            f"no support: {diag.unsupported_episodes:.0%} of the logged episodes reach a day "
            f"where the target's action has logging probability 0 while still following it "
            f"({diag.unsupported_decisions:.1%} of all logged decisions); importance sampling "
            "cannot represent them (randomise the logging policy: scenario "
            "logging_policy.epsilon)")
    if ess < th.min_ess:
        diag.warnings.append(f"effective sample size {ess:.1f} < {th.min_ess:g} episodes "
                             f"({diag.match_rate:.1%} of {data.n} match the target)")
    return diag


def estimate_all(data: LoggedDataset, pi: np.ndarray, values: np.ndarray | None = None,
                 estimators: Sequence[Any] = ESTIMATORS,
                 thresholds: SupportThresholds | None = None, alpha: float = 0.05,
                 n_boot: int = 500, seed: int = 0) -> dict[str, Any]:
    """Every estimator's value and bootstrap interval, with the support diagnostics.

    Returns ``{"diagnostics": SupportDiagnostics.to_dict(), "estimates": {name: {"value",
    "ci", "warning"}}}``: ``value`` and ``ci`` are ``None`` for an importance-sampling
    estimator (ips, snips) when support is missing or the effective sample size is below
    the threshold, with the reason in ``warning``; model-based ones (dr, wdr, dm, fqe,
    dr-fqe) keep their number with a warning saying how much of it is the model's (and, for
    FQE / DR-FQE, when the fit did not converge). DR, WDR
    and DM need ``values`` (skipped with a warning without them); FQE and DR-FQE fit their
    own model. Where a logging propensity is not known (an ingested history that did not log
    every decision's) only the estimators that need none (dm, fqe) are given, the others
    say why.
    """
    missing = float(np.isnan(data.pscore[data.active]).mean()) if data.active.any() else 0.0
    if missing > 0 or data.logging_probs is None:  # a history that did not log them all
        why = (f"the logging propensity is not known on {missing:.1%} of the logged decisions "
               "(not logged: an ingested history logs none for 'wait' days); only the "
               "estimators that need none (direct method, FQE) can be given")
        est_out = {}
        for est in estimators:
            ok = (not getattr(est, "needs_propensities", True)
                  and (values is not None or not getattr(est, "needs_values", False)))
            lo_hi = est.estimate_interval(data, pi, values, alpha=alpha, n_boot=n_boot,
                                          seed=seed) if ok else None
            est_out[est.name] = {"value": est.estimate(data, pi, values) if ok else None,
                                 "ci": list(lo_hi) if lo_hi else None,
                                 "warning": None if ok else why}
        return {"diagnostics": {"n_episodes": data.n, "propensity_missing": missing,
                                "warnings": [why]}, "estimates": est_out}
    diag = support_diagnostics(data, pi, thresholds)
    th = thresholds or SupportThresholds()
    no_support = diag.unsupported_episodes > th.max_unsupported_episodes
    few = diag.ess < th.min_ess
    out: dict[str, Any] = {}
    for est in estimators:
        name = est.name
        if getattr(est, "needs_values", False) and values is None:
            out[name] = {"value": None, "ci": None,
                         "warning": "needs model values (simulations.ope.direct)"}
            continue
        model_based = getattr(est, "model_based", False)
        if not model_based and (no_support or few):
            out[name] = {"value": None, "ci": None, "warning": "; ".join(diag.warnings)}
            continue
        lo, hi = est.estimate_interval(data, pi, values, alpha=alpha, n_boot=n_boot, seed=seed)
        warnings = [_model_warning(est, diag, no_support, few),
                    est.fit_warning(data, pi) if hasattr(est, "fit_warning") else None]
        out[name] = {"value": est.estimate(data, pi, values), "ci": [lo, hi],
                     "warning": "; ".join(w for w in warnings if w) or None}
    return {"diagnostics": diag.to_dict(), "estimates": out}


def _model_warning(est: Any, diag: SupportDiagnostics, no_support: bool,
                   few: bool) -> str | None:
    """What a model-based estimate rests on where importance sampling has no support."""
    if not getattr(est, "model_based", False):
        return None
    if getattr(est, "needs_propensities", True) and (no_support or few):
        return (f"mostly the model's value: {diag.unsupported_episodes:.0%} of episodes "
                f"lack support, effective sample size {diag.ess:.1f}")
    if est.name != "dm" and diag.unsupported_decisions > 0:  # a model fitted on the logs
        return (f"extrapolated where the target's action was never logged: it has logging "
                f"probability 0 on {diag.unsupported_decisions:.1%} of the logged decisions")
    return None
