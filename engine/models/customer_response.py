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
pays). The window days fall a second time in cells by the bucket s of the day after due
the reminder was SENT (:data:`SEND_EDGES`: on WHICH days reminders work for this
customer). Per customer, summed over the days strictly before the as-of date D::

    O, E                                    observed, expected payments (counts)
    theta    = (O + k1) / (E + k1)                       all days, toward 1 (= the segment)
    theta_0  = (O_0 + k2 * theta) / (E_0 + k2)           baseline days, toward theta
    theta_b  = (O_b + k2 * theta) / (E_b + k2)           window days b after a reminder
    theta_cb = (O_cb + k3 * theta_b) / (E_cb + k3)       of channel c, toward theta_b
    theta_w  = (O_w + k2 * theta) / (E_w + k2)           all window days
    theta_s  = (O_s + k4 * theta_w) / (E_s + k4)         window days of reminders sent in s
    rho_s    = theta_s / theta_w                         the send day's relative factor

``k1`` .. ``k4`` (prior strengths, in expected payments) come from the variance between
customers beyond Poisson noise at each level (method of moments on the training history): a
history in which customers do not differ gets a large k (no individualisation), one in
which they do a small one. The hazard is multiplied by theta_0 on baseline days and by
theta_cb * rho_s on the window days of a channel-c reminder sent b days before, on a day
after due in bucket s. A customer who is just faster overall (the world's latent
reliability) gets theta_0 ~ theta_cb and rho ~ 1, so the relative worth of a reminder stays
the segment's; a customer who pays right after reminders gets theta_cb above theta_0, one
who ignores them below; a customer who answers reminders sent later than its segment's best
days gets rho above 1 in the later buckets and below 1 in the earlier ones, so a planner
sends its reminders later. A customer without history gets 1 everywhere.

