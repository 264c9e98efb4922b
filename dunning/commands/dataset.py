"""CLI commands of the offline-RL area (see dunning/cli.py): ``dunning dataset export``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from dunning.commands.common import console, open_store, user_errors
from engine.errors import InputError


@user_errors
def export(
    out: Path = typer.Option(Path("dunning-data/dataset"), help="Output directory."),
    db: Path | None = typer.Option(None, help="Export the ingested history of this store "
                                   "(`dunning ingest`) instead of a generated company."),
    as_of: str | None = typer.Option(None, "--as-of", help="With --db: the history as known "
                                     "on this date YYYY-MM-DD (default: its latest date)."),
    scenario: str = typer.Option("default", help="Scenario (name or YAML): costs and horizon "
                                 "of the rewards; without --db also the generated world."),
    customers: int = typer.Option(300, min=1, help="Generated company: customers."),
    months: int = typer.Option(12, min=1, help="Generated company: months of invoices."),
    seed: int = typer.Option(0, help="Seed of the generated company and of the subset."),
    max_invoices: int | None = typer.Option(None, min=1, help="Keep at most this many "
                                            "episodes (a seeded random subset)."),
    formats: str = typer.Option("parquet,npz,minari", "--format",
                                help="Comma-separated: parquet, npz, minari."),
) -> None:
    """Export the logged transitions of a history as an offline-RL dataset.

    One row per invoice-day of every complete logged episode (an invoice unpaid at its due
    date, horizon over): observation (named columns), logged action, reward, next
    observation, terminal/truncated, the logging propensity (missing where it was not
    logged, never invented), the legal mask, episode (invoice) id and day after due.
    Writes transitions.parquet, transitions.npz and a Minari dataset (docs/offline-rl.md).
    """
    import numpy as np

    from engine.files import atomic_write_json
    from simulations import world
    from simulations.ope.export import FORMATS, MINARI_ID, Transitions

    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory (expected a directory)")
    chosen = [f.strip().lower() for f in formats.split(",") if f.strip()]
    bad = [f for f in chosen if f not in FORMATS] or ([] if chosen else [formats])
    if bad:
        raise InputError(f"--format {bad[0]!r}: expected one or more of {', '.join(FORMATS)}")
    sc = world.load_scenario(scenario)
    hist = _history(sc, db, as_of, customers, months, seed, max_invoices)
    data, source = hist.data, hist.source
    tr = Transitions.from_dataset(data)
    paths = tr.save(out, chosen)
    missing = float(np.isnan(tr.propensities).mean())
    meta = {"source": source, "scenario": sc.name, "episodes": data.n, "transitions": tr.n,
            "propensity_missing_share": missing, "files": sorted(p.name for p in paths.values()),
            "minari_dataset_id": MINARI_ID if "minari" in paths else None,
            "logged_actions_vetoed_by_todays_rules": data.refused_logged_actions}
    atomic_write_json(out / "dataset.json", meta)
    console.print(f"{data.n} episodes, {tr.n} transitions ({missing:.1%} without a logged "
                  f"propensity) -> {', '.join(str(p) for p in paths.values())}")


@dataclass
class _History:
    """A logged history replayed for export or estimation: the dataset, where it came from
    (for dataset.json), the contract tables and their as-of date (for a hazard model)."""

    data: Any
    source: dict[str, Any]
    tables: dict[str, Any]
    as_of: Any


def _history(sc: Any, db: Path | None, as_of: str | None, customers: int, months: int,
             seed: int, max_invoices: int | None) -> _History:
    """The complete logged episodes of the store ``db`` (as of ``as_of``) or of a company
    generated from ``sc``; an error when there is none."""
    from simulations import world
    from simulations.env import LegalMask
    from simulations.ope.dataset import build_logged_dataset, logged_dataset_from_tables

    if db is not None:
        import datetime as dt

        from engine.calendar import from_day
        from engine.features import prepare_tables

        store = open_store(db)
        day = None
        if as_of is not None:
            try:
                day = dt.date.fromisoformat(as_of)
            except ValueError:
                raise InputError(f"--as-of {as_of!r}: expected a date YYYY-MM-DD") from None
        console.print(f"[dim]replaying the history in {db}[/]")
        tables = store.tables(day)
        data = logged_dataset_from_tables(tables, sc, day, LegalMask(), max_invoices, seed)
        hist = _History(data, {"kind": "store", "db": db.name, "as_of": as_of}, tables,
                        day or from_day(prepare_tables(tables).last_day))
    else:
        console.print(f"[dim]generating {customers} customers x {months} months[/]")
        company = world.generate_company(sc, customers, months, seed)
        data = build_logged_dataset(company, LegalMask(), max_invoices, seed)
        tables = {k: getattr(company, k) for k in ("customers", "invoices", "payments",
                                                   "actions")}
        hist = _History(data, {"kind": "generated", "customers": customers, "months": months,
                               "seed": seed}, tables, company.as_of)
    if data.n == 0:
        raise InputError("no complete logged episode in the history (an invoice unpaid at "
                         f"its due date whose {sc.horizon_days}-day horizon has ended)")
    return hist


_VALUES_WHY = ("needs the learned environment's model values, which an offline "
               "dataset does not carry (Python: simulations.ope.direct_values)")


@user_errors
def estimate(
    data: Path | None = typer.Argument(None, help="An exported dataset: a `dunning dataset "
                                       "export` directory, transitions.npz or .parquet. "
                                       "Without it the history is replayed here, as `export` "
                                       "does (--db, or a generated company)."),
    policies: str = typer.Option(None, "--policies", help="Comma-separated target "
                                 "policies, as in `dunning evaluate` (a schedule inside it is "
                                 "fixed[14:email;30:letter]); not oracle (it needs the "
                                 "world's state) nor a tuned search (tuned:FILE works)."),
    policy: list[str] = typer.Option(None, "--policy", help="One more target policy, the "
                                     "whole value one spec; repeat the option."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write every figure "
                                         "(diagnostics, estimates, warnings) to this file."),
    n_boot: int = typer.Option(500, "--bootstrap-resamples", min=100,
                               help="Bootstrap resamples of the 95 % intervals."),
    db: Path | None = typer.Option(None, help="Without DATASET: the ingested history of this "
                                   "store instead of a generated company."),
    as_of: str | None = typer.Option(None, "--as-of", help="With --db: the history as known "
                                     "on this date YYYY-MM-DD."),
    scenario: str = typer.Option("default", help="Without DATASET: scenario (name or YAML) "
                                 "of the rewards and of the generated company."),
    customers: int = typer.Option(300, min=1, help="Generated company: customers."),
    months: int = typer.Option(12, min=1, help="Generated company: months of invoices."),
    max_invoices: int | None = typer.Option(None, min=1, help="Without DATASET: at most this "
                                            "many episodes (a seeded random subset)."),
    model: Path | None = typer.Option(None, help="Without DATASET: a `dunning train-model` "
                                      "directory whose hazard model gives dr / wdr / dm their "
                                      "values (default: one fitted on the history itself)."),
    seed: int = typer.Option(0, help="Seed of the generated company, the subset and the "
                             "bootstrap."),
) -> None:
    """Estimate target policies' value from a logged history, off-policy, with the support
    diagnostics that say when not to trust a number (docs/offline-rl.md).

    Per policy: every estimator's value (mean NPV per invoice at the due date) with its
    bootstrap interval, or "withheld" and the reason; the effective sample size, the share
    of episodes following the target all the way, and the share of logged decisions where
    the target's action had logging probability 0 (no support). From an exported DATASET
    dr / wdr / dm are withheld (they need the history's tables for the hazard model's
    values); from a replayed history they are given.
    """
    import numpy as np

    from policies.baselines.factory import make_policy
    from policies.plugins import split_policy_specs
    from simulations.ope import direct_values, estimate_all, target_actions
    from simulations.ope.export import Transitions

    specs = split_policy_specs(policies or "") + [p.strip() for p in policy or [] if p.strip()]
    if not specs:
        raise InputError("--policies: expected at least one target policy, e.g. "
                         "fixed,mypolicies:EmailThenCall")
    if json_out is not None and json_out.is_dir():
        raise InputError(f"--json {json_out}: is a directory (expected a file)")
    learned = None
    if data is not None:
        given = [o for o, v in (("--db", db), ("--model", model), ("--as-of", as_of),
                                ("--max-invoices", max_invoices)) if v is not None]
        if given:
            raise InputError(f"{given[0]}: only without DATASET (an exported dataset carries "
                             "no tables to replay or to value with a hazard model)")
        logged = Transitions.load(data).to_logged_dataset(str(data))
        if logged.logging_probs is None and not np.isnan(logged.pscore).any():
            raise InputError(f"{data}: no field 'logging_probs' (exported by an earlier "
                             "version): the support diagnostics need it; export it again")
    else:
        from simulations import world

        sc = world.load_scenario(scenario)
        hist = _history(sc, db, as_of, customers, months, seed, max_invoices)
        logged = hist.data
        learned = _learned(hist, sc, model, seed)
    targets = {}
    for spec in specs:
        name, pol = make_policy(spec)
        if getattr(pol, "sees_world_state", False):
            raise InputError(f"policy {spec!r}: the oracle acts on the world's true state, "
                             "which a logged dataset does not hold (it can only be "
                             "evaluated in the simulator: dunning evaluate)")
        if name in targets:
            raise InputError(f"--policies: {name!r} given twice")
        targets[name] = pol
    console.print(f"[dim]{logged.n} logged episodes, {int(logged.active.sum())} decisions, "
                  f"logging policy's own value {logged.logged_value:,.0f}[/]")
    results = {}
    for name, pol in targets.items():
        values = None if learned is None else direct_values(pol, logged, learned)
        res = estimate_all(logged, target_actions(pol, logged), values, n_boot=n_boot,
                           seed=seed)
        for est in res["estimates"].values():
            if est["warning"] == "needs model values (simulations.ope.direct)":
                est["warning"] = _VALUES_WHY
        results[name] = res
        console.print(_estimate_table(name, res))
    if json_out is not None:
        from engine.files import atomic_write_json
        from engine.serialization import jsonable

        atomic_write_json(json_out, jsonable({
            "dataset": str(data) if data is not None else None,
            "history": None if data is not None else hist.source, "episodes": logged.n,
            "decisions": int(logged.active.sum()), "logging_policy_value": logged.logged_value,
            "bootstrap_resamples": n_boot, "seed": seed, "policies": results}))
        console.print(f"estimates written to [bold]{json_out}[/]")


def _learned(hist: _History, sc: Any, model: Path | None, seed: int) -> Any:
    """The learned environment over the history's invoices (the direct method's values):
    ``model``'s hazard model, or one fitted on the history as of its date."""
    from engine.models.hazard import HazardModel
    from simulations.env import LearnedSource

    if model is not None:
        hazard = HazardModel.load(model)
    else:
        console.print("[dim]fitting a hazard model on the history (the direct method's "
                      "values)[/]")
        hazard = HazardModel(random_state=seed).fit_tables(hist.tables, hist.as_of)
    return LearnedSource.from_tables(hist.tables, hazard, None, sc, hist.as_of)


