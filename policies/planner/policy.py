"""The planner behind the common :class:`Policy` interface: certainty-equivalent planning.

For the invoices it is asked about, the planner solves the collections MDP exactly
(:func:`policies.common.dp.backward_induction`) on the company's LEARNED transition model
(:class:`policies.planner.model.LearnedModel`), under the legal mask, and then plays the
optimal action of each invoice's current state. No gradient steps: what it loses against
the oracle is the learned model's error. Invoices with the same model inputs (hazard-model
row, amount, due date, place and legal facts) are solved once.

::

    planner = PlannerPolicy(LearnedDynamics.from_source(learned))
    planner.plan(batch)                 # solve the invoices of an InvoiceBatch (rows)
    planner.act(observations, masks)    # rows in the planned batch's order
    planner.save("dunning-data/planner"); PlannerPolicy.load("dunning-data/planner")

In the evaluation harness :meth:`bind_simulator` plans the simulator's invoices and reads
their bookkeeping state; elsewhere (off-policy estimates) the state is read from the
observation (the last channel is tracked from the reminder counts between calls).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from engine.contract import Action
from engine.errors import InputError
from engine.files import atomic_write_text
from policies.common.dp import StateSpace, backward_induction
from policies.common.solutions import SolutionCache, mask_context
from policies.planner.files import PLANNER_FILE, PLANNER_SCHEMA
from policies.planner.model import LearnedDynamics, LearnedModel
from simulations.env.arrays import take_rows
from simulations.env.layout import CONTACT_CAP, LAYOUT
from simulations.env.types import InvoiceBatch
from simulations.policy import Policy


class PlannerPolicy(Policy):
    """Exact DP on the learned model, per invoice (see the module docstring).

    Args:
        dynamics: the learned models (hazard, rates, costs, horizon, state caps).
        mask: legal mask ``mask(facts, as_of) -> (m, 6) bool`` used while planning
            (default: the simulator's in the harness, else the packaged rules).
        batch_size: invoices solved together (memory ~ batch * 1,700 states * 50 bytes;
            64 planned the demo's invoices on 5 hazard models about 15 % faster than 32,
            128 no faster; the values and tables do not depend on it).
        cache_size: solved invoices kept (:class:`policies.common.solutions.SolutionCache`:
            the (H, S) int8 action table compressed, a few KB each), until the legal mask
            changes (its rules: :func:`policies.common.solutions.mask_context`).
    """

    name = "planner"

    def __init__(self, dynamics: LearnedDynamics, mask: Any = None, batch_size: int = 64,
                 cache_size: int = 20_000) -> None:
        self.dynamics = dynamics
        self._cache = SolutionCache(cache_size)
        self.mask = mask
        self.batch_size = int(batch_size)
        self.space = StateSpace.build(dynamics.K, dynamics.N)
        self.table = np.zeros((0, dynamics.horizon, self.space.size), dtype=np.int8)
        self.values = np.zeros(0)  # (n,) planned value at the due date, learned model
        self.row_of = np.zeros(0, dtype=np.int64)  # (n,) planned invoice row -> table row
        self._sim: Any = None
        self.content_hash = ""  # of the saved planner.json (set by save / load)
        self._last = np.zeros(0, dtype=np.int64)  # tracked last channel per row
        self._counts = np.zeros((0, 4))

    # -- planning ------------------------------------------------------------------------
    def plan(self, batch: InvoiceBatch, mask: Any = None) -> np.ndarray:
        """Solve every invoice of ``batch`` (n rows); returns their planned values (n,),
        the learned model's expected NPV at the due date (currency). Solutions are cached
        by the model's inputs (up to ``cache_size`` invoices): an invoice met again (the
        next evaluation seed) is not solved again."""
        self._check_inputs(batch)
        mask = mask if mask is not None else self._mask()
        # a plan holds under the rules it was made with: other rules, plan again
        self._cache.use_context(mask_context(mask))
        keys, key_rows, row_of = _unique_invoices(batch)
        H = self.dynamics.horizon  # noqa: N806

        def solve_rows(rows: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
            values, tables = [], []
            for lo in range(0, len(rows), self.batch_size):
                part = take_rows(batch, key_rows[rows[lo:lo + self.batch_size]])
                v, pol = backward_induction(LearnedModel(self.dynamics, part, mask),
                                            self.space, H, keep_policy=True)
                assert pol is not None
                values.append(v[:, self.space.start])
                tables.extend(pol)  # views of the batch's array: not copied again
            return np.concatenate(values), tables

        values, self.table = self._cache.solutions(keys, (H, self.space.size), solve_rows)
        self.row_of = row_of
        self.values = values[row_of]
        self._sim = None
        self._last = np.zeros(len(row_of), dtype=np.int64)
        self._counts = np.zeros((len(row_of), 4))
        return self.values

    def _check_inputs(self, batch: InvoiceBatch) -> None:
        """Fail closed on invoices without (or with other) hazard-model inputs."""
        k = len(self.dynamics.hazard.static_features_)
        if batch.hazard_static is None:
            raise InputError("the planner needs each invoice's hazard-model inputs as of its "
                             "due date (InvoiceBatch.hazard_static): evaluate on held-out "
                             "invoices scored with the model directory (e.g. `dunning "
                             "evaluate --model DIR`)")
        if batch.hazard_static.shape[1] != k:
            raise InputError(f"the invoices carry {batch.hazard_static.shape[1]} hazard-model "
                             f"inputs, the planner's hazard model reads {k}: score them with "
                             "the model the planner was built from")

    def _mask(self) -> Any:
        if self.mask is None:
            from simulations.env.masks import LegalMask

            self.mask = LegalMask()
        return self.mask

    def bind_simulator(self, sim: Any) -> None:
        """Plan the simulator's invoices under its legal mask and read its state."""
        self.plan(sim.batch, mask=sim.mask)
        self._sim = sim

    # -- acting --------------------------------------------------------------------------
    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        n = len(observations)
        if n != len(self.row_of):
            raise RuntimeError(f"PlannerPolicy.act: {n} rows but {len(self.row_of)} planned "
                               "invoices; call plan(batch) (or bind_simulator) first")
        if self._sim is not None:
            st = self._sim.state
            t, counts = st.day.astype(np.int64), st.reminders.astype(np.int64)
            since = st.days_since_contact()
            last = st.last_channel.astype(np.int64)
            f, comp, disp = st.final_notice_day >= 0, st.complained, st.disputed
        else:
            t, counts, since, last, f, comp, disp = self._decode(observations)
        sent = counts.sum(axis=1)
        k = np.where(sent > 0, np.minimum(since, self.space.K), self.space.K)
        c = np.where(sent > 0, last, 0)
        written = counts[:, int(Action.EMAIL) - 1] + counts[:, int(Action.LETTER) - 1]
        s = self.space.lookup_arrays(k, sent, written, c, f, comp, disp)
        H = self.table.shape[1]  # noqa: N806
        if len(self.table) == 0:  # nothing planned (every row outside the horizon)
            return np.zeros(n, dtype=np.int64)
        a = self.table[np.maximum(self.row_of, 0), np.clip(t, 0, H - 1),
                       np.maximum(s, 0)].astype(np.int64)
        # not planned (outside the horizon), not yet due, past the horizon: wait
        a = np.where((self.row_of < 0) | (t < 0) | (t >= H) | (s < 0), Action.WAIT, a)
        if masks is not None:  # fail closed: a vetoed action is never chosen
            masks = np.asarray(masks, dtype=bool)
            a = np.where(masks[np.arange(n), a], a, Action.WAIT)
        return a

    def _decode(self, obs: np.ndarray) -> tuple[np.ndarray, ...]:
        """The DP state's inputs from observations (rows in the planned order)."""
        t = np.rint(obs[:, LAYOUT["days_overdue"]]).astype(np.int64)
        counts = np.rint(obs[:, LAYOUT.slice("reminders")]).astype(np.int64)
        since = np.rint(obs[:, LAYOUT["days_since_contact"]]).astype(np.int64)
        since = np.where(since >= CONTACT_CAP, 10**4, since)
        grew = counts > self._counts
        fresh = (t == 0) | (counts.sum(axis=1) < self._counts.sum(axis=1))
        self._last = np.where(fresh, 0, self._last)
        new = grew.any(axis=1)
        self._last = np.where(new, np.argmax(grew, axis=1) + 1, self._last)
        # unknown last channel (first call mid-episode): the most escalated one sent
        unknown = (self._last == 0) & (counts.sum(axis=1) > 0)
        top = 4 - np.argmax((counts[:, ::-1] > 0), axis=1)
        last = np.where(unknown, top, self._last)
        self._counts = counts.astype(float)
        f = obs[:, LAYOUT["final_notice_sent"]] > 0.5
        comp = obs[:, LAYOUT["complained"]] > 0.5
        disp = obs[:, LAYOUT["disputed"]] > 0.5
        return t, counts, since, last, f, comp, disp

    # -- persistence ---------------------------------------------------------------------
    def save(self, directory: str | Path) -> str:
        """Write the planner's fitted state (hazard model + rates + costs); return its hash."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        hazard_hash = self.dynamics.hazard.save(d)
        meta = {"schema": PLANNER_SCHEMA, "kind": "planner", "hazard_hash": hazard_hash,
                **dynamics_to_dict(self.dynamics)}
        meta["hash"] = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
        atomic_write_text(d / PLANNER_FILE, json.dumps(meta, indent=2))
        self.content_hash = meta["hash"]
        return meta["hash"]

    @classmethod
    def load(cls, directory: str | Path, mask: Any = None) -> PlannerPolicy:
        """A planner saved by :meth:`save` (clear error if ``directory`` holds none)."""
        from engine.models.ensemble import load_hazard

        d = Path(directory)
        path = d / PLANNER_FILE
        if not path.is_file():
            raise InputError(f"{d}: no {PLANNER_FILE}; save a planner with "
                             "PlannerPolicy.save (the pipeline writes dunning-data/planner)")
        meta = json.loads(path.read_text())
        if meta.get("schema") != PLANNER_SCHEMA:
            raise InputError(f"{path}: schema {meta.get('schema')!r}, expected "
                             f"{PLANNER_SCHEMA!r}")
        planner = cls(dynamics_from_dict(meta, load_hazard(d)), mask=mask)
        planner.content_hash = str(meta.get("hash", ""))
        return planner

    def plan_invoices(self, tables: dict[str, Any], invoice_ids: Any,
                      days_overdue: Any = None) -> np.ndarray:
        """Plan the invoices ``invoice_ids`` (n,) of contract ``tables`` (e.g. the open ones
        of ``dunning recommend``), rows in that order; each invoice's hazard-model inputs
        are its features as of its due date. Rows whose ``days_overdue`` (n,) is outside
        the planning horizon (not yet due, or past it) are not solved: they WAIT. Returns
        the planned values (n,), NaN for those rows."""
        from simulations.env.learned import batch_from_tables

        ids = np.asarray(invoice_ids, dtype=str)
        n = len(ids)
        keep = np.ones(n, dtype=bool)
        if days_overdue is not None:
            d = np.asarray(days_overdue, dtype=np.int64)
            keep = (d >= 0) & (d < self.dynamics.horizon)
        rows = np.flatnonzero(keep)
        static = self.dynamics.hazard.static_for_invoices(tables, ids[rows])
        batch = batch_from_tables(tables, ids[rows], static,
                                  np.full((len(rows), 3), 1.0 / 3.0))
        if len(rows):
            planned = self.plan(batch)
        else:
            planned, self.row_of = np.zeros(0), np.zeros(0, dtype=np.int64)
            self.table = self.table[:0]
        row_of = np.full(n, -1, dtype=np.int64)
        row_of[rows] = self.row_of
        values = np.full(n, np.nan)
        values[rows] = planned
        self.row_of, self.values = row_of, values
        self._last = np.zeros(n, dtype=np.int64)
        self._counts = np.zeros((n, 4))
        return values


def _unique_invoices(batch: InvoiceBatch) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """``(key of each distinct invoice (m,), its first row (m,), distinct index of each row
    (n,))``: rows with equal model inputs, money and legal facts share one solution."""
    n = len(batch.amount)
    num = np.column_stack([
        np.nan_to_num(np.asarray(batch.hazard_static, np.float64), nan=-1.2345e300),
        batch.amount, batch.due_day, batch.segment, batch.is_b2c, batch.milestone_day,
        batch.opted_out, batch.agency_consent, batch.reminder_fee_agreed,
        batch.invoice_day])
    index: dict[bytes, int] = {}
    keys: list[bytes] = []
    first: list[int] = []
    row_of = np.zeros(n, dtype=np.int64)
    for i in range(n):
        key = num[i].tobytes() + "|".join((str(batch.jurisdiction_iso[i]), str(batch.region[i]),
                                           str(batch.industry[i]), str(batch.currency[i]))
                                          ).encode()
        j = index.setdefault(key, len(keys))
        if j == len(keys):
            keys.append(key)
            first.append(i)
        row_of[i] = j
    return keys, np.asarray(first, dtype=np.int64), row_of


def dynamics_to_dict(dyn: LearnedDynamics) -> dict[str, Any]:
    """JSON of the planner's rates, costs and state caps (the hazard model is saved apart)."""
    r, c = dyn.rates, dyn.costs
    model = r.complaint_model
    # the logged support only when the planner uses it: older planners keep their hash
    support = ({"min_support": dyn.min_support, "reminder_prior": dyn.reminder_prior,
                "support_by_day": dyn.support_by_day, "support": r.support.count.tolist()}
               if dyn.min_support > 0 or dyn.reminder_prior > 0 else {})
    # the complaint weight only when it is not 1: planners saved before it keep their hash
    weight = {"complaint_weight": dyn.complaint_weight} if dyn.complaint_weight != 1.0 else {}
    return {
        "horizon": dyn.horizon, "K": dyn.K, "N": dyn.N, **support, **weight,
        "costs": {"annual_discount_rate": c.annual_discount_rate,
                  "action_cost": list(c.action_cost), "complaint_cost": c.complaint_cost,
                  "agency_fee_share": c.agency_fee_share,
                  "agency_recovery_prob": c.agency_recovery_prob,
                  "agency_delay_days": c.agency_delay_days},
        "rates": {"complaint": r.complaint.tolist(), "dispute_start": r.dispute_start.tolist(),
                  "dispute_resolve": r.dispute_resolve.tolist(),
                  "complaint_table": None if model is None else model.table.tolist(),
                  "complaint_hazard": (None if r.complaint_hazard is None
                                       else r.complaint_hazard.tolist())},
    }


