"""`generate_company` / `dunning generate`: contract layout, determinism, no future data,
exact propensities, calibration of the default scenario."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dunning.cli import app
from engine.calendar import to_days
from engine.contract import CHANNELS, SEGMENTS, TABLES, Action
from engine.errors import InputError
from simulations import world

CSV = ("customers", "invoices", "payments", "actions")


def _read(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)


def test_tables_follow_the_contract(company: world.Company, tmp_path: Path) -> None:
    company.write(tmp_path)
    for name in CSV:
        df = _read(tmp_path, name)
        assert tuple(df.columns) == TABLES[name].column_names
        for col in TABLES[name].columns:
            values = df[col.name]
            if col.required:
                assert (values != "").all(), (name, col.name)
            filled = values[values != ""]
            if col.dtype == "date":
                assert filled.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all(), (name, col.name)
            if col.dtype == "bool":
                assert filled.isin(["true", "false"]).all(), (name, col.name)
            if col.choices:
                assert filled.isin(col.choices).all(), (name, col.name)
            if col.unique:
                assert filled.is_unique, (name, col.name)
    customers, invoices = _read(tmp_path, "customers"), _read(tmp_path, "invoices")
    assert set(customers.segment) == set(SEGMENTS)
    assert {"healthcare", "public_sector", "construction"} <= set(customers.industry)
    assert (customers.industry[customers.segment == "construction"] == "construction").all()
    assert set(customers.customer_type) == {"b2b", "b2c"}
    lang = dict(zip(customers.jurisdiction, customers.language, strict=True))
    assert (lang["SE"], lang["GB"], lang["DE"]) == ("sv", "en", "de")
    cur = invoices.merge(customers, on="customer_id").groupby("jurisdiction").currency.unique()
    assert list(cur["SE"]) == ["SEK"] and list(cur["GB"]) == ["GBP"] and list(cur["FR"]) == ["EUR"]
    assert (invoices.due_date >= invoices.invoice_date).all()
    summary = json.loads((tmp_path / "summary.json").read_text())
    kpis = ("n_invoices", "first_reminder_pay_rate", "mean_days_invoice_to_payment",
            "on_time_rate")
    assert "n_customers" in summary and all(key in summary for key in kpis)
    assert set(summary["per_segment"]) == set(SEGMENTS)
    assert all(key in summary["per_segment"][s] for s in SEGMENTS for key in kpis)
    assert summary["n_invoices"] == len(invoices)


def test_no_data_after_as_of_and_payments_consistent(company: world.Company) -> None:
    as_of = company.as_of.isoformat()
    inv, pay, act = company.invoices, company.payments, company.actions
    assert (inv.invoice_date <= as_of).all()
    assert (pay.payment_date <= as_of).all() and (act.action_date <= as_of).all()
    assert (inv.dispute_opened[inv.dispute_opened != ""] <= as_of).all()
    merged = pay.merge(inv[["invoice_id", "amount", "invoice_date", "due_date"]],
                       on="invoice_id", suffixes=("", "_inv"))
    assert pay.invoice_id.is_unique  # full payments only
    np.testing.assert_allclose(merged.amount, merged.amount_inv)
    assert (merged.payment_date >= merged.invoice_date).all()
    # Open invoices at the as-of date exist and have no payment.
    open_ = ~inv.invoice_id.isin(pay.invoice_id)
    assert open_.sum() > 0
    # A paid invoice gets no action after its payment.
    last_act = act.groupby("invoice_id").action_date.max()
    paid_on = pay.set_index("invoice_id").payment_date
    both = last_act.index.intersection(paid_on.index)
    agency = set(act.invoice_id[act.channel == "agency"])
    normal = [i for i in both if i not in agency]
    assert (last_act[normal] <= paid_on[normal]).all()


def test_payments_and_actions_only_on_business_days(company: world.Company) -> None:
    p, cal = company.params, company.params.calendar
    row = {iid: i for i, iid in enumerate(company.invoices.invoice_id)}
    for table, col in ((company.payments, "payment_date"), (company.actions, "action_date")):
        rows = table.invoice_id.map(row).to_numpy()
        days = to_days(table[col])
        assert cal.is_business[p.jurisdiction[rows], cal.index(days)].all(), table


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path,
                                                 scenario: world.Scenario) -> None:
    outs = []
    for i, seed in enumerate((5, 5, 6)):
        c = world.generate_company(scenario, n_customers=60, months=4, seed=seed)
        outs.append(c.write(tmp_path / str(i)))
    same = [a.read_bytes() == b.read_bytes() for a, b in zip(outs[0], outs[1], strict=True)]
    other = [a.read_bytes() == b.read_bytes() for a, b in zip(outs[0], outs[2], strict=True)]
    assert all(same) and not all(other)


def _replay_state(company: world.Company, rows: np.ndarray, acts: pd.DataFrame,
                  day: int) -> world.WorldState:
    """The Markov state of invoices ``rows`` on ``day`` rebuilt from the action log alone."""
    p = company.params.take(rows)
    sc = p.scenario
    state = world.initial_state(p)
    state.t[:] = day - p.due_day
    for i, r in enumerate(rows):
        before = acts[(acts.row == r) & (acts.day < day)].sort_values("day")
        if len(before):
            state.n[i] = min(len(before), sc.max_reminders)
            state.c[i] = Action.from_channel(before.channel.iloc[-1])
            state.k[i] = min(day - before.day.iloc[-1], sc.max_days_since_reminder)
            state.final_notice[i] = (before.channel == "final_notice").any()
    return state


def test_logged_propensity_is_the_logging_policy_probability(company: world.Company) -> None:
    acts = company.actions.copy()
    row = {iid: i for i, iid in enumerate(company.invoices.invoice_id)}
    acts["row"] = acts.invoice_id.map(row)
    acts["day"] = to_days(acts.action_date)
    undisputed = set(np.flatnonzero(company.invoices.disputed.to_numpy() == "false"))
    sample = acts[acts.row.isin(undisputed)].sample(300, random_state=0)
    rows = sample.row.to_numpy()
    got = np.empty(len(sample))
    for i, (r, d, ch) in enumerate(zip(rows, sample.day, sample.channel, strict=True)):
        state = _replay_state(company, np.array([r]), acts, d)
        probs = world.logging_policy_probs(company.params.take(np.array([r])), state)
        got[i] = probs[0, Action.from_channel(ch)]
    np.testing.assert_allclose(got, sample.propensity.to_numpy(dtype=float), rtol=1e-12)
    assert ((sample.propensity.astype(float) > 0) & (sample.propensity.astype(float) <= 1)).all()
    assert set(company.actions.decided_by) == {"policy:logging"}
    assert set(company.actions.channel) <= set(CHANNELS)


def test_default_scenario_is_calibrated_to_the_before_figures(
        scenario: world.Scenario) -> None:
    c = world.generate_company(scenario, n_customers=2500, months=15, seed=3)
    s = c.summary
    assert s["mature_cohort"]
    assert s["first_reminder_pay_rate"] == pytest.approx(0.23, abs=0.03)
    assert s["mean_days_invoice_to_payment"] == pytest.approx(67, abs=5)
    seg = s["per_segment"]
    # Segments genuinely differ.
    assert seg["family_business"]["mean_days_invoice_to_payment"] < seg["corporate"][
        "mean_days_invoice_to_payment"] - 20


def test_cli_generate_and_bad_scenario(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "gen"
    res = runner.invoke(app, ["generate", "--customers", "40", "--months", "3", "--seed", "1",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{n}.csv" for n in CSV]
                                                          + ["summary.json"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: broken\nhorizon_days: -3\n")
    res = runner.invoke(app, ["generate", "--scenario", str(bad), "--out", str(tmp_path / "x")])
    assert res.exit_code == 2
    assert "bad.yaml" in res.output and "Traceback" not in res.output


def test_any_valid_scenario_works_end_to_end(tmp_path: Path) -> None:
    """Nothing is tied to the default: other jurisdictions, caps, horizon and schedule."""
    import yaml

    from policies.oracle import solve
    from simulations.world.scenario import SCENARIO_DIR, scenario_from_dict

    data = yaml.safe_load((SCENARIO_DIR / "default.yaml").read_text())
    data["jurisdictions"] = {"PL": {"weight": 0.5, "currency": "PLN", "language": "pl"},
                             "US": {"weight": 0.5, "currency": "USD", "language": "en"}}
    data["horizon_days"] = 60
    data["state"] = {"max_days_since_reminder": 10, "max_reminders": 2}
    data["logging_policy"]["schedule"] = [["letter", 10], ["phone", 20], ["agency", 40]]
    data["logging_policy"]["explore"] = 0.0  # the plain schedule: first reminder on 10 +- 2
    data["segments"]["corporate"]["weight"] += data["segments"]["saas"]["weight"]
    data["segments"]["saas"]["weight"] = 0  # shares still sum to 1
    sc = scenario_from_dict(data, "custom.yaml")
    company = world.generate_company(sc, n_customers=80, months=5, seed=1)
    company.write(tmp_path)
    assert set(company.customers.jurisdiction) == {"PL", "US"}
    assert "saas" not in set(company.customers.segment)
    assert set(company.actions.channel) <= {"letter", "phone", "email", "final_notice",
                                            "agency"}
    first = company.actions.groupby("invoice_id").action_date.min()
    due = company.invoices.set_index("invoice_id").due_date
    lag = (pd.to_datetime(first) - pd.to_datetime(due[first.index])).dt.days
    assert lag.min() >= 8  # the first reminder comes 10 +- 2 days after due
    sol = solve(company.params.take(np.arange(4)))
    assert sol.policy.shape[1:] == (60, sol.space.size) and np.isfinite(sol.value).all()
    data["logging_policy"]["schedule"] = [["email", 5], ["email", 10], ["email", 15]]
    with pytest.raises(InputError, match="max_reminders"):
        scenario_from_dict(data, "custom.yaml")


def test_exploration_puts_early_reminders_and_calls_in_the_history(
        company: world.Company) -> None:
    """With ``explore`` > 0 the log holds early first reminders (before the jittered window)
    and phone calls; with ``explore`` = 0 (same seed) it holds no early first reminder."""
    import dataclasses

    def early_and_phone(c: world.Company) -> tuple[float, float]:
        a = c.actions.merge(c.invoices[["invoice_id", "due_date"]], on="invoice_id")
        overdue = (pd.to_datetime(a["action_date"]) - pd.to_datetime(a["due_date"])).dt.days
        first = overdue.groupby(a["invoice_id"]).min()
        lp = c.params.scenario.logging_policy
        return (float((first < lp.schedule[0][1] - lp.jitter_days).mean()),
                float((a["channel"] == "phone").mean()))

    sc = company.params.scenario
    assert sc.logging_policy.explore > 0
    early, phone = early_and_phone(company)
    plain = dataclasses.replace(sc, logging_policy=dataclasses.replace(sc.logging_policy,
                                                                       explore=0.0))
    c0 = world.generate_company(plain, 300, 12, seed=4)
    early0, phone0 = early_and_phone(c0)
    assert early0 == 0.0
    assert early > 0.04 and phone > phone0
