"""Business area benchmark: speed of the checks and statistical validity of the pilot maths.

Run: ``.venv/bin/python benchmarks/bench_business.py`` -> ``benchmarks/results/business.json``.

Measured:
- plausibility checks: recommendations per second on 100,000 rows;
- drift: seconds for PSI of 40 features between two 100,000-row periods;
- pilot power: empirical power of pilots sized by ``power_analysis`` (target 0.80) and the
  false-positive rate under no effect (target 0.05), 400 simulated pilots each;
- safety guard: false-stop rate over 12 looks under no effect (target <= 0.05) and stop
  rate when complaints triple (target >= 0.90), 400 simulated pilots each;
- ROI: seconds for ``roi_section`` with the tornado chart;
- what-if: seconds for one schedule change (1,000 invoices x 3 seeds; the CLI default is
  2,000 x 5, about 3.3 times the work).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_result  # noqa: E402
from dunning.business.drift import feature_psi  # noqa: E402
from dunning.business.pilot import (  # noqa: E402
    OutcomeStats,
    compare_arms,
    power_analysis,
    safety_guard,
    weekly_looks,
)
from dunning.business.plausibility import check_recommendations  # noqa: E402
from dunning.business.roi import roi_section  # noqa: E402

N_SIMS = 400


def bench_plausibility(n: int = 100_000) -> dict:
    rng = np.random.default_rng(0)
    inv = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    recs = pd.DataFrame({
        "invoice_id": [f"I{i}" for i in range(n)],
        "customer_id": [f"C{i % 5000}" for i in range(n)],
        "amount": rng.lognormal(7, 1, n),
        "invoice_date": inv,
        "due_date": inv + pd.Timedelta(days=30),
        "as_of": inv + pd.to_timedelta(rng.integers(0, 90, n), unit="D"),
        "p_on_time": rng.random(n),
        "p_on_time_prev": rng.random(n),
        "action": rng.choice(["wait", "email", "letter", "phone", "final_notice", "agency"], n),
    })
    history = recs[["customer_id", "amount"]]
    start = time.perf_counter()
    out = check_recommendations(recs, history)
    seconds = time.perf_counter() - start
    return {"rows": n, "seconds": round(seconds, 3), "rows_per_second": round(n / seconds),
            "flagged_share": round(float(out["flagged"].mean()), 4)}


def bench_drift(n: int = 100_000, k: int = 40) -> dict:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({f"x{j}": rng.normal(0, 1, n) for j in range(k)})
    new = pd.DataFrame({f"x{j}": rng.normal(0.1 * (j % 5), 1, n) for j in range(k)})
    start = time.perf_counter()
    table = feature_psi(ref, new)
    seconds = time.perf_counter() - start
    return {"rows_per_period": n, "features": k, "seconds": round(seconds, 3),
            "features_warned": int((table["status"] == "warning").sum())}


def simulate(k: int, m: int, effect: float, icc: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = np.where(np.arange(k) % 2 == 0, "current", "learned")
    cust = np.repeat(np.arange(k), m)
    y = (rng.normal(0, np.sqrt(icc), k)[cust] + rng.normal(0, np.sqrt(1 - icc), len(cust))
         + np.where(arm[cust] == "learned", effect, 0.0))
    return pd.DataFrame({"customer_id": cust.astype(str), "arm": arm[cust], "days_to_pay": y})


def bench_power() -> dict:
    stats = OutcomeStats("days_to_pay", 0.0, 1.0, 0.2, 2.0, 1000, 10000)
    pa = power_analysis(stats, effect=0.3, months=3.0)
    m = 6  # 2 eligible invoices per customer-month x 3 months
    hits = [compare_arms(simulate(pa.customers_needed, m, 0.3, 0.2, s), "days_to_pay")
            .significant for s in range(N_SIMS)]
    nulls = [compare_arms(simulate(250, m, 0.0, 0.2, s), "days_to_pay").significant
             for s in range(N_SIMS)]
    return {"customers_needed": pa.customers_needed, "simulated_pilots": N_SIMS,
            "empirical_power": float(np.mean(hits)), "target_power": 0.8,
            "false_positive_rate": float(np.mean(nulls)), "target_alpha": 0.05}


def bench_guard() -> dict:
    looks = weekly_looks("2025-01-01", "2025-03-26")

    def events(rate_learned: float, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        n = 1200
        arm = np.where(np.arange(n) % 2 == 0, "current", "learned")
        return pd.DataFrame({
            "arm": arm,
            "invoice_date": pd.Timestamp("2025-01-01")
            + pd.to_timedelta(rng.integers(0, 84, n), unit="D"),
            "complaints": rng.poisson(np.where(arm == "learned", rate_learned, 0.05)),
        })

    null = [safety_guard(events(0.05, s), looks)[-1].stop for s in range(N_SIMS)]
    harm = [safety_guard(events(0.15, s), looks)[-1].stop for s in range(N_SIMS)]
    return {"looks": len(looks), "invoices": 1200, "simulated_pilots": N_SIMS,
            "false_stop_rate": float(np.mean(null)), "target_false_stop_rate_max": 0.05,
            "stop_rate_complaints_x3": float(np.mean(harm)), "target_stop_rate_min": 0.9}


def bench_roi() -> dict:
    results = {"fixed": {"mean_days_to_pay": 67.0, "reminders_per_invoice": 1.8},
               "rl": {"mean_days_to_pay": 58.0, "reminders_per_invoice": 1.3}}
    start = time.perf_counter()
    section = roi_section(results)
    return {"seconds_with_chart": round(time.perf_counter() - start, 3),
            "svg_bytes": len(section["tornado_svg"])}


def bench_whatif(n_invoices: int = 1000, seeds: int = 3) -> dict:
    from dunning.business.whatif import run_whatif

    start = time.perf_counter()
    r = run_whatif("schedule=7,21,35", n_invoices=n_invoices, seeds=seeds)
    return {"invoices": n_invoices, "seeds": seeds,
            "seconds": round(time.perf_counter() - start, 2),
            "cash_collected_difference": r.difference["cash_collected"]}


def main() -> None:
    figures = {
        "plausibility": bench_plausibility(),
        "drift_psi": bench_drift(),
        "pilot_power": bench_power(),
        "safety_guard": bench_guard(),
        "roi": bench_roi(),
        "what_if": bench_whatif(),
    }
    path = write_result("business", figures)
    print(path)
    for name, fig in figures.items():
        print(name, fig)


if __name__ == "__main__":
    main()
