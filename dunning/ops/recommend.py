"""The daily run: one recommended action per open invoice, legally checked, explained, audited.

For a decision date ``D`` (facts dated on or before ``D`` are known; see
``legal_rules.from_tables`` for the exact semantics, shared with ``rules explain``)::

    store tables as of D ─► legal_rules.from_tables.invoice_states ─► open invoices
        ├─► legal facts (from_tables.facts_from_state) ─► VectorEvaluator: masks (n, 6)
        │       + which rule vetoed what
        ├─► payment model: P(on time / late / very late), top factors for acted rows
        └─► observations (simulations.env.layout.LAYOUT) ─► policy.act(obs, masks)
    chosen action ≠ wait ─► DurableEvaluator.decide (the decision of record: fired rules,
        caps; a disagreement with the mask fails closed to wait)
    needs review (GDPR art. 22) ─► ReviewQueue, not executed
    every row ─► ops_recommendations + one audit record (facts, probabilities, vetoes, hashes)

Idempotent: a row is stored once per ``(as_of, invoice_id)``; a second run for the same date
returns the stored rows and records nothing new (an invoice that appeared since is added).

Public API::

    rec = Recommender(Store(db), policy=load_policy(dir_or_None),
                      model=load_payment_model(dir_or_None))
    result = rec.run(date(2026, 3, 2))        # RunResult: frame, n_new, hashes, review_ids
    recommend_one(store, invoice_id, as_of)   # stored row (dict) of one invoice

An action reported as done: :func:`dunning.ops.actions.record_action`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dunning.ops.audit import AuditLog, AuditRecord, canonical_json, row_digest
from dunning.ops.dates import check_as_of
from dunning.ops.review import ReviewItem, ReviewQueue
from engine.contract import N_ACTIONS, Action
from engine.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from engine.store import Store

TOP_K_FACTORS = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ops_recommendations (
    as_of DATE NOT NULL,
    invoice_id VARCHAR NOT NULL,
    customer_id VARCHAR,
    action VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    policy_action VARCHAR NOT NULL,
    p_on_time DOUBLE,
    p_late DOUBLE,
    p_very_late DOUBLE,
    reason VARCHAR NOT NULL,
    vetoes VARCHAR NOT NULL,
    caps VARCHAR NOT NULL,
    decision_engine VARCHAR NOT NULL,
    review_id VARCHAR,
    model_hash VARCHAR NOT NULL,
    policy_hash VARCHAR NOT NULL,
    rules_hash VARCHAR NOT NULL,
    audit_seq BIGINT,
    PRIMARY KEY (as_of, invoice_id)
);
CREATE TABLE IF NOT EXISTS ops_runs (
    as_of DATE NOT NULL,
    started_at VARCHAR NOT NULL,
    n_open BIGINT NOT NULL,
    n_new BIGINT NOT NULL,
    n_review BIGINT NOT NULL,
    model_hash VARCHAR NOT NULL,
    policy_hash VARCHAR NOT NULL,
    rules_hash VARCHAR NOT NULL,
    seconds DOUBLE NOT NULL
);
"""
REC_COLUMNS: tuple[str, ...] = (
    "as_of", "invoice_id", "customer_id", "action", "status", "policy_action", "p_on_time",
    "p_late", "p_very_late", "reason", "vetoes", "caps", "decision_engine", "review_id",
    "model_hash", "policy_hash", "rules_hash", "audit_seq",
)
JSON_COLUMNS = ("reason", "vetoes", "caps")
STATUSES = ("recommended", "needs_review", "wait", "blocked")


def ensure_schema(con: Any) -> None:
    con.execute(_SCHEMA)


# --------------------------------------------------------------------------- policy / model
@dataclass
class LoadedPolicy:
    """A policy plus what the audit log needs to know about it."""

    policy: Any  # policies.common.policy.Policy
    name: str
    hash: str


def load_policy(policy_dir: str | os.PathLike[str] | None = None) -> LoadedPolicy:
    """The one place a policy is loaded for the daily run.

    ``None`` or ``"fixed"``: the fixed schedule (email day 14, letter 30, final notice 45).
    A directory with ``policy.json`` of format ``dunning.rl_policy/1``: the RL policy saved
    by ``dunning train-policy`` (its content hash is recorded). A directory with
    ``planner.json``: the planner saved by the pipeline (``dunning-data/planner``); it plans
    each day's open invoices before acting (``PlannerPolicy.plan_invoices``).
    """
    if policy_dir is None or str(policy_dir) == "fixed":
        from policies.baselines.schedule import FixedSchedulePolicy

        policy = FixedSchedulePolicy()
        return LoadedPolicy(policy, "fixed", _sha(canonical_json(
            {"policy": "fixed", "schedule": policy.to_dict()})))
    path = Path(policy_dir)
    if not path.is_dir():
        raise InputError(f"--policy {path}: not a directory; expected an RL policy directory "
                         "(policy.json + policy.zip) or `fixed`")
    from policies.planner.files import PLANNER_FILE

    if (path / PLANNER_FILE).is_file():
        from policies.planner import PlannerPolicy

        planner = PlannerPolicy.load(path)
        return LoadedPolicy(planner, "planner", planner.content_hash)
    from policies.rl.policy import RLPolicy

    rl = RLPolicy.load(path)
    return LoadedPolicy(rl, "rl", str(rl.content_hash))


