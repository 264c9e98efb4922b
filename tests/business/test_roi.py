"""ROI calculator: hand-computed figures, viability checks, sensitivity, results parsing."""

from __future__ import annotations

import json

import pytest

from dunning.business.roi import (
    KpiChange,
    PolicyKpis,
    RoiInputs,
    compute_roi,
    load_results,
    parse_results,
    roi_section,
    sensitivity,
    yearly_benefit,
)
from engine.errors import InputError

FIXED = {"mean_days_to_pay": 67.0, "reminders_per_invoice": 1.8, "first_reminder_pay_rate": 0.23,
         "violations": 0, "write_off_rate": 0.02, "agency_rate": 0.04}
RL = {"mean_days_to_pay": 58.0, "reminders_per_invoice": 1.3, "first_reminder_pay_rate": 0.31,
      "violations": 0, "write_off_rate": 0.015, "agency_rate": 0.03}


def kpis(d: dict) -> PolicyKpis:
    return PolicyKpis.from_mapping(d)


def test_figures_match_hand_computation():
    inputs = RoiInputs(annual_revenue=3_650_000, invoices_per_year=2_000, cost_of_capital=0.05,
                       cost_per_reminder=10, staff_fte_saved=0.5, fte_cost=60_000,
                       agency_fee_rate=0.2, agency_recovery_rate=0.5, bad_debt_rate=0.01,
                       one_off_cost=24_000, running_cost_per_year=6_000)
    r = compute_roi(kpis(FIXED), kpis(RL), inputs)
    # 9 days x 10,000 EUR/day x 5 %
    assert r.liquidity == pytest.approx(4_500.0)
    assert r.reminders_saved == pytest.approx(0.5 * 2_000 * 10)
    assert r.staff_time_saved == pytest.approx(30_000.0)
    # a handed-over invoice loses 1 - 0.5 x (1 - 0.2) = 0.6 of its amount; loss shares:
    # fixed 0.02 + 0.04 x 0.6 = 0.044, RL 0.015 + 0.03 x 0.6 = 0.033 -> 25 % less;
    # 25 % of today's bad debt (1 % of 3,650,000 = 36,500) = 9,125
    assert r.losses_avoided == pytest.approx(9_125.0)
    net = 4_500 + 10_000 + 30_000 + 9_125 - 6_000
    assert r.yearly_benefit == pytest.approx(net)
    assert r.payback_months == pytest.approx(12 * 24_000 / net)
    assert r.break_even_month == 7  # 6.04 months: the cumulative benefit covers it in month 7
    assert r.three_year_net == pytest.approx(3 * net - 24_000)
    assert r.viable and r.reasons == ()


def test_agency_handovers_are_partial_recoveries_not_saved_write_offs():
    """The demo's pattern: RL hands over what the fixed schedule writes off at the horizon.

    Revenue 1,000,000, bad debt 2 % (20,000 EUR), recovery 50 %, fee 20 % -> a handover
    loses 1 - 0.5 x 0.8 = 0.6. Fixed: write-off 10 %, agency 0 -> loss share 0.10.
    RL: write-off 2 %, agency 10 % -> 0.02 + 0.10 x 0.6 = 0.08, 20 % less than fixed ->
    losses avoided 0.2 x 20,000 = 4,000 EUR. (The old formula counted the 8-point write-off
    drop as 80,000 EUR saved and the handovers only by their fee, 20,000: 60,000 EUR.)
    A policy that hands over 10 % more without writing off less loses 0.06 more: +60 % of
    the bad debt, -12,000 EUR.
    """
    inputs = RoiInputs(annual_revenue=1_000_000, bad_debt_rate=0.02,
                       agency_recovery_rate=0.5, agency_fee_rate=0.2)
    fixed = {"mean_days_to_pay": 60.0, "reminders_per_invoice": 2.0, "write_off_rate": 0.10,
             "agency_per_1000": 0.0}
    rl = {**fixed, "write_off_rate": 0.02, "agency_per_1000": 100.0}
    assert compute_roi(kpis(fixed), kpis(rl), inputs).losses_avoided == pytest.approx(4_000.0)
    eager = {**fixed, "agency_per_1000": 100.0}
    assert compute_roi(kpis(fixed), kpis(eager), inputs).losses_avoided == \
        pytest.approx(-12_000.0)


def test_demo_results_give_a_plausible_loss_saving():
    """The demo's KPIs (fixed: 30.1 % written off, no agency; RL: 1.6 % written off, 28.3 %
    handed over) on the default 10M EUR company: losses avoided stay below today's bad
    debt (100,000 EUR), not the 2.4M EUR the absolute formula gave."""
    fixed = {"mean_days_to_pay": 70.0, "reminders_per_invoice": 2.05,
             "write_off_rate": 0.3007, "agency_per_1000": 0.0}
    rl = {"mean_days_to_pay": 58.1, "reminders_per_invoice": 2.37,
          "write_off_rate": 0.016, "agency_per_1000": 283.3}
    r = compute_roi(kpis(fixed), kpis(rl))
    # loss share RL: 0.016 + 0.2833 x (1 - 0.6 x 0.85) = 0.1548; (0.3007 - 0.1548) / 0.3007
    # = 0.485 of 1 % x 10,000,000
    assert r.losses_avoided == pytest.approx(48_514.5, rel=1e-4)
    assert r.reminders_saved < 0  # RL reminds more: a cost


