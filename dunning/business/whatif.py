"""What-if: re-run the evaluation with one change and show how the KPIs move.

A rule change (``rules=X.yaml``) is judged under the *shipped* policy (:func:`resolve_policy`:
the policy given, else the pipeline run's RL policy or tuned schedule, else the demo's tuned
schedule, packaged) on simulated invoices issued from the current date (or ``start``), once
with the packaged rules and once with the changed ones. The schedule and threshold changes
compare with the fixed schedule (email day 14, letter day 30, final notice day 45 after due)
under the packaged legal rules. One change at a time:

- ``schedule=7,21,35`` (or ``schedule=7:email,21:phone``): another fixed schedule;
- ``threshold=0.4``: risk-based timing - invoices the payment model flags as at risk
  (P(on time) < threshold) follow the schedule, the others follow it ``RISK_DELAY_DAYS``
  (14) days later (they are expected to pay anyway; early reminders mostly annoy them);
  the current setting is threshold 1.0 (every overdue invoice is treated as at risk);
- ``rules=X.yaml``: the packaged rules with ``X.yaml`` added, or replacing the packaged
  file of the same name (so legal can test an edited copy of ``de.yaml``).

Both settings run in the harness on the same invoices with the same random draws per seed
(common random numbers), so the per-seed difference is paired; its mean and 95 % Student-t
interval over seeds is the effect of the change. KPIs are reported under business names
(:data:`BUSINESS_KPIS`: cash collected, days sales outstanding, write-offs, complaints, actions
blocked by the rules, ...); messages are :class:`legal_rules.messages.Message` (English and
German).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.contract import Action
from engine.errors import InputError
from legal_rules.messages import Message, actions_text
from policies.baselines.schedule import (
    DEFAULT_SCHEDULE,
    FixedSchedulePolicy,
    Schedule,
    ScheduleStep,
    parse_schedule,
)
from simulations.env.layout import LAYOUT
from simulations.policy import Policy

RISK_DELAY_DAYS = 14
DEMO_TUNED_SCHEDULE = Path(__file__).parent / "data" / "demo_tuned_schedule.json"


@dataclass(frozen=True)
class BusinessKPI:
    """A KPI under its business name: ``source`` (a ``KPI_DOC`` name of the harness, or
    ``"actions_blocked"``) times ``scale``; ``label`` per language; ``better`` +1 if more is
    better, -1 if less is."""

    source: str
    scale: float
    label: dict[str, str]
    better: int


# KPIs shown, in order: id -> what it is (the ids are what JSON and the workspace read).
BUSINESS_KPIS: dict[str, BusinessKPI] = {
    "cash_collected": BusinessKPI("npv", 1.0, {
        "en": "cash collected per invoice (present value, net of costs)",
        "de": "Geldeingang je Rechnung (Barwert, nach Kosten)"}, 1),
    "days_sales_outstanding": BusinessKPI("dso", 1.0, {
        "en": "days sales outstanding", "de": "Forderungslaufzeit (DSO, Tage)"}, -1),
    "days_to_pay": BusinessKPI("mean_days_to_pay", 1.0, {
        "en": "days to pay (paid invoices)", "de": "Tage bis zur Zahlung (bezahlte)"}, -1),
    "write_offs": BusinessKPI("write_off_rate", 1000.0, {
        "en": "write-offs per 1,000 invoices", "de": "Abschreibungen je 1.000 Rechnungen"}, -1),
    "complaints": BusinessKPI("complaints_per_1000", 1.0, {
        "en": "complaints per 1,000 invoices", "de": "Beschwerden je 1.000 Rechnungen"}, -1),
    "agency_handovers": BusinessKPI("agency_per_1000", 1.0, {
        "en": "agency handovers per 1,000 invoices",
        "de": "Inkasso-Übergaben je 1.000 Rechnungen"}, -1),
    "reminders": BusinessKPI("reminders_per_invoice", 1.0, {
        "en": "reminders per invoice", "de": "Mahnungen je Rechnung"}, -1),
    "paid_after_first_reminder": BusinessKPI("first_reminder_pay_rate", 100.0, {
        "en": "paid within 14 days of the 1st reminder (%)",
        "de": "bezahlt binnen 14 Tagen nach 1. Mahnung (%)"}, 1),
    "actions_blocked": BusinessKPI("actions_blocked", 1.0, {
        "en": "actions blocked by the rules per 1,000 invoices",
        "de": "von Regeln gesperrte Maßnahmen je 1.000 Rechnungen"}, -1),
    "actions_against_rules": BusinessKPI("violations", 1.0, {
        "en": "actions against the rules (must be 0)",
        "de": "Maßnahmen gegen die Regeln (muss 0 sein)"}, -1),
}
WHATIF_KPIS: tuple[str, ...] = tuple(BUSINESS_KPIS)


class RiskThresholdPolicy(Policy):
    """Fixed schedule for at-risk invoices, the same schedule ``delay`` days later otherwise.

    At risk: ``p_on_time`` of the observation's payment probabilities < ``threshold``.
    """

    name = "risk_threshold"

    def __init__(self, threshold: float, schedule: Schedule = DEFAULT_SCHEDULE,
                 delay: int = RISK_DELAY_DAYS) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise InputError(f"threshold: found {threshold}, expected a probability in [0, 1]")
        self.threshold = threshold
        self.at_risk = FixedSchedulePolicy(schedule)
        self.trusted = FixedSchedulePolicy(
            tuple(ScheduleStep(s.day + delay, s.channel) for s in schedule))

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        p_on_time = observations[:, LAYOUT.slice("payment_probs")][:, 0]
        risky = p_on_time < self.threshold
        return np.where(risky, self.at_risk.act(observations, masks),
                        self.trusted.act(observations, masks)).astype(np.int64)


class HeldBackCounter(Policy):
    """``inner`` unchanged, counting per rule id the invoice-days on which the rules held
    back the action ``inner`` would have taken without them (``held_back``).

    The actions returned are ``inner``'s own (it sees the mask), so every KPI is the same as
    without the counter; the would-be action is ``inner`` asked with every action allowed.
    Each held-back day is attributed to one vetoing rule (the simulator's ``vetoed_by``).
    """

    def __init__(self, inner: Policy) -> None:
        self.inner = inner
        self.name = inner.name
        self.held_back: dict[str, int] = {}
        self.per_run: list[int] = []  # held-back invoice-days of each run (one run per seed)
        self._sim: Any = None

    def bind_simulator(self, sim: Any) -> None:
        """Called by the harness before each run: a new per-run count starts."""
        self._sim = sim
        self.per_run.append(0)
        self.inner.bind_simulator(sim)

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        wanted = np.asarray(self.inner.act(observations, np.ones_like(masks)), dtype=np.int64)
        rows = np.arange(len(wanted))
        held = rows[(wanted != int(Action.WAIT)) & ~masks[rows, wanted]]
        if self._sim is not None:
            held = held[np.asarray(self._sim.active)[held]]
        if self.per_run:
            self.per_run[-1] += len(held)
        if self._sim is not None and len(held):
            by = self._sim.vetoed_by(held)[np.arange(len(held)), wanted[held]]
            for b in by:
                rule = self._sim.mask.rule_ids[int(b)] if b >= 0 else "unknown"
                self.held_back[rule] = self.held_back.get(rule, 0) + 1
        return self.inner.act(observations, masks)


@dataclass(frozen=True)
class Change:
    """One change to the current setting: ``kind`` schedule/threshold/rules and its value."""

    kind: str
    value: Any
    text: str

    @classmethod
    def parse(cls, text: str) -> Change:
        """``"schedule=7,21,35"``, ``"threshold=0.4"`` or ``"rules=path.yaml"``."""
        key, sep, value = text.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value:
            raise InputError(f"--change {text!r}: expected KEY=VALUE with KEY schedule, "
                             "threshold or rules")
        if key == "schedule":
            return cls("schedule", parse_schedule(value), text)
        if key == "threshold":
            try:
                t = float(value)
            except ValueError:
                raise InputError(f"--change {text!r}: threshold {value!r} is not a number"
                                 ) from None
            RiskThresholdPolicy(t)  # validates the range
            return cls("threshold", t, text)
        if key in ("rules", "rule-file", "rule_file"):
            path = Path(value)
            if not path.is_file():
                raise InputError(f"--change {text!r}: rule file {path} not found")
            return cls("rules", path, text)
        raise InputError(f"--change {text!r}: unknown key {key!r}, expected schedule, "
                         "threshold or rules")


@dataclass
class WhatIfResult:
    """KPIs of the current and the changed setting and their paired differences.

    ``current`` / ``changed``: per KPI id of :data:`BUSINESS_KPIS` ``{"mean", "ci_low",
    "ci_high"}`` (95 % t-interval over seeds); ``difference``: the paired ``changed -
    current``. ``policy``: which policy ran (a :class:`Message`); ``start`` / ``end``: the
    simulated dates; ``rule_changes``: per changed rule ``{"rule_id", "title", "status",
    "refused_current", "refused_changed", "blocked", "allowed", "message", "text"}``;
    ``notes``: caveats (messages). ``lang`` is the language of ``text`` and labels.
    """

    change: str
    scenario: str
    n_invoices: int
    seeds: list[int]
    current: dict[str, dict[str, Any]]
    changed: dict[str, dict[str, Any]]
    difference: dict[str, dict[str, float]]
    vetoes_current: dict[str, int] = field(default_factory=dict)
    vetoes_changed: dict[str, int] = field(default_factory=dict)
    rule_changes: list[dict[str, Any]] = field(default_factory=list)
    policy: Message | str = "fixed 14/30/45"
    start: str = ""
    end: str = ""
    notes: list[Message] = field(default_factory=list)
    lang: str = "en"

    def labels(self, lang: str | None = None) -> dict[str, str]:
        """KPI id -> its business name in ``lang`` (default: the result's language)."""
        return {k: BUSINESS_KPIS[k].label[lang or self.lang] for k in self.current}

    def to_dict(self) -> dict[str, Any]:
        from legal_rules.messages import render

        lang = self.lang
        return {
            "change": self.change, "scenario": self.scenario, "n_invoices": self.n_invoices,
            "seeds": self.seeds, "start": self.start, "end": self.end, "lang": lang,
            "policy": render(self.policy, lang),
            "policy_message": (self.policy.to_dict() if isinstance(self.policy, Message)
                               else None),
            "kpi_labels": self.labels(),
            "better": {k: BUSINESS_KPIS[k].better for k in self.current},
            "current": self.current, "changed": self.changed,
            "difference": self.difference, "vetoes_current": self.vetoes_current,
            "vetoes_changed": self.vetoes_changed,
            "rule_changes": [{**{k: v for k, v in c.items() if k != "message"},
                              "message": c["message"].to_dict()} for c in self.rule_changes],
            "notes": [render(n, lang) for n in self.notes],
            "note_messages": [n.to_dict() for n in self.notes],
        }


@dataclass(frozen=True)
class ModelSourceConfig:
    """The company a threshold what-if is scored on when no probabilities are given.

    ``n_customers`` over ``months`` of the scenario are generated with ``seed``; a payment
    model is trained on what is known before the last ``holdout_months`` (the cut) and
    scores the invoices due from the cut on, each as of its invoice date.
    """

    n_customers: int = 150
    months: int = 12
    holdout_months: int = 3
    seed: int = 0


def model_probability_source(scenario: Any = "default", config: ModelSourceConfig | None = None,
                             model_dir: str | Path | None = None) -> Any:
    """Ground truth whose invoices carry payment-model probabilities, no oracle involved.

    The demo's hold-out evaluation (``policies.rl.holdout.HeldOutGroundTruth``): a company
    generated from ``scenario`` (:func:`simulations.world.generate_company`), its invoices due
    on or after the cut replayed in the ground-truth world, their observation probabilities
    from a payment model applied to the features known at each invoice date. ``model_dir``: that
    model (``dunning train``); default: one trained here with
    :func:`engine.models.training.train_artifact` on the company's history before the cut.
    Returns a ``HeldOutGroundTruth``.
    """
    import tempfile

    from engine.models import PaymentModel
    from policies.rl.holdout import month_cut
    from simulations import world

    cfg = config or ModelSourceConfig()
    if model_dir is not None and not Path(model_dir).is_dir():
        raise InputError(f"--model {model_dir}: not a directory; expected a payment model "
                         "written by `dunning train`")
    sc = world.load_scenario(scenario) if isinstance(scenario, str | Path) else scenario
    company = world.generate_company(sc, cfg.n_customers, cfg.months, cfg.seed)
    cut = month_cut(company.as_of, cfg.holdout_months)
    tables = {"customers": company.customers, "invoices": company.invoices,
              "payments": company.payments, "actions": company.actions}
    if model_dir is not None:
        return _scored_at_invoice_date(company, sc, cut, tables, PaymentModel.load(model_dir))
    from engine.models.training import TrainConfig, train_artifact

    with tempfile.TemporaryDirectory(prefix="dunning-whatif-model-") as tmp:
        train_artifact(tables, tmp, as_of=cut, cfg=TrainConfig(seed=cfg.seed))
        model = PaymentModel.load(tmp)
    return _scored_at_invoice_date(company, sc, cut, tables, model)


def _scored_at_invoice_date(company: Any, scenario: Any, cut: Any, tables: dict[str, Any],
                            model: Any) -> Any:
    """``HeldOutGroundTruth`` of the invoices due from ``cut`` with P(on time / late / very
    late) as of each invoice date (the meaning the daily run and the plausibility checks give
    it; as of the due date an unpaid invoice is by then almost never on time)."""
    import pandas as pd

    from engine.features import features_at, prepare_tables
    from policies.rl.holdout import HeldOutGroundTruth

    due = pd.to_datetime(company.invoices["due_date"]).dt.date.to_numpy()
    rows = np.flatnonzero(due >= cut)
    prepared = prepare_tables(tables)
    ids = company.invoices["invoice_id"].astype(str).to_numpy()[rows]
    pos = pd.Index(prepared.invoice_id.astype(str)).get_indexer(ids)
    proba = np.asarray(model.predict_proba(features_at(prepared, pos,
                                                       prepared.invoice_day[pos])), float)
    if proba.shape[1] == 2:  # binary model: no very-late class
        proba = np.column_stack([proba, np.zeros(len(proba))])
    return HeldOutGroundTruth(company, rows, proba, scenario)


def rules_with(path: Path) -> Any:
    """A legal mask of the packaged rules plus ``path`` (replacing a same-named file)."""
    from legal_rules.loader import layered_files, load_rules
    from simulations.env.masks import LegalMask

    return LegalMask(load_rules(layered_files([path])))


def resolve_policy(policy: str | Path | Policy | None = None,
                   run_dir: str | Path | None = None) -> tuple[Policy, Message]:
    """The shipped policy a rule change is judged under, and which one it is (a message).

    ``policy``: a policy object, a spec of ``policies.baselines.factory`` (``rl:DIR``,
    ``tuned:FILE``, ``fixed``, ...) or a path (an RL artifact directory, a tuned schedule
    JSON, or a pipeline output directory). Else ``run_dir`` (the pipeline's output
    directory): its RL policy (``policy/policy.json``), else its ``tuned_schedule.json``.
    Else the demo's tuned schedule packaged with ``dunning`` (it phones corporates,
    start-ups and SaaS customers; the fixed schedule never phones).
    """
    from policies.tuned import TunedSchedulePolicy

    if isinstance(policy, Policy):
        return policy, Message("whatif.policy_given", spec=getattr(policy, "name", "policy"))
    if policy is not None:
        spec = str(policy)
        path = Path(spec)
        if path.is_dir() and not (path / "policy.json").exists() and (
                (path / "policy" / "policy.json").exists()
                or (path / "tuned_schedule.json").exists()):
            return resolve_policy(None, path)  # a pipeline output directory
        if path.exists():
            from dunning.business.promotion import load_policy

            return load_policy(path, "--policy")[0], Message("whatif.policy_given", spec=spec)
        from policies.baselines.factory import make_policy

        if spec.strip().lower() in ("tuned", "oracle"):
            raise InputError(f"--policy {spec}: what-if needs a saved policy (tuned:FILE, "
                             "rl:DIR, a fixed schedule or a pipeline output directory); the "
                             "oracle knows the simulated truth and is no shipped policy")
        return make_policy(spec)[1], Message("whatif.policy_given", spec=spec)
    if run_dir is not None:
        run = Path(run_dir)
        if (run / "policy" / "policy.json").exists():
            from policies.rl import RLPolicy

            return RLPolicy.load(run / "policy"), Message("whatif.policy_run_rl", dir=str(run))
        if (run / "tuned_schedule.json").exists():
            return (TunedSchedulePolicy.load(run / "tuned_schedule.json"),
                    Message("whatif.policy_run_tuned", dir=str(run)))
        raise InputError(f"--run {run}: no policy/policy.json and no tuned_schedule.json; "
                         "expected the output directory of `dunning demo` / the pipeline")
    return TunedSchedulePolicy.load(DEMO_TUNED_SCHEDULE), Message("whatif.policy_packaged")


def channels_sent(policy: Policy) -> set[str] | None:
    """The channels a schedule policy can send (``None``: any, e.g. an RL policy)."""
    inner = getattr(policy, "inner", policy)
    schedules = getattr(inner, "schedules", None)
    if isinstance(schedules, dict):
        return {step.channel for steps in schedules.values() for step in steps}
    schedule = getattr(inner, "schedule", None)
    if schedule is not None:
        try:
            return {step.channel for step in schedule}
        except TypeError:
            return None
    return None


def _rule_key(rule: Any) -> tuple[Any, ...]:
    """What a rule decides (not where it is written or how it is tested)."""
    return (rule.title, rule.jurisdiction, rule.scope, rule.applies_to, rule.when, rule.effect,
            rule.cap, rule.valid_from, rule.valid_to)


def changed_rules(path: Path, rulesets: tuple[Any, Any] | None = None
                  ) -> list[tuple[Any, str]]:
    """``(rule, "added" | "changed" | "removed")`` for every rule that ``path`` (layered on
    the packaged rules) adds, changes or removes, sorted by rule id. ``rulesets``: the
    packaged and the layered rule sets when already loaded (loading takes a second each)."""
    from legal_rules.loader import layered_files, load_rules

    old, new = rulesets or (load_rules(), load_rules(layered_files([path])))
    before = {r.id: r for r in old.rules}
    after = {r.id: r for r in new.rules}
    out = [(after[i], "added") for i in after.keys() - before.keys()]
    out += [(before[i], "removed") for i in before.keys() - after.keys()]
    out += [(after[i], "changed") for i in after.keys() & before.keys()
            if _rule_key(after[i]) != _rule_key(before[i])]
    return sorted(out, key=lambda x: x[0].id)


@dataclass(frozen=True)
class SimulatedSetting:
    """What the comparison could show: the policy's channels (``None``: any), its name, the
    simulated dates and the jurisdictions of the simulated company."""

    channels: set[str] | None = None
    policy: Message | str = "fixed 14/30/45"
    start: Any = None
    end: Any = None
    jurisdictions: tuple[str, ...] | None = None


def rule_change_report(path: Path, vetoes_current: dict[str, int],
                       vetoes_changed: dict[str, int], n_checked: int,
                       schedule: Schedule = DEFAULT_SCHEDULE,
                       setting: SimulatedSetting | None = None,
                       lang: str = "en", rulesets: tuple[Any, Any] | None = None
                       ) -> list[dict[str, Any]]:
    """For each rule ``path`` changes: how many actions it blocked or allowed, in words.

    ``vetoes_*``: per rule id, the invoice-days on which it blocked an action the policy
    wanted (:class:`HeldBackCounter`), over every seed; ``n_checked``: invoices x seeds (the
    counts are also given per 1,000 invoices). A rule with no effect says why when it can be
    told: the policy never sends its actions, it is not in force on the simulated dates, the
    company has no customers in its jurisdiction. ``setting`` describes the run (default: the
    fixed ``schedule`` on today's date); ``text`` is in ``lang``, ``message`` the neutral form.
    """
    from datetime import date

    st = setting or SimulatedSetting(channels={s.channel for s in schedule},
                                     start=date.today(), end=date.today())
    out = []
    for rule, status in changed_rules(path, rulesets):
        cur, chg = vetoes_current.get(rule.id, 0), vetoes_changed.get(rule.id, 0)  # days
        channels = [a.channel for a in rule.applies_to]
        delta = chg - cur
        per_1000 = f"{abs(delta) / max(n_checked, 1) * 1000:.3g}"
        countries = getattr(rule, "countries", None)
        valid_to = rule.valid_to.isoformat() if rule.valid_to else "…"
        if delta > 0:
            msg = Message("whatif.held_back", what=_Actions(channels), n=delta, per_1000=per_1000)
        elif delta < 0:
            msg = Message("whatif.allowed", what=_Actions(channels), n=-delta,
                          per_1000=per_1000)
        elif st.channels is not None and not st.channels & set(channels):
            msg = Message("whatif.never_sent", policy=st.policy, what=_Actions(channels))
        elif st.start is not None and (rule.valid_from > st.end or (
                rule.valid_to is not None and rule.valid_to < st.start)):
            msg = Message("whatif.outside_period", valid_from=str(rule.valid_from),
                          valid_to=valid_to, start=str(st.start), end=str(st.end))
        elif (countries is not None and st.jurisdictions is not None
              and not set(countries) & set(st.jurisdictions)):
            msg = Message("whatif.no_jurisdiction", jurisdiction=rule.jurisdiction,
                          known=", ".join(st.jurisdictions))
        else:
            msg = Message("whatif.no_case", what=_Actions(channels))
        out.append({"rule_id": rule.id, "title": rule.title, "status": status,
                    "refused_current": cur, "refused_changed": chg,
                    "blocked": max(delta, 0), "allowed": max(-delta, 0),
                    "message": msg, "text": msg.render(lang)})
    return out


class _Actions(Message):
    """The plural action names of ``channels`` as a message parameter (rendered per
    language)."""

    def __new__(cls, channels: list[str]) -> _Actions:  # type: ignore[misc]
        obj = str.__new__(cls, actions_text(channels, "en"))
        obj.id, obj.params = "actions", {"channels": list(channels)}
        return obj

    def render(self, lang: str = "en") -> str:
        return actions_text(self.params["channels"], lang)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Actions, (self.params["channels"],))


def paired_difference(current: list[float], changed: list[float]) -> dict[str, float]:
    """Mean and 95 % t-interval of ``changed - current`` over seeds (paired)."""
    from simulations.evaluation.metrics import t_interval

    diff = np.asarray(changed, float) - np.asarray(current, float)
    mean, lo, hi = t_interval(diff)
    return {"mean": mean, "ci_low": lo, "ci_high": hi}


def _summary(values: list[float]) -> dict[str, float]:
    from simulations.evaluation.metrics import t_interval

    mean, lo, hi = t_interval(np.asarray(values, float))
    return {"mean": mean, "ci_low": lo, "ci_high": hi}


def _per_seed(overall: dict[str, Any], counter: HeldBackCounter | None, n_invoices: int
              ) -> dict[str, list[float]]:
    """Per business KPI id, its value per seed (from the harness and the counter)."""
    out: dict[str, list[float]] = {}
    for kpi_id, k in BUSINESS_KPIS.items():
        if k.source == "actions_blocked":
            if counter is not None:
                out[kpi_id] = [n / n_invoices * 1000 for n in counter.per_run]
        elif k.source in overall:
            out[kpi_id] = [float(v) * k.scale for v in overall[k.source]["per_seed"]]
    return out


def shifted_scenario(scenario: Any, start: Any) -> Any:
    """``scenario`` (name, path or ``Scenario``) with its invoices issued from ``start``."""
    import dataclasses

    from simulations import world

    sc = world.load_scenario(scenario) if isinstance(scenario, str | Path) else scenario
    return dataclasses.replace(sc, start_date=start)


def run_whatif(
    change: Change | str,
    scenario: Any = "default",
    n_invoices: int = 2000,
    seeds: int = 5,
    schedule: Schedule = DEFAULT_SCHEDULE,
    payment_probs: Callable[[Any], np.ndarray] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    model_dir: str | Path | None = None,
    model_source: ModelSourceConfig | None = None,
    *,
    policy: str | Path | Policy | None = None,
    run_dir: str | Path | None = None,
    start: Any = None,
    lang: str = "en",
) -> WhatIfResult:
    """Evaluate the current setting and the one ``change`` on the same invoices and draws.

    A ``rules`` change runs the shipped policy (:func:`resolve_policy` of ``policy`` /
    ``run_dir``) under the packaged and under the changed rules; ``schedule`` and
    ``threshold`` changes compare with the fixed ``schedule``. Schedule and rule changes
    simulate invoices issued from ``start`` (a date or ISO string; default today) over a
    year. ``payment_probs`` ``(InvoiceParams) -> (n, 3)`` fills the observation's
    payment-model probabilities (see ``simulations.env.ground_truth``). A ``threshold``
    change needs probabilities: without ``payment_probs`` it runs on
    :func:`model_probability_source` (a generated company's held-out invoices scored by the
    payment model in ``model_dir``, or by one trained on that company's earlier history;
    sizes in ``model_source``; its dates are the company's). ``lang``: ``en`` or ``de``
    for the texts (the result also keeps every message as id + parameters).
    """
    import datetime as dt

    from simulations.env.ground_truth import GroundTruthSource
    from simulations.evaluation.harness import evaluate_policies

    change = Change.parse(change) if isinstance(change, str) else change
    if lang not in ("en", "de"):
        raise InputError(f"language {lang!r}: expected en or de")
    if n_invoices < 10 or seeds < 2:
        raise InputError(f"invoices/seeds: found {n_invoices}/{seeds}, expected >= 10 invoices "
                         "and >= 2 seeds (the interval needs two)")
    if isinstance(start, str):
        try:
            start = dt.date.fromisoformat(start)
        except ValueError:
            raise InputError(f"--from {start!r}: write a date as YYYY-MM-DD, e.g. 2027-01-31"
                             ) from None
    notes: list[Message] = []
    scored = change.kind == "threshold" and payment_probs is None
    if scored:
        # Without probabilities every invoice would show (1/3, 1/3, 1/3): score them.
        source = model_probability_source(scenario, model_source, model_dir)
        sc = source.scenario
        first, last = source.date_range()
    else:
        sc = shifted_scenario(scenario, start or dt.date.today())
        source = GroundTruthSource(sc, payment_probs=payment_probs)
        first, last = sc.start_date, source.date_range()[1]
        notes.append(Message("whatif.dates", start=str(first), days=365, end=str(last)))
    if change.kind == "rules":
        shipped, policy_name = resolve_policy(policy, run_dir)
        if channels_sent(shipped) is None and payment_probs is None:
            notes.append(Message("whatif.uniform_probs"))
        from legal_rules.loader import layered_files, load_rules
        from simulations.env.masks import LegalMask

        rulesets = (load_rules(), load_rules(layered_files([change.value])))
        counters = (HeldBackCounter(shipped), HeldBackCounter(shipped))
        base = evaluate_policies({"current": counters[0]}, sc, n_invoices, seeds,
                                 source=source, mask=LegalMask(rulesets[0]), reference=None,
                                 progress=progress)
        new = evaluate_policies({"changed": counters[1]}, sc, n_invoices, seeds,
                                source=source, mask=LegalMask(rulesets[1]), reference=None,
                                progress=progress)
        cur, chg = base.overall["current"], new.overall["changed"]
        name = base.scenario
    else:
        policy_name = Message("whatif.policy_given", spec="fixed:" + ",".join(
            f"{s.day}:{s.channel}" for s in schedule))
        changed = (FixedSchedulePolicy(change.value) if change.kind == "schedule"
                   else RiskThresholdPolicy(change.value, schedule))
        counters = (HeldBackCounter(FixedSchedulePolicy(schedule)), HeldBackCounter(changed))
        res = evaluate_policies({"current": counters[0], "changed": counters[1]}, sc,
                                n_invoices, seeds, source=source, reference=None,
                                progress=progress)
        cur, chg = res.overall["current"], res.overall["changed"]
        name = res.scenario
    per = (_per_seed(cur, counters[0], n_invoices), _per_seed(chg, counters[1], n_invoices))
    notes.append(Message("whatif.blocked_means"))
    report = []
    if change.kind == "rules":
        setting = SimulatedSetting(channels_sent(shipped), policy_name, first, last,
                                   tuple(j.code for j in sc.jurisdictions))
        report = rule_change_report(change.value, counters[0].held_back,
                                    counters[1].held_back, n_invoices * seeds,
                                    setting=setting, lang=lang, rulesets=rulesets)
    return WhatIfResult(
        change=change.text, scenario=name, n_invoices=n_invoices, seeds=list(range(seeds)),
        current={k: _summary(v) for k, v in per[0].items()},
        changed={k: _summary(v) for k, v in per[1].items()},
        difference={k: paired_difference(per[0][k], per[1][k]) for k in per[0]},
        vetoes_current=dict(counters[0].held_back),
        vetoes_changed=dict(counters[1].held_back),
        rule_changes=report, policy=policy_name, start=str(first), end=str(last),
        notes=notes, lang=lang,
    )


__all__ = ["BUSINESS_KPIS", "Change", "ModelSourceConfig", "RiskThresholdPolicy",
           "WhatIfResult", "model_probability_source", "resolve_policy", "run_whatif"]
