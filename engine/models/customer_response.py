"""Customer-level payment response: how THIS customer paid, with and after reminders.

Why: the hazard trees see a customer's usual lateness through the ``hist_*`` features and
the segment's reminder lift (:mod:`engine.models.reminder_lift`), not how this customer
responded to reminders. Two customers of one segment with the same usual lateness may
differ exactly there: one pays a few days after any reminder, the other pays when it pays.
Timing reminders per customer needs that difference (issue #25).

The estimate is an observed-over-expected ratio with a gamma prior (Poisson-gamma empirical
Bayes). On every overdue day of the history on which an invoice was unpaid (the hazard
model's risk set, :func:`engine.features.risk_rows`) the model's hazard without this
correction (trees x segment reminder lift) is the expected payment; the invoice being paid
that day is the observed one. The days fall in cells: *baseline* (no reminder in the last
:data:`WINDOW_DAYS` days) and, within that window, per reminder channel c and bucket b of
days since the reminder (:data:`SINCE_EDGES`: how SOON after a reminder the customer
pays). Per customer, summed over the days strictly before the as-of date D::

    O, E                                    observed, expected payments (counts)
    theta    = (O + k1) / (E + k1)                       all days, toward 1 (= the segment)
    theta_0  = (O_0 + k2 * theta) / (E_0 + k2)           baseline days, toward theta
    theta_b  = (O_b + k2 * theta) / (E_b + k2)           window days b after a reminder
    theta_cb = (O_cb + k3 * theta_b) / (E_cb + k3)       of channel c, toward theta_b

``k1``, ``k2``, ``k3`` (prior strengths, in expected payments) come from the variance
between customers beyond Poisson noise at each level (method of moments on the training
history): a history in which customers do not differ gets a large k (no
individualisation), one in which they do a small one. The hazard is multiplied by
theta_0 on baseline days and by theta_cb on the window days of a channel-c reminder sent b
days before. A customer who is just faster overall (the world's latent reliability) gets
theta_0 ~ theta_cb, so the relative worth of a reminder stays the segment's; a customer who
pays right after reminders gets theta_cb above theta_0, one who ignores them below. A
customer without history gets 1 everywhere.

Leakage: the estimate as of D reads only days < D (a day's payment is known at its end) of
invoices whose model inputs are themselves as of their due dates, so it does not change
when anything dated D or later is added or removed (tested).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.calendar import DAY_BITS
from engine.features import (
    REMINDER_CHANNELS,
    PreparedTables,
    dynamic_features_at,
    in_dispute,
    risk_days,
    risk_rows,
)
from engine.models.reminder_lift import WINDOW_DAYS

SINCE_EDGES = np.array([0, 4, 10])  # left-closed buckets of days since the reminder
N_CHANNELS = len(REMINDER_CHANNELS)
N_BUCKETS = len(SINCE_EDGES)
N_CELLS = 1 + N_CHANNELS * N_BUCKETS  # baseline, then channel-major, bucket-minor
_BUCKET_NAMES = [f"{lo}_{hi - 1}" for lo, hi in
                 zip(SINCE_EDGES, [*SINCE_EDGES[1:], WINDOW_DAYS], strict=True)]
RESPONSE_FEATURES: tuple[str, ...] = ("resp_baseline", *(
    f"resp_{c}_{b}" for c in REMINDER_CHANNELS for b in _BUCKET_NAMES))
_K_BOUNDS = (1.0, 1e4)  # prior strength: at least one pseudo-payment, at most "no effect"
_FACTOR_BOUNDS = (0.05, 20.0)

ExpectedFn = Callable[[np.ndarray, np.ndarray, Mapping[str, np.ndarray]], np.ndarray]


def cells(dynamic: Mapping[str, np.ndarray]) -> np.ndarray:
    """(m,) estimate column of each day: 0 baseline, else 1 + (channel - 1) * B + bucket
    for a day within :data:`WINDOW_DAYS` of a reminder of that channel."""
    since = np.asarray(dynamic["days_since_last_reminder"], dtype=np.float64)
    ch = np.asarray(dynamic["last_channel"], dtype=np.int64)
    window = (since < WINDOW_DAYS) & (ch >= 1) & (ch <= N_CHANNELS)
    b = np.clip(np.searchsorted(SINCE_EDGES, since, side="right") - 1, 0, N_BUCKETS - 1)
    return np.where(window, 1 + (np.clip(ch, 1, N_CHANNELS) - 1) * N_BUCKETS + b, 0)


@dataclass
class ResponseHistory:
    """Days at risk of a history, accumulated per customer for as-of queries.

    ``keys`` (m,) sorted ``customer << DAY_BITS | day``; ``cum`` (m + 1, 2 * K) cumulative
    observed (first K columns) and expected (last K) payments per cell (K =
    :data:`N_CELLS`, order of :data:`RESPONSE_FEATURES`), with a leading zero row.
    """

    keys: np.ndarray
    cum: np.ndarray

    def totals(self, cust: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(observed, expected)`` (n, K) each: days of customers ``cust`` (n,) strictly
        before days ``day`` (n,)."""
        cust = np.asarray(cust, dtype=np.int64)
        hi = np.searchsorted(self.keys, (cust << DAY_BITS) + np.asarray(day, np.int64), "left")
        lo = np.searchsorted(self.keys, cust << DAY_BITS, "left")
        s = self.cum[hi] - self.cum[lo]
        return s[:, :N_CELLS], s[:, N_CELLS:]


