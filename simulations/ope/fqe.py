"""Fitted Q evaluation (FQE) and doubly robust with the FQE model (DR-FQE).

FQE learns the target policy's action value ``Q(x, a)`` from the logged (observation,
action) pairs alone, by repeated regression on Bellman targets (Le, Voloshin & Yue 2019)::

    Q_0 = 0;   Q_{k+1} = fit( (x_t, a_t) -> G_t(Q_k) )   on every logged invoice-day

and values the target as ``mean_i Q(x_0, pi(x_0))``. The reward is already money
discounted to the due date and the horizon is finite (the day is in the observation), so
there is no extra discount factor. The target ``G_t`` is the ``lambda``-return of the tree
backup (Precup, Sutton & Singh 2000) for a deterministic target::

    G_t = r_t + V(x_{t+1}) + lambda * 1{a_{t+1} = pi(x_{t+1})} * (G_{t+1} - V(x_{t+1}))

with ``V(x) = Q_k(x, pi(x))`` and ``G_t = r_t`` on the episode's last day. ``lambda = 0`` is
the one-step FQE target ``r_t + Q_k(x_{t+1}, pi(x_{t+1}))``; ``lambda = 1`` (the default)
follows the logged rewards for as long as the logged actions equal the target's and
bootstraps only where they first differ: the same fixed point (the logging policy's choice
depends on the observation only, so a matching logged action is as good as the target's),
but one iteration propagates value over a whole matching stretch instead of one day, so a
120-day horizon converges in a handful of iterations instead of 120. Unlike importance
sampling it needs no propensities and no exact matches of whole episodes: where the
target's action was never logged in some state the model extrapolates (the support
diagnostics say where).

The regression is LightGBM (observation columns + the action as a categorical feature,
seeded, one thread) or a per-action ridge model (linear in the observation for each
action; exact for one-hot tabular observations). Targets are divided by the invoice amount
(collections scale with it) and multiplied back.

DR-FQE is the per-decision doubly robust estimator (:class:`DoublyRobust`) with the FQE
values as its model: unbiased whatever the model where the logging policy gives the target's
actions support, and as good as FQE where the importance weights vanish.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from simulations.ope.dataset import LoggedDataset
from simulations.ope.estimators import DoublyRobust, PerInvoiceEstimator

N_ACTIONS = 6


@dataclass(frozen=True)
class FQEConfig:
    """How FQE fits its Q model.

    ``model``: "lightgbm" or "ridge"; ``init``: "logged" starts from a regression on the
    logged return-to-go (the logging policy's Q: the same fixed point, reached in fewer
    iterations for targets near the logging policy) or "zero"; ``max_iter``: regressions
    at most; converged (and stopped) once the last ``window`` iterations' value estimates
    ``mean_i V(x_0)`` lie within ``tol`` of their mean (a tree model's refits keep moving
    single rows by a few percent, so the criterion is on the estimate, not on every row);
    ``trace``: the tree backup's ``lambda`` in [0, 1] (0 = one-step FQE);
    ``n_estimators`` / ``num_leaves`` / ``learning_rate`` / ``min_child_samples``:
    LightGBM's (small and regularised: it is refitted ``max_iter`` times); ``ridge_alpha``:
    the ridge penalty per row; ``scale_by_amount``: regress ``Q / amount``; ``seed``:
    LightGBM's seed.
    """

    model: str = "lightgbm"
    init: str = "logged"
    max_iter: int = 40
    tol: float = 0.005
    window: int = 5
    trace: float = 1.0
    n_estimators: int = 40
    num_leaves: int = 15
    learning_rate: float = 0.15
    min_child_samples: int = 50
    ridge_alpha: float = 1e-3
    scale_by_amount: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.model not in ("lightgbm", "ridge"):
            raise ValueError(f"FQEConfig.model {self.model!r}: expected 'lightgbm' or 'ridge'")
        if not 0.0 <= self.trace <= 1.0:
            raise ValueError(f"FQEConfig.trace {self.trace}: expected a value in [0, 1]")
        if self.init not in ("logged", "zero"):
            raise ValueError(f"FQEConfig.init {self.init!r}: expected 'logged' or 'zero'")
        if self.max_iter < 1 or self.window < 2:
            raise ValueError(f"FQEConfig max_iter {self.max_iter} / window {self.window}: "
                             "expected at least 1 / 2")


@dataclass
class FQEFit:
    """A fitted Q model of the target on ``n`` logged invoices over ``H`` days.

    ``values`` (n, H + 1): ``V(x_t) = Q(x_t, pi(x_t))`` on every logged day (0 after the
    end; column ``H`` is 0), the model values :class:`DoublyRobust` takes; ``q`` (n, H, 6)
    ``Q(x_t, a)`` for every action (0 after the end); ``iterations`` regressions run
    (after the initial one); ``converged`` the estimate settled (``FQEConfig.tol``);
    ``changes`` per iteration the mean absolute change of ``V(x_t)`` over the logged days
    relative to its mean absolute value; ``estimates`` per iteration ``mean_i V(x_0)``.
    """

    values: np.ndarray
    q: np.ndarray
    iterations: int
    converged: bool
    changes: list[float] = field(default_factory=list)
    estimates: list[float] = field(default_factory=list)


class _Regressor:
    """Q(x, a) regression: ``fit(X, a, y)``, ``predict(X, a)`` on (m, dim) / (m,) rows."""

    def __init__(self, config: FQEConfig) -> None:
        self.config = config
        self.booster: Any = None
        self.weights: dict[int, np.ndarray] = {}
        self.mean = self.std = np.zeros(0)

    def fit(self, x: np.ndarray, a: np.ndarray, y: np.ndarray) -> None:
        if self.config.model == "lightgbm":
            self._fit_lgb(x, a, y)
        else:
            self._fit_ridge(x, a, y)

    def predict(self, x: np.ndarray, a: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.zeros(0)
        if self.config.model == "lightgbm":
            return self.booster.predict(np.column_stack([x, a]).astype(np.float64))
        z = self._design(x)
        out = np.empty(len(x))
        for act in np.unique(a):
            rows = a == act
            out[rows] = z[rows] @ self.weights.get(int(act), self.weights[-1])
        return out

    def _fit_lgb(self, x: np.ndarray, a: np.ndarray, y: np.ndarray) -> None:
        import lightgbm as lgb

        c = self.config
        params = {"objective": "regression", "num_leaves": c.num_leaves,
                  "learning_rate": c.learning_rate, "min_data_in_leaf": c.min_child_samples,
                  "seed": c.seed, "deterministic": True, "force_row_wise": True,
                  "num_threads": 1, "verbose": -1}
        ds = lgb.Dataset(np.column_stack([x, a]).astype(np.float64), y,
                         categorical_feature=[x.shape[1]], free_raw_data=True)
        self.booster = lgb.train(params, ds, num_boost_round=c.n_estimators)

    def _design(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([np.ones(len(x)), (x - self.mean) / self.std])

    def _fit_ridge(self, x: np.ndarray, a: np.ndarray, y: np.ndarray) -> None:
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        z = self._design(x)
        penalty = self.config.ridge_alpha * np.eye(z.shape[1])
        penalty[0, 0] = 0.0  # the intercept is not shrunk

        def solve(rows: np.ndarray) -> np.ndarray:
            zr = z[rows]
            return np.linalg.solve(zr.T @ zr + penalty * max(len(zr), 1), zr.T @ y[rows])

        # an action never logged gets the pooled model (extrapolation, flagged by support)
        self.weights = {-1: solve(np.ones(len(a), dtype=bool))}
        for act in np.unique(a):
            rows = a == act
            if rows.sum() > z.shape[1]:
                self.weights[int(act)] = solve(rows)


def _episode_end(data: LoggedDataset) -> np.ndarray:
    """(n, H) bool: day t is the episode's last (terminated, or no next active day)."""
    active = data.active
    nxt = np.concatenate([active[:, 1:], np.zeros((len(active), 1), dtype=bool)], axis=1)
    end = active & ~nxt
    if data.terminated is not None:
        end |= data.terminated & active
    return end


