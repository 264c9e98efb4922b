"""Shared by every benchmark script: where results go and what machine made them."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_info() -> dict[str, Any]:
    """The facts about this machine that a timing is meaningless without."""
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gib = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "memory_gib": round(mem_gib, 1) if mem_gib else None,
        "python": sys.version.split()[0],
    }


def write_result(name: str, figures: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` with the machine, a timestamp and figures.

    ``figures`` should include the data size it was measured on and, for every target
    of an issue, the target next to the measured value.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{name}.json"
    payload = {
        "benchmark": name,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(),
        **figures,
    }
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(out)
    return out


def timed_call(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``(fn(), wall seconds it took)``."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def finished_rl_run_from_cli(description: str | None, invoices: int,
                             more: Callable[[argparse.ArgumentParser], None] | None = None
                             ) -> tuple[argparse.Namespace, Any, Any, Any]:
    """``(args, PipelineConfig, company, cut date)`` for a diagnostic benchmark of a finished
    ``bench_rl.py`` run: parses ``--run`` (default ``dunning-data/bench_rl``),
    ``--invoices`` (invoices per seed, default ``invoices``) and ``--scenario`` (the run's
    company, default ``default``; e.g. a ``bench_generality.py --scenario`` run), and the
    benchmark's own options that ``more`` adds to the parser."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--run", type=Path, default=Path("dunning-data") / "bench_rl")
    ap.add_argument("--invoices", type=int, default=invoices)
    ap.add_argument("--scenario", default="default", help="the run's scenario (name or file)")
    if more is not None:
        more(ap)
    args = ap.parse_args()
    return (args, *finished_rl_run(args.run, args.scenario))


def finished_rl_run(run: Path, scenario: str = "default") -> tuple[Any, Any, Any]:
    """``(PipelineConfig, company, cut date)`` of a finished ``bench_rl.py`` run in ``run``
    (the default pipeline's out dir, on ``scenario``); exits with a clear message when it
    has no models."""
    import dataclasses

    from dunning.pipeline import PipelineConfig, cut_date, generate_step

    config = dataclasses.replace(PipelineConfig.default(out_dir=run), scenario=scenario)
    if not (config.model_dir / "hazard_model.txt").is_file():
        sys.exit(f"{config.model_dir}: no trained models; run benchmarks/bench_rl.py first")
    company = generate_step(config, scenario=config.scenario)
    return config, company, cut_date(config, company)


# ------------------------------------------------------------------- HTTP load benchmarks
def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_clients(client: Any, url: str, token: str, plans: list[Any], server_pid: int
                ) -> tuple[list[Any], float, float]:
    """Start one process per plan running ``client(url, token, plan, queue)`` at once;
    returns what each put on the queue, the wall seconds until all had answered and the
    server's CPU seconds meanwhile (bounded: each plan is a finite list of requests)."""
    import multiprocessing as mp

    out: Any = mp.Queue()
    procs = [mp.Process(target=client, args=(url, token, plan, out)) for plan in plans]
    cpu0 = cpu_seconds(server_pid)
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    elapsed = time.perf_counter() - t0
    server_cpu = cpu_seconds(server_pid) - cpu0
    for p in procs:
        p.join()
    return results, elapsed, server_cpu
