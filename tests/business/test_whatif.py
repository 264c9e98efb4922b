"""What-if: paired re-evaluation with one change, on the real harness and legal rules."""

from __future__ import annotations

import numpy as np
import pytest

from dunning.business.roi import parse_results
from dunning.business.whatif import Change, ModelSourceConfig, RiskThresholdPolicy, run_whatif
from engine.contract import N_ACTIONS, Action
from engine.errors import InputError
from simulations.env.layout import LAYOUT

SMALL = {"n_invoices": 120, "seeds": 2}

NO_EMAIL_RULE = """\
rules:
  - id: test.no_email_before_day_20
    title: No email reminder before day 20 after due
    jurisdiction: "*"
    scope: both
    applies_to: [email]
    when: {fact: days_overdue, op: lt, value: 20}
    effect: veto
    kind: company_policy
    citation: "test rule"
    valid_from: 2000-01-01
    rationale: a change legal wants to see the effect of
    tests:
      - {facts: {days_overdue: 14}, expect: fires, decision: vetoed}
      - {facts: {days_overdue: 25}, expect: does_not_fire}
"""


def test_change_parsing():
    assert Change.parse("schedule=7,21,35").value[0].day == 7
    assert Change.parse("threshold=0.4").value == 0.4
    with pytest.raises(InputError, match="unknown key 'speed'"):
        Change.parse("speed=3")
    with pytest.raises(InputError, match="expected a probability"):
        Change.parse("threshold=1.5")
    with pytest.raises(InputError, match="not found"):
        Change.parse("rules=/nonexistent.yaml")
    with pytest.raises(InputError, match="KEY=VALUE"):
        Change.parse("schedule")


def test_risk_threshold_policy_delays_trusted_invoices():
    obs = np.zeros((4, LAYOUT.dim), dtype=np.float32)
    obs[:, LAYOUT["days_overdue"]] = [14, 14, 28, 27]
    probs = LAYOUT.slice("payment_probs")
    obs[:, probs] = [[0.2, 0.4, 0.4], [0.8, 0.1, 0.1], [0.8, 0.1, 0.1], [0.8, 0.1, 0.1]]
    masks = np.ones((4, N_ACTIONS), dtype=bool)
    actions = RiskThresholdPolicy(0.5).act(obs, masks)
    assert list(actions) == [Action.EMAIL, Action.WAIT, Action.EMAIL, Action.WAIT]


def test_no_change_means_zero_difference():
    r = run_whatif("schedule=14,30,45", **SMALL)
    assert all(d["mean"] == 0 for d in r.difference.values())
    assert r.current == r.changed


def test_schedule_change_is_a_paired_difference():
    r = run_whatif("schedule=7,21,35", **SMALL)
    for k, d in r.difference.items():
        assert d["mean"] == pytest.approx(r.changed[k]["mean"] - r.current[k]["mean"])
    assert r.difference["reminders_per_invoice"]["mean"] != 0
    assert r.changed["violations"]["mean"] == 0


def test_threshold_extremes_match_the_schedules_they_stand_for():
    def half(params):  # every invoice P(on time) = 0.5
        return np.tile([0.5, 0.3, 0.2], (len(params.amount), 1))

    everyone_at_risk = run_whatif("threshold=0.9", payment_probs=half, **SMALL)
    assert all(d["mean"] == 0 for d in everyone_at_risk.difference.values())
    nobody_at_risk = run_whatif("threshold=0.1", payment_probs=half, **SMALL)
    shifted = run_whatif("schedule=28,44,59", **SMALL)
    assert nobody_at_risk.changed == shifted.changed