def dynamics_from_dict(meta: dict[str, Any], hazard: Any) -> LearnedDynamics:
    from simulations.env.learned import BehaviourRates, ComplaintModel
    from simulations.env.types import CostModel

    r, c = meta["rates"], meta["costs"]
    table = None if r["complaint_table"] is None else np.asarray(r["complaint_table"], float)
    if table is not None and table.shape[2:] != ComplaintModel.grid_shape():
        raise InputError(f"the saved planner's complaint table has the timing grid "
                         f"{table.shape[2:]}, this version's complaint model uses "
                         f"{ComplaintModel.grid_shape()}: set the planner up again (`dunning "
                         "demo`, or PlannerPolicy(...).save) from the same store and model")
    rates = BehaviourRates(
        complaint=np.asarray(r["complaint"], float),
        dispute_start=np.asarray(r["dispute_start"], float),
        dispute_resolve=np.asarray(r["dispute_resolve"], float),
        complaint_model=None if table is None else ComplaintModel(table),
        complaint_hazard=(None if r["complaint_hazard"] is None
                          else np.asarray(r["complaint_hazard"], float)),
        support=_support_from(meta))
    costs = CostModel(annual_discount_rate=c["annual_discount_rate"],
                      action_cost=tuple(c["action_cost"]), complaint_cost=c["complaint_cost"],
                      agency_fee_share=c["agency_fee_share"],
                      agency_recovery_prob=c["agency_recovery_prob"],
                      agency_delay_days=int(c["agency_delay_days"]))
    return LearnedDynamics(hazard, rates, costs, int(meta["horizon"]), int(meta["K"]),
                           int(meta["N"]), int(meta.get("min_support", 0)),
                           float(meta.get("reminder_prior", 0.0)),
                           bool(meta.get("support_by_day", True)),
                           float(meta.get("complaint_weight", 1.0)))


def _support_from(meta: dict[str, Any]) -> Any:
    """The saved planner's logged support (None when it plans without it); a grid other
    than this version's fails, naming what to do."""
    from simulations.env.learned import ComplaintModel, ReminderSupport

    if "support" not in meta:
        return None
    count = np.asarray(meta["support"], dtype=np.int64)
    expected = ComplaintModel.grid_shape()[:2]
    if count.ndim != 4 or count.shape[2:] != expected:
        raise InputError(f"the saved planner's logged support has the grid "
                         f"{count.shape[2:]}, this version's uses {expected}: set the planner "
                         "up again (`dunning demo`, or PlannerPolicy(...).save)")
    return ReminderSupport(count)
