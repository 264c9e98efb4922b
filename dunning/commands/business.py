"""CLI commands of the business area: roi, pilot design/analyse, drift, retrain, what-if."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dunning.business.roi import RoiInputs  # light: dataclasses only
from dunning.commands.common import console, user_errors
from engine.config import DEFAULT_DATA_DIR, DEFAULT_DB
from engine.errors import InputError

if TYPE_CHECKING:
    from dunning.business.whatif import WhatIfResult

_ROI = RoiInputs()  # the documented defaults, shown in --help

DEFAULT_RESULTS = DEFAULT_DATA_DIR / "results.json"

pilot_app = typer.Typer(help="Design and analyse a pilot of the learned policy.",
                        no_args_is_help=True)


def _eur(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f} EUR"


def _parse_date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option}: found {value!r}, expected a date YYYY-MM-DD") from None


# ----------------------------------------------------------------------------------- roi
@user_errors
def roi(
    results: Path = typer.Option(DEFAULT_RESULTS, "--results",
                                 help="results.json of the demo or evaluation.json."),
    current: str = typer.Option("fixed", "--current", help="Policy in use today."),
    proposed: str = typer.Option("rl", "--proposed", help="Policy to adopt."),
    annual_revenue: float = typer.Option(_ROI.annual_revenue, help="EUR invoiced per year."),
    invoices_per_year: float = typer.Option(_ROI.invoices_per_year,
                         help="Invoices issued per year."),
    active_customers: int = typer.Option(_ROI.active_customers,
                         help="Customers invoiced in the last 12 months."),
    cost_of_capital: float = typer.Option(_ROI.cost_of_capital,
                         help="Yearly cost of financing receivables."),
    cost_per_reminder: float = typer.Option(_ROI.cost_per_reminder,
                         help="Full cost of one reminder, EUR."),
    staff_fte_saved: float = typer.Option(_ROI.staff_fte_saved,
                         help="Share of one FTE freed from dunning."),
    fte_cost: float = typer.Option(_ROI.fte_cost, help="Yearly cost of one FTE, EUR."),
    agency_fee_rate: float = typer.Option(_ROI.agency_fee_rate,
                         help="Share an agency keeps of a claim."),
    agency_recovery_rate: float = typer.Option(_ROI.agency_recovery_rate,
                                               help="Share of handed-over claims recovered."),
    bad_debt_rate: float = typer.Option(_ROI.bad_debt_rate, help="Today's yearly losses on "
                                        "receivables, share of revenue."),
    one_off_cost: float = typer.Option(_ROI.one_off_cost, help="Setup cost, EUR."),
    running_cost: float = typer.Option(_ROI.running_cost_per_year,
                         help="Running cost per year, EUR."),
    variation: float = typer.Option(0.2, help="+- share each input is varied in the tornado."),
    json_out: Path = typer.Option(None, "--json", help="Also write the figures as JSON."),
) -> None:
    """Turn evaluation results into money: yearly benefit, payback, sensitivity."""
    from rich.table import Table

    from dunning.business.roi import roi_section
    from engine.files import atomic_write_json

    inputs = RoiInputs(
        annual_revenue=annual_revenue, invoices_per_year=invoices_per_year,
        active_customers=active_customers, cost_of_capital=cost_of_capital,
        cost_per_reminder=cost_per_reminder, staff_fte_saved=staff_fte_saved,
        fte_cost=fte_cost, agency_fee_rate=agency_fee_rate,
        agency_recovery_rate=agency_recovery_rate, bad_debt_rate=bad_debt_rate,
        one_off_cost=one_off_cost,
        running_cost_per_year=running_cost,
    )
    section = roi_section(results, current, proposed, inputs, variation, chart=False)
    fig = section["figures"]
    if json_out:
        atomic_write_json(json_out, section)
    console.print(f"[bold]{proposed}[/] instead of [bold]{current}[/] ({results})",
                  highlight=False)
    if fig["yearly_benefit"] is None:
        console.print("[bold red]unlikely to pay off[/] - no figure is given because:")
        for reason in section["reasons"]:
            console.print(f"  - {reason}", highlight=False)
        return
    ch = fig["change"]
    console.print(f"days to pay {-ch['days_to_pay_reduction']:+.1f}, reminders per invoice "
                  f"{-ch['reminders_saved_per_invoice']:+.2f}, write-off rate "
                  f"{-ch['write_off_rate_reduction']:+.1%}, agency rate "
                  f"{-ch['agency_rate_reduction']:+.1%}", highlight=False)
    t = Table(title="yearly business case")
    t.add_column("part")
    t.add_column("EUR / year", justify="right")
    for key in ("liquidity", "reminders_saved", "staff_time_saved", "losses_avoided"):
        t.add_row(key.replace("_", " "), f"{fig[key]:,.0f}")
    t.add_row("running cost", f"-{fig['running_cost']:,.0f}")
    t.add_row("[bold]net yearly benefit[/]", f"[bold]{fig['yearly_benefit']:,.0f}[/]")
    console.print(t)
    if fig["payback_months"] is None:
        console.print(f"[bold red]does not pay back[/]: {'; '.join(section['reasons'])}",
                      highlight=False)
    else:
        console.print(f"one-off cost {_eur(fig['one_off_cost'])}: payback after "
                      f"{fig['payback_months']:.1f} months (break-even in month "
                      f"{fig['break_even_month']}); 3-year net {_eur(fig['three_year_net'])}",
                      highlight=False)
    s = Table(title=f"sensitivity: each input -/+ {variation:.0%}")
    for col in ("input", "benefit at -", "benefit at +", "swing"):
        s.add_column(col, justify="left" if col == "input" else "right")
    for bar in section["tornado"]:
        s.add_row(bar["name"], f"{bar['low']:,.0f}", f"{bar['high']:,.0f}", f"{bar['swing']:,.0f}")
    console.print(s)


# --------------------------------------------------------------------------------- pilot
@user_errors
def pilot_design(
    customers: int = typer.Option(250, "--customers", help="Customers in the pilot (both arms)."),
    metric: str = typer.Option("first_reminder_pay_rate", "--metric",
                               help="first_reminder_pay_rate, days_to_pay or npv."),
    db: Path = typer.Option(None, "--db", help="Store with the company's history (variance, "
                            "customers)."),
    results: Path = typer.Option(None, "--results", help="Simulation results instead of "
                                 "history (variance only; assumes --icc)."),
    scenario: str = typer.Option(None, "--scenario", help="Simulate a synthetic company of "
                                 "this scenario and use its history (a dry run)."),
    effect: float = typer.Option(None, "--effect", help="Smallest difference worth detecting "
                                 "(share, days or EUR); default 5 points / 5 days / 2 % NPV."),
    stratify_by: str = typer.Option("segment", "--stratify-by",
                                    help="Customer column to stratify by, or 'none'."),
    months: float = typer.Option(3.0, "--months", help="Planned enrolment duration."),
    icc: float = typer.Option(0.0, "--icc", help="Intra-customer correlation with --results."),
    alpha: float = typer.Option(0.05, "--alpha"),
    power: float = typer.Option(0.8, "--power"),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(None, "--out", help="Assignment CSV (customer_id, arm, stratum); "
                             "a <out>.json with the power analysis is written next to it."),
) -> None:
    """Randomise customers to the current and the learned policy and size the pilot."""
    import json

    import pandas as pd

    from dunning.business.outcomes import (
        check_metric,
        invoice_outcomes,
        load_tables,
        simulated_history,
    )
    from dunning.business.pilot import (
        assign_arms,
        outcome_stats,
        power_analysis,
        stats_from_results,
    )
    from engine.files import atomic_write_json, atomic_write_text

    check_metric(metric)
    if sum(x is not None for x in (db, results, scenario)) != 1:
        raise InputError("give exactly one of --db (history, preferred), --results or --scenario")
    tables, source = None, str(db or results or f"scenario {scenario} (simulated)")
    if scenario is not None:
        with console.status(f"simulating a company of scenario {scenario}"):
            tables = simulated_history(scenario, max(2 * customers, 300), 12, seed)
        stats = outcome_stats(invoice_outcomes(tables), metric, source=source)
    elif db is not None:
        tables = load_tables(db)
        stats = outcome_stats(invoice_outcomes(tables), metric, source=source)
    else:
        if not results.exists():
            raise InputError(f"{results}: file not found, expected results JSON")
        stats = stats_from_results(json.loads(results.read_text()), metric, icc=icc,
                                   source=str(results))
    pa = power_analysis(stats, effect, customers, months, alpha, power)
    _print_power(pa)
    if out is None:
        return
    if tables is None:
        raise InputError("--out needs the customer list: give --db (or --scenario for a dry "
                         "run)")
    pool = _active_customers(tables)
    strat = None if stratify_by.lower() == "none" else stratify_by
    assignment = assign_arms(pool, customers, strat, seed)
    atomic_write_text(out, assignment.to_csv(index=False, lineterminator="\n"))
    latest = max(tables["invoices"]["invoice_date"].max(),
                 tables["payments"]["payment_date"].max())
    design = {"designed_on": str(latest.date()),
              "pilot_start": str((latest + pd.Timedelta(days=1)).date()), "seed": seed,
              "stratify_by": strat, "source": source, "power": pa.to_dict()}
    atomic_write_json(out.with_suffix(".json"), design)
    console.print(f"assignment of {len(assignment)} customers -> {out} (design: "
                  f"{out.with_suffix('.json')}); pilot invoices are those dated from "
                  f"{design['pilot_start']}", highlight=False)


def _active_customers(tables: dict) -> object:
    """Customers with an invoice in the last 365 days of the history (with their segment)."""
    import pandas as pd

    inv = tables["invoices"]
    recent = inv["invoice_date"] > inv["invoice_date"].max() - pd.Timedelta(days=365)
    ids = set(inv.loc[recent, "customer_id"])
    cust = tables["customers"]
    return cust[cust["customer_id"].isin(ids)].reset_index(drop=True)


def _print_power(pa) -> None:  # noqa: ANN001 - PowerAnalysis, imported lazily
    unit = {"first_reminder_pay_rate": "points", "days_to_pay": "days", "npv": "EUR"}[pa.metric]
    scale = 100.0 if pa.metric == "first_reminder_pay_rate" else 1.0
    s = pa.stats
    console.print(
        f"[bold]{pa.metric}[/] from {s.source}: baseline {pa.baseline * scale:.2f}, sd "
        f"{s.sd * scale:.2f}, intra-customer correlation {pa.icc:.2f}, "
        f"{pa.eligible_per_customer_month:.2f} eligible invoices per customer and month",
        highlight=False)
    console.print(
        f"to detect {pa.effect * scale:.2f} {unit} (alpha {pa.alpha}, power {pa.power}): "
        f"{pa.invoices_per_arm_if_independent} invoices per arm if independent; "
        f"{pa.customers_needed} customers for a {pa.months:g}-month pilot", highlight=False)
    if pa.months_needed is None:
        console.print(f"with {pa.n_customers} customers: [red]not detectable at any duration[/] "
                      "(differences between customers dominate; add customers)")
    else:
        console.print(f"with {pa.n_customers} customers: {pa.months_needed:.1f} months of "
                      f"enrolment, {pa.total_months:.1f} months until all outcomes are known",
                      highlight=False)
    console.print(f"{pa.n_customers} customers over {pa.months:g} months detect an effect of "
                  f"[bold]{pa.mde * scale:.2f} {unit}[/]"
                  + (f" ({pa.mde_relative:.0%} of the baseline)" if pa.mde_relative else ""),
                  highlight=False)


@user_errors
def pilot_analyse(
    assignment: Path = typer.Option(..., "--assignment", help="CSV from `pilot design`."),
    db: Path = typer.Option(DEFAULT_DB, "--db", help="Store with the pilot's data."),
    from_date: str = typer.Option(None, "--from", help="First day of the pilot (YYYY-MM-DD); "
                                  "default pilot_start in <assignment>.json."),
    metric: list[str] = typer.Option(None, "--metric", help="Metric(s); default all three."),
    method: str = typer.Option("welch", "--method", help="welch or bootstrap."),
    alpha: float = typer.Option(0.05, "--alpha"),
    json_out: Path = typer.Option(None, "--json", help="Also write the analysis as JSON."),
) -> None:
    """Compare the arms with confidence intervals and apply the safety guard."""
    from rich.table import Table

    from dunning.business.outcomes import METRICS, check_metric
    from dunning.business.pilot import analyse_pilot, read_assignment
    from engine.files import atomic_write_json

    metrics = [check_metric(m) for m in (metric or METRICS)]
    frame = read_assignment(assignment)
    start = _parse_date(from_date, "--from") or _design_date(assignment)
    analysis = analyse_pilot(frame, db, start, metrics, method, alpha)
    for c in analysis["comparisons"]:
        t = Table(title=f"{c['metric']} ({c['method']}, {1 - alpha:.0%} CI)")
        for col in ("arm", "customers", "invoices", "mean", "CI"):
            t.add_column(col, justify="left" if col == "arm" else "right")
        for a in c["arms"]:
            t.add_row(a["arm"], str(a["n_customers"]), str(a["n_invoices"]), f"{a['mean']:.4g}",
                      f"[{a['ci_low']:.4g}, {a['ci_high']:.4g}]")
        console.print(t)
        verdict = "[green]significant[/]" if c["significant"] else "not significant"
        console.print(f"learned - current: {c['difference']:.4g} [{c['ci_low']:.4g}, "
                      f"{c['ci_high']:.4g}], p={c['p_value']:.3g}: {verdict}", highlight=False)
    for m in analysis["skipped"]:
        console.print(f"[yellow]{m}[/]", highlight=False)
    last = analysis["guard"][-1] if analysis["guard"] else None
    if last and last["stop"]:
        console.print(f"[bold red]STOP the pilot[/] (look of {last['date']}): {last['reason']}",
                      highlight=False)
    elif last:
        console.print(f"safety guard: continue ({len(analysis['guard'])} look(s), last "
                      f"{last['date']}: complaints learned {last['complaints_learned']} / "
                      f"current {last['complaints_current']})", highlight=False)
    if json_out:
        atomic_write_json(json_out, analysis)


def _design_date(assignment: Path) -> dt.date | None:
    import json

    sidecar = assignment.with_suffix(".json")
    if not sidecar.exists():
        return None
    try:
        return dt.date.fromisoformat(json.loads(sidecar.read_text())["pilot_start"])
    except (KeyError, ValueError, TypeError):
        raise InputError(f"{sidecar}: field pilot_start missing or not a date; give --from") \
            from None

# --------------------------------------------------------------------------------- drift
@user_errors
def drift(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="Store file."),
    model: Path = typer.Option(..., "--model", help="Payment model directory."),
    recent_days: int = typer.Option(90, "--recent-days", help="Length of the recent window."),
    as_of: str = typer.Option(None, "--as-of", help="End of the recent window (YYYY-MM-DD); "
                              "default the latest date in the store."),
    reference_days: int = typer.Option(None, "--reference-days", help="Compare with the "
                                       "last N days of the training period (default: all of it)."),
    json_out: Path = typer.Option(None, "--json", help="Also write the report as JSON."),
) -> None:
    """Feature shift (PSI) and calibration drift (ECE per month) of the payment model."""
    from rich.table import Table

    from dunning.business.drift import DriftReport
    from dunning.business.model_io import drift_report
    from engine.files import atomic_write_json

    with console.status("scoring the history with the model"):
        report: DriftReport = drift_report(db, model, recent_days,
                                           _parse_date(as_of, "--as-of"), warn=False,
                                           reference_days=reference_days)
    console.print(f"model {report.model}: training period {report.reference_period[0]} .. "
                  f"{report.reference_period[1]} vs recent {report.recent_period[0]} .. "
                  f"{report.recent_period[1]}", highlight=False)
    colour = {"warning": "red", "watch": "yellow", "ok": "green", "seasonal": "dim",
              "too few": "dim", "training": "dim"}
    t = Table(title="feature shift (PSI: < 0.1 stable, 0.1-0.2 watch, > 0.2 warning)")
    for col in ("feature", "PSI", "status"):
        t.add_column(col, justify="right" if col == "PSI" else "left")
    for r in report.features.itertuples():
        t.add_row(r.feature, f"{r.psi:.3f}", f"[{colour[r.status]}]{r.status}[/]")
    console.print(t)
    c = Table(title="calibration of P(on time) per month (warning: ECE > 0.05 and > the "
                    "noise level of a calibrated model on that many invoices)")
    for col in ("month", "invoices", "predicted", "observed", "ECE", "noise", "status"):
        c.add_column(col, justify="left" if col in ("month", "status") else "right")
    for r in report.calibration.itertuples():
        c.add_row(str(r.window_start)[:7], str(r.n), f"{r.mean_p:.2f}", f"{r.observed:.2f}",
                  f"{r.ece:.3f}", f"{r.ece_noise:.3f}", f"[{colour[r.status]}]{r.status}[/]")
    console.print(c)
    if report.drifted:
        console.print(f"[bold red]{len(report.messages)} drift warning(s)[/]: consider "
                      "`dunning retrain`", highlight=False)
    else:
        console.print("[green]no drift above the thresholds[/]")
    if json_out:
        atomic_write_json(json_out, report.to_dict())


# ------------------------------------------------------------------------------- retrain
@user_errors
def retrain(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="Store file."),
    model: Path = typer.Option(..., "--model", help="Current payment model directory "
                               "(created when missing)."),
    policy: Path = typer.Option(None, "--policy", help="RL policy trained on the model; "
                                "marked stale in the log when the model is replaced."),
    as_of: str = typer.Option(None, "--as-of", help="Train on data up to this date "
                              "(YYYY-MM-DD); default the latest date in the store."),
    holdout_fraction: float = typer.Option(0.2, "--holdout-fraction"),
    seed: int = typer.Option(0, "--seed"),
    policy_candidate: Path = typer.Option(None, "--policy-candidate", help="New policy (RL "
                                          "directory or tuned-schedule JSON); replaces "
                                          "--policy only if off-policy evaluation says it is "
                                          "at least as good."),
    company: Path = typer.Option(None, "--company", help="Generated company directory "
                                 "(summary.json) the store came from; default <db dir>/company."),
    ope_from: str = typer.Option(None, "--ope-from", help="Evaluate on logged episodes due "
                                 "from this date (YYYY-MM-DD); default the last 180 days of "
                                 "complete episodes."),
    tolerance: float = typer.Option(0.01, "--tolerance", help="Non-inferiority margin, share "
                                    "of the current policy's value per invoice."),
    policy_only: bool = typer.Option(False, "--policy-only", help="Only the policy gate; do "
                                     "not retrain the payment model."),
) -> None:
    """Train a candidate model; promote it only if its holdout log loss is at least as good.

    With --policy-candidate also gate a new policy on off-policy evaluation (DR and SNIPS).
    """
    evaluation, gate = None, None
    if policy_candidate is not None:
        if policy is None:
            raise InputError("--policy-candidate: needs --policy, the policy in use")
        from dunning.business.promotion import PolicyGateConfig, evaluate_candidate

        gate = PolicyGateConfig(tolerance_share=tolerance, seed=seed)
        with console.status("off-policy evaluation of the current and the candidate policy"):
            evaluation = evaluate_candidate(
                db, model, policy, policy_candidate, company or Path(db).parent / "company",
                _parse_date(ope_from, "--ope-from"), gate)
    elif policy_only:
        raise InputError("--policy-only: needs --policy-candidate")
    model_gate = None if policy_only else _retrain_model(
        db, model, None if evaluation else policy, as_of, holdout_fraction, seed)
    if evaluation is not None:
        _finish_policy_gate(evaluation, policy, policy_candidate, gate, model_gate)


def _finish_policy_gate(evaluation: dict, policy: Path, candidate: Path, gate: object,
                        model_gate: bool | None) -> None:
    from dunning.business.promotion import finish, promotion_log_path

    d = finish(evaluation, policy, candidate, gate, model_gate)  # type: ignore[arg-type]
    console.print(f"policy gate: {d.episodes} logged episodes due {d.ope_from} .. {d.ope_to}; "
                  f"margin {d.tolerance:.2f} per invoice", highlight=False)
    for name in ("dr", "snips"):
        e = d.estimates[name]
        console.print(f"  {name.upper()}: current {e['current']:,.2f}, candidate "
                      f"{e['candidate']:,.2f}, difference {e['difference']:+,.2f} "
                      f"[{e['difference_ci'][0]:,.2f}, {e['difference_ci'][1]:,.2f}]",
                      highlight=False)
    if d.promoted:
        console.print(f"[green]policy promoted[/] {candidate} -> {policy} ({d.reason}); "
                      f"previous kept in {d.previous}", highlight=False)
    else:
        console.print(f"[yellow]kept the current policy[/]: {d.reason}", highlight=False)
        if model_gate:
            console.print(f"[yellow]policy:[/] {policy} was trained on the previous model and "
                          "is stale: retrain it with `dunning train-policy`", highlight=False)
    console.print(f"decision logged in {promotion_log_path(policy)}", highlight=False)


def _retrain_model(db: Path, model: Path, policy: Path | None, as_of: str | None,
                   holdout_fraction: float, seed: int) -> bool:
    """The payment-model gate of `dunning retrain`; True when the candidate was promoted."""
    from dunning.business.model_io import retrain as run_retrain
    from dunning.business.model_io import retrain_log_path
    from engine.models.training import TrainConfig

    with console.status("training and comparing the candidate model"):
        d = run_retrain(db, model, _parse_date(as_of, "--as-of"), TrainConfig(seed=seed),
                        holdout_fraction, policy)
    current = "-" if d.current_log_loss is None else f"{d.current_log_loss:.4f}"
    console.print(f"holdout: {d.holdout_invoices} invoices from {d.holdout_start}; log loss "
                  f"current {current}, candidate {d.candidate_log_loss:.4f}", highlight=False)
    for note in d.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if d.promoted:
        console.print(f"[green]promoted[/] {d.new_hash} -> {model} ({d.reason})"
                      + (f"; previous kept in {d.previous_dir}" if d.previous_dir else ""),
                      highlight=False)
    else:
        console.print(f"[yellow]kept the current model[/]: {d.reason}", highlight=False)
    if d.policy:
        console.print(f"[yellow]policy:[/] {d.policy}", highlight=False)
    console.print(f"decision logged in {retrain_log_path(model)}", highlight=False)
    return d.promoted


# ------------------------------------------------------------------------------- what-if
@user_errors
def what_if(
    change: str = typer.Option(None, "--change", help="One change, e.g. 'schedule=7,21,35' "
                               "or 'schedule=7:email,21:phone'."),
    threshold: float = typer.Option(None, "--threshold", help="Risk threshold: invoices with "
                                    "P(on time) below it follow the schedule, others 14 days "
                                    "later."),
    rule_file: Path = typer.Option(None, "--rule-file", help="Rule YAML added to (or "
                                   "replacing the same-named file of) the packaged rules; "
                                   "judged under the shipped policy on current dates."),
    policy: str = typer.Option(None, "--policy", help="Policy a rule change is judged under: "
                               "rl:DIR, tuned:FILE, fixed, a policy directory or a pipeline "
                               "output directory. Default: the policy of --run, else the "
                               "demo's tuned schedule (packaged)."),
    run: Path = typer.Option(None, "--run", help="Pipeline output directory whose policy "
                             "(policy/ RL artifact, else tuned_schedule.json) is the shipped "
                             "one; default ./dunning-data when it holds one."),
    start: str = typer.Option(None, "--from", help="First invoice date of the simulated "
                              "period (YYYY-MM-DD; default today)."),
    lang: str = typer.Option("en", "--lang", help="Language of the report: en or de."),
    scenario: str = typer.Option("default", "--scenario", help="Scenario name or YAML."),
    invoices: int = typer.Option(2000, "--invoices", help="Invoices per seed."),
    seeds: int = typer.Option(5, "--seeds", help="Seeds (the CI is over seeds)."),
    json_out: Path = typer.Option(None, "--json", help="Also write the result as JSON."),
    model: Path = typer.Option(None, "--model", help="Payment model directory (`dunning "
                               "train`) scoring the simulated invoices for --threshold; "
                               "default: one trained on a generated history of the scenario."),
) -> None:
    """Re-run the evaluation with one change and compare it with the current setting."""
    from rich.progress import Progress

    from dunning.business.whatif import Change, run_whatif
    from engine.files import atomic_write_json

    given = [c for c in (change, None if threshold is None else f"threshold={threshold}",
                         None if rule_file is None else f"rules={rule_file}") if c]
    if len(given) != 1:
        raise InputError("give exactly one of --change, --threshold or --rule-file")
    if lang not in ("en", "de"):
        raise InputError(f"--lang {lang!r}: expected en or de")
    parsed = Change.parse(given[0])
    if parsed.kind != "rules" and (policy or run):
        raise InputError("--policy/--run: only used with --rule-file (the other changes "
                         "compare with the fixed schedule)")
    if run is None and policy is None and parsed.kind == "rules" and (
            (Path(DEFAULT_DATA_DIR) / "policy" / "policy.json").exists()
            or (Path(DEFAULT_DATA_DIR) / "tuned_schedule.json").exists()):
        run = Path(DEFAULT_DATA_DIR)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"evaluating {parsed.text}", total=None)

        def progress(message: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=message)

        if parsed.kind == "threshold":
            bar.update(task, description="training a payment model on a generated history"
                       if model is None else f"scoring the simulated invoices with {model}")
        elif model is not None:
            raise InputError("--model: only used with --threshold (the other changes do not "
                             "look at payment probabilities)")
        result = run_whatif(parsed, scenario, invoices, seeds, progress=progress,
                            model_dir=model, policy=policy, run_dir=run, start=start,
                            lang=lang)
    print_whatif(result, invoices, seeds)
    if json_out:
        atomic_write_json(json_out, result.to_dict())


_WHATIF_WORDS = {
    "en": {"title": "what if {change}? ({scenario}, {n} invoices x {k} seeds)",
           "kpi": "KPI", "current": "current", "changed": "changed",
           "diff": "difference (95 % CI)", "policy": "policy that ran: {p}",
           "rule": "{status} rule {id} ({title}): {text}",
           "added": "added", "changed_rule": "changed", "removed": "removed"},
    "de": {"title": "Was wäre, wenn {change}? ({scenario}, {n} Rechnungen x {k} Läufe)",
           "kpi": "Kennzahl", "current": "heute", "changed": "geändert",
           "diff": "Unterschied (95-%-KI)", "policy": "gerechnete Strategie: {p}",
           "rule": "Regel {id} ({title}) {status}: {text}",
           "added": "hinzugefügt", "changed_rule": "geändert", "removed": "entfernt"},
}


def print_whatif(result: WhatIfResult, invoices: int, seeds: int) -> None:
    """The what-if result as a table with business names, then the policy, the dates and
    what each changed rule did, in the result's language."""
    from rich.table import Table

    from legal_rules.messages import render

    w = _WHATIF_WORDS[result.lang]
    t = Table(title=w["title"].format(change=result.change, scenario=result.scenario,
                                      n=invoices, k=seeds))
    for col in ("kpi", "current", "changed", "diff"):
        t.add_column(w[col], justify="left" if col == "kpi" else "right")
    for k, label in result.labels().items():
        d = result.difference[k]
        sure = not (d["ci_low"] <= 0 <= d["ci_high"])
        diff = f"{d['mean']:+.4g} [{d['ci_low']:+.3g}, {d['ci_high']:+.3g}]"
        t.add_row(label, f"{result.current[k]['mean']:.4g}", f"{result.changed[k]['mean']:.4g}",
                  f"[bold]{diff}[/]" if sure else diff)
    console.print(t)
    console.print(w["policy"].format(p=render(result.policy, result.lang)), highlight=False)
    for note in result.notes:
        console.print(render(note, result.lang), highlight=False, soft_wrap=True)
    for c in result.rule_changes:
        status = w["changed_rule" if c["status"] == "changed" else c["status"]]
        console.print(w["rule"].format(status=status, id=c["rule_id"], title=c["title"],
                                       text=c["text"]), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the ``dunning`` app."""
    app.command("roi")(roi)
    pilot_app.command("design")(pilot_design)
    pilot_app.command("analyse")(pilot_analyse)
    app.add_typer(pilot_app, name="pilot")
    app.command("drift")(drift)
    app.command("retrain")(retrain)
    app.command("what-if")(what_if)