Leakage: the estimate as of D reads only days < D (a day's payment is known at its end) of
invoices whose model inputs are themselves as of their due dates, so it does not change
when anything dated D or later is added or removed (tested).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
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
# left-closed buckets of the day after due a reminder was sent (a week each, then the rest:
# the logging schedules' first reminders fall in the second and third week)
SEND_EDGES = np.array([0, 7, 14, 21, 30])
N_CHANNELS = len(REMINDER_CHANNELS)
N_BUCKETS = len(SINCE_EDGES)
N_SEND = len(SEND_EDGES)
N_CELLS = 1 + N_CHANNELS * N_BUCKETS  # baseline, then channel-major, bucket-minor
N_COLUMNS = N_CELLS + N_SEND  # then the window days again, by send bucket
_BUCKET_NAMES = [f"{lo}_{hi - 1}" for lo, hi in
                 zip(SINCE_EDGES, [*SINCE_EDGES[1:], WINDOW_DAYS], strict=True)]
_SEND_NAMES = [*(f"{lo}_{hi - 1}" for lo, hi in zip(SEND_EDGES[:-1], SEND_EDGES[1:],
                                                     strict=True)), f"{SEND_EDGES[-1]}_"]
RESPONSE_FEATURES: tuple[str, ...] = ("resp_baseline", *(
    f"resp_{c}_{b}" for c in REMINDER_CHANNELS for b in _BUCKET_NAMES), *(
    f"resp_sent_{s}" for s in _SEND_NAMES))
_K_BOUNDS = (1.0, 1e4)  # prior strength: at least one pseudo-payment, at most "no effect"
_FACTOR_BOUNDS = (0.05, 20.0)
# a segment's own prior strengths need this many customers (else the pooled ones)
MIN_SEGMENT_CUSTOMERS = 30

ExpectedFn = Callable[[np.ndarray, np.ndarray, Mapping[str, np.ndarray]], np.ndarray]


def cells(dynamic: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(cell, send)`` (m,) each, estimate columns of each day: ``cell`` 0 baseline, else
    1 + (channel - 1) * B + bucket for a day within :data:`WINDOW_DAYS` of a reminder of
    that channel; ``send`` :data:`N_CELLS` + the send bucket of that reminder, -1 on a
    baseline day."""
    since = np.asarray(dynamic["days_since_last_reminder"], dtype=np.float64)
    ch = np.asarray(dynamic["last_channel"], dtype=np.int64)
    window = (since < WINDOW_DAYS) & (ch >= 1) & (ch <= N_CHANNELS)
    b = np.clip(np.searchsorted(SINCE_EDGES, since, side="right") - 1, 0, N_BUCKETS - 1)
    sent = np.asarray(dynamic["last_reminder_overdue"], dtype=np.float64)
    s = np.clip(np.searchsorted(SEND_EDGES, sent, side="right") - 1, 0, N_SEND - 1)
    return (np.where(window, 1 + (np.clip(ch, 1, N_CHANNELS) - 1) * N_BUCKETS + b, 0),
            np.where(window, N_CELLS + s, -1))


@dataclass
class ResponseHistory:
    """Days at risk of a history, accumulated per customer for as-of queries.

    ``keys`` (m,) sorted ``customer << DAY_BITS | day``; ``cum`` (m + 1, 2 * K) cumulative
    observed (first K columns) and expected (last K) payments per column (K =
    :data:`N_COLUMNS`, the cells then the send buckets: the order of
    :data:`RESPONSE_FEATURES`), with a leading zero row.
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
        return s[:, :N_COLUMNS], s[:, N_COLUMNS:]


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
    cell, send = cells(dynamic)
    keys = (p.cust[rows].astype(np.int64) << DAY_BITS) + day
    order = np.argsort(keys, kind="stable")
    vals = np.zeros((len(rows), 2 * N_COLUMNS))
    r = np.arange(len(rows))
    vals[r, cell] = obs
    vals[r, N_COLUMNS + cell] = exp
    w = send >= 0  # the window days once more, by their reminder's send bucket
    vals[r[w], send[w]] = obs[w]
    vals[r[w], N_COLUMNS + send[w]] = exp[w]
    cum = np.zeros((len(rows) + 1, 2 * N_COLUMNS))
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


def _split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, K) columns -> baseline (n,), window cells (n, C, B), send buckets (n, S)."""
    x = np.asarray(x, dtype=np.float64)
    return (x[:, 0], x[:, 1:N_CELLS].reshape(len(x), N_CHANNELS, N_BUCKETS),
            x[:, N_CELLS:N_COLUMNS])


@dataclass(frozen=True)
class PriorStrengths:
    """The prior strengths (expected payments) of one group of customers: ``k_customer``
    (all days toward the segment), ``k_since`` (baseline and each since bucket toward the
    customer's all-day factor), ``k_channel`` (a channel toward the customer's factor of
    that since bucket), ``k_send`` (a send bucket toward the customer's factor of all window
    days; 1e4, no send-day individualisation, for a model saved before it existed)."""

    k_customer: float
    k_since: float
    k_channel: float
    k_send: float = _K_BOUNDS[1]

    @classmethod
    def fit(cls, obs: np.ndarray, exp: np.ndarray) -> PriorStrengths:
        """From the training history's totals per customer, ``obs`` and ``exp`` (n, K)."""
        (o0, o3, o_s), (e0, e3, e_s) = _split(obs), _split(exp)
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
        o_w, e_w = o_s.sum(axis=1, keepdims=True), e_s.sum(axis=1, keepdims=True)
        k4 = _strength_against(o_s, e_s, o_w - o_s, e_w - e_s)
        return cls(k1, k2, k3, k4)

    def as_row(self) -> np.ndarray:
        """(4,) k_customer, k_since, k_channel, k_send."""
        return np.array([self.k_customer, self.k_since, self.k_channel, self.k_send])

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PriorStrengths:
        return cls(float(d["k_customer"]), float(d["k_since"]), float(d["k_channel"]),
                   float(d.get("k_send", _K_BOUNDS[1])))


@dataclass
class CustomerResponse:
    """The fitted prior strengths: ``pooled`` over all customers, and ``by_segment`` for
    every segment with at least :data:`MIN_SEGMENT_CUSTOMERS` customers in the training
    history. Customers of one segment are shrunk by their segment's strengths, so a segment
    whose customers answer reminders on their own days individualises even where the others
    do not (pooled over segments, their spread would be averaged away); a customer without
    a known segment, or of a smaller one, by the pooled strengths."""

    pooled: PriorStrengths
    by_segment: dict[str, PriorStrengths] = field(default_factory=dict)

    @classmethod
    def fit(cls, obs: np.ndarray, exp: np.ndarray, segment: np.ndarray | None = None
            ) -> CustomerResponse:
        """From the training history's totals per customer, ``obs`` and ``exp`` (n, K), and
        the customers' segments (n,) (None or missing values: pooled only)."""
        by_segment = {}
        if segment is not None:
            seg = _segment_names(segment)
            names, counts = np.unique(seg[seg != ""], return_counts=True)
            for name, count in zip(names, counts, strict=True):
                if count >= MIN_SEGMENT_CUSTOMERS:
                    rows = seg == name
                    by_segment[str(name)] = PriorStrengths.fit(obs[rows], exp[rows])
        return cls(PriorStrengths.fit(obs, exp), by_segment)

    def strengths(self, segment: np.ndarray | None, n: int) -> np.ndarray:
        """(n, 4) the prior strengths of each customer (its segment's, else the pooled)."""
        k = np.tile(self.pooled.as_row(), (n, 1))
        if segment is not None and self.by_segment:
            seg = _segment_names(segment)
            for name, strengths in self.by_segment.items():
                k[seg == name] = strengths.as_row()
        return k

    def estimate(self, obs: np.ndarray, exp: np.ndarray, segment: np.ndarray | None = None
                 ) -> np.ndarray:
        """(n, K) posterior-mean factors per customer (columns of
        :data:`RESPONSE_FEATURES`) from the totals (n, K) of
        :meth:`ResponseHistory.totals` and the customers' segments (n,)."""
        (o0, o3, o_s), (e0, e3, e_s) = _split(obs), _split(exp)
        k1, k2, k3, k4 = self.strengths(segment, len(o0)).T
        theta = (o0 + o3.sum(axis=(1, 2)) + k1) / (e0 + e3.sum(axis=(1, 2)) + k1)
        theta_0 = (o0 + k2 * theta) / (e0 + k2)
        theta_b = ((o3.sum(axis=1) + (k2 * theta)[:, None])
                   / (e3.sum(axis=1) + k2[:, None]))
        theta_cb = ((o3 + k3[:, None, None] * theta_b[:, None, :])
                    / (e3 + k3[:, None, None]))
        theta_w = (o_s.sum(axis=1) + k2 * theta) / (e_s.sum(axis=1) + k2)
        rho_s = ((o_s + (k4 * theta_w)[:, None]) / (e_s + k4[:, None])
                 / theta_w[:, None])
        out = np.column_stack([theta_0, theta_cb.reshape(len(obs), -1), rho_s])
        return np.clip(out, *_FACTOR_BOUNDS)

    @staticmethod
    def factor(estimates: np.ndarray, dynamic: Mapping[str, np.ndarray]) -> np.ndarray:
        """(m,) multiplier of the hazard: the row's estimate (m, K) of its day's cell
        (baseline, or its last reminder's channel and days since it, times the factor of
        the reminder's send bucket); NaN counts as 1."""
        est = np.asarray(estimates, dtype=np.float64)
        r = np.arange(len(est))
        cell, send = cells(dynamic)
        return _finite(est[r, cell]) * np.where(send >= 0, _finite(est[r, send]), 1.0)

    @staticmethod
    def factor_grid(estimates: np.ndarray, dynamic: Mapping[str, np.ndarray]) -> np.ndarray:
        """(B, m) :meth:`factor` of every row (invoice b, day j): the estimates (B, K) of B
        invoices on the m days of ``dynamic`` ((m,) each)."""
        est = np.asarray(estimates, dtype=np.float64)
        cell, send = cells(dynamic)
        return _finite(est[:, cell]) * np.where(send >= 0, _finite(est[:, send]), 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {"pooled": asdict(self.pooled),
                "by_segment": {k: asdict(v) for k, v in sorted(self.by_segment.items())},
                "window_days": WINDOW_DAYS, "since_edges": SINCE_EDGES.tolist(),
                "send_edges": SEND_EDGES.tolist(), "features": list(RESPONSE_FEATURES)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CustomerResponse:
        """Also a model saved before the segments' own strengths (its k_* are pooled)."""
        if "pooled" not in d:
            return cls(PriorStrengths.from_dict(d))
        return cls(PriorStrengths.from_dict(d["pooled"]),
                   {k: PriorStrengths.from_dict(v) for k, v in d["by_segment"].items()})


def _segment_names(segment: np.ndarray) -> np.ndarray:
    """(n,) segment names as str, "" where unknown (None, NaN)."""
    return np.array(["" if v is None or (isinstance(v, float) and v != v) else str(v)
                     for v in np.asarray(segment, dtype=object)])


def _finite(f: np.ndarray) -> np.ndarray:
    """NaN (no estimate) counts as 1."""
    return np.where(np.isfinite(f), f, 1.0)
