"""How long ``make demo`` takes on a fresh clone: the install, then the main job.

Clones the repository's committed HEAD into a temporary directory (nothing of this work
tree's ``.venv`` or ``dunning-data`` is reused), runs ``make install`` and then ``make demo``
there (whose install step is then a no-op), each timed, and writes
``benchmarks/results/demo.json``: both times, their sum (= ``make demo`` on a fresh clone;
target < 600 s on 2 cores), the pipeline's own step times and its headline figures.
pip's wheel cache is the machine's: on a machine that never installed the project, the
downloads come on top. ``python benchmarks/bench_demo.py [--keep]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_result  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], cwd: Path, log: Path) -> float:
    """Run ``cmd`` in ``cwd`` with its output appended to ``log``; seconds it took (exits
    with the log's tail when it fails)."""
    start = time.perf_counter()
    with log.open("a") as out:
        code = subprocess.call(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if code != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        sys.exit(f"{' '.join(cmd)} failed with exit code {code} in {cwd}:\n{tail}")
    return seconds


def headline(results: dict) -> dict:
    """The RL policy's figures next to the baselines' NPV, from the clone's results.json."""
    pol = results["policies"]
    return {"npv": {name: k.get("npv") for name, k in pol.items()},
            "rl_oracle_gap_closed": pol.get("rl", {}).get("oracle_gap_closed"),
            "rl_violations": pol.get("rl", {}).get("violations"),
            "hashes": results.get("hashes")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the clone (path printed)")
    args = ap.parse_args()
    commit = subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=REPO, text=True).strip()
    dirty = bool(subprocess.check_output(["git", "status", "--porcelain"], cwd=REPO, text=True))
    clone = Path(tempfile.mkdtemp(prefix="dunning-demo-")) / "dunning"
    try:
        subprocess.check_call(["git", "clone", "--quiet", str(REPO), str(clone)])
        log = clone.parent / "make.log"
        print(f"fresh clone of {commit[:10]} in {clone}; log {log}", flush=True)
        install = timed(["make", "install"], clone, log)
        print(f"make install: {install:.0f} s", flush=True)
        demo = timed(["make", "demo"], clone, log)
        print(f"make demo (installed): {demo:.0f} s", flush=True)
        results = json.loads((clone / "dunning-data" / "results.json").read_text())
        figures = {
            "data": {"company": "embedded default (600 customers x 24 months)",
                     "n_eval_invoices": results["n_eval_invoices"],
                     "n_seeds": results["n_seeds"]},
            "commit": commit, "work_tree_dirty": dirty,
            "install_seconds": round(install, 1),
            "pipeline_seconds": round(demo, 1),
            "make_demo_seconds": {"measured": round(install + demo, 1), "target": "< 600"},
            "step_seconds": results["step_seconds"],
            # the worker's own steps beside the RL training (absent before 6e283d1)
            "worker_seconds": results.get("worker_seconds"),
            "results": headline(results),
        }
        print(write_result("demo", figures))
    finally:
        if args.keep:
            print(f"kept {clone}")
        else:
            shutil.rmtree(clone.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
