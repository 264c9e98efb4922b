"""Train/serve parity: for the same invoice history, the observation the daily
recommendation builds from the store equals, column by column, the one the simulator gave
the policy in training."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from dunning.ops.recommend import invoice_state, observations
from engine.contract import Action
from engine.ingest import ingest
from engine.store import Store
from simulations.env import AllowAll, CollectionsSimulator
from simulations.env.layout import LAYOUT
from simulations.env.learned import batch_from_tables
from simulations.env.source import TransitionSource
from simulations.env.types import CostModel, EnvState, InvoiceBatch, Outcome

DUE = dt.date(2024, 10, 15)  # a Tuesday; the history runs into a bank-holiday-rich season
CHECKPOINTS = (1, 17, 45, 71)  # days overdue at which both observations are compared


class ScriptedSource(TransitionSource):
    """Nobody pays; complaints and dispute starts follow a fixed script per (row, day)."""

    name = "scripted"

    def __init__(self, complaint: np.ndarray, dispute_day: np.ndarray) -> None:
        self.complaint = complaint  # (n, days) bool: complaint about that day's reminder
        self.dispute_day = dispute_day  # (n,) day from which the invoice is disputed
        self.costs = CostModel()
        self.horizon = 120

    def sample_invoices(self, n: int, rng: np.random.Generator) -> InvoiceBatch:
        raise NotImplementedError("the test loads its own invoices")

    def initial_hidden(self, batch: InvoiceBatch) -> None:
        return None

    def step(self, batch: InvoiceBatch, hidden: None, state: EnvState, actions: np.ndarray,
             rng: np.random.Generator) -> tuple[None, Outcome]:
        n = len(actions)
        day = int(state.day[0])
        return None, Outcome(paid=np.zeros(n, bool),
                             complaint=self.complaint[:, day] & (actions != Action.WAIT),
                             disputed=day + 1 >= self.dispute_day, reward=np.zeros(n))

    def date_range(self) -> tuple[dt.date, dt.date]:
        return DUE, DUE


def _history(n: int, days: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A seeded script: the action of each (row, day), complaints, dispute start days."""
    reminders = np.array([Action.EMAIL, Action.LETTER, Action.PHONE, Action.FINAL_NOTICE])
    acts = np.where(rng.random((n, days)) < 0.12, rng.choice(reminders, (n, days)),
                    int(Action.WAIT)).astype(np.int64)
    complaint = rng.random((n, days)) < 0.15
    dispute_day = np.where(rng.random(n) < 0.25, rng.integers(3, 60, n), 10_000)
    return acts, complaint, dispute_day


def _store(tmp_path, customers: pd.DataFrame, invoices: pd.DataFrame,
           actions: pd.DataFrame) -> Store:
    files = []
    for name, frame in (("customers", customers), ("invoices", invoices),
                        ("actions", actions)):
        files.append(tmp_path / f"{name}.csv")
        frame.to_csv(files[-1], index=False)
    report = ingest(files, db=tmp_path / "store.duckdb")
    assert report.quarantined == 0, report.quarantine_files
    return Store(tmp_path / "store.duckdb")


def test_production_observation_equals_training_observation(make_ops_tables, tmp_path):
    rng = np.random.default_rng(20)
    customers = make_ops_tables()["customers"]
    n, days = len(customers), max(CHECKPOINTS)
    ms_offset = rng.integers(-10, 80, n)
    invoices = pd.DataFrame({
        "invoice_id": [f"T{i:05d}" for i in range(n)],
        "customer_id": customers["customer_id"],
        "invoice_date": (DUE - dt.timedelta(days=30)).isoformat(),
        "due_date": DUE.isoformat(),
        "amount": np.round(rng.lognormal(7.0, 1.2, n), 2),
        "currency": "EUR",
        "milestone_date": [(DUE + dt.timedelta(days=int(k))).isoformat() if k % 3 else None
                           for k in ms_offset],
    })
    acts, complaint, dispute_day = _history(n, days, rng)
    probs = rng.dirichlet(np.ones(3), n).astype(np.float32)

    # Training: the simulator steps the invoices through the scripted history.
    tables = {"customers": customers, "invoices": invoices}
    batch = batch_from_tables(tables, invoices["invoice_id"].to_numpy(dtype=str),
                              np.zeros((n, 1)), probs)
    sim = CollectionsSimulator(ScriptedSource(complaint, dispute_day), AllowAll())
    sim.load(batch)
    trained = {}
    for day in range(days + 1):
        if day in CHECKPOINTS:
            trained[day] = sim.observations()
        if day < days:
            sim.step(acts[:, day], rng)

    # Production: the same history as it reaches the store, read back on each day.
    row, day = np.nonzero(acts != Action.WAIT)
    actions = pd.DataFrame({
        "invoice_id": invoices["invoice_id"].to_numpy()[row],
        "action_date": [(DUE + dt.timedelta(days=int(d))).isoformat() for d in day],
        "channel": [Action(int(a)).channel for a in acts[row, day]],
        "complaint": complaint[row, day],
    })
    invoices["disputed"] = dispute_day < days
    invoices["dispute_opened"] = [(DUE + dt.timedelta(days=int(d))).isoformat()
                                  if d < days else None for d in dispute_day]
    store = _store(tmp_path, customers, invoices, actions)
    columns = LAYOUT.column_names()
    for day, obs_train in trained.items():
        as_of = DUE + dt.timedelta(days=day)
        tables = store.tables(as_of=as_of)
        # The morning run: the day's own actions are not taken yet (the simulator, too,
        # observes a day before acting on it).
        acted = tables["actions"]
        tables["actions"] = acted[pd.to_datetime(acted["action_date"]) < pd.Timestamp(as_of)]
        state = invoice_state(tables, as_of)
        order = state["invoice_id"].map({i: k for k, i in enumerate(invoices["invoice_id"])})
        obs_serve = observations(state, probs[order.to_numpy()], as_of)
        assert len(state) == n
        for c, name in enumerate(columns):
            np.testing.assert_array_equal(obs_serve[:, c], obs_train[order.to_numpy(), c],
                                          err_msg=f"day {day}: column {name}")
    # The history exercised the columns the two paths compute differently.
    last = trained[max(CHECKPOINTS)]
    for name in ("disputed", "complained", "final_notice_sent", "milestone_pending"):
        assert 0 < last[:, LAYOUT[name]].sum() < n, name
    assert (last[:, LAYOUT["days_to_milestone"]] < 0).any()
    assert last[:, LAYOUT.slice("reminders")].sum(axis=1).max() >= 3