def response_history(p: PreparedTables, as_day: int, horizon_days: int,
                     expected: ExpectedFn, customers: np.ndarray | None = None,
                     exclude_disputed: bool = False) -> ResponseHistory:
    """Accumulate the overdue days at risk before ``as_day`` (of ``customers``, customer
    positions, when given; without the days of an open dispute with ``exclude_disputed``,
    as the hazard model's rows). ``expected(invoices (u,), static index (m,) into them,
    dynamic inputs)`` returns the (m,) hazard of the days without the customer
    correction."""
    inv, stop = risk_days(p, as_day, horizon_days)
    if customers is not None:
        inv = inv[np.isin(p.cust[inv], customers)]
    rows, day = risk_rows(p, inv, stop)
    if exclude_disputed:
        open_ = ~in_dispute(p, rows, day)
        rows, day = rows[open_], day[open_]
    dynamic = dynamic_features_at(p, rows, day)
    exp = (expected(inv, np.searchsorted(inv, rows), dynamic) if len(rows)
           else np.zeros(0))
    obs = (day == p.settle_day[rows]).astype(np.float64)
    cell = cells(dynamic)
    keys = (p.cust[rows].astype(np.int64) << DAY_BITS) + day
    order = np.argsort(keys, kind="stable")
    vals = np.zeros((len(rows), 2 * N_CELLS))
    r = np.arange(len(rows))
    vals[r, cell] = obs
    vals[r, N_CELLS + cell] = exp
    cum = np.zeros((len(rows) + 1, 2 * N_CELLS))
    np.cumsum(vals[order], axis=0, out=cum[1:])
    return ResponseHistory(keys[order], cum)


def _strength(obs: np.ndarray, exp: np.ndarray) -> float:
    """Gamma prior strength 1/tau^2 by the method of moments: Var(O) = E + tau^2 E^2 for
    O ~ Poisson(E theta), theta ~ Gamma(mean 1, variance tau^2); bounded by _K_BOUNDS."""
    denom = float((exp ** 2).sum())
    if denom <= 0:
        return _K_BOUNDS[1]
    tau2 = (float(((obs - exp) ** 2).sum()) - float(exp.sum())) / denom
    return float(np.clip(1.0 / tau2, *_K_BOUNDS)) if tau2 > 0 else _K_BOUNDS[1]


def _strength_against(obs: np.ndarray, exp: np.ndarray, obs_out: np.ndarray,
                      exp_out: np.ndarray) -> float:
    """Gamma prior strength 1/tau^2 of a cell's factor around the customer's own factor,
    which is estimated from its other cells (``obs_out``, ``exp_out``, the same shape):
    O ~ Poisson(E theta phi), phi ~ Gamma(mean 1, variance tau^2), theta estimated by
    r = O_out / E_out. The method of moments with r's own Poisson noise taken out
    (E[(O - E r)^2] = E theta + tau^2 E^2 theta^2 + E^2 theta / E_out and
    E[r^2] = theta^2 + theta / E_out), so a history in which customers do not differ gets
    tau^2 ~ 0, whatever the share of their payments in one cell; bounded by _K_BOUNDS."""
    ok = np.asarray(exp_out) > 0
    o, e = np.asarray(obs)[ok], np.asarray(exp)[ok]
    r = np.asarray(obs_out)[ok] / np.asarray(exp_out)[ok]
    noise = e * e * r / np.asarray(exp_out)[ok]  # E^2 Var(r)
    denom = float((e * e * r * r - noise).sum())
    if denom <= 0:
        return _K_BOUNDS[1]
    tau2 = (float(((o - e * r) ** 2).sum()) - float((e * r).sum()) - float(noise.sum())) / denom
    return float(np.clip(1.0 / tau2, *_K_BOUNDS)) if tau2 > 0 else _K_BOUNDS[1]


