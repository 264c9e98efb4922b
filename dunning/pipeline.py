"""The researcher's Python API for the whole pipeline (what ``dunning demo`` runs).

Each step is a separate function so a researcher can run, repeat or replace any of them::

    from dunning.pipeline import PipelineConfig, run_pipeline

    config = PipelineConfig.default(out_dir="runs/exp1", seed=1, n_customers=800)
    result = run_pipeline(config)            # generate -> ingest -> models -> RL -> eval -> report
    result.results["policies"]["rl"]["oracle_gap_closed"]

    # or step by step, e.g. to evaluate your own policy next to the others:
    company = generate_step(config)
    cut = cut_date(config, company)
    db = ingest_step(config)
    model_dir = train_models_step(config, db, as_of=cut)
    learned = learned_source(config, db, model_dir, as_of=cut)
    tuned = tune_step(config, learned)
    artifact = train_policy_step(config, db, model_dir, config.policy_dir, as_of=cut,
                                 source=learned)
    policies = build_policies(tuned, artifact.path)
    policies["mine"] = MyPolicy()
    source = evaluation_source(config, company, model_dir, cut, db=db)
    evaluation = evaluate_step(config, policies, source)
    results = assemble_results(config, evaluation, model_dir=model_dir, artifact=artifact)
    write_results(results, config.out_dir); report_step(config, results)

This module is edge wiring like the CLI: ``engine`` must not import ``simulations`` or
``policies`` at module level, so every step imports them inside its body.

Files written under ``config.out_dir`` (default ``dunning-data/``): ``company/`` (the
generated export CSVs), ``dunning.duckdb`` (the store, re-created by the demo),
``creditor.yaml`` (the demo company's creditor profile for letters, kept if present),
``model/`` (payment + hazard model), ``policy/`` (RL artifact), ``results.json``,
``evaluation.json`` (the harness's full output) and ``report/index.html``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import DunningError
from engine.serialization import jsonable

if TYPE_CHECKING:
    from rich.console import Console

    from policies.rl import RLArtifact, RLTrainingConfig

RESULTS_SCHEMA = "dunning.results/1"
POLICY_ORDER = ("never", "fixed", "tuned", "rl", "planner", "oracle")  # results, report and tables
KPI_KEYS: tuple[str, ...] = (
    "npv", "mean_days_to_pay", "first_reminder_pay_rate", "reminders_per_invoice",
    "complaints_per_1000", "agency_per_1000", "violations",
)


# -- progress ------------------------------------------------------------------------------
class Progress:
    """Receives the pipeline's progress. The base class ignores it (library use)."""

    def start(self, step: str, total: float | None = None) -> None:
        """A step begins; ``total`` is its amount of work when known (e.g. timesteps)."""

    def update(self, completed: float, info: str = "") -> None:
        """Work done so far in the current step."""

    def finish(self, step: str, seconds: float) -> None:
        """The step ended after ``seconds``."""

    @staticmethod
    @contextlib.contextmanager
    def rich(console: Console) -> Iterator[Progress]:
        """A rich progress bar per step on ``console`` (the CLI's)."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichBar

        bar = RichBar(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console,
        )
        with bar:
            yield _RichProgress(bar)


class _RichProgress(Progress):
    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.task: Any = None

    def start(self, step: str, total: float | None = None) -> None:
        self.task = self.bar.add_task(step, total=total or 1, info="")

    def update(self, completed: float, info: str = "") -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=completed, info=info)

    def finish(self, step: str, seconds: float) -> None:
        if self.task is not None:
            total = self.bar.tasks[self.task].total
            self.bar.update(self.task, completed=total, info=f"{seconds:.1f} s")
        self.task = None


@contextlib.contextmanager
def _step(progress: Progress | None, name: str, timings: dict[str, float] | None = None,
          total: float | None = None) -> Iterator[Progress]:
    p = progress or Progress()
    p.start(name, total)
    t0 = time.perf_counter()
    yield p
    seconds = time.perf_counter() - t0
    p.finish(name, seconds)
    if timings is not None:
        timings[name] = round(seconds, 2)


# -- configuration -------------------------------------------------------------------------
@dataclass
class PipelineConfig:
    """Everything a run depends on (saved in ``results.json``; same config => same results).

    Sizes: ``n_customers`` over ``months`` of history for the company. The last
    ``holdout_months`` are held out: models, tuned schedule and RL policy learn from the
    history known before them; the evaluation runs ``n_eval_invoices`` of the invoices due in
    them per seed, for ``n_seeds`` seeds, in the ground-truth world. ``rl`` is a
    ``policies.rl.RLTrainingConfig`` (``None``: its defaults with ``seed``). On
    ``robustness_scenario`` (``None`` to skip) a company is generated the same way and its
    held-out invoices are run with the same trained models and policies. ``train_rl=False``
    skips PPO (the planner and the tuned schedule are still built and evaluated);
    ``ope_invoices`` held-out logged episodes choose the shipped scheduler
    (:mod:`dunning.selection`).
    """

    out_dir: Path = Path("dunning-data")
    scenario: str = "default"
    robustness_scenario: str | None = "shifted"
    n_customers: int = 600
    months: int = 24
    seed: int = 0
    n_eval_invoices: int = 600
    n_seeds: int = 5
    robustness_seeds: int = 3
    holdout_months: int = 4
    tune_invoices: int = 1000
    tune_iterations: int = 3
    tune_population: int = 16
    rl: RLTrainingConfig | None = None
    train_rl: bool = True  # False: no PPO (tuned schedule and planner only)
    ope_invoices: int = 200  # held-out logged episodes for choosing the shipped scheduler
    db: Path | None = None  # default out_dir / "dunning.duckdb"
    fresh_db: bool = True  # the demo owns its store: re-create it
    # each customer's own reminder response, shrunk toward its segment, in the hazard model
    # (engine.models.customer_response; docs/rl.md "Individual timing")
    customer_response: bool = False
    # the planner plans on the mean hazard of the run's hazard model and this many - 1 more
    # fitted with other seeds on the same history (engine.models.ensemble; 1 = the model
    # alone): less of one fit's error for the planner to exploit. 5, chosen on the tuning
    # companies; with the compiled trees (engine.models.compiled) it fits the demo's time
    # (docs/planner.md "Planning on the mean of several hazard models")
    planner_hazard_members: int = 5
    # > 0: the planner reminds only where the history logged at least this many reminders
    # of the invoice's segment, channel, day overdue and number (LearnedDynamics.min_support;
    # docs/planner.md, "Logged support"); 0 = everywhere the law allows
    planner_min_support: int = 0
    # the planner counts each complaint it risks at this many times the complaint cost
    # (LearnedDynamics.complaint_weight: the multiplier of a complaint budget against the
    # learned model's optimism about added reminders). 16 was chosen on the tuning
    # companies (sampler seed 7): complaints -26 to -41 %, NPV -0.7 to -25 per invoice
    # (docs/planner.md, "Complaint weight"); 1 = the complaint cost alone
    planner_complaint_weight: float = 16.0
    # the hazard never rises with a count of reminders sent, the other inputs the same
    # (HazardModel.reminder_counts_decreasing; docs/planner.md, "Logged support"); off
    hazard_counts_decreasing: bool = False
    # the hazard trees and the reminder lift read the days past the project milestone
    # (HazardModel.milestone_inputs; docs/planner.md, "Hazard-model variants"); off
    hazard_milestone_inputs: bool = False
    # the hazard model reads the customer's history as shares and means only, not as counts
    # since the history begins, which grow with the calendar and do not carry over to the
    # newest invoices (HazardModel.history_rates_only; docs/planner.md, "Counts since the
    # history begins"); off
    hazard_history_rates_only: bool = False

    @classmethod
    def default(cls, out_dir: str | Path = "dunning-data", seed: int = 0,
                rl_timesteps: int | None = None, **overrides: Any) -> PipelineConfig:
        """The configuration of ``dunning demo`` (fits 10 minutes on 2 cores)."""
        from policies.rl import RLTrainingConfig

        rl = RLTrainingConfig(seed=seed)
        if rl_timesteps is not None:
            rl = replace(rl, total_timesteps=int(rl_timesteps))
        return cls(out_dir=Path(out_dir), seed=seed, rl=rl, **overrides)

    @classmethod
    def tiny(cls, out_dir: str | Path, seed: int = 0) -> PipelineConfig:
        """A seconds-scale configuration for tests and smoke runs (results not meaningful)."""
        from policies.rl import RLTrainingConfig

        rl = RLTrainingConfig(seed=seed, total_timesteps=4096, n_envs=128, n_steps=16,
                              batch_size=1024, n_epochs=2, net_arch=(32, 32),
                              timing_invoices=150, timing_first_reminder_days=(0, 9, 30),
                              timing_min_days_between=(0, 14))
        return cls(out_dir=Path(out_dir), seed=seed, n_customers=100, months=10,
                   holdout_months=3, n_eval_invoices=40, n_seeds=2, tune_invoices=150,
                   tune_iterations=1, tune_population=6, rl=rl, robustness_scenario="shifted",
                   robustness_seeds=1, ope_invoices=40,
                   planner_hazard_members=2)  # the ensemble's path at the least cost

    @property
    def rl_config(self) -> RLTrainingConfig:
        from policies.rl import RLTrainingConfig

        return self.rl if self.rl is not None else RLTrainingConfig(seed=self.seed)

    @property
    def db_path(self) -> Path:
        return Path(self.db) if self.db is not None else Path(self.out_dir) / "dunning.duckdb"

    @property
    def company_dir(self) -> Path:
        return Path(self.out_dir) / "company"

    @property
    def model_dir(self) -> Path:
        return Path(self.out_dir) / "model"

    @property
    def policy_dir(self) -> Path:
        return Path(self.out_dir) / "policy"

    @property
    def planner_dir(self) -> Path:
        return Path(self.out_dir) / "planner"

    @property
    def report_dir(self) -> Path:
        return Path(self.out_dir) / "report"

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "rl"}
        d = {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}
        d["rl"] = self.rl_config.to_dict()
        return d


@dataclass
class PipelineResult:
    """What a run produced: the results dict (``results.json``) and where files are."""

    config: PipelineConfig
    results: dict[str, Any]
    results_path: Path
    report_path: Path
    step_seconds: dict[str, float] = field(default_factory=dict)
    workspace: WorkspaceReady | None = None


@dataclass
class WorkspaceReady:
    """The store made ready for ``dunning serve`` by :func:`workspace_step`: the day of its
    recommendations, how many open invoices and review items, the files the server needs
    and the command that opens the workspace."""

    as_of: dt.date
    n_open: int
    n_review: int
    audit_key: Path | None  # the key file the demo made (None: one was configured)
    tokens: Path
    command: str


# -- steps ---------------------------------------------------------------------------------
def generate_step(config: PipelineConfig, progress: Progress | None = None,
                  scenario: str | None = None) -> Any:
    """Generate the synthetic company (``simulations.world.Company``) and write its CSVs to
    ``config.company_dir`` (the other scenario's company is returned but not written)."""
    from simulations import world

    name = scenario or config.scenario
    p = progress or Progress()
    company = world.generate_company(
        world.load_scenario(name), config.n_customers, config.months, config.seed,
        progress=lambda done, total: p.update(done, f"day {done}/{total}"),
    )
    if scenario is None:
        company.write(config.company_dir)
    return company


def cut_date(config: PipelineConfig, company: Any) -> dt.date:
    """Start of the hold-out period: models and policies learn only from what is known
    before it; the invoices due on or after it are the evaluation set."""
    from policies.rl.holdout import month_cut

    return month_cut(company.as_of, config.holdout_months)


def ingest_step(config: PipelineConfig, company_dir: Path | None = None) -> Path:
    """Ingest the company's CSVs into the store (re-created when ``config.fresh_db``)."""
    from engine.ingest import ingest

    src = Path(company_dir or config.company_dir)
    db = config.db_path
    if config.fresh_db:
        for f in (db, db.with_name(db.name + ".wal")):
            f.unlink(missing_ok=True)
    files = [src / f"{t}.csv" for t in ("customers", "invoices", "payments", "actions")]
    report = ingest([f for f in files if f.exists()], db)
    if report.quarantined:
        # Generated data must be clean: a quarantined row means generator and contract differ.
        raise DunningError(f"{src}: {report.quarantined} generated rows were quarantined "
                           f"(see {', '.join(map(str, report.quarantine_files))})")
    if config.fresh_db:
        demo_creditor_profile(db.parent)
    if report.updated:  # re-ingesting a changed company into a kept store: audit the changes
        from dunning.ops.events import audit_master_data
        from engine.store import Store

        audit_master_data(Store(db), report, by="pipeline")
    return db


def workspace_step(config: PipelineConfig, db: Path, model_dir: Path) -> WorkspaceReady:
    """Leave the store ready for the workspace (``dunning serve``): the daily recommendation
    for the store's latest day (what ``dunning recommend --model MODEL --as-of DAY`` does:
    worklist rows and review items, audited), with an audit key (``$DUNNING_AUDIT_KEY_FILE``
    or ``$DUNNING_AUDIT_KEY`` when set, else ``OUT/audit.key``, made once, mode 0600) and a
    token file ``OUT/tokens.txt`` (a reviewer, ``demo-reviewer``, made once, mode 0600).
    Idempotent: a second run of the same day adds nothing."""
    import os
    import secrets
    import shlex
    import sys

    from dunning.ops.audit import KEY_ENV, KEY_FILE_ENV, write_key_file
    from dunning.ops.recommend import Recommender, load_payment_model
    from engine.store import Store

    out = Path(config.out_dir)
    made_key = None
    if not os.environ.get(KEY_FILE_ENV, "").strip() and not os.environ.get(KEY_ENV, "").strip():
        made_key = out / "audit.key"
        if not made_key.exists():
            write_key_file(made_key)
        os.environ[KEY_FILE_ENV] = str(made_key)  # for this run's audit records
    tokens = out / "tokens.txt"
    if not tokens.exists():
        fd = os.open(tokens, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{secrets.token_urlsafe(32)} reviewer demo-reviewer\n")
    store = Store(db)
    day = store.latest_date()
    if day is None:
        raise DunningError(f"{db}: no invoices, payments or actions; nothing to recommend")
    result = Recommender(store, model=load_payment_model(model_dir)).run(day)
    with store.connect() as con:
        n_review = con.execute("SELECT count(*) FROM ops_review_queue WHERE as_of = ?",
                               [day]).fetchone()[0]
    key = os.environ.get(KEY_FILE_ENV, "").strip()
    env = f"{KEY_FILE_ENV}={shlex.quote(key)} " if key else ""  # else $DUNNING_AUDIT_KEY
    exe = sys.argv[0] if Path(sys.argv[0]).name == "dunning" else "dunning"
    command = (f"{env}{shlex.quote(exe)} serve --db {shlex.quote(str(db))} "
               f"--tokens {shlex.quote(str(tokens))}")
    return WorkspaceReady(day, result.n_open, int(n_review), made_key, tokens, command)


def demo_creditor_profile(directory: Path) -> Path:
    """``directory/creditor.yaml``: the demo company's creditor profile (kept if present).

    Letters (``dunning recommend --letters``, the letter endpoint) read ``creditor.yaml``
    next to the store; the demo's is ``dunning/ops/creditor.example.yaml``.
    """
    import shutil

    from dunning.ops.creditor import EXAMPLE_PROFILE

    path = Path(directory) / "creditor.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(EXAMPLE_PROFILE, path)
    return path


def train_config(config: PipelineConfig) -> Any:
    """The models' :class:`engine.models.training.TrainConfig` of a run: its seed, the
    hazard model's customer response when ``config.customer_response``, its decreasing
    counts when ``config.hazard_counts_decreasing``, its milestone inputs when
    ``config.hazard_milestone_inputs`` and its history without counts when
    ``config.hazard_history_rates_only``."""
    from engine.models.training import TrainConfig

    options = {"customer_response": config.customer_response,
               "reminder_counts_decreasing": config.hazard_counts_decreasing,
               "milestone_inputs": config.hazard_milestone_inputs,
               "history_rates_only": config.hazard_history_rates_only}
    return TrainConfig(seed=config.seed,
                       hazard_params={k: True for k, on in options.items() if on})


def train_models_step(config: PipelineConfig, db: Path | None = None,
                      as_of: dt.date | None = None, progress: Progress | None = None) -> Path:
    """Train the payment and hazard models on the store as known at ``as_of`` (default:
    everything); artifact in ``config.model_dir``."""
    from engine.models.training import train_artifact
    from engine.store import Store

    p = progress or Progress()
    tables = Store(db or config.db_path).tables(as_of)
    train_artifact(tables, config.model_dir, as_of=as_of, cfg=train_config(config),
                   progress=lambda msg: p.update(0, msg))
    return config.model_dir


def learned_source(config: PipelineConfig, db: Path, model_dir: Path,
                   as_of: dt.date | None = None) -> Any:
    """The LEARNED environment (hazard model + rates from the store as known at ``as_of``)."""
    from simulations.env.learned import LearnedSource

    return LearnedSource.from_store(db, model_dir, config.scenario, as_of=as_of)


def _provenance(db: Path, model_dir: Path, as_of: dt.date | None, ruleset_hash: str
                ) -> dict[str, Any]:
    art = Path(model_dir) / "artifact.json"
    meta = json.loads(art.read_text()) if art.exists() else {}
    return {"db": str(db), "model_dir": str(model_dir), "as_of": str(as_of) if as_of else None,
            "model_hash": meta.get("hash"), "payment_model_hash": meta.get("payment_hash"),
            "hazard_model_hash": meta.get("hazard_hash"), "ruleset_hash": ruleset_hash,
            "environment": "learned"}


def train_policy_step(config: PipelineConfig, db: Path, model_dir: Path, out_dir: Path,
                      as_of: dt.date | None = None, progress: Progress | None = None,
                      source: Any = None) -> RLArtifact:
    """Train MaskablePPO in the learned environment with legal masks, search its timing
    rules there (``timing_search``); save the artifact."""
    from policies.rl import RLPolicy, save_artifact, train_maskable_ppo
    from policies.rl.timing import search_timing_rules
    from simulations.env import BatchCollectionsVecEnv, LegalMask

    cfg = config.rl_config
    p = progress or Progress()
    src = source if source is not None else learned_source(config, db, model_dir, as_of)
    if cfg.complaint_weight != 1.0:  # trained and its timing searched with weighted complaints
        src = src.with_costs(cfg.training_costs(src.costs))
    mask = LegalMask()
    venv = BatchCollectionsVecEnv(src, num_envs=cfg.n_envs, mask=mask, seed=cfg.seed,
                                  reward_per_amount=True)

    def report(done: int, total: int, mean: float) -> None:
        p.update(min(done, total), "" if math.isnan(mean) else f"reward/amount {mean:.3f}")

    model, curve, seconds = train_maskable_ppo(venv, cfg, progress=report)
    timing, timing_report = None, None
    if cfg.timing_search:
        timing, timing_report = search_timing_rules(
            RLPolicy(model, timing=cfg.spacing_rules()), src, cfg.timing_search_config(),
            mask=mask,
            progress=lambda msg, done, total: p.update(cfg.total_timesteps,
                                                       f"{msg} {done}/{total}"))
    return save_artifact(model, out_dir, cfg, curve, seconds,
                         _provenance(db, model_dir, as_of, mask.ruleset_hash),
                         timing=timing, timing_report=timing_report)


def tune_step(config: PipelineConfig, source: Any, progress: Progress | None = None) -> Any:
    """Tune the per-segment schedule in the learned ``source``; saved to ``out_dir``."""
    from policies.tuned import TuningConfig, tune_schedules

    p = progress or Progress()
    tcfg = TuningConfig(n_invoices=config.tune_invoices, validation_invoices=config.tune_invoices,
                        seed=config.seed, iterations=config.tune_iterations,
                        population=config.tune_population)
    tuned = tune_schedules(source, tcfg, progress=lambda msg, done, total: p.update(done, msg))
    tuned.save(Path(config.out_dir) / "tuned_schedule.json")
    return tuned


def tune_in_worker(config: PipelineConfig, db: Path, model_dir: Path, cut: dt.date) -> Any:
    """:func:`tune_step` in the learned environment of ``db`` + ``model_dir`` as of ``cut``,
    built here (for a worker process: the source itself is not sent between processes)."""
    return tune_step(config, learned_source(config, db, model_dir, as_of=cut))


def evaluation_source(config: PipelineConfig, company: Any, model_dir: Path, cut: dt.date,
                      scenario: str | None = None, db: Path | None = None) -> Any:
    """Ground truth on ``company``'s invoices due on or after ``cut`` (never trained on)."""
    from policies.rl.holdout import holdout_source
    from simulations import world

    tables = None
    if db is not None:
        from engine.store import Store

        tables = Store(db).tables()
    return holdout_source(company, world.load_scenario(scenario or config.scenario), cut,
                          model_dir, tables=tables)


def build_policies(tuned: Any, policy_dir: Path | None, planner: Any = None
                   ) -> dict[str, Any]:
    """never / fixed / tuned / rl / planner / oracle, in that order (RL wrapped to count
    vetoes)."""
    from policies.baselines.factory import make_policy
    from policies.rl import RLPolicy
    from policies.rl.vetoes import VetoCounter

    policies: dict[str, Any] = dict(make_policy(s) for s in ("never", "fixed"))
    if tuned is not None:
        policies["tuned"] = tuned
    if policy_dir is not None:
        policies["rl"] = VetoCounter(RLPolicy.load(policy_dir))
    if planner is not None:
        policies["planner"] = planner
    policies["oracle"] = oracle_policy()
    return policies


def oracle_policy() -> Any:
    """The ground-truth oracle of the evaluations (it re-solves each evaluation batch)."""
    from policies.baselines.factory import make_policy

    return make_policy("oracle")[1]


def evaluate_step(config: PipelineConfig, policies: dict[str, Any], source: Any,
                  progress: Progress | None = None, n_seeds: int | None = None) -> Any:
    """Run every policy on the same ground-truth invoices and draws for each seed."""
    from simulations.evaluation.harness import evaluate_policies

    p = progress or Progress()
    seeds = [config.seed * 1000 + k for k in range(n_seeds or config.n_seeds)]
    return evaluate_policies(
        policies, source.scenario, n_invoices=config.n_eval_invoices, seeds=seeds,
        source=source, reference="fixed",
        progress=lambda msg, done, total: p.update(done, msg),
    )


# -- results -------------------------------------------------------------------------------
def _kpi_block(overall: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, stats in overall.items():
        out[key] = stats.get("mean")
        if stats.get("ci_low") is not None:
            out[f"{key}_ci"] = [stats.get("ci_low"), stats.get("ci_high")]
    return out


def gap_closed(evaluation: Any, policy: str, base: str = "fixed",
               best: str = "oracle") -> dict[str, Any] | None:
    """Share of the oracle's NPV gain over ``base`` that ``policy`` reaches, per seed and
    as a mean with a 95 % t-interval over seeds."""
    from simulations.evaluation.metrics import t_interval

    o = evaluation.overall
    if not all(k in o for k in (policy, base, best)):
        return None
    pol, ref, top = (np.asarray(o[k]["npv"]["per_seed"], float) for k in (policy, base, best))
    with np.errstate(divide="ignore", invalid="ignore"):
        per_seed = (pol - ref) / (top - ref)
    mean, lo, hi = t_interval(per_seed)
    return {"mean": mean, "ci": [lo, hi], "per_seed": per_seed.tolist()}


def policies_block(evaluation: Any) -> dict[str, dict[str, Any]]:
    """The ``policies`` section of results.json from an ``EvaluationResult``."""
    block = {name: _kpi_block(evaluation.overall[name]) for name in evaluation.policies}
    for name in ("tuned", "rl", "planner"):
        g = gap_closed(evaluation, name)
        if g is not None:
            block[name]["oracle_gap_closed"] = g["mean"]
            block[name]["oracle_gap_closed_ci"] = g["ci"]
            block[name]["oracle_gap_closed_per_seed"] = g["per_seed"]
    return block


def timing_block(evaluation: Any) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per policy and segment: day after due and main channel of reminders 1, 2, 3."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for pol, per_seg in evaluation.timing.items():
        out[pol] = {
            seg: [{"reminder": r["reminder"], "day": r.get("mean_day"),
                   "median_day": r.get("median_day"), "channel": r.get("main_channel"),
                   "share": r.get("share_sent"), "channels": r.get("channels")}
                  for r in rows if r.get("mean_day") is not None]
            for seg, rows in per_seg.items()
        }
    return out


def model_card_block(model_dir: Path) -> dict[str, Any]:
    """The payment model card in the report's layout (metrics, calibration, importance)."""
    path = Path(model_dir) / "model_card.json"
    if not path.exists():
        return {}
    card = json.loads(path.read_text())
    ev = card.get("evaluation") or {}
    metrics = {}
    for model, by_view in (ev.get("models") or {}).items():
        view = by_view.get("at_invoice_date", by_view) if isinstance(by_view, dict) else {}
        metrics[model] = {k: v for k, v in view.items()
                          if isinstance(v, int | float) and k != "n"}
        for cls, auc in (view.get("auc") or {}).items():
            metrics[model][f"auc_{cls}"] = auc
    calibration = {
        cls: {"predicted": [b["mean_predicted"] for b in bins],
              "observed": [b["observed"] for b in bins]}
        for cls, bins in (ev.get("calibration") or {}).items() if isinstance(bins, list)
    }
    importance = {d["feature"]: d.get("gain_share", d.get("importance", 0.0))
                  for d in ev.get("feature_importance") or [] if isinstance(d, dict)}
    hz = card.get("hazard_evaluation") or {}
    return {
        "hash": card.get("hash"), "payment_hash": card.get("payment_hash"),
        "hazard_hash": card.get("hazard_hash"), "classes": card.get("classes"),
        "very_late_days": card.get("very_late_days"), "data_period": card.get("data_period"),
        "split_date": ev.get("split_date"), "metrics": metrics, "calibration": calibration,
        "feature_importance": importance,
        "hazard_log_loss": hz.get("log_loss"),
        "hazard_log_loss_constant_rate": hz.get("log_loss_constant_rate"),
        "hazard_survival_max_gap": (hz.get("survival") or {}).get("all", {}).get("max_abs_gap"),
    }


def vetoes_block(counts: dict[str, int]) -> list[dict[str, Any]]:
    """Rule id, title, citation and count of every rule that vetoed something."""
    from legal_rules import load_rules

    rules = {r.id: r for r in load_rules().rules}
    return [{"rule_id": rid, "count": int(n), "title": getattr(rules.get(rid), "title", ""),
             "citation": getattr(rules.get(rid), "citation", "")}
            for rid, n in sorted(counts.items(), key=lambda kv: -kv[1])]


def assemble_results(config: PipelineConfig, evaluation: Any, *, model_dir: Path,
                     artifact: Any = None, robustness: Any = None,
                     veto_counts: dict[str, int] | None = None, tuned: Any = None,
                     step_seconds: dict[str, float] | None = None,
                     extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the report shows, in the ``results.json`` layout (see dunning.report)."""
    pol = policies_block(evaluation)
    results: dict[str, Any] = {
        "schema": RESULTS_SCHEMA,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "scenario": evaluation.scenario,
        "n_eval_invoices": evaluation.n_invoices,
        "n_seeds": len(evaluation.seeds),
        "seeds": evaluation.seeds,
        "policies": pol,
        "per_segment": {p: {s: {k: v.get("mean") for k, v in kp.items()}
                            for s, kp in segs.items()}
                        for p, segs in evaluation.by_segment.items()},
        "timing": timing_block(evaluation),
        "npv_difference_vs_fixed": evaluation.difference,
        # per-invoice paired differences to fixed (mean + t-interval over invoices x seeds)
        "paired_vs_fixed": getattr(evaluation, "paired", {}),
        "model_card": model_card_block(model_dir),
        "vetoes": vetoes_block(veto_counts or {}),
        "config": config.to_dict(),
        "hashes": {"ruleset": evaluation.config.get("ruleset_hash")},
        "step_seconds": dict(step_seconds or {}),
    }
    card = results["model_card"]
    results["hashes"].update({"model": card.get("hash"), "payment_model": card.get("payment_hash"),
                              "hazard_model": card.get("hazard_hash")})
    if artifact is not None:
        meta = artifact.metadata
        results["hashes"]["rl_policy"] = meta["content_hash"]
        results["training"] = {
            "curve": artifact.curve, "timesteps": meta["timesteps"],
            "train_seconds": meta["train_seconds"], "seed": meta["seed"],
            "n_envs": meta["training_config"]["n_envs"],
            "net_arch": meta["training_config"]["net_arch"],
            "environment": "learned (hazard model + rates from the store)",
            "timing_rules": artifact.timing_rules.describe(),
        }
    if tuned is not None and hasattr(tuned, "to_dict"):
        results["tuned_schedules"] = tuned.to_dict()
    if robustness is not None:
        results["robustness"] = {"scenario": robustness.scenario,
                                 "policies": policies_block(robustness)}
    results.update(extra or {})
    return jsonable(results)


def write_results(results: dict[str, Any], out_dir: Path) -> Path:
    """Write ``out_dir/results.json`` atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(path)
    return path


def report_step(config: PipelineConfig, results: dict[str, Any]) -> Path:
    """Render ``config.report_dir/index.html`` from the results.

    Adds the drift block first when missing (and re-writes ``results.json`` with it, so
    ``dunning report --results`` shows it too): the payment model (trained up to the cut)
    against the store's held-out months, reference = the last months of its training
    period of the same length (see ``dunning.business.drift.drift_section``).
    """
    from dunning.business.model_io import drift_section
    from dunning.report import write_report

    if "drift" not in results:
        cut = (results.get("holdout") or {}).get("cut_date")
        recent_from = dt.date.fromisoformat(cut) if cut else None
        results["drift"] = jsonable(drift_section(
            config.db_path, config.model_dir, recent_from=recent_from,
            reference_days=31 * config.holdout_months if recent_from else None))
        if (Path(config.out_dir) / "results.json").exists():
            write_results(results, Path(config.out_dir))
    return write_report(results, config.report_dir)


def robustness_step(config: PipelineConfig, model_dir: Path, cut: dt.date,
                    policies: dict[str, Any], progress: Progress | None = None) -> Any:
    """Run ``policies`` (with the models in ``model_dir``, not retrained) on the held-out
    invoices of a company generated the same way under ``config.robustness_scenario``."""
    shifted = generate_step(config, scenario=config.robustness_scenario)
    source = evaluation_source(config, shifted, model_dir, cut,
                               scenario=config.robustness_scenario)
    return evaluate_step(config, policies, source, progress, n_seeds=config.robustness_seeds)


@dataclass
class BaselineRun:
    """What the worker beside the RL training returns: the tuned schedule, the planner's
    directory, the ground-truth evaluations of every policy but RL (``robustness``: on
    ``config.robustness_scenario``, None when it is not set; without the planner) and the
    truth-free estimates of the tuned schedule and the planner (``estimates``, see
    :mod:`dunning.selection`; empty when the history has too few held-out episodes)."""

    tuned: Any
    evaluation: Any
    robustness: Any
    planner_dir: Path | None = None
    estimates: dict[str, Any] = field(default_factory=dict)
    ope_info: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # the worker's own steps


def planner_dynamics(config: PipelineConfig, learned: Any) -> Any:
    """The :class:`policies.planner.LearnedDynamics` the run's planner plans with on the
    learned environment ``learned``: its logged-support minimum and complaint weight."""
    from policies.planner import LearnedDynamics

    return LearnedDynamics.from_source(learned, min_support=config.planner_min_support,
                                       complaint_weight=config.planner_complaint_weight)


def save_planner_members(config: PipelineConfig, db: Path, cut: dt.date,
                         directory: Path) -> int:
    """Fit the hazard models the planner adds to the run's (``config.planner_hazard_members
    - 1``, alike with other seeds on the store ``db`` as known at ``cut``) and save them in
    ``directory`` for :func:`saved_planner_members`; returns how many. They do not need the
    run's model, so the worker fits them while the main process trains it (and hands back
    only the count: the models reach the planner's job through the files)."""
    from engine.models.ensemble import fit_members
    from engine.store import Store

    tc = train_config(config)
    members = fit_members(tc.seed, Store(db).tables(cut), cut, config.planner_hazard_members,
                          tc.hazard_params)
    for i, member in enumerate(members, start=1):
        member.save(Path(directory) / f"member_{i}")
    return len(members)


def saved_planner_members(directory: Path) -> list[Any]:
    """The hazard models :func:`save_planner_members` saved in ``directory``, in order."""
    from engine.models.hazard import HazardModel

    d = Path(directory)
    count = len(list(d.glob("member_*")))
    return [HazardModel.load(d / f"member_{i}") for i in range(1, count + 1)]


def planner_step(config: PipelineConfig, learned: Any, db: Path, cut: dt.date,
                 members: list[Any] | None = None) -> Any:
    """The planner on the learned environment ``learned`` (no training: exact planning at
    decision time), saved to ``config.planner_dir``. Its hazard is the mean of the run's
    hazard model and ``config.planner_hazard_members - 1`` more fitted alike with other
    seeds on the store ``db`` as known at ``cut`` (:mod:`engine.models.ensemble`: less of
    the learned model's error for the planner to exploit; docs/planner.md); ``members``:
    those fitted before by :func:`save_planner_members`."""
    from engine.models.ensemble import HazardEnsemble
    from engine.store import Store
    from policies.planner import PlannerPolicy

    dynamics = planner_dynamics(config, learned)
    if config.planner_hazard_members != 1:  # < 1 is refused by grown_from
        hazard = HazardEnsemble.grown_from(
            learned.hazard, Store(db).tables(cut), cut, config.planner_hazard_members,
            train_config(config).hazard_params, more=members)
        dynamics = replace(dynamics, hazard=hazard)
    planner = PlannerPolicy(dynamics)
    planner.save(config.planner_dir)
    return planner


def selection_estimates(config: PipelineConfig, company: Any, cut: dt.date, learned: Any,
                        policies: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Learned-environment value and DR estimate of each of ``policies`` on the held-out
    logged episodes (:mod:`dunning.selection`); ``({}, {skipped: reason})`` when there are
    too few of them."""
    from dunning.selection import estimates, logged_holdout
    from simulations.env import LegalMask

    mask = LegalMask()
    try:
        data, info = logged_holdout(company, cut, mask, config.ope_invoices, config.seed)
    except DunningError as err:
        return {}, {"skipped": str(err)}
    return {name: estimates(p, data, learned, mask, config.seed)
            for name, p in policies.items()}, info


def baselines_in_worker(config: PipelineConfig, company: Any, db: Path, model_dir: Path,
                        cut: dt.date, members_dir: Path | None = None) -> BaselineRun:
    """Tune the schedule, set up the planner, then evaluate never / fixed / tuned /
    planner in the ground truth on ``company``'s held-out invoices and never / fixed /
    tuned / oracle (not the planner, to keep the demo short) on the robustness scenario,
    and estimate tuned and planner without the truth: everything that needs neither the
    RL policy nor the oracle on the held-out invoices, which the main process evaluates
    once the RL training is done (:func:`oracle_and_rl_step`: it balances the two cores).
    ``members_dir``: where :func:`save_planner_members` saved the planner's added hazard models
    (fitted before; they are fitted here when it is None)."""
    seconds: dict[str, float] = {}  # the worker's own steps (no progress display here)
    with _step(None, "tune", seconds):
        learned = learned_source(config, db, model_dir, as_of=cut)
        tuned = tune_step(config, learned)
    with _step(None, "set up the planner", seconds):
        members = saved_planner_members(members_dir) if members_dir is not None else None
        planner = planner_step(config, learned, db, cut, members)
    policies = build_policies(tuned, None, planner)
    with _step(None, "evaluate never / fixed / tuned / planner", seconds):
        source = evaluation_source(config, company, model_dir, cut, db=db)
        evaluation = evaluate_step(
            config, {k: v for k, v in policies.items() if k != "oracle"}, source)
    robustness = None
    if config.robustness_scenario:
        others = {k: v for k, v in policies.items() if k != "planner"}
        with _step(None, f"evaluate on {config.robustness_scenario}", seconds):
            robustness = robustness_step(config, model_dir, cut, others)
    with _step(None, "truth-free estimates", seconds):
        est, info = selection_estimates(config, company, cut, learned,
                                        {"tuned": tuned, "planner": planner})
    return BaselineRun(tuned, evaluation, robustness, config.planner_dir, est, info, seconds)


def with_policy(base: Any, extra: Any) -> Any:
    """``base`` and ``extra`` (evaluations of other policies on the same invoices) as one
    evaluation, policies in the pipeline's order: never, fixed, tuned, rl, oracle."""
    from simulations.evaluation.harness import combine_evaluations

    names = [*base.policies, *extra.policies]
    return combine_evaluations([base, extra], order=[p for p in POLICY_ORDER if p in names]
                               + [p for p in names if p not in POLICY_ORDER])


def _timed_in_worker(name: str, fn: Any, *args: Any) -> tuple[Any, dict[str, float]]:
    """``(fn(*args), {name: seconds})``: a worker job that reports its own time."""
    seconds: dict[str, float] = {}
    with _step(None, name, seconds):
        out = fn(*args)
    return out, seconds


@contextlib.contextmanager
def _worker() -> Iterator[Any]:
    """One spawned worker process while the block runs (a ``ProcessPoolExecutor``: its
    jobs run one after the other). The pipeline's steps are single-threaded, so on 2 cores
    what runs there beside the main process costs no wall time (spawn, not fork: the parent
    has LightGBM and torch thread pools, which a forked child must not inherit)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


# -- the whole run -------------------------------------------------------------------------
def run_pipeline(config: PipelineConfig, progress: Progress | None = None) -> PipelineResult:
    """generate -> ingest -> train models (while a worker fits the planner's other hazard
    models, which do not need them) -> train RL (learned env) while the worker tunes the
    schedule, sets up the planner and evaluates the other policies in the ground truth on
    the held-out invoices (+ the robustness scenario) -> evaluate the oracle and RL there
    too (in this process, beside the worker) -> choose the
    shipped scheduler without the truth -> results + report. ``config.train_rl=False``
    skips PPO (the oracle's evaluation then runs beside the worker's part at once)."""
    from policies.rl import RLPolicy
    from policies.rl.vetoes import VetoCounter

    t: dict[str, float] = {}
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with _step(progress, "generate company", t) as p:
        company = generate_step(config, p)
    cut = cut_date(config, company)
    with _step(progress, "ingest into DuckDB", t):
        db = ingest_step(config)
    artifact, rl_policy = None, None
    # The worker fits the planner's added hazard models while this process trains the run's
    # models; then it tunes, plans and evaluates everything but the oracle and RL on the
    # held-out invoices on the second core while this process trains RL (single-threaded)
    # and evaluates the oracle and RL there, so that both cores stay busy until the end.
    # (The worker runs its jobs in order: the second finds the models the first saved.)
    with _worker() as worker, tempfile.TemporaryDirectory(prefix="dunning-") as tmp:
        members_dir = Path(tmp) / "planner_members" if config.planner_hazard_members > 1 \
            else None
        members_job = (worker.submit(_timed_in_worker, "fit the planner's other hazard models",
                                     save_planner_members, config, db, cut, members_dir)
                       if members_dir is not None else None)
        with _step(progress, "train payment + hazard models", t) as p:
            model_dir = train_models_step(config, db, as_of=cut, progress=p)
        with _step(progress, "build learned environment", t):
            learned = learned_source(config, db, model_dir, as_of=cut)
        source = evaluation_source(config, company, model_dir, cut, db=db)
        base_job = worker.submit(baselines_in_worker, config, company, db, model_dir, cut,
                                 members_dir)
        if config.train_rl:
            with _step(progress, "train RL policy", t,
                       total=config.rl_config.total_timesteps) as p:
                artifact = train_policy_step(config, db, model_dir, config.policy_dir,
                                             as_of=cut, progress=p, source=learned)
            rl_policy = RLPolicy.load(artifact.path)
        rl = {"rl": VetoCounter(rl_policy)} if rl_policy is not None else {}
        label = "evaluate the oracle and RL" if rl else "evaluate the oracle"
        with _step(progress, f"{label} in the ground truth", t,
                   total=config.n_seeds * (1 + len(rl))) as p:
            top = evaluate_step(config, {**rl, "oracle": oracle_policy()}, source, p)
        rl_shifted = None
        if config.robustness_scenario and rl_policy is not None:
            with _step(progress, f"evaluate RL on {config.robustness_scenario}", t):
                rl_shifted = robustness_step(config, model_dir, cut,
                                             {"rl": VetoCounter(rl_policy)})
        with _step(progress, "tune + plan + evaluate the other policies (in parallel)", t):
            base = base_job.result()
        members_seconds = members_job.result()[1] if members_job is not None else {}
    evaluation = with_policy(base.evaluation, top)
    evaluation.save(out)
    robustness = base.robustness
    if robustness is not None and rl_shifted is not None:
        robustness = with_policy(robustness, rl_shifted)
    with _step(progress, "choose the shipped scheduler (learned env + DR)", t):
        selection = selection_step(config, company, cut, learned, base, rl_policy, evaluation)
    results = assemble_results(
        config, evaluation, model_dir=model_dir, artifact=artifact, robustness=robustness,
        veto_counts=rl["rl"].counts if rl else {}, tuned=base.tuned, step_seconds=t,
        extra={"holdout": {"cut_date": str(cut), "invoices": len(source),
                           "company_invoices": int(len(company.invoices))},
               "company_summary": company.summary, **selection,
               # the worker's steps beside the RL training: how much of it is slack
               "worker_seconds": {**members_seconds, **base.seconds}},
    )
    results_path = write_results(results, out)
    with _step(progress, "write report", t):
        report = report_step(config, results)
    with _step(progress, "recommend for the workspace", t):
        workspace = workspace_step(config, db, model_dir)
    return PipelineResult(config, results, results_path, report, t, workspace)


def selection_step(config: PipelineConfig, company: Any, cut: dt.date, learned: Any,
                   base: BaselineRun, rl_policy: Any, evaluation: Any) -> dict[str, Any]:
    """``{"selection": ..., "shipped_policy": name}`` for results.json: the scheduler
    chosen by the learned-environment value and the DR estimate (never by the truth), with
    the truth beside them; without estimates (too little held-out history) the planner
    ships when it was evaluated, else RL, else the tuned schedule, and the reason says so."""
    from dunning.selection import selection_block

    estimates = dict(base.estimates)
    info = dict(base.ope_info)
    if rl_policy is not None and estimates:
        rl_est, _ = selection_estimates(config, company, cut, learned, {"rl": rl_policy})
        estimates.update(rl_est)
    truth = policies_block(evaluation)
    if not estimates:
        shipped = next(n for n in ("planner", "rl", "tuned") if n in truth)
        return {"shipped_policy": shipped,
                "selection": {"chosen": shipped, "candidates": {}, "held_out_episodes": info,
                              "reason": "no held-out logged episodes to estimate with "
                                        f"({info.get('skipped', 'none')}); {shipped} by "
                                        "default"}}
    block = selection_block(estimates, truth, info, config.seed)
    return {"shipped_policy": block["chosen"], "selection": block}


def print_headline(result: PipelineResult, console: Console) -> None:
    """The headline table of a run and where the report is."""
    from rich.table import Table

    res = result.results
    table = Table(title=f"Ground truth, {res['n_eval_invoices']} held-out invoices x "
                        f"{res['n_seeds']} seeds (mean, ± half 95 % CI)")
    for col in ("policy", "NPV/inv", "±", "days", "paid≤14d", "remind", "compl/1k", "viol",
                "gap"):
        table.add_column(col, justify="left" if col == "policy" else "right")

    def f(v: Any, fmt: str) -> str:
        return "–" if v is None else fmt.format(v)

    for name, k in res["policies"].items():
        ci = k.get("npv_ci") or [None, None]
        half = (ci[1] - ci[0]) / 2 if None not in ci else None
        table.add_row(name, f(k.get("npv"), "{:,.0f}"), f(half, "{:,.0f}"),
                      f(k.get("mean_days_to_pay"), "{:.1f}"),
                      f(k.get("first_reminder_pay_rate"), "{:.0%}"),
                      f(k.get("reminders_per_invoice"), "{:.2f}"),
                      f(k.get("complaints_per_1000"), "{:.0f}"), f(k.get("violations"), "{:.0f}"),
                      f(k.get("oracle_gap_closed"), "{:.1%}"))
    console.print(table)
    console.print("gap = share of the oracle's NPV gain over the fixed 14/30/45 schedule")
    sel = res.get("selection") or {}
    if sel.get("chosen"):
        console.print(f"shipped scheduler: [bold]{sel['chosen']}[/] "
                      f"(chosen without the truth: {sel.get('reason', '')})", markup=True)
    console.print(f"results: [bold]{result.results_path}[/]")
    console.print(f"report:  [bold]{result.report_path}[/]")
    ws = result.workspace
    if ws is not None:
        console.print(f"workspace: recommendations of {ws.as_of} for {ws.n_open:,} open "
                      f"invoices, {ws.n_review:,} review items; open it with:",
                      highlight=False, soft_wrap=True)
        console.print(f"  {ws.command}", highlight=False, markup=False, soft_wrap=True)
        console.print(f"then http://127.0.0.1:8000/ui/ and log in with the token in "
                      f"{ws.tokens}", highlight=False, markup=False, soft_wrap=True)
