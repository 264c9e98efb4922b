"""The daily run on a real store: legal, complete, idempotent, escalations to human review."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from dunning.ops.actions import record_action
from dunning.ops.audit import AuditLog
from dunning.ops.integrity import verify_store
from dunning.ops.recommend import (
    LoadedPolicy,
    Recommender,
    invoice_state,
    legal_facts,
    load_payment_model,
    stored_recommendations,
)
from dunning.ops.review import ReviewQueue
from engine.contract import Action
from engine.store import Store
from legal_rules.durable_eval import DurableEvaluator
from legal_rules.facts import FACTS, NEVER_DAYS, fact_problem
from simulations.policy import Policy

AS_OF = dt.date(2024, 12, 2)  # same day as conftest.AS_OF (a Monday)


class EscalateWhereAllowed(Policy):
    """A real policy for the tests: hand over to the agency whenever the rules allow it."""

    name = "escalate"

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return np.where(masks[:, Action.AGENCY], int(Action.AGENCY), int(Action.WAIT))


def _open_invoice_ids(store: Store, as_of: dt.date) -> set[str]:
    """Open invoices computed independently of dunning.ops.recommend, in SQL."""
    with store.connect() as con:
        rows = con.execute(
            "SELECT i.invoice_id FROM invoices i LEFT JOIN (SELECT invoice_id, sum(amount) s "
            "FROM payments WHERE payment_date <= ? GROUP BY invoice_id) p USING (invoice_id) "
            "WHERE i.invoice_date <= ? AND i.amount - coalesce(p.s, 0) > 0.005",
            [as_of, as_of]).fetchall()
    return {r[0] for r in rows}


def _audit_len(store: Store) -> int:
    with store.connect() as con:
        return len(AuditLog(con))


def test_every_open_invoice_gets_one_lawful_explained_recommendation(db):
    store = Store(db)
    rec = Recommender(store)
    result = rec.run(AS_OF)
    frame = result.frame
    assert set(frame["invoice_id"]) == _open_invoice_ids(store, AS_OF)
    assert frame["invoice_id"].is_unique and result.n_new == len(frame) > 20
    assert (frame["action"] != "wait").any()
    durable = DurableEvaluator(rec.ruleset)
    with store.connect() as con:
        log = AuditLog(con)
        assert log.verify().ok
        records = {r["invoice_id"]: r for r in log.records(kind="decision")}
    assert set(records) == set(frame["invoice_id"])
    for row in frame.itertuples():
        rec_payload = records[row.invoice_id]["payload"]
        assert rec_payload["rules_hash"] == rec.ruleset.hash
        assert rec_payload["policy_hash"] == rec.policy.hash
        if row.action != "wait":
            # the decision of record, re-derived from the audited facts, allows it
            decision = durable.decide(rec_payload["facts"], row.action, AS_OF)
            assert decision.allowed
            assert row.decision_engine == "durable_rules"
        for v in row.vetoes:
            rule = rec.ruleset.rule(v["rule_id"])
            assert v["citation"] == rule.citation and v["actions"]
            assert row.action not in v["actions"]


def test_running_twice_is_idempotent(db):
    store = Store(db)
    first = Recommender(store).run(AS_OF)
    n_audit = _audit_len(store)
    second = Recommender(store).run(AS_OF)
    assert second.n_new == 0 and second.review_ids == []
    assert _audit_len(store) == n_audit
    cols = ["invoice_id", "action", "status", "audit_seq"]
    assert first.frame[cols].equals(second.frame[cols])
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM ops_runs").fetchone()[0] == 1


def test_weekend_means_no_reminders(db):
    saturday = AS_OF + dt.timedelta(days=5)
    assert saturday.weekday() == 5
    frame = Recommender(Store(db)).run(saturday).frame
    assert (frame["action"] == "wait").all()
    assert all(any(v["rule_id"] == "practice.no_weekend" for v in vs) for vs in frame["vetoes"])


def test_facts_are_complete_and_typed(db):
    store = Store(db)
    state = invoice_state(store.tables(as_of=AS_OF), AS_OF)
    facts = legal_facts(state, AS_OF)
    assert set(facts) == set(FACTS)
    for name, values in facts.items():
        assert len(values) == len(state)
        for v in values:
            if v is None:  # missing stays missing (fails closed), only where data is absent
                assert name in ("limitation_passed", "agency_consent", "reminder_fee_agreed",
                                "local_hour",  # a US customer without a (known) state
                                "days_in_default")  # a German consumer, notice unknown
            else:
                assert fact_problem(name, v.item() if hasattr(v, "item") else v) is None, name
    assert NEVER_DAYS in set(facts["days_since_last_contact"])


def test_recorded_actions_change_the_next_day(db):
    store = Store(db)
    first = Recommender(store).run(AS_OF)
    sent = first.frame[first.frame["action"] == "email"]["invoice_id"].tolist()[:5]
    for inv in sent:
        assert record_action(store, inv, "email", AS_OF, "policy:fixed").loaded
        assert not record_action(store, inv, "email", AS_OF).loaded  # idempotent
    nxt = Recommender(store).run(AS_OF + dt.timedelta(days=1)).frame.set_index("invoice_id")
    for inv in sent:
        assert nxt.at[inv, "action"] == "wait"
        assert "practice.min_gap" in {v["rule_id"] for v in nxt.at[inv, "vetoes"]}
    with store.connect() as con:
        kinds = [r["kind"] for r in AuditLog(con).records()]
    assert kinds.count("action") == len(sent)


def test_agency_handover_goes_to_human_review_and_is_not_executed(db, tmp_path, plant_actions):
    store = Store(db)
    open_ids = sorted(_open_invoice_ids(store, AS_OF))
    state = invoice_state(store.tables(as_of=AS_OF), AS_OF).set_index("invoice_id")
    target = next(i for i in open_ids if state.at[i, "days_overdue"] > 70
                  and not state.at[i, "disputed_now"])
    plant_actions(db, [(target, channel, AS_OF - dt.timedelta(days=days_before))
                       for days_before, channel in ((60, "email"), (45, "letter"),
                                                    (30, "final_notice"))], tmp_path)
    policy = LoadedPolicy(EscalateWhereAllowed(), "escalate", "test-escalate-v1")
    result = Recommender(store, policy=policy).run(AS_OF)
    row = result.frame.set_index("invoice_id").loc[target]
    assert row["action"] == "agency" and row["status"] == "needs_review"
    assert row["review_id"] in result.review_ids
    assert "gdpr.art22_agency_review" in {h["rule_id"] for h in row["reason"]["fired_rules"]}
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM actions WHERE channel = 'agency'"
                           ).fetchone()[0] == 0  # never executed automatically
        queue = ReviewQueue(con, AuditLog(con))
        item = queue.get(row["review_id"])
        assert item["status"] == "pending" and "gdpr.art22_agency_review" in item["rule_ids"]
        with pytest.raises(Exception, match="reason"):
            queue.decide(row["review_id"], True, "alice", "  ")
        queue.decide(row["review_id"], True, "alice", "long overdue, no contact, checked file")
        with pytest.raises(Exception, match="already approved"):
            queue.decide(row["review_id"], False, "bob", "too late")
    # Approved but not yet executed: the next day raises no second item.
    nxt = Recommender(store, policy=policy).run(AS_OF + dt.timedelta(days=1))
    assert nxt.frame.set_index("invoice_id").at[target, "status"] == "needs_review"
    assert nxt.review_ids == []
    # Executed (reported back): the invoice leaves dunning.
    record_action(store, target, "agency", AS_OF + dt.timedelta(days=1), "review:alice")
    later = Recommender(store, policy=policy).run(AS_OF + dt.timedelta(days=2))
    assert target not in set(later.frame["invoice_id"])
    with store.connect() as con:
        log = AuditLog(con)
        reviews = log.records(invoice_id=target, kind="review")
        assert [r["payload"]["event"] for r in reviews] == ["queued", "decided"]
        assert reviews[1]["payload"]["reviewer"] == "alice"
        assert reviews[1]["personal"]["reason"].startswith("long overdue")
        assert verify_store(con).ok


@pytest.mark.slow
def test_with_payment_model_probabilities_and_top_factors(db, tmp_path):
    from engine.features import build_training_frame
    from engine.models import PaymentModel

    store = Store(db)
    tables = store.tables(as_of=AS_OF)
    tf = build_training_frame(tables, AS_OF)
    model = PaymentModel(n_estimators=40, random_state=0).fit(tf.X, tf.days_late,
                                                               order=tf.ref_day)
    model.save(tmp_path / "model")
    loaded = load_payment_model(tmp_path / "model")
    result = Recommender(store, model=loaded).run(AS_OF)
    f = result.frame
    probs = f[["p_on_time", "p_late", "p_very_late"]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert (f["model_hash"] == loaded.hash).all() and loaded.hash != "unknown"
    acted = f[f["action"] != "wait"]
    assert len(acted) and all(len(r["top_factors"]) == 3 for r in acted["reason"])
    waited = f[f["action"] == "wait"]
    assert all("top_factors" not in r for r in waited["reason"])  # only for rows shown
    with store.connect() as con:
        again = stored_recommendations(con, AS_OF)
    assert again["p_on_time"].round(9).equals(f["p_on_time"].round(9))


def test_same_inputs_give_the_same_recommendations_and_audit_payloads(db, tmp_path):
    import shutil

    other = tmp_path / "copy" / "dunning.duckdb"
    other.parent.mkdir()
    shutil.copyfile(db, other)
    a = Recommender(Store(db)).run(AS_OF).frame
    b = Recommender(Store(other)).run(AS_OF).frame
    cols = ["invoice_id", "action", "status", "policy_action", "reason", "vetoes", "caps",
            "policy_hash", "rules_hash", "audit_seq"]
    assert a[cols].equals(b[cols])
    payloads = []
    for path in (db, other):
        with Store(path).connect() as con:
            payloads.append(con.execute("SELECT payload FROM ops_audit_log ORDER BY seq"
                                        ).fetchall())
    assert payloads[0] == payloads[1]


class _SpacesOnly:
    """Just the environment's spaces, to build an (untrained, seeded) MaskablePPO network."""

    def __init__(self) -> None:
        from simulations.env.spaces import action_space, observation_space

        self.observation_space, self.action_space = observation_space(), action_space()


