"""Customer-level reminder response: how THIS customer answered past reminders, empirical Bayes.

Why: the hazard trees see a customer's usual lateness (``hist_mean_days_late`` and the other
``hist_*`` features) and the segment's reminder lift (:mod:`engine.models.reminder_lift`),
not how this customer responded to reminders. Two customers of one segment with the same
usual lateness may differ exactly there: one pays a few days after any reminder, the other
pays when it pays. Timing reminders per customer needs that difference (issue #25).

The estimate is an observed-over-expected ratio with a gamma prior (Poisson-gamma empirical
Bayes). For every day of the history on which an invoice was overdue, unpaid and within
:data:`WINDOW_DAYS` of its last reminder (the *window days*), the model's hazard without
this correction (trees x segment reminder lift) is the expected payment; the invoice being
paid that day is the observed one. Per customer, reminder channel c and bucket b of days
since the reminder (:data:`SINCE_EDGES`: how SOON after a reminder the customer pays),
summed over the window days strictly before the as-of date D::

    O_cb, E_cb                         observed, expected payments (counts)
    theta    = (O + k1) / (E + k1)                     all days, toward 1 (= the segment)
    theta_b  = (O_b + k2 * theta) / (E_b + k2)         per since bucket, toward theta
    theta_cb = (O_cb + k3 * theta_b) / (E_cb + k3)     per channel, toward theta_b

``k1``, ``k2``, ``k3`` (prior strengths, in expected payments) come from the variance
between customers beyond Poisson noise at each level (method of moments on the training
history): a history in which customers do not differ gets a large k (no
individualisation), one in which they do a small one. The factor theta_cb multiplies the
hazard on the window days after a reminder of channel c, b days after it (1 elsewhere, like
the segment lift), so it is 1 for a customer never reminded.

Leakage: the estimate as of D reads only window days < D (a day's payment is known at its
end) of invoices whose model inputs are themselves as of their due dates, so it does not
change when anything dated D or later is added or removed (tested).

The customer's usual days late is not re-estimated here: it is the trees' ``hist_*``
features (shrinkage is implicit in the trees' splits on ``hist_n_paid``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.calendar import DAY_BITS, NEVER
from engine.contract import CHANNELS
from engine.features import REMINDER_CHANNELS, PreparedTables, dynamic_features_at
from engine.models.reminder_lift import WINDOW_DAYS

SINCE_EDGES = np.array([0, 4, 10])  # left-closed buckets of days since the reminder
N_CHANNELS = len(REMINDER_CHANNELS)
N_BUCKETS = len(SINCE_EDGES)
N_CELLS = N_CHANNELS * N_BUCKETS  # estimate columns: channel-major, bucket-minor
_BUCKET_NAMES = [f"{lo}_{hi - 1}" for lo, hi in
                 zip(SINCE_EDGES, [*SINCE_EDGES[1:], WINDOW_DAYS], strict=True)]
RESPONSE_FEATURES: tuple[str, ...] = tuple(f"resp_{c}_{b}" for c in REMINDER_CHANNELS
                                           for b in _BUCKET_NAMES)
_K_BOUNDS = (1.0, 1e4)  # prior strength: at least one pseudo-payment, at most "no effect"
_FACTOR_BOUNDS = (0.05, 20.0)
AGENCY = len(CHANNELS)  # Action value of the agency handover (the last channel)


@dataclass
class ResponseHistory:
    """Window days of a history, accumulated per customer for as-of queries.

    ``keys`` (m,) sorted ``customer << DAY_BITS | day``; ``cum`` (m + 1, 2 * K) cumulative
    observed (first K columns) and expected (last K) payments per (reminder channel, since
    bucket) cell, with a leading zero row (K = :data:`N_CELLS`, channel-major).
    """

    keys: np.ndarray
    cum: np.ndarray

    def totals(self, cust: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(observed, expected)`` (n, K) each: window days of customers ``cust`` (n,)
        strictly before days ``day`` (n,)."""
        cust = np.asarray(cust, dtype=np.int64)
        hi = np.searchsorted(self.keys, (cust << DAY_BITS) + np.asarray(day, np.int64), "left")
        lo = np.searchsorted(self.keys, cust << DAY_BITS, "left")
        s = self.cum[hi] - self.cum[lo]
        return s[:, :N_CELLS], s[:, N_CELLS:]


