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

from engine.errors import InputError
from policies.baselines.schedule import (
    DEFAULT_SCHEDULE,
    FixedSchedulePolicy,
    Schedule,
    ScheduleStep,
    parse_schedule,
)
from policies.common.policy import Policy
from simulations.env.layout import LAYOUT

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "change": self.change, "scenario": self.scenario, "n_invoices": self.n_invoices,
            "seeds": self.seeds, "current": self.current, "changed": self.changed,
            "difference": self.difference, "vetoes_current": self.vetoes_current,
            "vetoes_changed": self.vetoes_changed,
        }


def rules_with(path: Path) -> Any:
    """A legal mask of the packaged rules plus ``path`` (replacing a same-named file)."""
    from legal_rules.loader import load_rules, rule_files
    from simulations.env.masks import LegalMask

    files = [f for f in rule_files() if f.name != path.name] + [path]
    return LegalMask(load_rules(files))


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
) -> WhatIfResult:
    """Evaluate the current setting and the one ``change`` on the same invoices and draws.

    ``payment_probs`` ``(InvoiceParams) -> (n, 3)`` fills the observation's payment-model
    probabilities (see ``simulations.env.ground_truth``); a ``threshold`` change needs it,
    since without it every invoice shows the uninformative (1/3, 1/3, 1/3).
    """
    from simulations.env.ground_truth import GroundTruthSource
    from simulations.evaluation.harness import evaluate_policies

    change = Change.parse(change) if isinstance(change, str) else change
    if n_invoices < 10 or seeds < 2:
        raise InputError(f"invoices/seeds: found {n_invoices}/{seeds}, expected >= 10 invoices "
                         "and >= 2 seeds (the interval needs two)")
    if change.kind == "threshold" and payment_probs is None:
        raise InputError(f"--change {change.text!r}: a risk threshold needs payment-model "
                         "probabilities in the simulation; none are available (the "
                         "ground-truth source shows 1/3 for every class without them)")
    source = GroundTruthSource(scenario, payment_probs=payment_probs)
    current_policy = FixedSchedulePolicy(schedule)
    if change.kind == "rules":
        base = evaluate_policies({"current": current_policy}, scenario, n_invoices, seeds,
                                 source=source, reference=None, progress=progress)
        new = evaluate_policies({"changed": current_policy}, scenario, n_invoices, seeds,
                                source=source, mask=rules_with(change.value), reference=None,
                                progress=progress)
        cur, chg = base.overall["current"], new.overall["changed"]
        vetoes = (base.vetoes["current"], new.vetoes["changed"])
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
    return WhatIfResult(
        change=change.text, scenario=name, n_invoices=n_invoices, seeds=list(range(seeds)),
        current={k: {x: cur[k][x] for x in ("mean", "ci_low", "ci_high")} for k in kpis},
        changed={k: {x: chg[k][x] for x in ("mean", "ci_low", "ci_high")} for k in kpis},
        difference={k: paired_difference(cur[k]["per_seed"], chg[k]["per_seed"])
                    for k in kpis},
        vetoes_current=dict(vetoes[0]), vetoes_changed=dict(vetoes[1]),
    )


__all__ = ["Change", "RiskThresholdPolicy", "WhatIfResult", "run_whatif"]