@pytest.mark.slow
def test_rl_policy_directory_plugs_in(db, tmp_path):
    import gymnasium as gym
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from dunning.ops.recommend import load_policy
    from legal_rules.loader import load_rules
    from policies.rl.policy import save_artifact
    from policies.rl.training import RLTrainingConfig, TrainingCurve

    class Env(gym.Env):
        def __init__(self) -> None:
            spaces = _SpacesOnly()
            self.observation_space, self.action_space = spaces.observation_space, \
                spaces.action_space

        def reset(self, *, seed=None, options=None):
            return self.observation_space.sample() * 0, {}

        def step(self, action):
            return self.observation_space.sample() * 0, 0.0, True, False, {}

    config = RLTrainingConfig(seed=0, total_timesteps=0, net_arch=(8, 8))
    model = MaskablePPO("MlpPolicy", DummyVecEnv([Env]), seed=0, device="cpu",
                        policy_kwargs={"net_arch": [8, 8]})
    art = save_artifact(model, tmp_path / "policy", config, TrainingCurve(), 0.0,
                        {"note": "untrained, for the plug-in test"})
    loaded = load_policy(tmp_path / "policy")
    assert loaded.name == "rl" and loaded.hash == art.content_hash
    result = Recommender(Store(db), policy=loaded).run(AS_OF)
    assert (result.frame["policy_hash"] == art.content_hash).all()
    rules = load_rules()
    assert rules.hash == result.rules_hash
    durable = DurableEvaluator(rules)
    with Store(db).connect() as con:
        facts = {r["invoice_id"]: r["payload"]["facts"]
                 for r in AuditLog(con).records(kind="decision")}
    for row in result.frame[result.frame["action"] != "wait"].itertuples():
        assert durable.decide(facts[row.invoice_id], row.action, AS_OF).allowed