def _estimate_table(name: str, res: dict):  # noqa: ANN202 - rich.table.Table
    """One policy's estimates: a number only with its interval, else "withheld" + why."""
    from rich.table import Table

    d = res["diagnostics"]
    if "ess" in d:
        caption = (f"effective sample size {d['ess']:.1f} of {d['n_episodes']} episodes; "
                   f"{d['match_rate']:.1%} follow the target all the way; target's action "
                   f"with logging probability 0 on {d['unsupported_decisions']:.1%} of the "
                   f"decisions ({d['unsupported_episodes']:.0%} of the episodes reach one)")
    else:
        caption = (f"logging propensity not known on {d['propensity_missing']:.1%} of the "
                   "decisions: no support diagnostics")
    for w in d["warnings"]:
        caption += f"\n[bold red]do not trust importance sampling:[/] {w}"
    t = Table(title=f"off-policy value of {name}", caption=caption, caption_justify="left")
    for col in ("estimator", "value", "95 % interval", "warning"):
        t.add_column(col, justify="right" if col in ("value", "95 % interval") else "left",
                     overflow="fold")
    for est, r in res["estimates"].items():
        if r["value"] is None:
            t.add_row(est, "[yellow]withheld[/]", "", r["warning"] or "")
            continue
        lo, hi = r["ci"]
        warn = f"[red]do not trust: {r['warning']}[/]" if r["warning"] else ""
        t.add_row(est, f"{r['value']:,.0f}", f"[{lo:,.0f}, {hi:,.0f}]", warn)
    return t


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Offline-RL datasets from the logged history.",
                        no_args_is_help=True)
    group.command("export")(export)
    group.command("estimate")(estimate)
    app.add_typer(group, name="dataset")
