"""Off-policy estimators (per-decision, for episodes), obp style: small dataclasses.

Every estimator takes the logged data (:class:`LoggedDataset`) and the target policy's
action for every logged invoice-day (``pi``: (n, H) int, a deterministic policy, from
:func:`target_actions`), and returns the estimated value (mean NPV per invoice, money at
the due date). With ``w_t = 1{a_t = pi_t} / mu(a_t | x_t)`` and ``rho_t`` their running
product over the episode:

- IPS:   ``mean_i sum_t rho_t r_t``
- SNIPS: ``sum_t (sum_i rho_t r_t) / (sum_i rho_t)`` (per-decision weighted IS)
- DR:    ``mean_i sum_t rho_t r_t + (rho_{t-1} - rho_t) V(x_t)`` with a model value ``V`` of
  following ``pi`` from ``x_t`` (the direct method, :mod:`simulations.ope.direct`); for a
  deterministic target this is the per-decision doubly robust estimator of Jiang & Li (2016)
- WDR:   DR with each day's weights normalised over episodes (:class:`WeightedDoublyRobust`),
  bounded weights for deterministic targets over a long horizon
- DM:    ``mean_i V(x_0)``

``estimate_interval`` gives a bootstrap confidence interval (resampling invoices).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from simulations.ope.dataset import LoggedDataset


def importance_weights(data: LoggedDataset, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rho, rho_prev)``, (n, H): running products of ``1{a = pi} / mu`` (1 after the end)."""
    w = np.where(data.active, (data.action == pi) / data.pscore, 1.0)
    rho = np.cumprod(w, axis=1)
    rho_prev = np.concatenate([np.ones((len(rho), 1)), rho[:, :-1]], axis=1)
    return rho, rho_prev


def bootstrap_counts(n: int, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)