@dataclass
class LoadedModel:
    """A payment model with ``predict_proba(X) -> (n, k)`` and ``explain(X, top_k)``."""

    model: Any
    hash: str
    classes: tuple[str, ...]


def load_payment_model(model_dir: str | os.PathLike[str] | None) -> LoadedModel | None:
    """Load the payment model saved by ``dunning train``; ``None`` runs without one."""
    if model_dir is None:
        return None
    path = Path(model_dir)
    if not path.exists():
        raise InputError(f"--model {path}: not found; expected a model directory written by "
                         "`dunning train` (or leave --model out)")
    from engine.models import PaymentModel

    model = PaymentModel.load(path)
    model_hash = next((str(getattr(model, a)) for a in ("hash_", "hash", "model_hash_")
                       if getattr(model, a, None)), "unknown")
    classes = tuple(getattr(model, "classes_", ("on_time", "late", "very_late")))
    return LoadedModel(model, model_hash, classes)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------- invoice state
def invoice_state(tables: dict[str, pd.DataFrame], as_of: dt.date) -> pd.DataFrame:
    """One row per invoice open on ``as_of`` with everything a decision needs.

    The legal state comes from :func:`legal_rules.from_tables.invoice_states` (the one
    builder of legal facts; its docstring gives the semantics: events dated on or before
    ``as_of`` count, a dispute blocks through its resolution day). Open: an open amount
    above half a cent and not handed to an agency (no longer dunned). Added here for the
    policy: ``complained`` (a complaint recorded on or before ``as_of``).
    Sorted by invoice id.
    """
    import numpy as np
    import pandas as pd

    from legal_rules.from_tables import invoice_states

    state = invoice_states(tables, as_of)
    state = state[state["is_open"].to_numpy(dtype=bool)].reset_index(drop=True)
    acts = tables["actions"]
    complaint = acts["complaint"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    dated = (pd.to_datetime(acts["action_date"]) <= pd.Timestamp(as_of)).to_numpy(dtype=bool)
    complained = acts["invoice_id"].astype(str).to_numpy(dtype=object)[complaint & dated]
    state["complained"] = np.isin(state["invoice_id"].to_numpy(dtype=object), complained)
    return state


def limitation_passed(state: pd.DataFrame, as_of: dt.date) -> np.ndarray:
    """(n,) object array: True/False per row, None where the jurisdiction's period is unknown.

    :func:`legal_rules.from_tables.limitation_flags` on the rows' ``due_date``,
    ``jurisdiction`` and ``customer_type`` (periods: ``legal_rules/limitation.json``).
    """
    from legal_rules.from_tables import limitation_flags

    return limitation_flags(state["due_date"], state["jurisdiction"].to_numpy(),
                            state["customer_type"].to_numpy(), as_of)


def legal_facts(state: pd.DataFrame, as_of: dt.date,
                calendar: Any | None = None) -> dict[str, np.ndarray]:
    """Every fact of ``legal_rules.facts.FACTS`` per row of :func:`invoice_state`.

    Exactly :func:`legal_rules.from_tables.facts_from_state` (the facts ``dunning rules
    explain --invoice`` shows), without ``invoice_id``. ``calendar`` is not used (kept for
    callers): bank holidays are legal facts and come from legal_rules.
    """
    from legal_rules.from_tables import facts_from_state

    facts = facts_from_state(state, as_of)
    facts.pop("invoice_id")
    return facts


def _ts(day: dt.date) -> Any:
    import pandas as pd

    return pd.Timestamp(day)


def calendar_day(state: pd.DataFrame, as_of: dt.date, calendar: Any | None = None) -> Any:
    """Weekday, weekend, bank holiday, month/quarter end of ``as_of`` per row's jurisdiction
    and region (the engine's calendar, as in training, for the policy's observations)."""
    import numpy as np

    from engine.calendar import BusinessCalendar, to_day

    cal = calendar or BusinessCalendar(as_of, as_of)
    region = state["region"].to_numpy(dtype=object) if "region" in state else None
    places = cal.places(state["jurisdiction"].to_numpy(dtype=object), region)
    return cal.lookup(places, np.full(len(state), to_day(as_of)))


def observations(state: pd.DataFrame, probs: np.ndarray, as_of: dt.date,
                 calendar: Any | None = None) -> np.ndarray:
    """(n, LAYOUT.dim) float32 observations of the rows of :func:`invoice_state` on ``as_of``,
    built by the environment's own builder (``simulations.env.observation``) so that the
    policy sees here what it saw in training.

    ``probs`` (n, 3): payment-model probabilities; NaN (no model) becomes 1/3 each.
    """
    import numpy as np

    from simulations.env.layout import jurisdiction_codes, segment_codes
    from simulations.env.observation import add_dynamic_observation, static_observation

    jurisdiction = jurisdiction_codes(state["jurisdiction"].fillna("").astype(str).to_numpy())
    obs = static_observation(
        state["open_amount"].to_numpy(dtype=np.float64),
        segment_codes(state["segment"].fillna("").astype(str).to_numpy()),
        jurisdiction, (state["customer_type"] == "b2c").to_numpy(), probs)
    return add_dynamic_observation(
        obs, days_overdue=state["days_overdue"].to_numpy(),
        reminders=state[["n_email", "n_letter", "n_phone", "n_final_notice"]].to_numpy(),
        days_since_contact=state["days_since_last_contact"].to_numpy(),
        calendar=calendar_day(state, as_of, calendar),
        disputed=state["disputed_now"].to_numpy(), complained=state["complained"].to_numpy(),
        days_to_milestone=(state["milestone_date"] - _ts(as_of)).dt.days.to_numpy(
            dtype=np.float64, na_value=np.nan),
        final_notice_sent=state["final_notice_sent"].to_numpy())


# --------------------------------------------------------------------------- rules
_COMPILED: dict[Any, tuple[Any, Any, Any]] = {}


def compiled_rules(ruleset: Any | None = None,
                   store_path: Path | None = None) -> tuple[Any, Any, Any]:
    """``(ruleset, VectorEvaluator, DurableEvaluator)``; compiled once per process and again
    only when a rule file changes (name, size, mtime).

    Without ``ruleset``: the packaged rules, and with ``store_path`` the team files approved
    for that store on top (:func:`dunning.ops.rule_approval.rules_in_force`; a file changed
    after its approval stops the decision). ``ruleset.hash`` is the one every decision records.
    """
    from dunning.ops.rule_approval import MANIFEST, rules_area, rules_in_force
    from legal_rules.durable_eval import DurableEvaluator
    from legal_rules.loader import load_rules, rule_files
    from legal_rules.vector import VectorEvaluator

    if ruleset is not None:
        key: Any = ("given", ruleset.hash)
    else:
        files = rule_files()
        if store_path is not None:
            area = rules_area(store_path)
            files += [p for p in [area / MANIFEST, *sorted((area / "approved").glob("*"))]
                      if p.is_file()]
        key = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if key not in _COMPILED:
        if ruleset is not None:
            rs = ruleset
        elif store_path is not None:
            rs = rules_in_force(store_path)
        else:
            rs = load_rules()
        _COMPILED[key] = (rs, VectorEvaluator(rs), DurableEvaluator(rs))
    return _COMPILED[key]


# --------------------------------------------------------------------------- the run
@dataclass
class RunResult:
    """What a daily run produced. ``frame`` has :data:`REC_COLUMNS` (JSON columns decoded)."""

    as_of: dt.date
    frame: pd.DataFrame
    n_open: int
    n_new: int
    review_ids: list[str]
    model_hash: str
    policy_hash: str
    rules_hash: str
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    stale: bool = False  # stored rows were made with other model/policy/rule hashes

    def counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.frame["action"].value_counts().items()}


