"""A small real company, its store and trained models, shared by the RL tests.

Built once per session through the pipeline's own steps (generate -> ingest -> train the
payment and hazard models on the history known before the hold-out cut).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class SmallRun:
    config: Any
    company: Any
    db: Path
    model_dir: Path
    cut: Any
    learned: Any


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> SmallRun:
    from dunning.pipeline import (
        PipelineConfig,
        cut_date,
        generate_step,
        ingest_step,
        learned_source,
        train_models_step,
    )

    cfg = PipelineConfig.tiny(tmp_path_factory.mktemp("rl-run"), seed=3)
    cfg.n_customers, cfg.months, cfg.holdout_months = 80, 10, 3
    company = generate_step(cfg)
    cut = cut_date(cfg, company)
    db = ingest_step(cfg)
    model_dir = train_models_step(cfg, db, as_of=cut)
    return SmallRun(cfg, company, db, model_dir, cut, learned_source(cfg, db, model_dir, cut))


def tiny_rl_config(seed: int = 0, timesteps: int = 2048) -> Any:
    from policies.rl import RLTrainingConfig

    return RLTrainingConfig(seed=seed, total_timesteps=timesteps, n_envs=64, n_steps=16,
                            batch_size=512, n_epochs=2, net_arch=(16, 16), timing_invoices=150,
                            timing_first_reminder_days=(0, 9, 30), timing_min_days_between=(0, 14))