def window_days(p: PreparedTables, as_day: int, horizon_days: int,
                customers: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(invoice rows (m,), days (m,), channel 1..C (m,))`` of the window days before
    ``as_day``: days on or after the due date, at most ``horizon_days`` after it, within
    :data:`WINDOW_DAYS` of a reminder that is still the invoice's last action, before the
    invoice was settled (the settle day included: it is the observed payment) or handed to
    the agency. ``customers`` (customer positions) limits the rows to those customers."""
    a_inv = (p.act_keys >> DAY_BITS).astype(np.int64)
    day, ch = p.act_day.astype(np.int64), p.act_channel.astype(np.int64)
    nxt = np.full(len(a_inv), NEVER, dtype=np.int64)  # the invoice's next action day
    same = a_inv[1:] == a_inv[:-1]
    nxt[:-1] = np.where(same, day[1:], NEVER)
    agency = np.full(len(p.invoice_id), NEVER, dtype=np.int64)
    np.minimum.at(agency, a_inv[ch == AGENCY], day[ch == AGENCY])
    keep = (ch >= 1) & (ch <= N_CHANNELS)
    if customers is not None:
        keep &= np.isin(p.cust[a_inv], customers)
    a_inv, day, ch, nxt = a_inv[keep], day[keep], ch[keep], nxt[keep]
    due = p.due_day[a_inv]
    start = np.maximum(day, due)
    end = np.minimum.reduce([day + WINDOW_DAYS - 1, nxt - 1, p.settle_day[a_inv],
                             agency[a_inv] - 1, np.full_like(day, as_day - 1),
                             due + horizon_days])
    length = np.maximum(end - start + 1, 0)
    rows = np.repeat(a_inv, length)
    offset = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length)
    return rows, np.repeat(start, length) + offset, np.repeat(ch, length)


def response_history(p: PreparedTables, as_day: int, horizon_days: int,
                     expected: Callable[[np.ndarray, np.ndarray, Mapping[str, np.ndarray]],
                                        np.ndarray],
                     customers: np.ndarray | None = None) -> ResponseHistory:
    """Accumulate the window days before ``as_day`` (see :func:`window_days`).
    ``expected(invoices (u,), static index (m,) into them, dynamic inputs)`` returns the
    (m,) hazard of the window days without the customer correction."""
    rows, day, ch = window_days(p, as_day, horizon_days, customers)
    inv, index = np.unique(rows, return_inverse=True)
    dynamic = dynamic_features_at(p, rows, day)
    exp = expected(inv, index, dynamic) if len(rows) else np.zeros(0)
    cell = _cells(dynamic)
    obs = (day == p.settle_day[rows]).astype(np.float64)
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


def _cells(dynamic: Mapping[str, np.ndarray]) -> np.ndarray:
    """(m,) estimate column of each row (channel-major, since-bucket minor), -1 outside
    the window of a reminder."""
    since = np.asarray(dynamic["days_since_last_reminder"], dtype=np.float64)
    ch = np.asarray(dynamic["last_channel"], dtype=np.int64)
    window = (since < WINDOW_DAYS) & (ch >= 1) & (ch <= N_CHANNELS)
    b = np.clip(np.searchsorted(SINCE_EDGES, since, side="right") - 1, 0, N_BUCKETS - 1)
    return np.where(window, (np.clip(ch, 1, N_CHANNELS) - 1) * N_BUCKETS + b, -1)


@dataclass
class CustomerResponse:
    """The fitted prior strengths (expected payments): ``k_customer`` (all window days
    toward the segment), ``k_since`` (a since bucket toward the customer's all-day factor),
    ``k_channel`` (a channel toward the customer's factor of that since bucket)."""

    k_customer: float
    k_since: float
    k_channel: float

    @classmethod
    def fit(cls, obs: np.ndarray, exp: np.ndarray) -> CustomerResponse:
        """From the training history's totals per customer, ``obs`` and ``exp`` (n, K)."""
        o3, e3 = _by_level(obs), _by_level(exp)  # (n, C, B)
        k1 = _strength(o3.sum(axis=(1, 2)), e3.sum(axis=(1, 2)))
        theta = (o3.sum(axis=(1, 2)) + k1) / (e3.sum(axis=(1, 2)) + k1)
        ob, eb = o3.sum(axis=1), e3.sum(axis=1)  # (n, B)
        k2 = _strength(ob.ravel(), (eb * theta[:, None]).ravel())
        theta_b = (ob + k2 * theta[:, None]) / (eb + k2)
        k3 = _strength(o3.ravel(), (e3 * theta_b[:, None, :]).ravel())
        return cls(k1, k2, k3)

    def estimate(self, obs: np.ndarray, exp: np.ndarray) -> np.ndarray:
        """(n, K) posterior-mean factor per customer and (channel, since bucket) cell from
        the totals (n, K) of :meth:`ResponseHistory.totals`."""
        o3, e3 = _by_level(obs), _by_level(exp)
        theta = (o3.sum(axis=(1, 2)) + self.k_customer) / (e3.sum(axis=(1, 2))
                                                           + self.k_customer)
        theta_b = ((o3.sum(axis=1) + self.k_since * theta[:, None])
                   / (e3.sum(axis=1) + self.k_since))
        out = (o3 + self.k_channel * theta_b[:, None, :]) / (e3 + self.k_channel)
        return np.clip(out, *_FACTOR_BOUNDS).reshape(len(obs), N_CELLS)

    @staticmethod
    def factor(estimates: np.ndarray, dynamic: Mapping[str, np.ndarray]) -> np.ndarray:
        """(m,) multiplier of the hazard: the row's estimate (m, K) of its last reminder's
        channel and days since it within :data:`WINDOW_DAYS`, else 1 (NaN counts as 1)."""
        cell = _cells(dynamic)
        f = np.asarray(estimates, dtype=np.float64)[np.arange(len(cell)), np.maximum(cell, 0)]
        return np.where((cell >= 0) & np.isfinite(f), f, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {"k_customer": self.k_customer, "k_since": self.k_since,
                "k_channel": self.k_channel, "window_days": WINDOW_DAYS,
                "since_edges": SINCE_EDGES.tolist(), "features": list(RESPONSE_FEATURES)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CustomerResponse:
        return cls(float(d["k_customer"]), float(d["k_since"]), float(d["k_channel"]))


def _by_level(x: np.ndarray) -> np.ndarray:
    """(n, K) cells -> (n, C, B)."""
    return np.asarray(x, dtype=np.float64).reshape(len(x), N_CHANNELS, N_BUCKETS)