ProgressFn = Callable[[str, float], None]


class Recommender:
    """Daily recommendations over a store.

    Parameters
    ----------
    store : engine.store.Store
    policy : LoadedPolicy, default the fixed schedule
    model : LoadedModel or None (no probabilities, uniform observation prior)
    ruleset : legal_rules RuleSet, default the rules in force for the store (packaged +
        approved team files, :mod:`dunning.ops.rule_approval`)
    anchor : audit anchor file, default ``<db folder>/audit.anchor``
    """

    def __init__(self, store: Store, policy: LoadedPolicy | None = None,
                 model: LoadedModel | None = None, ruleset: Any | None = None,
                 anchor: Path | None = None) -> None:
        self.store = store
        self.policy = policy or load_policy(None)
        self.model = model
        self.ruleset, self.vector, self.durable = compiled_rules(ruleset, store.path)
        self.anchor = anchor if anchor is not None else store.path.parent / "audit.anchor"

    @property
    def model_hash(self) -> str:
        return self.model.hash if self.model else "none"

    def run(self, as_of: dt.date, progress: ProgressFn | None = None) -> RunResult:
        """Recommend for every open invoice on ``as_of``; store, queue and audit new rows."""
        import time

        check_as_of(as_of, "as_of")
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        step = _Stopwatch(timings, progress)
        from engine.store import WITH_EVENTS

        tables = self.store.tables(as_of=as_of, names=WITH_EVENTS)
        state = invoice_state(tables, as_of)
        step("load")
        with self.store.connect() as con:
            ensure_schema(con)
            done = {r[0] for r in con.execute(
                "SELECT invoice_id FROM ops_recommendations WHERE as_of = ?",
                [as_of]).fetchall()}
        new = state[~state["invoice_id"].isin(done)].reset_index(drop=True)
        rows: list[dict[str, Any]] = []
        if len(new):
            rows = self._decide(new, tables, as_of, step)
            self._check_plausibility(rows, new, tables, as_of)
            step("plausibility")
        n_review = sum(r["status"] == "needs_review" for r in rows)
        review_ids: list[str] = []
        with self.store.connect() as con:
            audit = AuditLog(con, anchor=self.anchor)
            queue = ReviewQueue(con, audit)
            if rows:
                review_ids = queue.submit([ReviewItem(
                    as_of, r["invoice_id"], r["customer_id"], r["action"],
                    r["review_rules"], {"reason": r["reason"], "vetoes": r["vetoes"],
                                        "caps": r["caps"]}) for r in rows
                    if r["status"] == "needs_review"])
                cols = _encoded_columns(rows)
                records = [self._audit_record(r, as_of, d)
                           for r, d in zip(rows, recommendation_digests(cols), strict=True)]

                def store(seqs: list[int]) -> None:  # in the audit append's transaction
                    for r, s in zip(rows, seqs, strict=True):
                        r["audit_seq"] = s
                    cols["audit_seq"] = seqs
                    self._store_rows(con, cols)

                audit.append(records, then=store)
                step("record")
                con.execute("INSERT INTO ops_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                    as_of, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), len(state),
                    len(rows), n_review, self.model_hash, self.policy.hash, self.ruleset.hash,
                    time.perf_counter() - t0])
            if done or not rows:
                frame = stored_recommendations(con, as_of)
            else:  # everything is new: what was just stored, without reading it back
                frame = _frame_from_rows(rows)
        hashes = frame[["model_hash", "policy_hash", "rules_hash"]].drop_duplicates()
        stale = bool(len(hashes) and (
            len(hashes) > 1 or tuple(hashes.iloc[0]) != (self.model_hash, self.policy.hash,
                                                         self.ruleset.hash)))
        return RunResult(as_of, frame, len(state), len(rows), review_ids, self.model_hash,
                         self.policy.hash, self.ruleset.hash, time.perf_counter() - t0,
                         timings, stale)

    # -- the decision for a batch of new rows ------------------------------------------------
    def _decide(self, state: pd.DataFrame, tables: dict[str, pd.DataFrame], as_of: dt.date,
                step: _Stopwatch) -> list[dict[str, Any]]:
        import numpy as np

        from engine.calendar import BusinessCalendar

        calendar = BusinessCalendar(as_of, as_of)  # built once, used for facts and obs
        facts = legal_facts(state, as_of)
        batch = self.vector.evaluate(facts, as_of)
        step("legal_mask")
        probs, factors_fn = self._probabilities(state, tables, as_of)
        step("model")
        obs = observations(state, probs, as_of, calendar)
        plan = getattr(self.policy.policy, "plan_invoices", None)
        if plan is not None:  # the planner solves today's open invoices first
            plan(tables, state["invoice_id"].astype(str).to_numpy(),
                 state["days_overdue"].to_numpy())
        chosen = np.asarray(self.policy.policy.act(obs, batch.allowed), dtype=np.int64)
        illegal = ~batch.allowed[np.arange(len(chosen)), chosen]
        if illegal.any():  # a policy must respect the mask; never pass an illegal action on
            chosen = np.where(illegal, int(Action.WAIT), chosen)
        step("policy")
        acted = np.flatnonzero(chosen != Action.WAIT)
        factors = factors_fn(acted) if len(acted) else {}
        step("explain")
        vetoes = self._vetoes(batch)
        # Column-wise to plain Python first: per-row pandas access is the slow part.
        keys = list(facts)
        fact_rows = [dict(zip(keys, vals, strict=True)) for vals in
                     zip(*(np.asarray(facts[k]).tolist() for k in keys), strict=True)]
        ids = state["invoice_id"].astype(object).tolist()
        custs = state["customer_id"].astype(object).tolist()
        due = [d.date() if hasattr(d, "date") and d == d else None  # NaT != NaT
               for d in state["due_date"].tolist()]
        p_list = np.where(np.isnan(probs), None, probs).tolist() if self.model else None
        channels = [Action(a).channel for a in range(N_ACTIONS)]
        common = {"as_of": as_of, "decision_engine": "vector", "caps": [], "review_id": None,
                  "review_rules": [], "model_hash": self.model_hash,
                  "policy_hash": self.policy.hash, "rules_hash": self.ruleset.hash,
                  "audit_seq": None}
        rows = []
        for i, a in enumerate(chosen.tolist()):
            ch = channels[a]
            p3 = p_list[i][:3] if p_list else (None, None, None)
            row = {**common, "invoice_id": ids[i], "customer_id": custs[i],
                   "policy_action": ch, "action": ch, "status": "wait", "p_on_time": p3[0],
                   "p_late": p3[1], "p_very_late": p3[2], "vetoes": vetoes[i],
                   "facts": fact_rows[i]}
            reason: dict[str, Any] = {"policy": self.policy.name, "policy_choice": ch}
            if a != Action.WAIT:
                self._decide_of_record(row, reason, Action(a), as_of, due[i])
            if i in factors:
                reason["top_factors"] = factors[i]
            if p3[0] is not None:
                reason["late_risk"] = p3[0] < 0.5
            row["reason"] = reason
            rows.append(row)
        step("decide")
        return rows

    def _check_plausibility(self, rows: list[dict[str, Any]], state: pd.DataFrame,
                            tables: dict[str, pd.DataFrame], as_of: dt.date) -> None:
        """Send acting rows that fail a plausibility check to human review, with the reasons.

        :func:`dunning.business.plausibility.check_recommendations` on every row that would
        act (``recommended`` or already ``needs_review``); ``rows[i]`` is ``state`` row ``i``.
        The customer's usual amount comes from the invoices known on ``as_of``; the previous
        P(on time) from the latest earlier stored recommendation of the same invoice. A
        flagged row gets ``reason["implausible"]`` (``code: detail`` texts), status
        ``needs_review`` and a review item whose rule ids are ``plausibility.<code>``.
        Without a payment model there are no probabilities, so that check is not applied.
        """
        import numpy as np
        import pandas as pd

        from dunning.business.plausibility import FLAGS, check_recommendations
        from dunning.ops.review import review_id

        acting = [i for i, r in enumerate(rows)
                  if r["action"] != "wait" and r["status"] in ("recommended", "needs_review")]
        if not acting:
            return
        st = state.iloc[acting]
        recs = pd.DataFrame({
            "invoice_id": st["invoice_id"].astype(str).to_numpy(),
            "customer_id": st["customer_id"].astype(str).to_numpy(),
            "amount": st["amount"].to_numpy(dtype=np.float64),
            "invoice_date": st["invoice_date"].to_numpy(),
            "due_date": st["due_date"].to_numpy(),
            "as_of": pd.Timestamp(as_of),
            "p_on_time": [rows[i]["p_on_time"] for i in acting],
            "action": [rows[i]["action"] for i in acting],
        })
        recs["p_on_time"] = pd.to_numeric(recs["p_on_time"], errors="coerce")
        codes = [c for c in FLAGS if self.model is not None or c != "bad_probability"]
        if self.model is not None:
            recs["p_on_time_prev"] = recs["invoice_id"].map(self._previous_p_on_time(as_of))
        history = tables["invoices"][["customer_id", "amount"]].astype(
            {"customer_id": str, "amount": "float64"})
        checked = check_recommendations(recs, history=history)
        flagged = checked[codes].any(axis=1).to_numpy()
        for j in np.flatnonzero(flagged).tolist():
            row = rows[acting[j]]
            texts = [t for t in str(checked["reasons"].iat[j]).split("; ")
                     if t.split(":", 1)[0] in codes]
            row["reason"]["implausible"] = texts
            row["review_rules"] = [*row["review_rules"],
                                   *(f"plausibility.{t.split(':', 1)[0]}" for t in texts)]
            if row["status"] == "recommended":
                row["status"] = "needs_review"
                row["review_id"] = review_id(as_of, row["invoice_id"], row["action"])

    def _previous_p_on_time(self, as_of: dt.date) -> dict[str, float]:
        """P(on time) per invoice of its latest stored recommendation before ``as_of``."""
        with self.store.connect() as con:
            ensure_schema(con)
            got = con.execute("SELECT invoice_id, arg_max(p_on_time, as_of) FROM "
                              "ops_recommendations WHERE as_of < ? AND p_on_time IS NOT NULL "
                              "GROUP BY invoice_id", [as_of]).fetchall()
        return {str(k): float(v) for k, v in got}

    def _decide_of_record(self, row: dict[str, Any], reason: dict[str, Any], action: Action,
                          as_of: dt.date, due_date: dt.date | None = None) -> None:
        """The durable_rules decision for the chosen action: caps, review, fail closed.

        A letter whose interest cannot be computed (a rate missing for a period:
        :func:`dunning.ops.letters.interest_problem`) is not recommended for printing: it
        goes to the review queue with rule ``rates.missing_period`` and the reason under
        ``reason["blocked_claims"]``.
        """
        decision = self.durable.decide(row["facts"], action, as_of)
        row["decision_engine"] = "durable_rules"
        row["caps"] = [_cap_dict(c) for c in decision.caps]
        reason["fired_rules"] = [{"rule_id": h.rule_id, "effect": h.effect,
                                  "citation": h.citation} for h in decision.fired]
        if not decision.allowed:
            # The engines disagree; the engine of record wins and the invoice waits.
            row.update(action="wait", status="blocked")
            reason["blocked_by"] = list(decision.blocked_by)
            return
        claim = self._claim_problem(row, action, as_of, due_date, decision)
        if claim is not None:
            reason["blocked_claims"] = [claim]
        if decision.needs_review or claim is not None:
            from dunning.ops.review import review_id
            from legal_rules.decision import RATES_MISSING_PERIOD

            row["status"] = "needs_review"
            row["review_rules"] = [h.rule_id for h in decision.fired
                                   if h.effect == "require_human_review"]
            if claim is not None:
                row["review_rules"].append(RATES_MISSING_PERIOD)
            row["review_id"] = review_id(as_of, row["invoice_id"], action.channel)
        else:
            row["status"] = "recommended"

    def _claim_problem(self, row: dict[str, Any], action: Action, as_of: dt.date,
                       due_date: dt.date | None, decision: Any) -> str | None:
        """Why the letter of ``action`` cannot state its interest, or None (see
        :func:`dunning.ops.letters.interest_problem`; no letter or no due date: None)."""
        from dunning.ops.interest import carried_claims, default_start, interest_problem

        if action not in (Action.EMAIL, Action.LETTER, Action.FINAL_NOTICE, Action.AGENCY):
            return None  # no letter (dunning.ops.letters.LETTER_KINDS)

        if due_date is None:
            return None
        try:
            claims = carried_claims(self.durable, row["facts"], action, as_of,
                                    row["invoice_id"])
        except InputError:
            return None  # the letter is refused anyway (its claims cannot be evaluated)
        return interest_problem(float(row["facts"]["amount"]), due_date, as_of, decision,
                                self.ruleset, row["invoice_id"], claims,
                                default_start(as_of, row["facts"].get("days_in_default")))

    def _probabilities(self, state: pd.DataFrame, tables: dict[str, pd.DataFrame],
                       as_of: dt.date) -> tuple[np.ndarray, Callable[[np.ndarray], dict]]:
        import numpy as np

        n = len(state)
        if self.model is None:
            return np.full((n, 3), np.nan), lambda rows: {}
        from engine.features import build_invoice_features

        X = build_invoice_features(tables, as_of, invoice_ids=state["invoice_id"].tolist())
        p = np.asarray(self.model.model.predict_proba(X), dtype=float)
        if p.shape[1] == 2:  # binary model: no "very late" class
            p = np.column_stack([p, np.zeros(n)])

        def explain(rows: np.ndarray) -> dict[int, list[dict[str, Any]]]:
            if not hasattr(self.model.model, "explain"):
                return {}
            top = self.model.model.explain(X.iloc[rows], top_k=TOP_K_FACTORS)
            return {int(r): explanation_row(top, j) for j, r in enumerate(rows)}

        return p, explain

    def _vetoes(self, batch: Any) -> list[list[dict[str, Any]]]:
        """Per row: every rule that vetoed (or blocked) an alternative, with its actions, then
        the input pseudo-rules (``input.unknown_fact`` / ``wrong_type`` / ``unknown_value``,
        :data:`legal_rules.decision.PSEUDO_RULES`) that block every action of the row.

        Rows with the same pattern of fired/blocking rules share one (read-only) list.
        """
        import numpy as np

        from legal_rules.decision import INPUT_CODES, PSEUDO_RULES

        rules = self.ruleset.rules
        info = [{"rule_id": r.id, "title": r.title, "citation": r.citation} for r in rules]
        is_veto = np.array([r.effect == "veto" for r in rules], dtype=bool)
        acts = [[Action(a).channel for a in range(1, N_ACTIONS) if batch.action_matrix[k, a]]
                for k in range(len(rules))]
        every = [Action(a).channel for a in range(1, N_ACTIONS)]
        pseudo = [{"rule_id": c, "title": PSEUDO_RULES[c], "citation": "",
                   "effect": "blocked", "actions": every} for c in INPUT_CODES[:3]]
        codes = batch.input_codes if batch.input_codes is not None else np.zeros(
            (batch.fired.shape[0], 3), dtype=bool)
        pattern = np.concatenate([batch.fired & is_veto, batch.unresolved, codes], axis=1)
        uniq, inverse = np.unique(np.packbits(pattern, axis=1), axis=0, return_inverse=True)
        n_rules = len(rules)
        lists = []
        for u in np.unpackbits(uniq, axis=1, count=2 * n_rules + 3).astype(bool):
            lists.append([{**info[k], "effect": "veto", "actions": acts[k]}
                          for k in np.flatnonzero(u[:n_rules])]
                         + [{**info[k], "effect": "blocked", "actions": acts[k]}
                            for k in np.flatnonzero(u[n_rules:2 * n_rules])]
                         + [pseudo[k] for k in np.flatnonzero(u[2 * n_rules:])])
        return [lists[j] for j in np.asarray(inverse).reshape(-1).tolist()]

    def _audit_record(self, row: dict[str, Any], as_of: dt.date, digest: str) -> AuditRecord:
        payload = {k: row[k] for k in ("action", "status", "policy_action", "p_on_time",
                                       "p_late", "p_very_late", "caps", "decision_engine",
                                       "review_id", "model_hash", "policy_hash", "rules_hash")}
        payload["facts"] = row["facts"]
        payload["vetoes"] = [{"rule_id": v["rule_id"], "citation": v["citation"],
                              "effect": v["effect"], "actions": v["actions"]}
                             for v in row["vetoes"]]
        payload["reason"] = row["reason"]
        payload["row_digest"] = digest  # the stored row; `audit verify` compares the table
        return AuditRecord("decision", payload, as_of=as_of, invoice_id=row["invoice_id"],
                           customer_id=row["customer_id"])

    @staticmethod
    def _store_rows(con: Any, cols: dict[str, list[Any]]) -> None:
        import pyarrow as pa

        con.register("_rec_rows", pa.table(cols))
        con.execute("INSERT INTO ops_recommendations SELECT * FROM _rec_rows "
                    "ON CONFLICT DO NOTHING")
        con.unregister("_rec_rows")


