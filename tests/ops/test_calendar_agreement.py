"""One calendar: for the same day and place (country + region), the policy's observation
(in training and in production), the payment model's holiday count, the hazard model's
``is_holiday`` and the legal fact ``is_bank_holiday`` agree."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from dunning.ops.recommend import calendar_day, invoice_state
from engine.calendar import to_days
from engine.features import dynamic_features_at, features_at, prepare_tables
from legal_rules.from_tables import facts_for_invoices
from simulations.env import LAYOUT, CollectionsSimulator, GroundTruthSource, LegalMask
from simulations.env.layout import jurisdiction_codes

# (country, region): regions whose holidays differ from the national ones; BE is not in the
# observation's jurisdiction one-hot ("other") and still has its own holidays; XX is unknown.
PLACES = [("DE", ""), ("DE", "BY"), ("DE", "BE"), ("US", ""), ("US", "CA"), ("GB", "SCT"),
          ("GB", ""), ("AT", ""), ("BE", ""), ("XX", "")]
# Inside the default scenario's simulation calendar (2024): regional and national holidays,
# weekend holidays and an ordinary day.
DATES = [dt.date(2024, m, d) for m, d in ((1, 2), (1, 6), (3, 8), (3, 29), (3, 31), (5, 30),
                                         (8, 15), (11, 1), (11, 11), (12, 2), (12, 26),
                                         (7, 10))]


def _tables() -> dict[str, pd.DataFrame]:
    """One customer per place, one invoice per (place, date) issued and due that day."""
    customers = pd.DataFrame({
        "customer_id": [f"C{i}" for i in range(len(PLACES))],
        "jurisdiction": [c for c, _ in PLACES], "region": [r for _, r in PLACES],
        "segment": "corporate", "industry": "software", "customer_type": "b2b",
    })
    rows = [(f"I{i}-{k}", f"C{i}", day) for i in range(len(PLACES))
            for k, day in enumerate(DATES)]
    invoices = pd.DataFrame({
        "invoice_id": [r[0] for r in rows], "customer_id": [r[1] for r in rows],
        "invoice_date": pd.to_datetime([r[2] for r in rows]),
        "due_date": pd.to_datetime([r[2] for r in rows]),
        "amount": 100.0, "currency": "EUR",
    })
    empty = {"invoice_id": pd.Series([], dtype=str)}
    payments = pd.DataFrame({**empty, "payment_date": pd.Series([], dtype="datetime64[ns]"),
                             "amount": pd.Series([], dtype=float)})
    actions = pd.DataFrame({**empty, "action_date": pd.Series([], dtype="datetime64[ns]"),
                            "channel": pd.Series([], dtype=str),
                            "complaint": pd.Series([], dtype=bool)})
    return {"customers": customers, "invoices": invoices, "payments": payments,
            "actions": actions}


def test_observation_features_and_legal_fact_agree_on_bank_holidays():
    tables = _tables()
    inv = tables["invoices"]
    place_of = dict(zip(tables["customers"]["customer_id"], PLACES, strict=True))
    country = np.array([place_of[c][0] for c in inv["customer_id"]])
    region = np.array([place_of[c][1] for c in inv["customer_id"]])
    day = to_days(inv["due_date"])

    # the payment model's feature (holidays between invoice and due date: that one day) and
    # the hazard model's dynamic feature
    p = prepare_tables(tables)
    rows = np.arange(len(inv))
    in_terms = features_at(p, rows, day + 1)["holidays_in_terms"].to_numpy()
    hazard = dynamic_features_at(p, rows, day)["is_holiday"]

    # the legal fact (None: unknown country, fails closed) and the production observation
    legal = np.empty(len(inv), dtype=object)
    production = np.zeros(len(inv), dtype=bool)
    for date in DATES:
        state = invoice_state(tables, date)
        state = state[pd.to_datetime(state["due_date"]) == pd.Timestamp(date)]
        pos = pd.Index(inv["invoice_id"]).get_indexer(state["invoice_id"])
        facts = facts_for_invoices(tables, date, state=state)
        legal[pos] = facts["is_bank_holiday"]
        production[pos] = calendar_day(state, date).is_holiday

    # the training observation and the environment's own legal fact
    source = GroundTruthSource("default", pool_size=len(inv), seed=0)
    batch = source.fresh_invoices(len(inv), np.random.default_rng(0))
    batch.due_day, batch.region = day, region
    batch.jurisdiction_iso, batch.jurisdiction = country, jurisdiction_codes(country)
    sim = CollectionsSimulator(source, LegalMask())
    sim.load(batch)
    training = sim.observations()[:, LAYOUT["is_holiday"]].astype(bool)

    known = legal != None  # noqa: E711 (an object array: elementwise)
    assert (~known == (country == "XX")).all()
    expected = np.where(known, legal, False).astype(bool)
    for name, got in (("training observation", training), ("production observation",
                      production), ("environment fact", sim.facts["is_bank_holiday"]),
                      ("hazard is_holiday", hazard == 1.0),
                      ("holidays_in_terms", in_terms == 1.0)):
        bad = np.flatnonzero(np.asarray(got, dtype=bool) != expected)
        assert not len(bad), (name, [(country[i], region[i], str(inv["due_date"][i].date()))
                                     for i in bad[:5]])
    # the regions matter: a Bavarian holiday that is not national, and one of California
    keys = zip(country, region, inv["due_date"].dt.date, strict=True)
    holiday = dict(zip(keys, expected, strict=True))
    epiphany, cesar_chavez = dt.date(2024, 1, 6), dt.date(2024, 3, 31)
    assert holiday[("DE", "BY", epiphany)] and not holiday[("DE", "", epiphany)]
    assert holiday[("US", "CA", cesar_chavez)] and not holiday[("US", "", cesar_chavez)]
    assert holiday[("BE", "", dt.date(2024, 11, 11))]  # the one-hot's "other": still known
    assert not any(holiday[(c, r, dt.date(2024, 7, 10))] for c, r in PLACES)