def _scale(data: LoggedDataset, config: FQEConfig) -> np.ndarray:
    amount = getattr(data.batch, "amount", None)
    if not config.scale_by_amount or amount is None:
        return np.ones(data.n)
    return np.maximum(np.asarray(amount, dtype=np.float64), 1.0)


def fit_fqe(data: LoggedDataset, pi: np.ndarray, config: FQEConfig | None = None,
            rows: np.ndarray | None = None) -> FQEFit:
    """Fit FQE for the target ``pi`` ((n, H) actions, :func:`target_actions`).

    ``rows`` (m,) episode indices (a bootstrap resample, repeats allowed) to fit on instead
    of all; the returned arrays then have m rows in that order.
    """
    c = config or FQEConfig()
    idx = np.arange(data.n) if rows is None else np.asarray(rows)
    H = data.action.shape[1]
    active = data.active[idx]
    obs = data.obs[idx][:, :H]
    act = data.action[idx]
    tgt = pi[idx][:, :H]
    reward = data.reward[idx] / _scale(data, c)[idx, None]
    end = _episode_end(data)[idx]
    match = active & (act == tgt)
    x = obs[active]  # (N, dim) the logged days, row-major (episode, day)
    a_logged, a_target = act[active], tgt[active]
    model = _Regressor(c)
    v = np.zeros(active.shape)  # V(x_t) = Q_k(x_t, pi(x_t)) / amount, 0 after the end
    if c.init == "logged":  # Q_0: the logged return-to-go (the logging policy's Q)
        togo = np.cumsum(np.where(active, reward, 0.0)[:, ::-1], axis=1)[:, ::-1]
        model.fit(x, a_logged, togo[active])
        v[active] = model.predict(x, a_target)
    changes: list[float] = []
    estimates: list[float] = []
    scale0 = _scale(data, c)[idx]
    converged = False
    for _ in range(c.max_iter):
        g = _tree_backup(reward, v, match, end, c.trace)
        model.fit(x, a_logged, g[active])
        v_new = np.zeros_like(v)
        v_new[active] = model.predict(x, a_target)
        changes.append(float(np.abs(v_new - v)[active].mean()
                             / max(np.abs(v_new[active]).mean(), 1e-12)))
        estimates.append(float((v_new[:, 0] * scale0).mean()))
        v = v_new
        last = np.array(estimates[-c.window:])
        if len(last) == c.window and np.ptp(last) <= c.tol * max(abs(last.mean()), 1e-12):
            converged = True
            break
    scale = _scale(data, c)[idx]
    q = np.zeros((*active.shape, N_ACTIONS))
    for a in range(N_ACTIONS):
        q[active, a] = model.predict(x, np.full(len(x), a))
    values = np.zeros((len(idx), H + 1))
    values[:, :H] = v * scale[:, None]
    return FQEFit(values=values, q=q * scale[:, None, None], iterations=len(changes),
                  converged=converged, changes=changes, estimates=estimates)


