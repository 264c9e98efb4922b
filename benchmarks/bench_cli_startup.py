"""What the CLI's lazy imports buy: `dunning --help` start-up against importing every
command's heavy stack up front (writes ``benchmarks/results/cli_startup.json``).

The command modules import numpy, pandas, torch, LightGBM, DuckDB and SB3 inside the
command functions; this measures the start-up a user waits for on every `--help`, the same
with those imports made at start-up, and the ratio of the two, in one run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import write_result

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numpy", "pandas", "duckdb", "lightgbm", "torch", "stable_baselines3", "sb3_contrib")
LAZY = "import sys; sys.argv = ['dunning', '--help']; from dunning.cli import app; app()"
EAGER = f"import {', '.join(HEAVY)}; " + LAZY


def _seconds(code: str, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    _seconds(EAGER, 1)  # warm the file cache for both variants alike
    lazy, eager = _seconds(LAZY, args.repeats), _seconds(EAGER, args.repeats)
    figures = {
        "repeats": args.repeats,
        "help_lazy_median_s": round(statistics.median(lazy), 3),
        "help_with_heavy_imports_median_s": round(statistics.median(eager), 3),
        "ratio_heavy_over_lazy": round(statistics.median(eager) / statistics.median(lazy), 2),
        "heavy_modules": list(HEAVY),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                 capture_output=True, text=True).stdout.strip(),
    }
    print(write_result("cli_startup", figures))
    print(figures)


if __name__ == "__main__":
    main()