def _split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, K) cells -> baseline (n,), window cells (n, C, B)."""
    x = np.asarray(x, dtype=np.float64)
    return x[:, 0], x[:, 1:].reshape(len(x), N_CHANNELS, N_BUCKETS)


@dataclass
class CustomerResponse:
    """The fitted prior strengths (expected payments): ``k_customer`` (all days toward the
    segment), ``k_since`` (baseline and each since bucket toward the customer's all-day
    factor), ``k_channel`` (a channel toward the customer's factor of that since bucket)."""

    k_customer: float
    k_since: float
    k_channel: float

    @classmethod
    def fit(cls, obs: np.ndarray, exp: np.ndarray) -> CustomerResponse:
        """From the training history's totals per customer, ``obs`` and ``exp`` (n, K)."""
        (o0, o3), (e0, e3) = _split(obs), _split(exp)
        o_all, e_all = o0 + o3.sum(axis=(1, 2)), e0 + e3.sum(axis=(1, 2))
        k1 = _strength(o_all, e_all)
        ob = np.column_stack([o0, o3.sum(axis=1)])  # (n, 1 + B): baseline, buckets
        eb = np.column_stack([e0, e3.sum(axis=1)])
        # Each cell against the customer's factor from its OTHER cells (a factor fitted on
        # the cell's own counts absorbs their spread: most payments fall in the reminder
        # windows, and customers would look alike there).
        k2 = _strength_against(ob, eb, o_all[:, None] - ob, e_all[:, None] - eb)
        o_b, e_b = ob[:, 1:], eb[:, 1:]  # (n, B)
        k3 = _strength_against(o3, e3, o_b[:, None, :] - o3, e_b[:, None, :] - e3)
        return cls(k1, k2, k3)

    def estimate(self, obs: np.ndarray, exp: np.ndarray) -> np.ndarray:
        """(n, K) posterior-mean factors per customer (columns of
        :data:`RESPONSE_FEATURES`) from the totals (n, K) of
        :meth:`ResponseHistory.totals`."""
        (o0, o3), (e0, e3) = _split(obs), _split(exp)
        k1, k2, k3 = self.k_customer, self.k_since, self.k_channel
        theta = (o0 + o3.sum(axis=(1, 2)) + k1) / (e0 + e3.sum(axis=(1, 2)) + k1)
        theta_0 = (o0 + k2 * theta) / (e0 + k2)
        theta_b = (o3.sum(axis=1) + k2 * theta[:, None]) / (e3.sum(axis=1) + k2)
        theta_cb = (o3 + k3 * theta_b[:, None, :]) / (e3 + k3)
        out = np.column_stack([theta_0, theta_cb.reshape(len(obs), -1)])
        return np.clip(out, *_FACTOR_BOUNDS)

    @staticmethod
    def factor(estimates: np.ndarray, dynamic: Mapping[str, np.ndarray]) -> np.ndarray:
        """(m,) multiplier of the hazard: the row's estimate (m, K) of its day's cell
        (baseline, or its last reminder's channel and days since it); NaN counts as 1."""
        f = np.asarray(estimates, dtype=np.float64)[np.arange(len(estimates)),
                                                    cells(dynamic)]
        return np.where(np.isfinite(f), f, 1.0)

    @staticmethod
    def factor_grid(estimates: np.ndarray, dynamic: Mapping[str, np.ndarray]) -> np.ndarray:
        """(B, m) :meth:`factor` of every row (invoice b, day j): the estimates (B, K) of B
        invoices on the m days of ``dynamic`` ((m,) each)."""
        f = np.asarray(estimates, dtype=np.float64)[:, cells(dynamic)]
        return np.where(np.isfinite(f), f, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {"k_customer": self.k_customer, "k_since": self.k_since,
                "k_channel": self.k_channel, "window_days": WINDOW_DAYS,
                "since_edges": SINCE_EDGES.tolist(), "features": list(RESPONSE_FEATURES)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CustomerResponse:
        return cls(float(d["k_customer"]), float(d["k_since"]), float(d["k_channel"]))