def _tree_backup(reward: np.ndarray, v: np.ndarray, match: np.ndarray, end: np.ndarray,
                 lam: float) -> np.ndarray:
    """(n, H) regression targets ``G_t`` (see the module docstring), vectorised over
    episodes, backwards over days."""
    n, H = reward.shape
    g = np.zeros((n, H))
    g[:, H - 1] = reward[:, H - 1]
    for t in range(H - 2, -1, -1):
        boot = v[:, t + 1] + lam * np.where(match[:, t + 1], g[:, t + 1] - v[:, t + 1], 0.0)
        g[:, t] = reward[:, t] + np.where(end[:, t], 0.0, boot)
    return g


_CACHE: OrderedDict[tuple[str, FQEConfig], FQEFit] = OrderedDict()
_CACHE_SIZE = 4


def _fingerprint(data: LoggedDataset, pi: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    for arr in (pi, data.action, data.reward, data.active, data.obs):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def convergence_warning(fit: FQEFit, config: FQEConfig) -> str | None:
    """A warning when the fit stopped at ``max_iter`` with the estimate still moving."""
    if fit.converged:
        return None
    last = np.array(fit.estimates[-config.window:])
    moving = float(np.ptp(last) / max(abs(last.mean()), 1e-12))
    return (f"FQE did not converge in {fit.iterations} iterations: its estimate still moves "
            f"by {moving:.1%} over the last {len(last)}")


def fqe_values(data: LoggedDataset, pi: np.ndarray, config: FQEConfig | None = None) -> FQEFit:
    """:func:`fit_fqe` on all episodes, memoised on the data, target and config (``estimate``
    and ``estimate_interval`` of both FQE estimators share one fit)."""
    c = config or FQEConfig()
    key = (_fingerprint(data, pi), c)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    fit = fit_fqe(data, pi, c)
    _CACHE[key] = fit
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return fit


@dataclass(frozen=True)
class FittedQEvaluation(PerInvoiceEstimator):
    """FQE: ``mean_i Q(x_0, pi(x_0))`` of the fitted Q model; no propensities needed.

    ``estimate_interval`` refits the model on ``n_refits`` bootstrap resamples of the
    episodes (seeded) when ``n_refits > 0`` (the model's own uncertainty; ``n_refits``
    LightGBM fits); with ``n_refits = 0`` it resamples the per-invoice values of the one
    fit (the model held fixed: too narrow where the model is wrong).
    """

    name: str = "fqe"
    config: FQEConfig = FQEConfig()
    n_refits: int = 0
    needs_values: ClassVar[bool] = False
    needs_propensities: ClassVar[bool] = False
    model_based: ClassVar[bool] = True

    def per_invoice(self, data: LoggedDataset, pi: np.ndarray,
                    values: np.ndarray | None = None) -> np.ndarray:
        return fqe_values(data, pi, self.config).values[:, 0]

    def fit_warning(self, data: LoggedDataset, pi: np.ndarray) -> str | None:
        return convergence_warning(fqe_values(data, pi, self.config), self.config)

    def estimate_interval(self, data: LoggedDataset, pi: np.ndarray,
                          values: np.ndarray | None = None, alpha: float = 0.05,
                          n_boot: int = 500, seed: int = 0) -> tuple[float, float]:
        if self.n_refits <= 0:
            return super().estimate_interval(data, pi, values, alpha, n_boot, seed)
        rng = np.random.default_rng(seed)
        boot = [float(fit_fqe(data, pi, self.config, rng.integers(0, data.n, data.n))
                      .values[:, 0].mean()) for _ in range(self.n_refits)]
        return float(np.quantile(boot, alpha / 2)), float(np.quantile(boot, 1 - alpha / 2))


@dataclass(frozen=True)
class DoublyRobustFQE(PerInvoiceEstimator):
    """Per-decision doubly robust with the FQE values as its model (DR-FQE).

    The interval resamples the per-invoice DR terms (the FQE model held fixed).
    """

    name: str = "dr-fqe"
    config: FQEConfig = FQEConfig()
    needs_values: ClassVar[bool] = False
    needs_propensities: ClassVar[bool] = True
    model_based: ClassVar[bool] = True

    def per_invoice(self, data: LoggedDataset, pi: np.ndarray,
                    values: np.ndarray | None = None) -> np.ndarray:
        fit = fqe_values(data, pi, self.config)
        return DoublyRobust().per_invoice(data, pi, fit.values)

    def fit_warning(self, data: LoggedDataset, pi: np.ndarray) -> str | None:
        return convergence_warning(fqe_values(data, pi, self.config), self.config)


__all__ = ["DoublyRobustFQE", "FQEConfig", "FQEFit", "FittedQEvaluation", "convergence_warning",
           "fit_fqe", "fqe_values"]
