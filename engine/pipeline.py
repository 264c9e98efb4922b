"""The researcher's Python API for the whole pipeline (what ``dunning demo`` runs).

Each step is a separate function so a researcher can run, repeat or replace any of them::

    from engine.pipeline import PipelineConfig, run_pipeline

    config = PipelineConfig.default(out_dir="runs/exp1", seed=1, n_customers=800)
    result = run_pipeline(config)            # generate -> ingest -> models -> RL -> eval -> report
    result.results["policies"]["rl"]["oracle_gap_closed"]

    # or step by step, e.g. to evaluate your own policy next to the others:
    company = generate_step(config)
    db = ingest_step(config, company)
    model_dir = train_models_step(config, db)
    artifact = train_policy_step(config, db, model_dir, config.policy_dir)
    policies = build_policies(config, db, model_dir, artifact.path)
    policies["mine"] = MyPolicy()
    evaluation = evaluate_step(config, policies, model_dir)
    results = assemble_results(config, evaluation, ...); report_step(config, results)

This module is edge wiring like the CLI: ``engine`` must not import ``simulations`` or
``policies`` at module level, so every step imports them inside its body.

Files written under ``config.out_dir`` (default ``dunning-data/``): ``company/`` (the
generated export CSVs), ``dunning.duckdb`` (the store, re-created by the demo),
``model/`` (payment + hazard model), ``policy/`` (RL artifact), ``results.json``,
``evaluation.json`` (the harness's full output) and ``report/index.html``.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import DunningError

if TYPE_CHECKING:
    from rich.console import Console

    from policies.rl import RLArtifact, RLTrainingConfig

RESULTS_SCHEMA = "dunning.results/1"
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

    Sizes: ``n_customers`` over ``months`` of history for the company; the evaluation runs
    ``n_eval_invoices`` fresh ground-truth invoices per seed for ``n_seeds`` seeds (none of
    them seen in training). ``rl`` is a ``policies.rl.RLTrainingConfig`` (``None``: its
    defaults with ``seed``). ``robustness_scenario`` (``None`` to skip) is evaluated with the
    same trained policies.
    """

    out_dir: Path = Path("dunning-data")
    scenario: str = "default"
    robustness_scenario: str | None = "shifted"
    n_customers: int = 1500
    months: int = 24
    seed: int = 0
    n_eval_invoices: int = 4000
    n_seeds: int = 5
    tune_invoices: int = 2000
    rl: RLTrainingConfig | None = None
    db: Path | None = None  # default out_dir / "dunning.duckdb"
    fresh_db: bool = True  # the demo owns its store: re-create it

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

        rl = RLTrainingConfig(seed=seed, total_timesteps=8192, n_envs=128, n_steps=16,
                              batch_size=1024, n_epochs=2)
        return cls(out_dir=Path(out_dir), seed=seed, n_customers=120, months=12,
                   n_eval_invoices=300, n_seeds=2, tune_invoices=300, rl=rl,
                   robustness_scenario="shifted")

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


# -- steps ---------------------------------------------------------------------------------
def generate_step(config: PipelineConfig, progress: Progress | None = None) -> Path:
    """Generate the synthetic company and write its export CSVs to ``config.company_dir``."""
    from simulations import world

    scenario = world.load_scenario(config.scenario)
    p = progress or Progress()
    company = world.generate_company(
        scenario, config.n_customers, config.months, config.seed,
        progress=lambda done, total: p.update(done, f"day {done}/{total}"),
    )
    company.write(config.company_dir)
    return config.company_dir


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
    return db


def train_models_step(config: PipelineConfig, db: Path | None = None,
                      progress: Progress | None = None) -> Path:
    """Train the payment and hazard models on the store; artifact in ``config.model_dir``."""
    from engine.models.training import TrainConfig, train_artifact
    from engine.store import Store

    p = progress or Progress()
    tables = Store(db or config.db_path).tables()
    train_artifact(tables, config.model_dir, cfg=TrainConfig(seed=config.seed),
                   progress=lambda msg: p.update(0, msg))
    return config.model_dir