@pytest.mark.parametrize("due, jur, ctype, day, expected", [
    ("2022-03-01", "DE", "b2b", "2025-12-31", False),  # 3 years from the end of 2022
    ("2022-03-01", "DE", "b2b", "2026-01-01", True),
    ("2023-01-15", "FR", "b2c", "2025-01-15", False),  # 2 years for consumers
    ("2023-01-15", "FR", "b2c", "2025-01-16", True),
    ("2023-01-15", "FR", "b2b", "2025-01-16", False),  # 5 years otherwise
    ("2020-02-29", "SE", "b2c", "2023-03-01", True),   # leap day + 3 years
    ("2020-02-29", "SE", "b2b", "2023-03-01", False),  # 10 years for businesses
    ("2010-01-01", "US", "b2c", "2026-01-01", None),   # unknown: missing, rules fail closed
])
def test_limitation(due, jur, ctype, day, expected):
    import pandas as pd

    from dunning.ops.recommend import limitation_passed

    state = pd.DataFrame({"due_date": pd.to_datetime([due]), "jurisdiction": [jur],
                          "customer_type": [ctype]})
    assert limitation_passed(state, dt.date.fromisoformat(day))[0] is expected


def test_vetoes_name_input_problems_as_pseudo_rules():
    """A row blocked by input the rules do not know lists the pseudo-rule in its vetoes
    (effect blocked, every action), so the worklist's "blocked by" names the reason."""
    from types import SimpleNamespace

    from legal_rules.loader import load_rules
    from legal_rules.testing import NEUTRAL_FACTS, rows_to_arrays
    from legal_rules.vector import VectorEvaluator

    rs = load_rules()
    rows = [dict(NEUTRAL_FACTS), dict(NEUTRAL_FACTS, jurisdiction="UK"),
            dict(NEUTRAL_FACTS, days_overdue="16")]
    batch = VectorEvaluator(rs).evaluate(rows_to_arrays(rows), AS_OF)
    vetoes = Recommender._vetoes(SimpleNamespace(ruleset=rs), batch)
    ids = [{v["rule_id"] for v in row} for row in vetoes]
    assert not ids[0] & {"input.unknown_value", "input.wrong_type"}
    assert "input.unknown_value" in ids[1] and "input.wrong_type" in ids[2]
    pseudo = next(v for v in vetoes[1] if v["rule_id"] == "input.unknown_value")
    assert pseudo["effect"] == "blocked" and "wait" not in pseudo["actions"]
    assert len(pseudo["actions"]) == 5