DIGEST_COLUMNS = tuple(c for c in REC_COLUMNS if c != "audit_seq")


def recommendation_digests(cols: dict[str, list[Any]]) -> list[str]:
    """:func:`dunning.ops.audit.row_digest` of each row over :data:`DIGEST_COLUMNS`, JSON
    columns as stored (text). ``cols``: column name -> values, as written to the table."""
    memo: dict[str, str] = {}
    return [row_digest(values, memo) for values in zip(*(cols[c] for c in DIGEST_COLUMNS),
                                                       strict=True)]


def stored_digest_rows(con: Any) -> Any:
    """Cursor over every stored row: ``(*DIGEST_COLUMNS, audit_seq, record kind, record
    invoice_id, record as_of, record row_digest, record action, record status)`` from the
    audit record the row points to (NULLs when it points nowhere)."""
    ensure_schema(con)
    cols = ", ".join(f"r.{c}" for c in DIGEST_COLUMNS)
    return con.execute(
        f"SELECT {cols}, r.audit_seq, l.kind, l.invoice_id, l.as_of, "
        "json_extract_string(l.payload, '$.row_digest'), "
        "json_extract_string(l.payload, '$.action'), "
        "json_extract_string(l.payload, '$.status') "
        "FROM ops_recommendations r LEFT JOIN ops_audit_log l ON l.seq = r.audit_seq "
        "ORDER BY r.as_of, r.invoice_id")