def test_zero_current_losses_fall_back_to_the_absolute_difference():
    fixed = {"mean_days_to_pay": 60.0, "reminders_per_invoice": 2.0, "write_off_rate": 0.0,
             "agency_per_1000": 0.0}
    worse = {**fixed, "write_off_rate": 0.01}
    r = compute_roi(kpis(fixed), kpis(worse), RoiInputs(annual_revenue=1_000_000))
    assert r.losses_avoided == pytest.approx(-10_000.0)


def test_missing_loss_kpis_count_as_no_change():
    a = {k: v for k, v in FIXED.items() if k not in ("write_off_rate", "agency_rate")}
    r = compute_roi(kpis(a), kpis(RL))
    assert r.losses_avoided == 0.0


@pytest.mark.parametrize(
    ("inputs", "current", "proposed", "needle"),
    [
        (RoiInputs(active_customers=60), FIXED, RL, "60 active customers"),
        (RoiInputs(), {**FIXED, "first_reminder_pay_rate": 0.93}, RL, "already 93%"),
        (RoiInputs(), FIXED, {**RL, "violations": 2}, "2 legal violations"),
    ],
)
def test_unviable_inputs_give_reasons_instead_of_numbers(inputs, current, proposed, needle):
    r = compute_roi(kpis(current), kpis(proposed), inputs)
    assert not r.viable
    assert any(needle in reason for reason in r.reasons)
    assert r.yearly_benefit is None and r.payback_months is None and r.liquidity is None


def test_negative_net_benefit_has_no_payback():
    worse = {**FIXED, "mean_days_to_pay": 70.0, "reminders_per_invoice": 2.5}
    r = compute_roi(kpis(FIXED), kpis(worse), RoiInputs(staff_fte_saved=0.0))
    assert r.yearly_benefit < 0
    assert not r.viable and r.payback_months is None and r.break_even_month is None
    assert "does not pay back" in r.reasons[0]


def test_sensitivity_swings_are_the_linear_effects():
    inputs = RoiInputs()
    change = KpiChange.between(kpis(FIXED), kpis(RL))
    bars = {b.name: b for b in sensitivity(inputs, change, variation=0.2)}
    base = yearly_benefit(inputs, change)
    reminders = 0.5 * inputs.invoices_per_year * inputs.cost_per_reminder
    assert bars["cost_per_reminder"].swing == pytest.approx(0.4 * reminders)
    assert bars["cost_per_reminder"].low == pytest.approx(base - 0.2 * reminders)
    staff = inputs.staff_fte_saved * inputs.fte_cost
    assert bars["staff_fte_saved"].swing == pytest.approx(0.4 * staff)
    # more running cost -> less benefit
    assert bars["running_cost_per_year"].high < bars["running_cost_per_year"].low
    swings = [b.swing for b in sensitivity(inputs, change, 0.2)]
    assert swings == sorted(swings, reverse=True) and all(s > 0 for s in swings)


def test_sensitivity_rejects_bad_variation():
    with pytest.raises(InputError, match="variation"):
        sensitivity(RoiInputs(), KpiChange(1, 1, 0, 0), variation=1.5)


def test_inputs_validation():
    with pytest.raises(InputError, match="cost_of_capital"):
        RoiInputs(cost_of_capital=-0.1)
    with pytest.raises(InputError, match="bad_debt_rate: found 1.5, expected a share"):
        RoiInputs(bad_debt_rate=1.5)


def test_parse_results_accepts_harness_and_demo_layouts(tmp_path):
    demo = {"fixed": FIXED, "rl": RL}
    harness = {"policies": {"fixed": {"overall": {k: {"mean": v, "ci": [v, v]}
                                                  for k, v in FIXED.items()}},
                            "rl": {"overall": {k: {"mean": v} for k, v in RL.items()}}}}
    assert parse_results(demo)["rl"] == parse_results(harness)["rl"]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(harness))
    assert load_results(path)["fixed"].mean_days_to_pay == 67.0


def test_bad_results_name_the_problem(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"fixed": {"mean_days_to_pay": 60,\n "reminders_per_invoice": }}')
    with pytest.raises(InputError, match="bad.json: line 2"):
        load_results(path)
    with pytest.raises(InputError, match="'reminders_per_invoice' is 'many'"):
        parse_results({"fixed": {"mean_days_to_pay": 60, "reminders_per_invoice": "many"}})
    with pytest.raises(InputError, match="policy 'rl' not found"):
        roi_section({"fixed": FIXED}, proposed="rl")


def test_roi_section_for_the_report():
    section = roi_section({"fixed": FIXED, "rl": RL}, variation=0.1)
    assert section["viable"]
    assert section["figures"]["yearly_benefit"] > 0
    assert section["tornado_svg"].startswith("<svg")
    assert {b["name"] for b in section["tornado"]} >= {"cost_per_reminder", "days_to_pay_reduction"}
    json.dumps({k: v for k, v in section.items() if k != "tornado_svg"})  # serialisable
    unviable = roi_section({"fixed": FIXED, "rl": RL}, inputs=RoiInputs(active_customers=10))
    assert not unviable["viable"] and unviable["tornado"] == [] and unviable["tornado_svg"] == ""
