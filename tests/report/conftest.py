"""A results.json-shaped dict for the report tests (the layout dunning.report documents)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-dev-shm-usage",
)


def _kpis(npv: float, days: float, rate: float, rem: float, compl: float) -> dict[str, Any]:
    return {"npv": npv, "npv_ci": [npv - 3.0, npv + 3.0], "mean_days_to_pay": days,
            "mean_days_to_pay_ci": [days - 1, days + 1], "first_reminder_pay_rate": rate,
            "reminders_per_invoice": rem, "complaints_per_1000": compl,
            "complaints_per_1000_ci": [compl * 0.9, compl * 1.1], "violations": 0}


def drift_block() -> dict[str, Any]:
    """A drift block made by the real drift code on seeded data with planted drift:
    ``amount`` shifts (PSI warning) and calibration breaks from 2025-05 on (ECE warning)."""
    import datetime as dt

    import numpy as np
    import pandas as pd

    from dunning.business.drift import drift_between, thresholds

    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"amount": rng.lognormal(7, 1, 3000),
                        "segment": rng.choice(["corporate", "startup"], 3000),
                        "invoice_month": rng.integers(1, 7, 3000)})
    new = pd.DataFrame({"amount": rng.lognormal(7.8, 1, 1500),
                        "segment": rng.choice(["corporate", "startup"], 1500),
                        "invoice_month": rng.integers(7, 13, 1500)})
    n = 6000
    dates = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 181, n), unit="D")
    p = rng.uniform(0.05, 0.95, n)
    true_p = np.where(dates >= pd.Timestamp("2025-05-01"), p * 0.6, p)
    y = (rng.random(n) < true_p).astype(float)
    report = drift_between(ref, new, list(ref.columns), p_on_time=p, on_time=y, dates=dates,
                           model="model (abc123)", reference_period=("2025-01-01", "2025-03-01"),
                           recent_period=("2025-03-01", "2025-06-30"),
                           judged_from=dt.date(2025, 3, 1))
    return json.loads(json.dumps({"available": True, **report.to_dict(), **thresholds()},
                                 default=str))


@pytest.fixture
def sample_results() -> dict[str, Any]:
    policies = {
        "never": _kpis(900.0, 70.0, float("nan"), 0.0, 0.0),
        "fixed": _kpis(950.0, 60.0, 0.23, 2.1, 12.0),
        "tuned": _kpis(960.0, 55.0, 0.30, 1.9, 9.0),
        "rl": {**_kpis(968.0, 47.0, 0.40, 1.7, 6.0), "oracle_gap_closed": 0.9},
        "oracle": _kpis(970.0, 45.0, 0.42, 1.6, 5.0),
    }
    timing = {
        p: {"corporate": [{"reminder": 1, "day": d, "channel": "email", "share": 0.9},
                          {"reminder": 2, "day": d + 14, "channel": "letter"}],
            "startup": [{"reminder": 1, "day": d + 3, "channel": "phone"}]}
        for p, d in (("fixed", 14.0), ("tuned", 8.0), ("rl", 6.5))
    }
    return {
        "schema": "dunning.results/1",
        "created_at": "2026-11-23T10:00:00Z",
        "scenario": "default",
        "n_eval_invoices": 1000,
        "n_seeds": 5,
        "policies": policies,
        "per_segment": {p: {"corporate": {"npv": k["npv"] - 5}, "startup": {"npv": k["npv"] + 5}}
                        for p, k in policies.items()},
        "timing": timing,
        "robustness": {"scenario": "shifted",
                       "policies": {p: {**k, "npv": k["npv"] * 0.97} for p, k in policies.items()}},
        "model_card": {
            "hash": "abc123",
            "metrics": {"lightgbm": {"log_loss": 0.61, "accuracy": 0.74},
                        "logistic": {"log_loss": 0.70, "accuracy": 0.69}},
            "calibration": {"on_time": {"predicted": [0.1, 0.5, 0.9],
                                        "observed": [0.12, 0.48, 0.88]}},
            "feature_importance": {"hist_share_late": 120.0, "amount_log": 40.0,
                                   "segment": 80.0},
        },
        "vetoes": [{"rule_id": "practice.weekend", "count": 1234, "title": "No reminders on "
                    "weekends", "citation": "house practice"},
                   {"rule_id": "de.disputed", "count": 17, "title": "Disputed invoice",
                    "citation": "BGB § 286"}],
        "training": {"curve": {"timesteps": [1000, 2000, 3000],
                               "mean_reward": [0.90, 0.93, 0.95]},
                     "total_timesteps": 3000, "seed": 0,
                     "timing_rules": "corporate: first reminder from day 6, >= 10 days apart"},
        "config": {"customers": 100, "rl_timesteps": 3000},
        "hashes": {"ruleset": "r1", "payment_model": "abc123", "rl_policy": "p1"},
        "step_seconds": {"generate": 1.0, "train_policy": 30.0},
        "worker_seconds": {"tune": 12.5, "set up the planner": 4.0},
        "drift": drift_block(),
    }


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def run_chromium(args: list[str], tmp_path: Path, timeout: float = 60.0) -> str:
    """Run headless chromium with an isolated profile; return stdout (e.g. the dumped DOM)."""
    exe = chromium_path()
    assert exe, "chromium is not installed (make chromium)"
    profile = tmp_path / "chromium-profile"
    proc = subprocess.run(
        [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout
