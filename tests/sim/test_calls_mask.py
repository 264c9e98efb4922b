"""The simulator's legal facts and mask on a history of calls and written reminders: the same
facts as a plain recount of the history (the semantics of ``legal_rules.facts``), and the
same decisions as durable_rules on them (issue #23: calls counted apart)."""

from __future__ import annotations

import dataclasses

import numpy as np

from engine.calendar import from_day
from engine.contract import Action
from legal_rules.durable_eval import DurableEvaluator
from legal_rules.facts import NEVER_DAYS
from simulations.env import CollectionsSimulator

WRITTEN = (Action.EMAIL, Action.LETTER, Action.FINAL_NOTICE)


def _us_consumers(batch):
    n = len(batch.amount)
    return dataclasses.replace(
        batch, jurisdiction_iso=np.full(n, "US"), is_b2c=np.ones(n, bool),
        currency=np.full(n, "USD"), region=np.full(n, ""), opted_out=np.zeros((n, 3), bool))


def _recount(history: list[int], day: int) -> dict[str, int]:
    """The history facts on day ``day`` (nothing done yet today) from the executed actions
    of days 0 .. day-1."""
    done = [(d, a) for d, a in enumerate(history) if Action.EMAIL <= a <= Action.FINAL_NOTICE]
    written = [d for d, a in done if a in WRITTEN]
    window = [a for d, a in done if day - d < 7]
    return {
        "reminders_sent": len(done),
        "written_reminders_sent": len(written),
        "days_since_last_contact": day - done[-1][0] if done else NEVER_DAYS,
        "days_since_last_written_reminder": day - written[-1] if written else NEVER_DAYS,
        "calls_last_7_days": sum(a == Action.PHONE for a in window),
        "contacts_last_7_days": len(window),
    }


def test_sim_facts_and_mask_agree_with_the_rule_engine(gt_source, legal_mask):
    sim = CollectionsSimulator(gt_source, legal_mask)
    batch = _us_consumers(gt_source.fresh_invoices(40, np.random.default_rng(3)))
    sim.load(batch)
    durable = DurableEvaluator(legal_mask.ruleset)
    n = len(batch.amount)
    histories: list[list[int]] = [[] for _ in range(n)]
    phone_after_call = gap_vetoes = 0
    for day in range(30):
        active = sim.active.copy()
        for i in np.flatnonzero(active)[:12]:
            want = _recount(histories[i], day)
            got = {k: int(sim.facts[k][i]) for k in want}
            assert got == want, (i, day)
            row = {k: np.asarray(v)[i] for k, v in sim.facts.items()}
            row = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            decided = durable.decide_all(row, from_day(int(batch.due_day[i]) + day))
            assert [decided[a].allowed for a in Action] == sim.masks[i].tolist(), (i, day)
            if want["days_since_last_contact"] == 1 and histories[i][-1] == Action.PHONE:
                phone_after_call += bool(sim.masks[i, Action.PHONE])
            if 1 <= want["days_since_last_written_reminder"] < 7:
                gap_vetoes += not sim.masks[i, Action.EMAIL]
        # calls most days, a written reminder every 5th day (some fall within 7 days of
        # the last one and are refused by the written gap)
        wanted = np.where(np.arange(n) % 5 == day % 5, Action.EMAIL, Action.PHONE)
        step = sim.step(wanted, np.random.default_rng(day))
        for i in np.flatnonzero(active):
            histories[i].append(int(step.executed[i]))
    assert phone_after_call > 10  # a call the day after a call: no company veto
    assert gap_vetoes > 10  # a written reminder within 7 days of the last written one
