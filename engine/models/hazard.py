"""The daily hazard model P(paid on day t | unpaid at the start of t, state, reminders so far).

A small LightGBM binary classifier on invoice-day rows (see
:func:`engine.features.build_hazard_frame`): static invoice/customer/history features as of
the due date plus the :data:`engine.features.DYNAMIC_FEATURES` of day t, plus the
customer group's calendar lift of day t (:mod:`engine.models.calendar_lift`), optionally
times the group's reminder lift in the three weeks after a reminder
(:mod:`engine.models.reminder_lift`), optionally times the customer's own response
estimated from its history (:mod:`engine.models.customer_response`). The simulation uses it
as its learned transition model through the vectorised :meth:`predict_hazard`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from engine.calendar import to_day
from engine.errors import DunningError
from engine.features import (
    DYNAMIC_FEATURES,
    NO_REMINDER_DAYS,
    REMINDER_CHANNELS,
    STATE_FEATURES,
    WINDOW_COUNT_FEATURES,
    HazardFrame,
    PreparedTables,
    build_hazard_frame,
    dynamic_features_at,
    features_at,
    prepare_tables,
    reminder_dynamics,
)
from engine.files import atomic_write_text
from engine.models.calendar_lift import LIFT_FEATURES, PHASE_INPUTS, CalendarLift
from engine.models.compiled import BoosterPredictor
from engine.models.customer_response import (
    RESPONSE_FEATURES,
    CustomerResponse,
    ResponseHistory,
    response_history,
)
from engine.models.encoding import encode, learn_categories
from engine.models.payment import select_features
from engine.models.reminder_lift import ReminderLift, reminders_sent

HAZARD_FILE = "hazard_model.txt"
HAZARD_META = "hazard_model.json"
MILESTONE_FEATURE = "days_due_to_milestone"  # static: days from due to the project milestone
# the trees' inputs derived from it: days_overdue - it, and the last reminder's send day
# (last_reminder_overdue) - it (NaN without a reminder)
MILESTONE_INPUTS = ("days_past_milestone", "reminder_past_milestone")
# option reminder_count_input: the trees also read the reminders sent so far, all channels
COUNT_INPUT = "n_reminders"
# The dynamic inputs that come from an invoice's reminders (a planner's state) and its day,
# as opposed to the calendar inputs of its day: :meth:`HazardModel.predict_hazard_grid`
# takes these per situation, the others per invoice. The reminder lift and the customer
# response read only these.
SITUATION_INPUTS: tuple[str, ...] = (
    "days_overdue", *(f"n_{c}" for c in REMINDER_CHANNELS), "days_since_last_reminder",
    "last_reminder_overdue", "last_channel",
)
# LightGBM's kZeroThreshold (1e-35f): a dense input row drops |v| <= it, the trees read 0.0
_LGB_ZERO = float(np.float32(1e-35))
_NO_SPLITS = np.empty(0)  # thresholds of an input no tree splits on


class HazardModel:
    """Daily payment hazard of an overdue invoice, LightGBM binary, kept small for speed.

    Parameters
    ----------
    horizon_days : days after due covered by the training rows.
    n_estimators, num_leaves, learning_rate, min_child_samples : LightGBM settings
        (defaults give a model that scores > 10^6 rows/s on one core).
    max_rows, max_invoices : caps of the training frame (non-event days are subsampled and
        reweighted above ``max_rows``).
    features : static feature names; default the payment-model features minus the
        day-varying :data:`engine.features.STATE_FEATURES`.
    calendar_lift_smoothing : pseudo-events that shrink the per-(segment, phase day)
        calendar lift toward 1 (:class:`engine.models.calendar_lift.CalendarLift`), e.g.
        30; None (default) = no calendar lift inputs. Off by default: it halves the error
        of segment payment peaks, yet RL trained on it did worse in the ground truth
        (docs/payment-model.md).
    reminder_lift_smoothing : pseudo-payments that shrink each level of the per-segment
        reminder lift toward the trees' value
        (:class:`engine.models.reminder_lift.ReminderLift`); None = the trees alone. On
        (10) by default: the learned environment then values corporates' call timing like
        the history does, which the RL policy's timing rules need (docs/payment-model.md,
        docs/rl.md).
    milestone_inputs : when the static features have ``days_due_to_milestone`` (the
        project milestone a craftsman's invoice waits for), give the trees
        :data:`MILESTONE_INPUTS`, the day's and the last reminder's send day's days past it
        (one split finds "the project is done", which otherwise takes an interaction of two
        inputs), and the reminder lift a milestone factor (sent before the milestone and
        still before it / reached since / sent after it;
        :func:`engine.models.reminder_lift.milestone_level`). Both are derived inside the
        model from inputs every caller already gives. Off by default: it fixes the
        learned value of a reminder before the milestone (5.8x the hazard of waiting -> 0.85,
        truth 1.0, on the test company) but did not make the planner collect more
        (docs/planner.md, ``handover_planner_milestone_*.json``).
    customer_response : estimate each customer's own payment response (baseline and
        per reminder channel x days since it) from the history known at each invoice's due
        date, shrunk toward the segment (:mod:`engine.models.customer_response`), as the
        static inputs :data:`~engine.models.customer_response.RESPONSE_FEATURES` (after
        the trees' columns, which do not read them) that multiply the hazard. Needs
        :meth:`fit_tables`. Off by default (docs/rl.md, Individual timing).
    exclude_disputed_days : leave the days of an open dispute out of the training rows
        (:func:`engine.features.in_dispute`; with :meth:`fit_tables`): the hazard of an
        undisputed day, which the learned environment multiplies with its own dispute
        rates. Off by default: it fixes the hazard without reminders (max survival gap to
        the world 0.13 -> 0.01) but made the planner collect less on the evaluation
        companies (docs/planner.md, "Disputed days").
    reminder_lift_send_day_edges : the reminder lift's send-day buckets (left edges, days
        after due, starting at 0, increasing), e.g.
        :data:`engine.models.reminder_lift.FINE_SEND_DAY_EDGES`; None = the default
        :data:`~engine.models.reminder_lift.SEND_DAY_EDGES`.
    reminder_count_input : also give the trees the reminders sent so far, all channels
        (:data:`COUNT_INPUT`, derived from the four counts): a schedule the history never
        ran (many calls) has per-channel counts the trees never saw, but a total they did.
        Off by default (docs/planner.md, "Logged support").
    reminder_counts_decreasing : the hazard never rises with a count of reminders sent, the
        other inputs (days since the last reminder, its channel and send day, the calendar)
        the same: a LightGBM monotone constraint (-1) on the per-channel counts (and the
        total of ``reminder_count_input``), and the reminder lift's number factor made
        non-increasing. Why: diminishing returns and adverse selection both say that a
        customer who has had more reminders pays no more readily after the next one, and
        where the history has few long schedules the trees extrapolate a 4th call like the
        1st (measured: ``payment_model_hazard_world.json`` part (d)). Off by default
        (docs/planner.md, "Logged support").
    history_rates_only : leave the customer-history counts since the history begins
        (:data:`engine.features.WINDOW_COUNT_FEATURES`) out of the default inputs; the
        shares and means of the same history stay. Those counts grow with the calendar, so
        on the newest invoices the trees extrapolate (measured: the default company's
        held-out months paid 0.72x what the model with them predicted, 0.97x without;
        ``handover_calibration_*.json``). Ignored when ``features`` is given.

    Fitted attributes: ``static_features_`` (k_static names, the column order of the
    ``static`` array: the trees' ``tree_features_`` then, with the customer response,
    :data:`RESPONSE_FEATURES`), ``dynamic_features_`` (= DYNAMIC_FEATURES), ``categories_``,
    ``calendar_lift_`` (CalendarLift or None), ``booster_``, ``reminder_lift_``
    (ReminderLift or None), ``response_`` (CustomerResponse or None), ``n_rows_``,
    ``n_events_``, ``base_rate_``.
    """

    def __init__(self, horizon_days: int = 120, n_estimators: int = 80, num_leaves: int = 15,
                 learning_rate: float = 0.2, min_child_samples: int = 200,
                 max_rows: int = 1_500_000, max_invoices: int = 200_000,
                 features: Sequence[str] | None = None,
                 calendar_lift_smoothing: float | None = None,
                 reminder_lift_smoothing: float | None = 10.0,
                 milestone_inputs: bool = False,
                 customer_response: bool = False,
                 exclude_disputed_days: bool = False,
                 reminder_lift_send_day_edges: Sequence[int] | None = None,
                 reminder_count_input: bool = False,
                 reminder_counts_decreasing: bool = False,
                 history_rates_only: bool = False,
                 random_state: int = 0, n_jobs: int | None = None) -> None:
        self.horizon_days = horizon_days
        self.n_estimators = n_estimators
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.min_child_samples = min_child_samples
        self.max_rows = max_rows
        self.max_invoices = max_invoices
        self.features = features
        self.calendar_lift_smoothing = calendar_lift_smoothing
        self.reminder_lift_smoothing = reminder_lift_smoothing
        self.milestone_inputs = milestone_inputs
        self.customer_response = customer_response
        self.exclude_disputed_days = exclude_disputed_days
        self.reminder_lift_send_day_edges = reminder_lift_send_day_edges
        self.reminder_count_input = reminder_count_input
        self.reminder_counts_decreasing = reminder_counts_decreasing
        self.history_rates_only = history_rates_only
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit_tables(self, tables: Mapping[str, pd.DataFrame] | PreparedTables, as_of: object
                   ) -> HazardModel:
        """Build the invoice-day rows of ``tables`` known at ``as_of`` and fit on them (and,
        with ``customer_response``, the customer response's prior strengths on every
        overdue day at risk of the history known at ``as_of``)."""
        p = tables if isinstance(tables, PreparedTables) else prepare_tables(tables)
        self._fit(self.training_frame(p, as_of))
        if self.customer_response:
            hist = self._response_history(p, to_day(as_of))
            cust = np.unique(p.cust)
            obs, exp = hist.totals(cust, np.full(len(cust), to_day(as_of)))
            self.response_ = CustomerResponse.fit(obs, exp, _segments(p, cust))
            self.static_features_ = [*self.tree_features_, *RESPONSE_FEATURES]
        return self

    def training_frame(self, tables: Mapping[str, pd.DataFrame] | PreparedTables,
                       as_of: object) -> HazardFrame:
        """The invoice-day rows :meth:`fit_tables` fits on: those of ``tables`` known at
        ``as_of``, with this model's horizon, caps, seed and disputed days."""
        return build_hazard_frame(tables, as_of, horizon_days=self.horizon_days,
                                  max_rows=self.max_rows, max_invoices=self.max_invoices,
                                  seed=self.random_state,
                                  exclude_disputed=self.exclude_disputed_days)

    def fit(self, frame: HazardFrame) -> HazardModel:
        """Fit on a :class:`engine.features.HazardFrame` (weighted binary log loss)."""
        if self.customer_response:  # fail closed: the estimates need the whole history
            raise DunningError("HazardModel(customer_response=True) estimates each "
                               "customer's response from the history tables: fit it with "
                               "fit_tables(tables, as_of), not fit(frame)")
        return self._fit(frame)

    def _fit(self, frame: HazardFrame) -> HazardModel:
        # both lift options are checked before any work: a bad value fails before training
        for option in ("calendar_lift_smoothing", "reminder_lift_smoothing"):
            _check_smoothing(option, getattr(self, option))
        _check_send_day_edges(self.reminder_lift_send_day_edges)
        if frame.event.sum() < 5 or len(frame.event) < 50:
            raise DunningError(f"only {int(frame.event.sum())} payments after the due date to "
                               "learn the daily hazard from; need more overdue history")
        chosen = self.features if self.features is not None else select_features(
            frame.static.columns,
            exclude=[c for c in WINDOW_COUNT_FEATURES if c in frame.static.columns]
            if self.history_rates_only else ())
        self.static_features_ = [c for c in chosen if c not in STATE_FEATURES]
        self.tree_features_ = list(self.static_features_)
        self.response_: CustomerResponse | None = None
        self.dynamic_features_ = list(DYNAMIC_FEATURES)
        self.categories_ = learn_categories(frame.static, self.static_features_)
        S = self.static_matrix(frame.static)[frame.static_index]
        self.calendar_lift_ = self._fit_calendar_lift(S, frame)
        M = self._matrix(S, frame.dynamic)
        names = [*self.static_features_, *self._tree_dynamic(),
                 *((COUNT_INPUT,) if self.reminder_count_input else ()),
                 *(MILESTONE_INPUTS if self._uses_milestone() else ()),
                 *(LIFT_FEATURES if self.calendar_lift_ is not None else ())]
        cats = [j for j, c in enumerate(names) if c in self.categories_]
        n_jobs = self.n_jobs or 1
        params: dict[str, Any] = {
            "objective": "binary", "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves, "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": 0.9, "bagging_fraction": 0.8, "bagging_freq": 1,
            "lambda_l2": 1.0, "seed": self.random_state, "num_threads": n_jobs,
            "verbosity": -1, "deterministic": True, "force_row_wise": True,
            "max_cat_to_onehot": 8,
        }
        if self.reminder_counts_decreasing:
            counts = {*(f"n_{c}" for c in REMINDER_CHANNELS), COUNT_INPUT}
            params["monotone_constraints"] = [-1 if c in counts else 0 for c in names]
        data = lgb.Dataset(M, frame.event, weight=frame.weight, feature_name=names,
                           categorical_feature=cats)
        self.booster_ = lgb.train(params, data, num_boost_round=self.n_estimators)
        self.reminder_lift_ = self._fit_reminder_lift(S, M, frame)
        self.n_rows_ = int(len(M))
        self.n_events_ = int(frame.event.sum())
        self.base_rate_ = float(np.average(frame.event, weights=frame.weight))
        return self

    def _fit_calendar_lift(self, S: np.ndarray, frame: HazardFrame) -> CalendarLift | None:
        if self.calendar_lift_smoothing is None:
            return None
        groups, n_groups, by = self._lift_groups(S)
        return CalendarLift.fit(groups, frame.dynamic, frame.event, frame.weight, n_groups,
                                self.calendar_lift_smoothing, by)

    def _fit_reminder_lift(self, S: np.ndarray, M: np.ndarray, frame: HazardFrame
                           ) -> ReminderLift | None:
        if self.reminder_lift_smoothing is None:
            return None
        groups, n_groups, by = self._lift_groups(S)
        trees = self.booster_.predict(M, num_threads=self.n_jobs or 1)
        return ReminderLift.fit(groups, frame.dynamic, frame.event, frame.weight, trees,
                                n_groups, self.reminder_lift_smoothing, by,
                                milestone=self._milestone(S),
                                send_day_edges=self.reminder_lift_send_day_edges,
                                number_non_increasing=self.reminder_counts_decreasing)

    def _lift_groups(self, S: np.ndarray) -> tuple[np.ndarray, int, str | None]:
        """``(group (m,), n_groups, feature)`` of training rows for a lift: the segment
        category when the features have one, else a single group."""
        by = "segment" if "segment" in self.categories_ else None
        return self._groups(S, by), 1 + (len(self.categories_[by]) if by else 0), by

    def _groups(self, S: np.ndarray, by: str | None) -> np.ndarray:
        """(n,) calendar-lift group of each static row: 1 + category code, 0 = unknown."""
        if by is None:
            return np.zeros(len(S), dtype=np.int64)
        code = S[:, self.static_features_.index(by)]
        return np.where(np.isnan(code), 0, code + 1).astype(np.int64)

    def _uses_milestone(self) -> bool:
        return self.milestone_inputs and MILESTONE_FEATURE in self.tree_features_

    def _milestone(self, static: np.ndarray) -> np.ndarray | None:
        """(n,) days from due to each row's milestone (NaN = none), or None when the model
        does not use milestones."""
        if not self._uses_milestone():
            return None
        return static[:, self.tree_features_.index(MILESTONE_FEATURE)]

    def _tree_dynamic(self) -> list[str]:
        """The dynamic inputs the trees see: the phases only through the calendar lift."""
        return [c for c in self.dynamic_features_ if c not in PHASE_INPUTS]

    def _matrix(self, static: np.ndarray, dynamic: Mapping[str, np.ndarray]) -> np.ndarray:
        """The booster's input: the trees' static columns, dynamic inputs, calendar lifts."""
        static = static[:, :len(self.tree_features_)]
        n = static.shape[0]
        for name in self.dynamic_features_:
            if name not in dynamic:
                raise DunningError(f"predict_hazard: dynamic input {name!r} is missing; "
                                   f"expected all of {self.dynamic_features_}")
        cols = [static]
        for name in self._tree_dynamic():
            cols.append(np.asarray(dynamic[name], dtype=np.float64).reshape(n, 1))
        if self.reminder_count_input:
            cols.append(reminders_sent(dynamic).reshape(n, 1))
        milestone = self._milestone(static)
        if milestone is not None:
            sent = np.asarray(dynamic["last_reminder_overdue"], dtype=np.float64)
            cols.append((np.asarray(dynamic["days_overdue"], dtype=np.float64)
                         - milestone).reshape(n, 1))
            cols.append(np.where(sent >= 0, sent - milestone, np.nan).reshape(n, 1))
        lift = self.calendar_lift_
        if lift is not None:
            extra = lift.transform(self._groups(static, lift.group_feature), dynamic)
            cols.extend(extra[name].reshape(n, 1) for name in LIFT_FEATURES)
        return np.hstack(cols)

    # -- prediction
    def static_matrix(self, X: pd.DataFrame) -> np.ndarray:
        """(n, k_static) float array of feature rows ``X`` (from ``features_at`` /
        ``build_invoice_features`` as of the due date), in ``static_features_`` order."""
        return encode(X, self.static_features_, self.categories_)

    def static_for_invoices(self, tables: Mapping[str, pd.DataFrame] | PreparedTables,
                            invoice_ids: Sequence[str] | None = None) -> np.ndarray:
        """(n, k_static) static rows of ``invoice_ids`` (default all), each as of its due
        date - what the simulation needs at the start of an episode."""
        p = tables if isinstance(tables, PreparedTables) else prepare_tables(tables)
        rows = (np.arange(len(p.invoice_id)) if invoice_ids is None else
                p.rows_of(invoice_ids))
        if (rows < 0).any():
            raise DunningError(f"unknown invoice id {np.asarray(invoice_ids)[rows < 0][0]!r}")
        return self.static_matrix(self.static_frame(p, rows))

    def static_frame(self, p: PreparedTables, rows: np.ndarray) -> pd.DataFrame:
        """Features of invoice positions ``rows`` (n,) as of their due dates (n, features),
        with the customer response estimates :data:`RESPONSE_FEATURES` (factors, 1 = the
        segment's response) from the overdue days before each due date when the model has
        a customer response: THE static inputs for training episodes, evaluation and
        serving alike."""
        rows = np.asarray(rows, dtype=np.int64)
        X = features_at(p, rows, p.due_day[rows])
        if getattr(self, "response_", None) is not None:
            cust = p.cust[rows]
            # each estimate reads the days before its own due date only
            as_day = int(p.due_day[rows].max(initial=0))
            hist = self._response_history(p, as_day, np.unique(cust))
            est = self.response_.estimate(*hist.totals(cust, p.due_day[rows]),
                                          _segments(p, cust))
            X = X.assign(**{name: est[:, j] for j, name in enumerate(RESPONSE_FEATURES)})
        return X

    def _response_history(self, p: PreparedTables, as_day: int,
                          customers: np.ndarray | None = None) -> ResponseHistory:
        """The overdue days at risk before ``as_day`` (of ``customers``) with the hazard
        the model expects on them without the customer correction (trees x reminder
        lift)."""
        def expected(inv: np.ndarray, index: np.ndarray, dynamic: Mapping[str, np.ndarray]
                     ) -> np.ndarray:
            X = features_at(p, inv, p.due_day[inv])
            static = encode(X, self.tree_features_, self.categories_)[index]
            return self._base_hazard(static, dynamic)

        return response_history(p, as_day, self.horizon_days, expected, customers,
                                exclude_disputed=self.exclude_disputed_days)

    def predict_hazard(self, static: np.ndarray, dynamic: Mapping[str, np.ndarray]
                       ) -> np.ndarray:
        """(n,) P(fully paid on day t | unpaid at the start of day t): the trees' value,
        times the reminder lift when the model has one, times the customer's response
        factor of the day (``static``'s last columns) when it has a customer response.

        Parameters
        ----------
        static : (n, k_static) float array from :meth:`static_matrix` (one row per invoice,
            its features as of the due date; NaN = missing).
        dynamic : dict of (n,) arrays, all keys of ``dynamic_features_``:

            - ``days_overdue``: t - due date, days (>= 0)
            - ``n_email``, ``n_letter``, ``n_phone``, ``n_final_notice``: reminders of that
              channel sent ON OR BEFORE day t (counts; a reminder acts on the day it is sent)
            - ``days_since_last_reminder``: days from the last reminder to t (0 = sent
              today, 10000 = none yet)
            - ``last_reminder_overdue``: days overdue when the last reminder was sent
              (-1 = none)
            - ``last_channel``: :class:`engine.contract.Action` value of the last reminder
              (1 email .. 4 final notice, 0 = none)
            - ``weekday``: weekday of t, Monday = 0 .. Sunday = 6
            - ``days_to_month_end``, ``days_to_quarter_end``: days from t to the last day of
              its month / calendar quarter (0 on that day)
            - ``is_holiday``: 1.0 if t is a bank holiday in the debtor's jurisdiction
            - ``month_phase``, ``quarter_phase``: signed days to the nearest month /
              quarter boundary (0 = first day, -1 = last day; engine.calendar.month_phase)
        """
        hazard = self._base_hazard(static, dynamic)
        if self.response_ is not None:
            est = static[:, len(self.tree_features_):]
            hazard = np.minimum(hazard * self.response_.factor(est, dynamic), 1.0)
        return hazard

    def predict_hazard_grid(self, static: np.ndarray, situations: Mapping[str, np.ndarray],
                            per_invoice: Mapping[str, np.ndarray]) -> np.ndarray:
        """(B, m) hazard of every invoice in every situation: exactly (bit for bit)
        :meth:`predict_hazard` on the B * m rows (invoice b, situation j), b-major, whose
        static row is ``static[b]`` and whose dynamic inputs are ``situations[.][j]`` and
        ``per_invoice[.][b]``.

        A tree compares each input only with its split thresholds: situations whose inputs
        fall between the same thresholds of every tree (:meth:`_distinct_situations`) get
        the same trees' value, so the booster runs on B x (distinct situations) rows only;
        the reminder lift and the customer response are applied on the whole grid.

        Parameters
        ----------
        static : (B, k_static) as for :meth:`predict_hazard`.
        situations : dict of (m,) arrays, the keys :data:`SITUATION_INPUTS` (a planner's
            states on one day: reminders so far and the day overdue).
        per_invoice : dict of (B,) arrays, the other keys of ``dynamic_features_`` (the
            calendar inputs of each invoice's day).
        """
        self._check_grid_inputs(situations, per_invoice)
        B, m = static.shape[0], len(situations["days_overdue"])  # noqa: N806
        if B == 0 or m == 0:
            return np.zeros((B, m))
        milestone = self._milestone(static)
        has = np.zeros(B, dtype=bool) if milestone is None else np.isfinite(milestone)
        hazard = np.empty((B, m))
        # only invoices with a milestone need the situations told apart by value
        for rows, by_value in ((~has, False), (has, True)):
            if rows.any():
                hazard[rows] = self._tree_grid(
                    static[rows], situations,
                    {name: np.asarray(v)[rows] for name, v in per_invoice.items()}, by_value)
        lift = self.reminder_lift_
        if lift is not None and lift.uses_milestone:  # the lift depends on the invoice too
            rows = {name: np.tile(np.asarray(v), B) for name, v in situations.items()}
            factor = lift.factor(np.repeat(self._groups(static, lift.group_feature), m), rows,
                                 np.repeat(milestone, m))
            hazard = np.minimum(hazard * factor.reshape(B, m), 1.0)
        elif lift is not None:  # the lift of a row depends on its group and situation only
            group, of_invoice = np.unique(self._groups(static, lift.group_feature),
                                          return_inverse=True)
            factor = lift.factor(np.repeat(group, m), {name: np.tile(np.asarray(v), len(group))
                                                       for name, v in situations.items()})
            hazard = np.minimum(hazard * factor.reshape(len(group), m)[of_invoice.reshape(-1)],
                                1.0)
        if self.response_ is not None:
            est = static[:, len(self.tree_features_):]
            hazard = np.minimum(hazard * self.response_.factor_grid(est, situations), 1.0)
        return hazard

    def _tree_grid(self, static: np.ndarray, situations: Mapping[str, np.ndarray],
                   per_invoice: Mapping[str, np.ndarray], by_value: bool) -> np.ndarray:
        """(B, m) the trees' hazard of the grid, the booster run on distinct situations."""
        first, inverse = self._distinct_situations(situations, by_value)
        B, u = static.shape[0], len(first)  # noqa: N806
        dyn = {name: np.repeat(np.asarray(v), u) for name, v in per_invoice.items()}
        dyn.update({name: np.tile(np.asarray(v)[first], B) for name, v in situations.items()})
        trees = self._trees(self._matrix(np.repeat(static, u, axis=0), dyn))
        return trees.reshape(B, u)[:, inverse]

    def _check_grid_inputs(self, situations: Mapping[str, np.ndarray],
                           per_invoice: Mapping[str, np.ndarray]) -> None:
        for name in SITUATION_INPUTS:
            if name not in situations:
                raise DunningError(f"predict_hazard_grid: situation input {name!r} is "
                                   f"missing; expected all of {list(SITUATION_INPUTS)}")
        for name in self.dynamic_features_:
            if name not in situations and name not in per_invoice:
                raise DunningError(f"predict_hazard_grid: dynamic input {name!r} is missing; "
                                   f"expected all of {self.dynamic_features_}")
        both = set(situations) & set(per_invoice)
        if both:
            raise DunningError(f"predict_hazard_grid: {sorted(both)} given both per situation "
                               "and per invoice")

    def _distinct_situations(self, situations: Mapping[str, np.ndarray],
                             by_value: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(first (u,), inverse (m,))``: one situation standing for each class of
        situations the trees cannot tell apart (the same side of every split threshold of
        each input, see :func:`_split_codes`), and the class of each situation.
        ``by_value``: also tell apart different days and last reminders' send days (the
        milestone inputs derived from them have thresholds that differ per invoice)."""
        splits = self._split_points()
        offset = len(self.tree_features_)
        tree_dynamic = self._tree_dynamic()
        codes = [_split_codes(np.asarray(situations[name], dtype=np.float64),
                              splits.get(offset + tree_dynamic.index(name), _NO_SPLITS))
                 for name in situations if name in tree_dynamic]
        if self.reminder_count_input:  # the derived input's column follows the dynamic ones
            codes.append(_split_codes(reminders_sent(situations),
                                      splits.get(offset + len(tree_dynamic), _NO_SPLITS)))
        if by_value:
            codes += [np.unique(np.asarray(situations[name]), return_inverse=True)[1].reshape(-1)
                      for name in ("days_overdue", "last_reminder_overdue")]
        m = len(situations["days_overdue"])
        if not codes:  # no situation input reaches the trees
            return np.zeros(min(m, 1), dtype=np.int64), np.zeros(m, dtype=np.int64)
        _, first, inverse = np.unique(_row_keys(codes), axis=0, return_index=True,
                                      return_inverse=True)
        return first, inverse.reshape(-1)

    def _trees(self, M: np.ndarray) -> np.ndarray:  # noqa: N803
        """(n,) the trees' hazard of booster input rows ``M`` (n, inputs), one thread: the
        booster compiled once per booster (:class:`engine.models.compiled.BoosterPredictor`;
        kept on the model, not saved or pickled)."""
        cached = getattr(self, "_predictor", None)
        if cached is None or cached.booster is not self.booster_:
            cached = self._predictor = BoosterPredictor(self.booster_)
        return cached.predict(M)

    def __getstate__(self) -> dict[str, Any]:
        # the compiled trees are machine code of this process: a copy compiles its own
        state = dict(self.__dict__)
        state.pop("_predictor", None)
        return state

    def _split_points(self) -> dict[int, np.ndarray | None]:
        """{booster input column: its sorted numeric split thresholds over all trees, or
        None when the trees split on it as a category}; columns never split on are absent.
        Read once per booster (a fitted or a loaded one; kept on the model, not saved)."""
        cached = getattr(self, "_split_cache", None)
        if cached is not None and cached[0] is self.booster_:
            return cached[1]
        numeric: dict[int, list[float]] = {}
        categorical: set[int] = set()
        for tree in self.booster_.dump_model()["tree_info"]:
            stack = [tree["tree_structure"]]
            while stack:
                node = stack.pop()
                if "split_feature" not in node:
                    continue
                j = int(node["split_feature"])
                if node["decision_type"] == "==":
                    categorical.add(j)
                else:
                    numeric.setdefault(j, []).append(float(node["threshold"]))
                stack += [node["left_child"], node["right_child"]]
        out: dict[int, np.ndarray | None] = {j: np.unique(np.asarray(v, dtype=np.float64))
                                             for j, v in numeric.items()}
        out.update(dict.fromkeys(categorical))
        self._split_cache = (self.booster_, out)
        return out

    def _base_hazard(self, static: np.ndarray, dynamic: Mapping[str, np.ndarray]
                     ) -> np.ndarray:
        """(n,) the trees' hazard times the segment's reminder lift (no customer factor)."""
        hazard = self._trees(self._matrix(static, dynamic))
        lift = self.reminder_lift_
        if lift is not None:
            hazard = np.minimum(hazard * lift.factor(self._groups(static, lift.group_feature),
                                                     dynamic, self._milestone(static)), 1.0)
        return hazard

    def predict_hazard_frame(self, p: PreparedTables, rows: np.ndarray, day: np.ndarray,
                             static: pd.DataFrame) -> np.ndarray:
        """Hazards of invoices ``rows`` on days ``day`` with their logged reminders."""
        return self.predict_hazard(self.static_matrix(static), dynamic_features_at(p, rows, day))

    def survival(self, static: np.ndarray, days: int = 90,
                 dynamic_fn: Any = None) -> np.ndarray:
        """(n, days + 1) P(still unpaid at the start of day d after due), no reminders sent
        unless ``dynamic_fn(d) -> dict`` overrides the dynamic inputs of day d. Calendar
        inputs are neutral (weekday 2, mid-month) unless given by ``dynamic_fn``."""
        n = static.shape[0]
        surv = np.ones((n, days + 1))
        none = np.zeros(n)
        neutral = {"weekday": np.full(n, 2.0), "days_to_month_end": np.full(n, 15.0),
                   "days_to_quarter_end": np.full(n, 45.0), "is_holiday": none,
                   "month_phase": np.full(n, 15.0), "quarter_phase": np.full(n, 45.0)}
        for d in range(days):
            dyn = reminder_dynamics(np.full(n, float(d)),
                                    {f"n_{c}": none for c in REMINDER_CHANNELS},
                                    np.full(n, float(NO_REMINDER_DAYS)), none, neutral)
            if dynamic_fn is not None:
                dyn.update(dynamic_fn(d))
            surv[:, d + 1] = surv[:, d] * (1.0 - self.predict_hazard(static, dyn))
        return surv

    # -- persistence
    def save(self, directory: str | Path) -> str:
        """Write ``hazard_model.txt`` + ``hazard_model.json``; return the content hash."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        text = self.booster_.model_to_string()
        meta = {"kind": "hazard_model", "static_features": self.static_features_,
                "dynamic_features": self.dynamic_features_, "categories": self.categories_,
                "horizon_days": self.horizon_days, "n_rows": self.n_rows_,
                "n_events": self.n_events_, "base_rate": self.base_rate_,
                "calendar_lift": (self.calendar_lift_.to_dict()
                                  if self.calendar_lift_ is not None else None),
                "params": {"n_estimators": self.n_estimators, "num_leaves": self.num_leaves,
                           "learning_rate": self.learning_rate,
                           "min_child_samples": self.min_child_samples,
                           "calendar_lift_smoothing": self.calendar_lift_smoothing,
                           "random_state": self.random_state}}
        if self.reminder_lift_ is not None:  # absent otherwise: older models keep their hash
            meta["reminder_lift"] = self.reminder_lift_.to_dict()
            meta["params"]["reminder_lift_smoothing"] = self.reminder_lift_smoothing
        if self._uses_milestone():  # absent otherwise: older models keep their hash
            meta["params"]["milestone_inputs"] = True
        if self.exclude_disputed_days:  # absent otherwise: older models keep their hash
            meta["params"]["exclude_disputed_days"] = True
        if self.reminder_count_input:  # absent otherwise: older models keep their hash
            meta["params"]["reminder_count_input"] = True
        if self.reminder_counts_decreasing:  # absent otherwise: older models keep their hash
            meta["params"]["reminder_counts_decreasing"] = True
        if self.history_rates_only:  # absent otherwise: older models keep their hash
            meta["params"]["history_rates_only"] = True
        if self.response_ is not None:  # absent otherwise: older models keep their hash
            meta["customer_response"] = self.response_.to_dict()
            meta["tree_features"] = self.tree_features_
        h = hashlib.sha256(text.encode())
        h.update(json.dumps(meta, sort_keys=True).encode())
        meta["hash"] = h.hexdigest()[:16]
        atomic_write_text(d / HAZARD_FILE, text)
        atomic_write_text(d / HAZARD_META, json.dumps(meta, indent=2))
        self.hash_ = meta["hash"]
        return self.hash_

    @classmethod
    def load(cls, directory: str | Path) -> HazardModel:
        """Load a hazard model saved by :meth:`save`."""
        d = Path(directory)
        if not (d / HAZARD_META).is_file():
            raise DunningError(f"{d}: no {HAZARD_META} found; expected a model directory "
                               "written by `dunning train-model --out DIR`")
        meta = json.loads((d / HAZARD_META).read_text())
        p = meta["params"]
        m = cls(horizon_days=meta["horizon_days"], n_estimators=p["n_estimators"],
                num_leaves=p["num_leaves"], learning_rate=p["learning_rate"],
                min_child_samples=p["min_child_samples"],
                calendar_lift_smoothing=p.get("calendar_lift_smoothing"),
                reminder_lift_smoothing=p.get("reminder_lift_smoothing"),
                milestone_inputs=p.get("milestone_inputs", False),
                exclude_disputed_days=p.get("exclude_disputed_days", False),
                reminder_count_input=p.get("reminder_count_input", False),
                reminder_counts_decreasing=p.get("reminder_counts_decreasing", False),
                history_rates_only=p.get("history_rates_only", False),
                random_state=p["random_state"])
        m.static_features_ = list(meta["static_features"])
        m.dynamic_features_ = list(meta["dynamic_features"])
        m.categories_ = {k: list(v) for k, v in meta["categories"].items()}
        m.n_rows_, m.n_events_ = meta["n_rows"], meta["n_events"]
        m.base_rate_ = meta["base_rate"]
        # models saved before the calendar lift existed have none
        lift = meta.get("calendar_lift")
        m.calendar_lift_ = CalendarLift.from_dict(lift) if lift else None
        rem = meta.get("reminder_lift")
        try:
            m.reminder_lift_ = ReminderLift.from_dict(rem) if rem else None
        except ValueError as e:  # a damaged or hand-edited file: say which
            raise DunningError(f"{d / HAZARD_META}: {e}") from None
        if rem and "send_day_edges" in rem:  # the option it was fitted with, for a refit
            m.reminder_lift_send_day_edges = [int(x) for x in rem["send_day_edges"]]
        resp = meta.get("customer_response")
        m.response_ = CustomerResponse.from_dict(resp) if resp else None
        m.customer_response = m.response_ is not None
        m.tree_features_ = list(meta.get("tree_features", m.static_features_))
        m.booster_ = lgb.Booster(model_file=str(d / HAZARD_FILE))
        m.hash_ = meta["hash"]
        return m