def _frame_from_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows as :func:`stored_recommendations` returns them (sorted by invoice id)."""
    import pandas as pd

    frame = pd.DataFrame({c: [r[c] for r in rows] for c in REC_COLUMNS})
    for c in ("p_on_time", "p_late", "p_very_late"):
        frame[c] = frame[c].astype("float64")
    frame["audit_seq"] = frame["audit_seq"].astype("int64")
    return frame.sort_values("invoice_id").reset_index(drop=True)


def _encoded_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """:data:`REC_COLUMNS` as lists, JSON columns encoded; equal values encoded once."""
    by_id: dict[int, str] = {}  # veto lists are shared between rows with one pattern
    by_value: dict[tuple, str] = {}  # reasons of waiting rows repeat

    def vetoes(value: Any) -> str:
        if id(value) not in by_id:
            by_id[id(value)] = canonical_json(value)
        return by_id[id(value)]

    def reason(value: dict[str, Any]) -> str:
        if not all(isinstance(v, str | bool) for v in value.values()):
            return canonical_json(value)
        key = tuple(sorted(value.items()))
        if key not in by_value:
            by_value[key] = canonical_json(value)
        return by_value[key]

    cols: dict[str, list[Any]] = {c: [r[c] for r in rows] for c in REC_COLUMNS
                                  if c not in JSON_COLUMNS}
    cols["vetoes"] = [vetoes(r["vetoes"]) for r in rows]
    cols["reason"] = [reason(r["reason"]) for r in rows]
    cols["caps"] = [canonical_json(r["caps"]) if r["caps"] else "[]" for r in rows]
    return {c: cols[c] for c in REC_COLUMNS}


class _Stopwatch:
    def __init__(self, timings: dict[str, float], progress: ProgressFn | None) -> None:
        import time

        self.timings, self.progress, self.t = timings, progress, time.perf_counter()

    def __call__(self, name: str) -> None:
        import time

        now = time.perf_counter()
        self.timings[name] = round(self.timings.get(name, 0.0) + now - self.t, 4)
        self.t = now
        if self.progress:
            self.progress(name, now)


def _cap_dict(c: Any) -> dict[str, Any]:
    return {"name": c.name, "value": c.value, "unit": c.unit, "expression": c.expression,
            "rule_id": c.rule_id, "citation": c.citation}


def explanation_row(top: pd.DataFrame, j: int) -> list[dict[str, Any]]:
    """Row ``j`` of ``PaymentModel.explain`` as ``[{feature, value, effect}]`` (effect: logit
    units of the risk of not paying on time; positive raises it)."""
    row = top.iloc[j]
    out = []
    for i in range(1, TOP_K_FACTORS + 1):
        if f"factor_{i}" not in top.columns:
            break
        value = row[f"value_{i}"]
        value = value.item() if hasattr(value, "item") else value
        if isinstance(value, float) and value != value:
            value = None
        out.append({"feature": str(row[f"factor_{i}"]), "value": value,
                    "effect": round(float(row[f"effect_{i}"]), 4)})
    return out


# --------------------------------------------------------------------------- reading
def stored_recommendations(con: Any, as_of: dt.date | None = None,
                           invoice_id: str | None = None,
                           not_after: dt.date | None = None) -> pd.DataFrame:
    """Stored rows (JSON columns decoded); when ``as_of`` is None the latest date (not after
    ``not_after`` if given: the API's default is the latest run up to today)."""
    ensure_schema(con)
    if as_of is None:
        as_of = con.execute("SELECT max(as_of) FROM ops_recommendations WHERE as_of <= ?",
                            [not_after or dt.date.max]).fetchone()[0]
    where, args = ["as_of = ?"], [as_of]
    if invoice_id is not None:
        where.append("invoice_id = ?")
        args.append(invoice_id)
    frame = con.execute(f"SELECT {', '.join(REC_COLUMNS)} FROM ops_recommendations WHERE "
                        f"{' AND '.join(where)} ORDER BY invoice_id", args).df()
    for c in JSON_COLUMNS:
        decoded = {v: json.loads(v) for v in set(frame[c])}  # many rows share one pattern
        frame[c] = [decoded[v] for v in frame[c]]
    frame["as_of"] = [d.date() if hasattr(d, "date") else d for d in frame["as_of"]]
    return frame


def recommendation_dict(row: Any) -> dict[str, Any]:
    """One stored row as a JSON-ready dict."""
    out = {c: row[c] for c in REC_COLUMNS}
    out["as_of"] = out["as_of"].isoformat() if hasattr(out["as_of"], "isoformat") \
        else str(out["as_of"])
    for c in ("p_on_time", "p_late", "p_very_late"):
        v = out[c]
        out[c] = None if v is None or v != v else float(v)
    out["audit_seq"] = None if out["audit_seq"] is None or out["audit_seq"] != out["audit_seq"] \
        else int(out["audit_seq"])
    out["review_id"] = out["review_id"] if isinstance(out["review_id"], str) else None
    return out