@dataclass(frozen=True)
class PerInvoiceEstimator:
    """Estimators that are a mean of one number per invoice."""

    name: str = "estimator"
    needs_values: ClassVar[bool] = False  # model values from simulations.ope.direct
    needs_propensities: ClassVar[bool] = True  # the logging policy's probabilities
    model_based: ClassVar[bool] = False  # kept (with a warning) where support is missing

    def per_invoice(self, data: LoggedDataset, pi: np.ndarray,
                    values: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def estimate(self, data: LoggedDataset, pi: np.ndarray,
                 values: np.ndarray | None = None) -> float:
        return float(self.per_invoice(data, pi, values).mean())

    def estimate_interval(self, data: LoggedDataset, pi: np.ndarray,
                          values: np.ndarray | None = None, alpha: float = 0.05,
                          n_boot: int = 500, seed: int = 0) -> tuple[float, float]:
        v = self.per_invoice(data, pi, values)
        boot = bootstrap_counts(len(v), n_boot, seed) @ v / len(v)
        return float(np.quantile(boot, alpha / 2)), float(np.quantile(boot, 1 - alpha / 2))


@dataclass(frozen=True)
class InverseProbabilityWeighting(PerInvoiceEstimator):
    """Per-decision IPS: unbiased, high variance for targets far from the logging policy."""

    name: str = "ips"

    def per_invoice(self, data: LoggedDataset, pi: np.ndarray,
                    values: np.ndarray | None = None) -> np.ndarray:
        rho, _ = importance_weights(data, pi)
        return (rho * data.reward).sum(axis=1)


@dataclass(frozen=True)
class DirectMethod(PerInvoiceEstimator):
    """The model's value of each invoice at its due date (``values[:, 0]``)."""

    name: str = "dm"
    needs_values: ClassVar[bool] = True
    needs_propensities: ClassVar[bool] = False
    model_based: ClassVar[bool] = True

    def per_invoice(self, data: LoggedDataset, pi: np.ndarray,
                    values: np.ndarray | None = None) -> np.ndarray:
        if values is None:
            raise ValueError("the direct method needs model values (simulations.ope.direct)")
        return values[:, 0].astype(float)


@dataclass(frozen=True)
class DoublyRobust(PerInvoiceEstimator):
    """Per-decision doubly robust: IPS corrected by the direct method's values."""

    name: str = "dr"
    needs_values: ClassVar[bool] = True
    model_based: ClassVar[bool] = True

    def per_invoice(self, data: LoggedDataset, pi: np.ndarray,
                    values: np.ndarray | None = None) -> np.ndarray:
        if values is None:
            raise ValueError("doubly robust needs model values (simulations.ope.direct)")
        rho, rho_prev = importance_weights(data, pi)
        v = np.where(data.active, values[:, : data.reward.shape[1]], 0.0)
        return (rho * data.reward + (rho_prev - rho) * v).sum(axis=1)


@dataclass(frozen=True)
class SelfNormalizedIPS:
    """Per-decision weighted IS: biased but bounded, much lower variance than IPS."""

    name: str = "snips"
    needs_values: ClassVar[bool] = False
    needs_propensities: ClassVar[bool] = True
    model_based: ClassVar[bool] = False

    @staticmethod
    def _from_sums(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0).sum(axis=-1)

    def estimate(self, data: LoggedDataset, pi: np.ndarray,
                 values: np.ndarray | None = None) -> float:
        rho, _ = importance_weights(data, pi)
        return float(self._from_sums((rho * data.reward).sum(0), rho.sum(0)))

    def estimate_interval(self, data: LoggedDataset, pi: np.ndarray,
                          values: np.ndarray | None = None, alpha: float = 0.05,
                          n_boot: int = 500, seed: int = 0) -> tuple[float, float]:
        rho, _ = importance_weights(data, pi)
        counts = bootstrap_counts(data.n, n_boot, seed)
        boot = self._from_sums(counts @ (rho * data.reward), counts @ rho)
        return float(np.quantile(boot, alpha / 2)), float(np.quantile(boot, 1 - alpha / 2))


@dataclass(frozen=True)
class WeightedDoublyRobust:
    """Per-decision weighted doubly robust (WDR, Thomas & Brunskill 2016).

    DR with each day's weights normalised over the episodes (``w_t = rho_t / mean_i rho_t``,
    as SNIPS does for IPS)::

        sum_t  sum_i w_t r_t / sum_i w_t  +  sum_i w_{t-1} V_t / sum_i w_{t-1}
                                          -  sum_i w_t V_t / sum_i w_t

    For a deterministic target over a long horizon the products ``rho_t`` are 0 for most
    episodes and huge for a few: plain DR then swings with those few, WDR's weights are
    bounded (a day no episode still matches contributes only the model's continuation, the
    direct method's value). Biased (consistent), much lower variance.
    """

    name: str = "wdr"
    needs_values: ClassVar[bool] = True
    needs_propensities: ClassVar[bool] = True
    model_based: ClassVar[bool] = True

    @staticmethod
    def _terms(data: LoggedDataset, pi: np.ndarray,
               values: np.ndarray | None) -> tuple[np.ndarray, ...]:
        if values is None:
            raise ValueError("weighted doubly robust needs model values (simulations.ope.direct)")
        rho, rho_prev = importance_weights(data, pi)
        v = np.where(data.active, values[:, : data.reward.shape[1]], 0.0)
        return rho, rho_prev, rho * data.reward, rho_prev * v, rho * v

    @staticmethod
    def _combine(sums: list[np.ndarray]) -> np.ndarray:
        rho, rho_prev, rr, pv, rv = sums
        f = SelfNormalizedIPS._from_sums
        return f(rr, rho) + f(pv, rho_prev) - f(rv, rho)

    def estimate(self, data: LoggedDataset, pi: np.ndarray,
                 values: np.ndarray | None = None) -> float:
        return float(self._combine([x.sum(0) for x in self._terms(data, pi, values)]))

    def estimate_interval(self, data: LoggedDataset, pi: np.ndarray,
                          values: np.ndarray | None = None, alpha: float = 0.05,
                          n_boot: int = 500, seed: int = 0) -> tuple[float, float]:
        counts = bootstrap_counts(data.n, n_boot, seed)
        boot = self._combine([counts @ x for x in self._terms(data, pi, values)])
        return float(np.quantile(boot, alpha / 2)), float(np.quantile(boot, 1 - alpha / 2))




def target_actions(policy: Any, data: LoggedDataset) -> np.ndarray:
    """(n, H) the target policy's action on every logged invoice-day.

    A policy with ``sees_world_state`` (the oracle) is
    asked with the replayed world state; every other policy with ``act(obs, masks)``.
    """
    n, H = data.action.shape
    out = np.zeros((n, H), dtype=np.int64)
    act_state: Callable[..., np.ndarray] | None = (
        policy.act_state if getattr(policy, "sees_world_state", False) else None)
    for t in range(H):
        if not data.active[:, t].any():
            break
        if act_state is not None and data.world_states is not None:
            a = act_state(data.world_states[t])
            a = np.where(data.masks[np.arange(n), t, a], a, 0)
        else:
            a = policy.act(data.obs[:, t], data.masks[:, t])
        out[:, t] = np.where(data.active[:, t], a, 0)
    return out


def match_rate(data: LoggedDataset, pi: np.ndarray) -> float:
    """Share of logged episodes whose every action equals the target's (rho > 0 at the end)."""
    rho, _ = importance_weights(data, pi)
    return float((rho[:, -1] > 0).mean())
