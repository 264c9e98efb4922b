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
    assert r.difference["reminders"]["mean"] != 0
    assert r.changed["actions_against_rules"]["mean"] == 0


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
    reminders = (low.difference["reminders"]["mean"], high.difference["reminders"]["mean"])
    assert reminders[0] < reminders[1] <= 0
    assert low.difference["days_to_pay"]["mean"] > 0
    assert low.changed["actions_against_rules"]["mean"] == 0


def test_rule_file_change_moves_the_kpis(tmp_path):
    rule = tmp_path / "extra.yaml"
    rule.write_text(NO_EMAIL_RULE)
    r = run_whatif(f"rules={rule}", policy="fixed", start="2026-12-07", **SMALL)
    # the schedule waits for the rule: the first email goes out on day 20, not 14
    assert r.difference["days_to_pay"]["mean"] > 0
    assert r.changed["actions_against_rules"]["mean"] == 0
    assert r.difference["actions_blocked"]["mean"] > 0
    # and it says, in words, how many actions the new rule blocked
    [report] = r.rule_changes
    n = report["refused_changed"]
    # days 14..19 of every invoice still open then: up to 6 held-back days each
    assert 0 < n <= 6 * SMALL["n_invoices"] * SMALL["seeds"]
    assert report["status"] == "added" and report["refused_current"] == 0
    assert report["text"].startswith(f"blocked email reminders on {n} more invoice-days (")
    per_1000 = n / (SMALL["n_invoices"] * SMALL["seeds"]) * 1000
    assert f"({per_1000:.3g} per 1,000 invoices;" in report["text"]
    assert report["blocked"] == n and report["allowed"] == 0
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
        "no effect visible here: the policy that ran (fixed 14/30/45) never sends phone calls")
    assert row["message"].id == "whatif.never_sent"
    # a team's de.yaml: only the edited rule is reported; fewer refusals = allowed
    de = tmp_path / "de.yaml"
    old = "when: {fact: contacts_last_7_days, op: ge, value: 2}"
    text = (packaged_rules_dir() / "de.yaml").read_text("utf-8")
    de.write_text(text.replace(old, old.replace("value: 2", "value: 3")), "utf-8")
    [row] = rule_change_report(de, {"de.proportionality": 30}, {"de.proportionality": 10},
                               2000)
    assert (row["rule_id"], row["status"]) == ("de.proportionality", "changed")
    assert row["text"] == ("allowed email reminders or reminder letters or phone calls or "
                           "final notices on 20 invoice-days on which they were blocked "
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


# ------------------------------------------------ the shipped policy on current dates (#23)
AT_NO_PHONE = """\
rules:
  - id: team.at_no_phone_b2c
    title: No phone calls to Austrian consumers
    jurisdiction: AT
    scope: b2c
    applies_to: [phone]
    effect: veto
    kind: company_policy
    citation: "company policy"
    valid_from: {valid_from}
    rationale: legal wants to see what it costs
    tests:
      - {{facts: {{}}, action: phone, expect: fires, decision: vetoed}}
      - {{facts: {{customer_type: b2b}}, action: phone, expect: does_not_fire}}
"""
PHONING = "fixed:5:phone,19:letter,33:phone"  # a policy that phones every overdue invoice
WHATIF_SMALL = {"n_invoices": 250, "seeds": 2}


def _rule(tmp_path, valid_from="2020-01-01", jurisdiction="AT"):
    path = tmp_path / "team.yaml"
    path.write_text(AT_NO_PHONE.format(valid_from=valid_from)
                    .replace("jurisdiction: AT", f"jurisdiction: {jurisdiction}"))
    return path


def test_austrian_consumer_no_phone_rule_shows_under_a_policy_that_phones(tmp_path):
    rule = _rule(tmp_path)
    r = run_whatif(f"rules={rule}", policy=PHONING, start="2026-12-07", **WHATIF_SMALL)
    [row] = r.rule_changes
    assert row["rule_id"] == "team.at_no_phone_b2c" and row["blocked"] > 0
    assert row["message"].id == "whatif.held_back"
    assert r.difference["actions_blocked"]["mean"] > 0
    # paired: the same invoices and draws, so the interval is around the paired difference
    d = r.difference["cash_collected"]
    assert d["ci_low"] <= d["mean"] <= d["ci_high"]
    assert r.start == "2026-12-07" and str(r.policy) == f"the policy given: {PHONING}"
    # the fixed schedule never phones: zero, and it says why
    fixed = run_whatif(f"rules={rule}", policy="fixed", start="2026-12-07", **WHATIF_SMALL)
    [row] = fixed.rule_changes
    assert row["blocked"] == 0 and row["message"].id == "whatif.never_sent"
    assert all(d["mean"] == 0 for d in fixed.difference.values())


def test_default_policy_is_the_demo_tuned_schedule_which_phones(tmp_path):
    from dunning.business.whatif import channels_sent, resolve_policy

    policy, name = resolve_policy()
    assert name.id == "whatif.policy_packaged" and "phone" in channels_sent(policy)
    # a pipeline output directory: its tuned schedule (no RL artifact there)
    policy.save(tmp_path / "tuned_schedule.json")
    again, name = resolve_policy(run_dir=tmp_path)
    assert name.id == "whatif.policy_run_tuned" and again.to_dict() == policy.to_dict()
    assert resolve_policy(str(tmp_path))[1].id == "whatif.policy_run_tuned"
    with pytest.raises(InputError, match="no policy/policy.json"):
        resolve_policy(run_dir=tmp_path / "missing")


def test_rule_valid_from_next_year_shows_on_current_dates(tmp_path):
    rule = _rule(tmp_path, valid_from="2027-01-01")
    now = run_whatif(f"rules={rule}", policy=PHONING, start="2026-12-07", **WHATIF_SMALL)
    assert now.rule_changes[0]["blocked"] > 0
    past = run_whatif(f"rules={rule}", policy=PHONING, start="2024-01-01", **WHATIF_SMALL)
    [row] = past.rule_changes
    assert row["blocked"] == 0 and row["message"].id == "whatif.outside_period"
    assert "outside the simulated dates 2024-01-01 .. " in row["text"]
    assert all(d["mean"] == 0 for d in past.difference.values())


def test_rule_that_changes_nothing_shows_zero_and_says_why_in_both_languages(tmp_path):
    rule = _rule(tmp_path, jurisdiction="US")  # the simulated company has no US customers
    r = run_whatif(f"rules={rule}", policy=PHONING, start="2026-12-07", lang="de",
                   n_invoices=100, seeds=2)
    [row] = r.rule_changes
    assert row["blocked"] == row["allowed"] == 0
    assert all(d["mean"] == 0 for d in r.difference.values())
    assert row["message"].id == "whatif.no_jurisdiction"
    assert str(row["message"]).startswith("no effect visible here: the simulated company has "
                                          "no customers in US")
    assert row["text"].startswith("hier keine Wirkung sichtbar: das simulierte Unternehmen "
                                  "hat keine Kunden in US")
    d = r.to_dict()
    assert d["kpi_labels"]["cash_collected"].startswith("Geldeingang je Rechnung")
    assert d["rule_changes"][0]["message"]["id"] == "whatif.no_jurisdiction"
    assert "npv" not in d["current"] and "days_sales_outstanding" in d["current"]


def test_what_if_cli_reports_in_business_terms(tmp_path):
    import json

    from typer.testing import CliRunner

    from dunning.cli import app

    rule = _rule(tmp_path)
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["what-if", "--rule-file", str(rule), "--policy", PHONING,
                                   "--from", "2026-12-07", "--invoices", "200", "--seeds", "2",
                                   "--json", str(out)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "cash collected per invoice" in res.output and "npv" not in res.output
    assert "days sales outstanding" in res.output
    assert "added rule team.at_no_phone_b2c (No phone calls to Austrian consumers): " \
           "blocked phone calls on" in res.output
    assert json.loads(out.read_text())["policy"] == f"the policy given: {PHONING}"
    bad = CliRunner().invoke(app, ["what-if", "--rule-file", str(rule), "--from", "31.12.2026"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
