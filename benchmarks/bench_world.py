"""Speed of the ground-truth world: company generation, batch step throughput, oracle solve.

Run: ``.venv/bin/python benchmarks/bench_world.py [--invoices 1000000]``; writes
``benchmarks/results/world.json``. Targets: 1M invoices generated in under 60 s on 2 cores,
batch step throughput over 1M invoice-days per second.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_result  # noqa: E402
from policies.oracle import solve  # noqa: E402
from simulations import world  # noqa: E402


def bench_generate(scenario: world.Scenario, target_invoices: int, months: int) -> dict:
    seg_w = np.array([s.weight for s in scenario.segments])
    rate = np.array([s.invoices_per_month for s in scenario.segments])
    per_customer = float((seg_w / seg_w.sum()) @ rate) * months
    customers = int(round(target_invoices / per_customer))
    t0, c0 = time.perf_counter(), time.process_time()
    company = world.generate_company(scenario, customers, months, seed=0)
    t_gen, c_gen = time.perf_counter() - t0, time.process_time() - c0
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        company.write(tmp)
        t_write, c_write = time.perf_counter() - t0, time.process_time() - c0
    n = company.summary["n_invoices"]
    return {
        "customers": customers, "months": months, "invoices": n,
        "payments": company.summary["n_payments"], "actions": company.summary["n_actions"],
        "generate_seconds": round(t_gen, 2), "write_csv_seconds": round(t_write, 2),
        "total_seconds": round(t_gen + t_write, 2),
        "cpu_seconds": round(c_gen + c_write, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "invoices_per_second": round(n / (t_gen + t_write)),
        "target_seconds_for_1M": 60.0,
        "meets_target": bool((t_gen + t_write) * 1_000_000 / n < 60.0),
        "summary": {k: company.summary[k] for k in
                    ("first_reminder_pay_rate", "mean_days_invoice_to_payment", "on_time_rate")},
    }


def bench_step(scenario: world.Scenario, n: int, days: int) -> dict:
    rng = np.random.default_rng(0)
    params = world.sample_invoices(scenario, n, rng)
    state = world.initial_state(params)
    actions = np.where(rng.random(n) < 0.9, 0, rng.integers(1, 5, size=n))
    world.step(params, state, actions, rng)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(days):
        state, _ = world.step(params, state, actions, rng)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    rate = n * days / elapsed
    return {"batch_invoices": n, "days": days, "seconds": round(elapsed, 3),
            "cpu_seconds": round(cpu, 3),
            "invoice_days_per_second": round(rate), "target_invoice_days_per_second": 1_000_000,
            "meets_target": bool(rate > 1_000_000),
            "note": "world.step only (10 % reminders); finished rows stay in the batch"}


def bench_oracle(scenario: world.Scenario, n: int) -> dict:
    params = world.sample_invoices(scenario, n, np.random.default_rng(1))
    t0 = time.perf_counter()
    sol = solve(params, keep_policy=False)
    elapsed = time.perf_counter() - t0
    return {"invoices": n, "horizon_days": sol.horizon, "states_per_day": sol.space.size,
            "seconds": round(elapsed, 2), "ms_per_invoice": round(1000 * elapsed / n, 1),
            "mask": "none (allow all)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--invoices", type=int, default=1_000_000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--step-batch", type=int, default=1_000_000)
    ap.add_argument("--oracle-invoices", type=int, default=128)
    args = ap.parse_args()
    scenario = world.load_scenario("default")
    figures = {
        "scenario": "default",
        "generate": bench_generate(scenario, args.invoices, args.months),
        "step": bench_step(scenario, args.step_batch, 10),
        "oracle_solve": bench_oracle(scenario, args.oracle_invoices),
    }
    path = write_result("world", figures)
    print(path.read_text())


if __name__ == "__main__":
    main()