def test_threshold_by_default_uses_model_probabilities_and_moves_kpis_as_expected():
    """Without given probabilities a payment model trained on a generated history scores
    the simulated invoices. The current setting treats every invoice as at risk (threshold
    1); a lower threshold delays reminders for more invoices: fewer reminders, later
    payment, and the lower the threshold the stronger the effect."""
    source = ModelSourceConfig(n_customers=120, months=10, holdout_months=3, seed=1)
    low = run_whatif("threshold=0.1", n_invoices=300, seeds=2, model_source=source)
    high = run_whatif("threshold=0.6", n_invoices=300, seeds=2, model_source=source)
    assert low.current == high.current  # same invoices and draws for the current setting
    reminders = (low.difference["reminders_per_invoice"]["mean"],
                 high.difference["reminders_per_invoice"]["mean"])
    assert reminders[0] < reminders[1] <= 0
    assert low.difference["mean_days_to_pay"]["mean"] > 0
    assert low.changed["violations"]["mean"] == 0


def test_rule_file_change_moves_the_kpis(tmp_path):
    rule = tmp_path / "extra.yaml"
    rule.write_text(NO_EMAIL_RULE)
    r = run_whatif(f"rules={rule}", **SMALL)
    # the schedule waits for the rule: the first email goes out on day 20, not 14
    assert r.difference["mean_days_to_pay"]["mean"] > 0
    assert r.changed["violations"]["mean"] == 0
    # and it says, in words, how many actions the new rule blocked
    [report] = r.rule_changes
    n = report["refused_changed"]
    # days 14..19 of every invoice still open then: up to 6 held-back days each
    assert 0 < n <= 6 * SMALL["n_invoices"] * SMALL["seeds"]
    assert report["status"] == "added" and report["refused_current"] == 0
    assert report["text"].startswith(f"held back email reminders on {n} more invoice-days (")
    per_1000 = n / (SMALL["n_invoices"] * SMALL["seeds"]) * 1000
    assert f"({per_1000:.3g} per 1,000 invoices;" in report["text"]
    assert r.changed["refused_attempts"]["mean"] == 0  # the counter changes no KPI
    broken = tmp_path / "broken.yaml"
    broken.write_text(NO_EMAIL_RULE.replace("effect: veto", "effect: explode"))
    with pytest.raises(InputError, match="broken.yaml"):
        run_whatif(f"rules={broken}", **SMALL)


def test_rule_change_report_names_changed_rules_and_why_nothing_shows(tmp_path):
    from dunning.business.whatif import rule_change_report
    from legal_rules.loader import packaged_rules_dir

    phone = tmp_path / "team.yaml"
    phone.write_text(NO_EMAIL_RULE.replace("test.no_email_before_day_20", "test.no_phone_at")
                     .replace("applies_to: [email]", "applies_to: [phone]"))
    [row] = rule_change_report(phone, {}, {}, 1000)
    assert row["status"] == "added" and row["text"].startswith(
        "no effect visible here: the schedule never sends phone calls")
    # a team's de.yaml: only the edited rule is reported; fewer refusals = allowed
    de = tmp_path / "de.yaml"
    old = "when: {fact: contacts_last_7_days, op: ge, value: 2}"
    text = (packaged_rules_dir() / "de.yaml").read_text("utf-8")
    de.write_text(text.replace(old, old.replace("value: 2", "value: 3")), "utf-8")
    [row] = rule_change_report(de, {"de.proportionality": 30}, {"de.proportionality": 10},
                               2000)
    assert (row["rule_id"], row["status"]) == ("de.proportionality", "changed")
    assert row["text"] == ("allowed email reminders or reminder letters or phone calls or "
                           "final notices on 20 invoice-days on which they were held back "
                           "before (10 per 1,000 invoices)")


def test_harness_output_feeds_the_roi_calculator():
    from policies.baselines.schedule import FixedSchedulePolicy, NeverPolicy
    from simulations.evaluation.harness import evaluate_policies

    res = evaluate_policies({"fixed": FixedSchedulePolicy(), "never": NeverPolicy()},
                            n_invoices=100, seeds=2)
    kpis = parse_results(res.to_dict())
    assert kpis["fixed"].mean_days_to_pay == pytest.approx(res.kpi("fixed", "mean_days_to_pay"))
    assert kpis["never"].reminders_per_invoice == 0
    assert kpis["fixed"].agency_rate == pytest.approx(res.kpi("fixed", "agency_per_1000") / 1000)
