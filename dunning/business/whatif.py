"""What-if: re-run the evaluation with one change and show how the KPIs move.

The current setting is the fixed schedule (email day 14, letter day 30, final notice day 45
after due) under the packaged legal rules. One change at a time:

- ``schedule=7,21,35`` (or ``schedule=7:email,21:phone``): another fixed schedule;
- ``threshold=0.4``: risk-based timing - invoices the payment model flags as at risk
  (P(on time) < threshold) follow the schedule, the others follow it ``RISK_DELAY_DAYS``
  (14) days later (they are expected to pay anyway; early reminders mostly annoy them);
  the current setting is threshold 1.0 (every overdue invoice is treated as at risk);
- ``rules=X.yaml``: the packaged rules with ``X.yaml`` added, or replacing the packaged
  file of the same name (so legal can test an edited copy of ``de.yaml``).

Both settings run in the harness on the same invoices with the same random draws per seed
(common random numbers), so the per-seed difference is paired; its mean and 95 % Student-t
interval over seeds is the effect of the change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.contract import Action
from engine.errors import InputError
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
# KPIs shown, in order (names of simulations.evaluation.metrics.KPI_DOC).
WHATIF_KPIS: tuple[str, ...] = (
    "npv", "mean_days_to_pay", "dso", "first_reminder_pay_rate", "reminders_per_invoice",
    "complaints_per_1000", "agency_per_1000", "write_off_rate", "violations",
    "refused_attempts",
)


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
        self._sim: Any = None

    def bind_simulator(self, sim: Any) -> None:
        self._sim = sim
        self.inner.bind_simulator(sim)

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        wanted = np.asarray(self.inner.act(observations, np.ones_like(masks)), dtype=np.int64)
        rows = np.arange(len(wanted))
        held = rows[(wanted != int(Action.WAIT)) & ~masks[rows, wanted]]
        if self._sim is not None:
            held = held[np.asarray(self._sim.active)[held]]
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
    """KPIs of the current and the changed setting and their paired differences."""

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "change": self.change, "scenario": self.scenario, "n_invoices": self.n_invoices,
            "seeds": self.seeds, "current": self.current, "changed": self.changed,
            "difference": self.difference, "vetoes_current": self.vetoes_current,
            "vetoes_changed": self.vetoes_changed, "rule_changes": self.rule_changes,
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


# what a rule's action is called for a finance or legal reader, plural
ACTION_WORDS = {"email": "email reminders", "letter": "reminder letters", "phone": "phone calls",
                "final_notice": "final notices", "agency": "agency handovers"}


def _rule_key(rule: Any) -> tuple[Any, ...]:
    """What a rule decides (not where it is written or how it is tested)."""
    return (rule.title, rule.jurisdiction, rule.scope, rule.applies_to, rule.when, rule.effect,
            rule.cap, rule.valid_from, rule.valid_to)


def changed_rules(path: Path) -> list[tuple[Any, str]]:
    """``(rule, "added" | "changed" | "removed")`` for every rule that ``path`` (layered on
    the packaged rules) adds, changes or removes, sorted by rule id."""
    from legal_rules.loader import layered_files, load_rules

    before = {r.id: r for r in load_rules().rules}
    after = {r.id: r for r in load_rules(layered_files([path])).rules}
    out = [(after[i], "added") for i in after.keys() - before.keys()]
    out += [(before[i], "removed") for i in before.keys() - after.keys()]
    out += [(after[i], "changed") for i in after.keys() & before.keys()
            if _rule_key(after[i]) != _rule_key(before[i])]
    return sorted(out, key=lambda x: x[0].id)


def rule_change_report(path: Path, vetoes_current: dict[str, int],
                       vetoes_changed: dict[str, int], n_checked: int,
                       schedule: Schedule = DEFAULT_SCHEDULE) -> list[dict[str, Any]]:
    """For each rule ``path`` changes: how many actions it blocked or allowed, in words.

    ``vetoes_*``: per rule id, the invoice-days on which it held back an action the schedule
    was due to take (:class:`HeldBackCounter`), over every seed; ``n_checked``: invoices x
    seeds (the counts are also given per 1,000 invoices). A rule with no effect says why when
    it can be told: its actions are ones the schedule never takes, or it takes effect after
    today (the simulation runs on past dates).
    """
    from datetime import date

    used = {s.channel for s in schedule}
    out = []
    for rule, status in changed_rules(path):
        cur, chg = vetoes_current.get(rule.id, 0), vetoes_changed.get(rule.id, 0)  # days
        channels = [a.channel for a in rule.applies_to]
        what = " or ".join(ACTION_WORDS.get(c, c) for c in channels)
        delta = chg - cur
        per_1000 = abs(delta) / max(n_checked, 1) * 1000
        if delta > 0:
            text = (f"held back {what} on {delta} more invoice-days ({per_1000:.3g} per "
                    "1,000 invoices; an action held back is sent on the next allowed day)")
        elif delta < 0:
            text = (f"allowed {what} on {-delta} invoice-days on which they were held back "
                    f"before ({per_1000:.3g} per 1,000 invoices)")
        elif not used & set(channels):
            text = (f"no effect visible here: the schedule never sends {what}, so this "
                    "comparison cannot show the rule")
        elif rule.valid_from > date.today():
            text = (f"no effect visible here: the rule takes effect on {rule.valid_from}, "
                    "after the simulated dates")
        else:
            text = f"blocked or allowed no {what} on the simulated invoices"
        out.append({"rule_id": rule.id, "title": rule.title, "status": status,
                    "refused_current": cur, "refused_changed": chg, "text": text})
    return out


def paired_difference(current: list[float], changed: list[float]) -> dict[str, float]:
    """Mean and 95 % t-interval of ``changed - current`` over seeds (paired)."""
    from simulations.evaluation.metrics import t_interval

    diff = np.asarray(changed, float) - np.asarray(current, float)
    mean, lo, hi = t_interval(diff)
    return {"mean": mean, "ci_low": lo, "ci_high": hi}


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
) -> WhatIfResult:
    """Evaluate the current setting and the one ``change`` on the same invoices and draws.

    ``payment_probs`` ``(InvoiceParams) -> (n, 3)`` fills the observation's payment-model
    probabilities (see ``simulations.env.ground_truth``). A ``threshold`` change needs
    probabilities: without ``payment_probs`` it runs on :func:`model_probability_source`
    (a generated company's held-out invoices scored by the payment model in ``model_dir``,
    or by one trained on that company's earlier history; sizes in ``model_source``).
    """
    from simulations.env.ground_truth import GroundTruthSource
    from simulations.evaluation.harness import evaluate_policies

    change = Change.parse(change) if isinstance(change, str) else change
    if n_invoices < 10 or seeds < 2:
        raise InputError(f"invoices/seeds: found {n_invoices}/{seeds}, expected >= 10 invoices "
                         "and >= 2 seeds (the interval needs two)")
    if change.kind == "threshold" and payment_probs is None:
        # Without probabilities every invoice would show (1/3, 1/3, 1/3): score them.
        source = model_probability_source(scenario, model_source, model_dir)
    else:
        source = GroundTruthSource(scenario, payment_probs=payment_probs)
    current_policy = FixedSchedulePolicy(schedule)
    if change.kind == "rules":
        counters = (HeldBackCounter(current_policy), HeldBackCounter(current_policy))
        base = evaluate_policies({"current": counters[0]}, scenario, n_invoices, seeds,
                                 source=source, reference=None, progress=progress)
        new = evaluate_policies({"changed": counters[1]}, scenario, n_invoices, seeds,
                                source=source, mask=rules_with(change.value), reference=None,
                                progress=progress)
        cur, chg = base.overall["current"], new.overall["changed"]
        vetoes = (base.vetoes["current"], new.vetoes["changed"])
        held = (counters[0].held_back, counters[1].held_back)
        name = base.scenario
    else:
        changed = (FixedSchedulePolicy(change.value) if change.kind == "schedule"
                   else RiskThresholdPolicy(change.value, schedule))
        res = evaluate_policies({"current": current_policy, "changed": changed}, scenario,
                                n_invoices, seeds, source=source, reference=None,
                                progress=progress)
        cur, chg = res.overall["current"], res.overall["changed"]
        vetoes = (res.vetoes["current"], res.vetoes["changed"])
        name = res.scenario
    kpis = [k for k in WHATIF_KPIS if k in cur]
    report = (rule_change_report(change.value, held[0], held[1], n_invoices * seeds,
                                 schedule) if change.kind == "rules" else [])
    return WhatIfResult(
        change=change.text, scenario=name, n_invoices=n_invoices, seeds=list(range(seeds)),
        current={k: {x: cur[k][x] for x in ("mean", "ci_low", "ci_high")} for k in kpis},
        changed={k: {x: chg[k][x] for x in ("mean", "ci_low", "ci_high")} for k in kpis},
        difference={k: paired_difference(cur[k]["per_seed"], chg[k]["per_seed"])
                    for k in kpis},
        vetoes_current=dict(vetoes[0]), vetoes_changed=dict(vetoes[1]), rule_changes=report,
    )


__all__ = ["Change", "ModelSourceConfig", "RiskThresholdPolicy", "WhatIfResult",
           "model_probability_source", "run_whatif"]
