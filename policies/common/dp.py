"""Exact backward induction over the collections MDP of one invoice, for any transition model.

The oracle (``policies.oracle``) solves it on the ground-truth world, the planner
(``policies.planner``) on the company's learned model: one solver, two
:class:`TransitionModel` implementations.

For each invoice the decision state is ``(k, n, w, c, final_notice, complaint, disputed)``
at each day ``t`` (:class:`StateSpace`: ``k`` days since the last reminder capped at K, ``n``
reminders capped at N, ``w`` of them emails and letters, ``c`` the last channel). For
``t = H-1 .. 0``::

    Q_t(s, a) = r(s, a) + E[ gamma * V_{t+1}(s') ]     (paid / agency / horizon: terminal)
    V_t(s)    = max over legally allowed a of Q_t(s, a),    V_H = 0

Values are money valued on day ``t`` (the invoice currency); ``V_0`` of the initial state is
the maximal expected NPV at the due date. Vectorised over ``B`` invoices of one batch.

The DP's own restriction (not a legal rule): whenever a legal mask is given, no reminder of
any channel is sent within ``MIN_SPACING_DAYS`` (7) days of the last one (``k < 7``: WAIT
only, no handover either). The legal rules count contacts in 7-day windows (calls,
contacts, Regulation F, DE proportionality) and days since the last WRITTEN reminder, which
``(k, c)`` alone do not give; with the restriction each window holds at most the last
reminder, and after a call the last written reminder was at least ``k + 7`` days ago, so
the facts of a state (``simulations.world.facts_from_state``, the planner's mask) are exact
or a lower bound that decides every "at least 7 days" rule exactly. The optimum is the best
policy among the ones that keep this spacing; PPO is held to it too, by its own config
(``policies.rl.training.RLTrainingConfig.min_days_between``), the fixed and tuned schedules
are not (nor is the DP without a legal mask).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.contract import N_ACTIONS, Action
from simulations.world.dynamics import WorldState

FINAL_NOTICE = int(Action.FINAL_NOTICE)
AGENCY = int(Action.AGENCY)
EMAIL, LETTER, PHONE = int(Action.EMAIL), int(Action.LETTER), int(Action.PHONE)
# The DP's own restriction (not a legal rule): no reminder within this many days of the last.
MIN_SPACING_DAYS = 7


@dataclass(frozen=True)
class StateSpace:
    """The reachable decision states, flat index ``s`` in ``0..S-1``.

    Arrays (S,): ``k, n, w, c, final_notice, complaint, disputed`` (``w``: written reminders
    other than the final notice, i.e. emails and letters, capped at N like ``n``; the
    written reminders the company rules count are ``w + final_notice``, the calls
    ``n - w - final_notice``). States with ``complaint`` are the second half: ``s + half``
    is ``s`` with a complaint; the disputed states are the odd ones (``s + 1`` is ``s``
    disputed, for even ``s``). ``index`` is a dense lookup
    ``index[k, n, w, c, f, complaint, disputed] -> s`` (-1 if unreachable). ``next_state[a]``
    (a = 0..4) has shape (S, 2, 2): the state after action ``a`` on day t, for the
    complaint flag and dispute flag of the next day (email/letter: ``w + 1``, phone: ``w``,
    final notice: ``final_notice``).

    Reachable: ``w + f <= n`` below the cap N (at the cap any ``w``), ``w >= 1`` after an
    email or letter, ``w + f < n`` after a call, ``f`` after a final notice.
    """

    k: np.ndarray
    n: np.ndarray
    w: np.ndarray
    c: np.ndarray
    final_notice: np.ndarray
    complaint: np.ndarray
    disputed: np.ndarray
    index: np.ndarray
    next_state: np.ndarray  # (5, S, 2, 2)

    @property
    def size(self) -> int:
        return len(self.k)

    @property
    def half(self) -> int:
        return self.size // 2

    @property
    def K(self) -> int:  # noqa: N802 - the paper's name
        return int(self.index.shape[0] - 1)

    @property
    def N(self) -> int:  # noqa: N802
        return int(self.index.shape[1] - 1)

    @property
    def start(self) -> int:
        """Flat index of the state at the due date (nothing sent, no complaint or dispute)."""
        return int(self.index[self.K, 0, 0, 0, 0, 0, 0])

    @staticmethod
    def _valid(n: int, w: int, c: int, f: int, N: int) -> bool:  # noqa: N803
        if c == FINAL_NOTICE and not f:
            return False
        if c in (EMAIL, LETTER) and w == 0:
            return False
        if n == N:  # "N or more": the counts below the cap do not bound w
            return True
        calls = n - w - f
        return calls >= (1 if c == PHONE else 0)

    @classmethod
    def build(cls, K: int, N: int) -> StateSpace:  # noqa: N803
        base = [(K, 0, 0, 0, 0, d) for d in (0, 1)]
        for n in range(1, N + 1):
            for c in range(1, FINAL_NOTICE + 1):
                for w in range(N + 1):
                    for f in (0, 1):
                        if cls._valid(n, w, c, f, N):
                            base += [(k, n, w, c, f, d) for k in range(1, K + 1)
                                     for d in (0, 1)]
        rows = [(k, n, w, c, f, comp, d) for comp in (0, 1) for (k, n, w, c, f, d) in base]
        arr = np.array(rows, dtype=np.int64)
        index = np.full((K + 1, N + 1, N + 1, FINAL_NOTICE + 1, 2, 2, 2), -1, dtype=np.int64)
        index[tuple(arr.T)] = np.arange(len(arr))
        k, n, w, c, f, comp, _ = arr.T
        nxt = np.zeros((FINAL_NOTICE + 1, len(arr), 2, 2), dtype=np.int64)
        for a in range(FINAL_NOTICE + 1):
            if a == 0:
                k2 = np.where(n > 0, np.minimum(k + 1, K), K)
                n2, c2, w2, f2 = n, c, w, f
            else:
                k2 = np.ones_like(k)
                n2, c2 = np.minimum(n + 1, N), np.full_like(c, a)
                w2 = np.minimum(w + (a in (EMAIL, LETTER)), N)
                f2 = f | (a == FINAL_NOTICE)
            for cp in (0, 1):
                for d in (0, 1):
                    nxt[a, :, cp, d] = index[k2, n2, w2, c2, f2, comp | cp, d]
        assert (nxt >= 0).all()
        assert (arr[:, 6] == np.arange(len(arr)) % 2).all()  # disputed: the odd states
        return cls(k=k, n=n, w=w, c=c, final_notice=f.astype(bool),
                   complaint=comp.astype(bool), disputed=arr[:, 6].astype(bool), index=index,
                   next_state=nxt)

    def lookup(self, state: WorldState) -> np.ndarray:
        """Flat state index of each row of a :class:`WorldState` (or anything with its
        ``k, n, w, c, final_notice, complaint, disputed`` arrays), shape (n,)."""
        return self.lookup_arrays(state.k, state.n, state.w, state.c, state.final_notice,
                                  state.complaint, state.disputed)

    def world_state(self, t: int, rows: np.ndarray) -> WorldState:
        """The :class:`WorldState` of flat states ``rows`` on day ``t``."""
        return WorldState(t=np.full(len(rows), t, dtype=np.int64), k=self.k[rows],
                          n=self.n[rows], w=self.w[rows], c=self.c[rows],
                          final_notice=self.final_notice[rows], complaint=self.complaint[rows],
                          disputed=self.disputed[rows], done=np.zeros(len(rows), dtype=bool))

    def lookup_arrays(self, k: np.ndarray, n: np.ndarray, w: np.ndarray, c: np.ndarray,
                      f: np.ndarray, complaint: np.ndarray, disputed: np.ndarray) -> np.ndarray:
        """Flat index (m,) of states given as arrays (m,); ``k``/``n``/``w`` are capped here
        (``w``: emails and letters sent)."""
        k = np.minimum(np.asarray(k, np.int64), self.K)
        n = np.minimum(np.asarray(n, np.int64), self.N)
        w = np.minimum(np.asarray(w, np.int64), self.N)
        return self.index[k, n, w, np.asarray(c, np.int64), np.asarray(f).astype(np.int64),
                          np.asarray(complaint).astype(np.int64),
                          np.asarray(disputed).astype(np.int64)]

    def spacing_block(self) -> np.ndarray:
        """(S,) bool: states where the DP allows only WAIT today (no reminder of any
        channel, no handover), the last reminder being less than :data:`MIN_SPACING_DAYS`
        days ago (see the module docstring)."""
        return (self.n > 0) & (self.k < MIN_SPACING_DAYS)


@dataclass(frozen=True)
class ReminderGrid:
    """After a reminder the future depends on the state only through (n, w, f, disputed) and
    the complaint flags: Q of reminders is computed on this small grid
    (G = 4 (N+1)^2 rows, ordered by n, then w, then f, then disputed).

    ``key`` (S,): grid row of each state; ``used`` (G,) some state maps to the row;
    ``n, w`` (G,) the counts before the reminder;
    ``n_post, final_notice, disputed`` (G,); ``next_state[a]`` (G, 2, 2): next flat state
    by next complaint flag and next dispute flag (row 0 unused; rows no state maps to
    point at state 0).
    """

    key: np.ndarray
    used: np.ndarray
    n: np.ndarray
    w: np.ndarray
    n_post: np.ndarray
    final_notice: np.ndarray
    disputed: np.ndarray
    next_state: np.ndarray  # (5, G, 2, 2)

    @property
    def size(self) -> int:
        return len(self.n_post)

    @classmethod
    def build(cls, space: StateSpace) -> ReminderGrid:
        N = space.N  # noqa: N806
        n = np.repeat(np.arange(N + 1), 4 * (N + 1))
        w = np.tile(np.repeat(np.arange(N + 1), 4), N + 1)
        f = np.tile(np.repeat([0, 1], 2), (N + 1) ** 2)
        d = np.tile([0, 1], 2 * (N + 1) ** 2)
        key = ((space.n * (N + 1) + space.w) * 2 + space.final_notice.astype(np.int64)) * 2 \
            + space.disputed
        used = np.zeros(len(n), dtype=bool)
        used[key] = True
        n_post = np.minimum(n + 1, N)
        nxt = np.zeros((FINAL_NOTICE + 1, len(n), 2, 2), dtype=np.int64)
        for a in range(1, FINAL_NOTICE + 1):
            f2 = f | (a == FINAL_NOTICE)
            w2 = np.minimum(w + (a in (EMAIL, LETTER)), N)
            for cp in (0, 1):
                for d2 in (0, 1):
                    nxt[a, :, cp, d2] = space.index[1, n_post, w2, a, f2, cp, d2]
        assert (nxt[1:][:, used] >= 0).all()
        nxt = np.maximum(nxt, 0)  # rows of no state: never read
        return cls(key=key, used=used, n=n, w=w, n_post=n_post, final_notice=f.astype(bool),
                   disputed=d.astype(bool), next_state=nxt)


@dataclass(frozen=True)
class ComplaintRows:
    """Where a reminder's complaint probability is computed: R rows, each a grid row
    ``g`` (R,), a current complaint flag ``complaint`` (R,) and whatever else the model's
    complaint probability depends on; ``of_state`` (B, S) (or (1, S)) maps each state to
    its row."""

    g: np.ndarray
    complaint: np.ndarray
    of_state: np.ndarray


class TransitionModel(ABC):
    """The day-``t`` probabilities and money of ``B`` invoices on a :class:`StateSpace`.

    Attributes set by implementations: ``amount`` (B,) currency, ``gamma`` daily discount
    factor, ``action_cost`` (6,) currency per action, ``complaint_cost`` currency per
    complaint, ``agency_value`` (B,) net value of a handover on the day of the handover
    (currency), ``dispute_start`` (B,) P(a dispute opens) per undisputed day,
    ``dispute_resolve`` (B,) P(it ends) per disputed day.

    Semantics of one day (both the world and the learned environment): a dispute opening
    today blocks today's payment; a disputed invoice does not pay; otherwise the invoice
    pays with the hazard of the state after today's action.
    """

    amount: np.ndarray
    gamma: float
    action_cost: np.ndarray
    complaint_cost: float
    agency_value: np.ndarray
    dispute_start: np.ndarray
    dispute_resolve: np.ndarray

    @property
    def n(self) -> int:
        return len(self.amount)

    def setup(self, space: StateSpace, grid: ReminderGrid) -> None:  # noqa: B027
        """Called once before the backward pass (precompute what does not depend on t)."""

    @abstractmethod
    def mask(self, t: int) -> np.ndarray | None:
        """(B, 6, S) bool legal mask on day ``t``, ``[invoice, action, state]`` (None:
        everything allowed). The states where the DP's spacing allows only WAIT
        (:meth:`StateSpace.spacing_block`) are not read."""

    @abstractmethod
    def wait_hazard(self, t: int) -> np.ndarray:
        """(B, S) P(paid on day t | no dispute) when waiting in each state."""

    @abstractmethod
    def reminder_hazard(self, t: int, a: int) -> np.ndarray:
        """P(paid on day t | no dispute) after reminder ``a`` from each grid row, shape
        broadcastable to (B, G, 2, 2): [current complaint flag, next complaint flag]."""

    @abstractmethod
    def complaint_rows(self) -> ComplaintRows:
        """The rows the complaint probability is computed on (see :class:`ComplaintRows`)."""

    @abstractmethod
    def complaint_probability(self, t: int, a: int) -> np.ndarray:
        """(B, R) P(complaint) of sending reminder ``a`` on day ``t`` from each row."""


class FactGroups:
    """The DP states of ONE invoice on one day grouped by equal legal facts, for a row-wise
    legal mask ``mask_fn``: one evaluation per group and invoice (the oracle's and the
    planner's masks).

    The facts of a state on a day are the invoice's and the day's (the same for all its
    states) and the state's own, so another invoice's states group alike. "Equal" is equal
    values, or for a mask with ``fact_classes`` (``simulations.env.LegalMask``) equal
    classes: a fact's validity and the truth of every comparison the rules make on it. The
    groups follow from the facts that differ between the states, so a day whose states
    differ in the same facts (most days once every state is reachable) reuses them.

    Args:
        mask_fn: the mask the groups are for (its ``fact_classes``, if any, are used).
        skip: facts left out (e.g. the string facts, the same for all states of an invoice).
    """

    def __init__(self, mask_fn: Any, skip: Collection[str] = ()) -> None:
        self._classes = getattr(mask_fn, "fact_classes", None)
        self._skip = frozenset(skip)
        self._cache: dict[tuple[tuple[str, bytes], ...], tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, facts: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """``(first (U,), inverse (m,))`` of the facts ``facts`` ((m,) arrays) of m states:
        the first state of each group and the group of each state."""
        varying = {name: v for name, v in ((name, np.asarray(v)) for name, v in facts.items()
                                           if name not in self._skip)
                   if not (v == v[:1]).all()}
        key = tuple((name, v.tobytes()) for name, v in varying.items())
        if key not in self._cache:
            self._cache[key] = self._group(facts, len(next(iter(facts.values()))))
        return self._cache[key]

    def _group(self, facts: Mapping[str, Any], m: int) -> tuple[np.ndarray, np.ndarray]:
        if self._classes is not None:
            facts = self._classes(facts)
        cols = [np.asarray(v, dtype=np.float64) for name, v in facts.items()
                if name not in self._skip]
        # a fact with one value neither splits a group nor orders the groups: left out
        varying = [c for c in cols if not (c == c[:1]).all()]
        if not varying:
            return np.zeros(min(m, 1), dtype=np.int64), np.zeros(m, dtype=np.int64)
        _, first, inverse = np.unique(np.stack(varying, axis=1), axis=0, return_index=True,
                                      return_inverse=True)
        return first, inverse.reshape(-1)


# Rows of legal facts judged per call of a mask (memory: ~30 facts of 8 bytes a row).
MASK_ROWS = 200_000


class DayMasks:
    """The legal masks of ``B`` invoices on days ``0..n_days-1``, judged in a few calls of
    the mask instead of one a day (the oracle's and the planner's; a DP asks for its last
    day first): per day, invoice and group of states with equal facts (:class:`FactGroups`)
    one row, all days' rows in one call (chunks of :data:`MASK_ROWS`). Each invoice keeps
    its few distinct masks (working day, weekend, holiday, before and after a deadline):
    ``masks`` (B, M, 6, S) bool, ``day_mask`` (days, B) which one holds on each day.

    Args:
        facts: ``(t, inv (r,), states (r,)) -> facts``: the legal facts of invoices ``inv``
            in first-half DP states ``states`` on day ``t`` (the complaint flag changes no
            fact: the second half gets the same mask).
        judge: ``(facts, t (r,), inv (r,)) -> (r, 6)`` the mask of those rows.
        free: ``t -> (m,)`` the first-half states where the DP may act on day ``t`` (the
            mask is judged there only; elsewhere it is True and not read).
        groups: the :class:`FactGroups` of the mask.
    """

    def __init__(self, n_invoices: int, space: StateSpace, n_days: int,
                 facts: Callable[[int, np.ndarray, np.ndarray], dict[str, Any]],
                 judge: Callable[[dict[str, Any], np.ndarray, np.ndarray], np.ndarray],
                 free: Callable[[int], np.ndarray], groups: FactGroups) -> None:
        B, self._half = n_invoices, space.half  # noqa: N806
        ids: list[dict[Any, int]] = [{} for _ in range(B)]
        planes: list[list[np.ndarray]] = [[] for _ in range(B)]
        self.day_mask = np.zeros((n_days, B), dtype=np.int64)
        layouts: dict[Any, int] = {}
        days: list[tuple[int, np.ndarray, tuple[np.ndarray, np.ndarray]]] = []
        rows = 0
        for t in range(n_days):
            on = free(t)
            grouped = groups(facts(t, np.zeros(len(on), dtype=np.int64), on))
            days.append((t, on, grouped))
            rows += B * len(grouped[0])
            if rows < MASK_ROWS and t < n_days - 1:
                continue
            for (d, on_d, (_, of_free)), judged in zip(
                    days, self._judge(B, days, facts, judge), strict=True):
                # the same free states and groups (FactGroups hands back its tuple)
                layout = layouts.setdefault((on_d.tobytes(), id(of_free)), len(layouts))
                for b in range(B):
                    key = (layout, judged[b].tobytes())
                    if key not in ids[b]:
                        ids[b][key] = len(planes[b])
                        planes[b].append(self._plane(judged[b], of_free, on_d))
                    self.day_mask[d, b] = ids[b][key]
            days, rows = [], 0
        self.masks = np.ones((B, max(len(p) for p in planes), N_ACTIONS, space.size),
                             dtype=bool)
        for b, own in enumerate(planes):
            self.masks[b, :len(own)] = own

    def __len__(self) -> int:
        return len(self.day_mask)

    def __call__(self, t: int) -> np.ndarray:
        """(B, 6, S) the mask of day ``t`` (:meth:`TransitionModel.mask`)."""
        return self.masks[np.arange(self.masks.shape[0]), self.day_mask[t]]

    @staticmethod
    def _judge(B: int, days: list[tuple[int, np.ndarray, tuple[np.ndarray, np.ndarray]]],  # noqa: N803
               facts: Callable[..., dict[str, Any]], judge: Callable[..., np.ndarray]
               ) -> list[np.ndarray]:
        """The judged masks (B, U_d, 6) of ``days``, from one call of ``judge``."""
        parts, ts, invs = [], [], []
        for t, on, (first, _) in days:
            inv = np.repeat(np.arange(B), len(first))
            parts.append(facts(t, inv, np.tile(on[first], B)))
            ts.append(np.full(len(inv), t))
            invs.append(inv)
        every = {name: _concat([f[name] for f in parts]) for name in parts[0]}
        judged = np.asarray(judge(every, np.concatenate(ts), np.concatenate(invs)),
                            dtype=bool)
        sizes = [B * len(first) for _, _, (first, _) in days]
        return [j.reshape(B, -1, N_ACTIONS)
                for j in np.split(judged, np.cumsum(sizes)[:-1])]

    def _plane(self, judged: np.ndarray, of_free: np.ndarray, free: np.ndarray
               ) -> np.ndarray:
        """(6, S) allowed actions of one invoice's states from its judged groups (U, 6)."""
        plane = np.ones((N_ACTIONS, self._half), dtype=bool)  # where the DP only waits
        plane[:, free] = judged[of_free].T
        return np.concatenate([plane, plane], axis=1)  # with a complaint: the same facts


def _concat(values: list[Any]) -> Any:
    """Concatenate fact arrays (``pandas.Categorical`` too, whose categories may differ)."""
    if hasattr(values[0], "codes"):
        import pandas as pd

        return pd.api.types.union_categoricals(values)
    return np.concatenate(values)


def continuation(v_next: np.ndarray, nxt: np.ndarray, h: np.ndarray, p_start: np.ndarray,
                 p_end: np.ndarray, disputed: np.ndarray, amount: np.ndarray,
                 gamma: float) -> np.ndarray:
    """E[payment today + gamma * V(next state)] for a fixed next complaint flag.

    ``v_next`` (B, S); ``nxt`` (..., 2): next flat state for next-day dispute flag 0/1;
    ``h`` P(pay | no dispute); ``disputed`` the dispute flag today (an array, or ``True`` /
    ``False`` for all). Shapes broadcast to (B, ...)."""
    v0 = v_next[:, nxt[..., 0]]
    v1 = v_next[:, nxt[..., 1]]
    if disputed is True:  # every state disputed: no payment today
        return gamma * (p_end * v0 + (1 - p_end) * v1)
    free = (1 - p_start) * (h * amount + gamma * (1 - h) * v0) + p_start * gamma * v1
    if disputed is False:
        return free
    blocked = gamma * (p_end * v0 + (1 - p_end) * v1)
    return np.where(disputed, blocked, free)


@dataclass(frozen=True)
class Payoffs:
    """The money of the MDP: ``amount`` (B, 1) paid on payment, ``action_cost`` (6,),
    ``complaint_cost``, ``agency_q`` (B, S) value of a handover, ``gamma`` daily discount.
    :func:`evaluate_policy` swaps them to count events instead of money (e.g. agency 1,
    everything else 0, gamma 1: the probability of a handover)."""

    amount: np.ndarray
    action_cost: np.ndarray
    complaint_cost: float
    agency_q: np.ndarray
    gamma: float

    @classmethod
    def of(cls, model: TransitionModel, S: int) -> Payoffs:  # noqa: N803
        amount = np.asarray(model.amount, np.float64)[:, None]
        agency = np.broadcast_to(np.asarray(model.agency_value, np.float64)[:, None],
                                 (len(amount), S))
        return cls(amount, np.asarray(model.action_cost, np.float64),
                   float(model.complaint_cost), agency, float(model.gamma))


def _state_gather(model: TransitionModel, space: StateSpace) -> np.ndarray:
    """(B, S) or (1, S) flat index into a (B, R) complaint-row array (``ravel``): where each
    state of each invoice reads its reminder's Q (one ``take`` per day and action instead
    of ``take_along_axis``, which rebuilds its index every call)."""
    rows = model.complaint_rows()
    if rows.of_state.shape[0] == 1:  # one map for every invoice
        return rows.of_state
    of_state = np.broadcast_to(rows.of_state, (model.n, space.size))
    return of_state + (np.arange(model.n) * len(rows.g))[:, None]


def _wait_q(model: TransitionModel, space: StateSpace, t: int, v_next: np.ndarray,
            pay: Payoffs, p_start: np.ndarray, p_end: np.ndarray) -> np.ndarray:
    """Q_t(., WAIT) (B, S): the undisputed states (even ``s``, see :class:`StateSpace`) and
    the disputed ones (odd) apart, each with only its own branch of :func:`continuation`."""
    nxt = space.next_state[0, :, 0]
    h = model.wait_hazard(t)
    q = np.empty_like(v_next)
    for disputed, states in ((False, slice(0, None, 2)), (True, slice(1, None, 2))):
        q[:, states] = continuation(v_next, nxt[states], h[:, states], p_start, p_end,
                                    disputed, pay.amount, pay.gamma)
    return q


def _day_q(model: TransitionModel, space: StateSpace, grid: ReminderGrid, t: int,
           v_next: np.ndarray, pay: Payoffs, gather: np.ndarray):
    """Yield ``(a, Q_t(., a))`` (B, S) for a = WAIT, 1..5 given tomorrow's values
    (``gather``: :func:`_state_gather`)."""
    B = model.n  # noqa: N806
    rows = model.complaint_rows()
    col_same = (rows.g * 2 + rows.complaint) * 2 + rows.complaint  # no new complaint
    col_comp = (rows.g * 2 + rows.complaint) * 2 + 1  # a new complaint
    p_start = np.asarray(model.dispute_start, np.float64)[:, None]
    p_end = np.asarray(model.dispute_resolve, np.float64)[:, None]
    x4 = (slice(None), slice(None), None, None)  # (B, 1) -> (B, 1, 1, 1)
    nxt_grid = grid.next_state[:, :, None]  # (5, G, 1, 2, 2): [now] broadcast
    d_grid = grid.disputed[None, :, None, None]
    yield 0, _wait_q(model, space, t, v_next, pay, p_start, p_end)
    for a in range(1, N_ACTIONS):
        if a == AGENCY:
            yield a, pay.agency_q
            continue
        h_post = model.reminder_hazard(t, a)
        w = continuation(v_next, nxt_grid[a], h_post, p_start[x4], p_end[x4], d_grid,
                         pay.amount[x4], pay.gamma)
        w = np.broadcast_to(w, (B, grid.size, 2, 2)).reshape(B, -1)
        same = w[:, col_same]
        p_c = model.complaint_probability(t, a)
        # The complaint cost is paid per complaint, also after an earlier one.
        q_small = (same + p_c * (w[:, col_comp] - same - pay.complaint_cost)
                   - pay.action_cost[a])
        if gather.shape[0] == 1:  # one map for every invoice: a plain gather
            yield a, q_small[:, gather[0]]
        else:
            yield a, np.take(q_small.reshape(-1), gather)


def backward_induction(model: TransitionModel, space: StateSpace, horizon: int,
                       keep_policy: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Solve ``model``'s B invoices exactly.

    Returns ``(V_0, policy)``: V_0 (B, S) optimal values on day 0 (currency at the due
    date) and ``policy`` (B, H, S) int8 optimal action per day and state (None unless
    ``keep_policy``). A vetoed action is never optimal; WAIT is always allowed.
    """
    grid = ReminderGrid.build(space)
    model.setup(space, grid)
    B, S = model.n, space.size  # noqa: N806
    pay = Payoffs.of(model, S)
    gather = _state_gather(model, space)
    v_next = np.zeros((B, S))
    policy = np.zeros((B, horizon, S), dtype=np.int8) if keep_policy else None
    spaced = ~space.spacing_block()  # (S,) where the DP may act beyond WAIT
    better = np.empty((B, S), dtype=bool)
    for t in range(horizon - 1, -1, -1):
        allowed = model.mask(t)
        value, best = None, np.zeros((B, S), dtype=np.int8)
        for a, q in _day_q(model, space, grid, t, v_next, pay, gather):
            if value is None:  # WAIT: always allowed
                value = np.asarray(q, dtype=np.float64)  # a new array: updated in place
                continue
            np.greater(q, value, out=better)
            if allowed is not None:
                better &= allowed[:, a]
                better &= spaced
            np.copyto(value, q, where=better)
            np.copyto(best, a, where=better)
        v_next = value
        if policy is not None:
            policy[:, t] = best
    return v_next, policy



COUNTS = ("paid", "agency", "complaints", "reminders",
          *(Action(a).channel for a in range(Action.EMAIL, Action.AGENCY)))


def _counting_payoffs(count: str, B: int, S: int) -> Payoffs:  # noqa: N803
    """Payoffs whose undiscounted value is the expected number of ``count`` events (an
    action "costs" -1 to count its sends)."""
    if count not in COUNTS:
        raise ValueError(f"evaluate_policy: count {count!r} is not one of {list(COUNTS)}")
    sends = np.zeros(N_ACTIONS)
    if count == "reminders":
        sends[Action.EMAIL:Action.AGENCY] = -1.0
    elif count not in ("paid", "agency", "complaints"):
        sends[Action.from_channel(count)] = -1.0
    return Payoffs(amount=np.full((B, 1), 1.0 if count == "paid" else 0.0),
                   action_cost=sends, complaint_cost=-1.0 if count == "complaints" else 0.0,
                   agency_q=np.full((B, S), 1.0 if count == "agency" else 0.0), gamma=1.0)


def evaluate_policy(model: TransitionModel, space: StateSpace, policy: np.ndarray,
                    count: str | None = None) -> np.ndarray:
    """Exact expected value (B, S) on day 0 of following ``policy`` (B, H, S) int8 (actions
    per day and state, e.g. another model's optimal table) in ``model``: money (currency at
    the due date), or with ``count`` the expected number of events, undiscounted:
    ``"agency"`` handovers, ``"complaints"``, ``"paid"`` payments, ``"reminders"`` sent
    (e-mail to final notice) or those of one channel (``"email"``, ``"letter"``,
    ``"phone"``, ``"final_notice"``)."""
    grid = ReminderGrid.build(space)
    model.setup(space, grid)
    B, S = model.n, space.size  # noqa: N806
    pay = Payoffs.of(model, S) if count is None else _counting_payoffs(count, B, S)
    gather = _state_gather(model, space)
    v_next = np.zeros((B, S))
    for t in range(policy.shape[1] - 1, -1, -1):
        value = np.zeros((B, S))
        for a, q in _day_q(model, space, grid, t, v_next, pay, gather):
            value = np.where(policy[:, t] == a, q, value)
        v_next = value
    return v_next