def _segments(p: PreparedTables, cust: np.ndarray) -> np.ndarray | None:
    """(n,) the segment of customers ``cust`` (positions), None without the column."""
    if "segment" not in p.customers.columns:
        return None
    return p.customers["segment"].to_numpy(dtype=object)[cust]


def _split_codes(values: np.ndarray, thresholds: np.ndarray | None) -> np.ndarray:
    """(m,) int64 codes of one booster input: equal codes, equal decisions at every split
    on it. Numeric splits (``thresholds`` sorted, empty for an input never split on) go
    left when v <= threshold, so the code is the number of thresholds below v, with 0
    (LightGBM reads |v| <= 1e-35 as 0, a "zero" missing value) and NaN (missing) apart; a
    categorical input's (``thresholds`` None) code is its value."""
    if thresholds is None:
        return np.unique(values, return_inverse=True)[1].reshape(-1).astype(np.int64)
    v = np.where(np.abs(values) <= _LGB_ZERO, 0.0, values)
    below = np.searchsorted(thresholds, v, side="left").astype(np.int64)
    return np.where(np.isnan(v), -1, 2 * below + (v == 0))


def _row_keys(codes: list[np.ndarray]) -> np.ndarray:
    """Rows of the columns ``codes`` (m,) int64 each, as one int64 key per row (m,) when
    their ranges fit (mixed radix: equal keys, equal rows), else the (m, p) code matrix."""
    key = np.zeros(len(codes[0]), dtype=np.int64)
    span = 1
    for c in codes:
        lo, hi = int(c.min()), int(c.max())
        span *= hi - lo + 1
        if span >= 2**62:
            return np.stack(codes, axis=1)
        key = key * (hi - lo + 1) + (c - lo)
    return key


def _check_send_day_edges(edges: Sequence[int] | None) -> None:
    """Fail before training on send-day buckets that cannot be a grid."""
    if edges is None:
        return
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or len(e) < 2 or e[0] != 0 or not (np.diff(e) > 0).all():
        raise DunningError("reminder_lift_send_day_edges must be increasing days after due "
                           f"starting at 0 (e.g. [0, 2, 4, 7, 14, 30, 60]), got {list(edges)}")


def _check_smoothing(option: str, smoothing: float | None) -> None:
    """A lift's smoothing is None (no lift) or a positive number of pseudo-payments."""
    if smoothing is not None and not smoothing > 0:
        raise DunningError(f"HazardModel: {option} must be a positive number of "
                           f"pseudo-payments (or None), got {smoothing!r}")
