"""End to end: `dunning demo --tiny` through the real CLI, then the report in Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

POLICIES = ("never", "fixed", "tuned", "rl", "planner", "oracle")
KPIS = ("npv", "mean_days_to_pay", "first_reminder_pay_rate", "reminders_per_invoice",
        "complaints_per_1000", "violations")
EXTERNAL_REF = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage")


pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _dunning(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("dunning")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def test_demo_end_to_end(tmp_path: Path):
    """One test (one demo run, about a minute when the machine is idle): xdist would run a
    shared fixture once per worker."""
    out = tmp_path / "demo"
    proc = _dunning("demo", "--tiny", "--out", str(out), "--seed", "1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "report:" in proc.stdout and "oracle" in proc.stdout
    _check_results(out)
    _check_workspace(out, proc.stdout)
    _check_rerender(out)
    _check_in_chromium(out, tmp_path)


def _check_results(demo_dir: Path) -> None:
    results = json.loads((demo_dir / "results.json").read_text())
    assert list(results["policies"]) == list(POLICIES)
    for name in POLICIES:
        for k in KPIS:
            assert k in results["policies"][name], (name, k)
        assert results["policies"][name]["violations"] == 0
    rl = results["policies"]["rl"]
    per_seed = rl["oracle_gap_closed_per_seed"]
    assert rl["oracle_gap_closed"] == pytest.approx(sum(per_seed) / len(per_seed))
    assert results["policies"]["oracle"]["npv"] >= results["policies"]["fixed"]["npv"]
    for h in ("rl_policy", "ruleset", "payment_model", "hazard_model"):
        assert results["hashes"][h], h
    assert results["training"]["curve"]["timesteps"]
    # the planner is not run on the robustness company (it would double the demo's planning)
    assert set(results["robustness"]["policies"]) == set(POLICIES) - {"planner"}
    sel = results["selection"]
    assert results["shipped_policy"] == sel["chosen"] in ("tuned", "rl", "planner")
    assert set(sel["candidates"]) == {"tuned", "rl", "planner"}
    for c in sel["candidates"].values():  # both truth-free estimates, the truth beside them
        assert c["dr_ci"][0] <= c["dr"] <= c["dr_ci"][1]
        assert c["learned_value"] is not None and c["truth_npv"] is not None
    assert results["timing"]["rl"]  # per-segment timing of the learned policy
    assert results["vetoes"] and all(v["citation"] for v in results["vetoes"])
    assert results["holdout"]["invoices"] > 0
    # the worker's own steps beside the model and RL training (how much slack it has); the
    # tiny demo's planner plans on 2 hazard models: the worker fits the other first
    worker = results["worker_seconds"]
    assert set(worker) == {"fit the planner's other hazard models", "tune",
                           "set up the planner", "evaluate never / fixed / tuned / planner",
                           "evaluate on shifted", "truth-free estimates"}
    assert all(s >= 0 for s in worker.values()) and sum(worker.values()) > 0
    for f in ("dunning.duckdb", "policy/policy.zip", "policy/policy.json", "planner/planner.json",
              "evaluation.json",
              "model/model_card.json", "company/invoices.csv"):
        assert (demo_dir / f).is_file(), f


def _check_workspace(demo_dir: Path, stdout: str) -> None:
    """The demo leaves the store ready for `dunning serve`: the day's recommendations
    (worklist) for the store's latest day, a token file, and the exact command printed."""
    from engine.store import Store

    db = demo_dir / "dunning.duckdb"
    command = f"serve --db {db} --tokens {demo_dir / 'tokens.txt'}"
    assert command in " ".join(stdout.split()), stdout[-2000:]
    store = Store(db)
    with store.connect(read_only=True) as con:
        day, n = con.execute("SELECT max(as_of), count(*) FROM ops_recommendations").fetchone()
    assert day == store.latest_date() and n > 0
    assert f"recommendations of {day} for {n:,} open invoices" in stdout
    tokens = demo_dir / "tokens.txt"
    assert tokens.stat().st_mode & 0o077 == 0 and " reviewer " in tokens.read_text()


def _check_rerender(demo_dir: Path) -> None:
    before = (demo_dir / "report" / "index.html").read_text()
    proc = _dunning("report", "--results", str(demo_dir), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (demo_dir / "report" / "index.html").read_text() == before


def _check_in_chromium(demo_dir: Path, tmp_path: Path) -> None:
    assert CHROMIUM, "chromium is not installed (make chromium)"
    index = demo_dir / "report" / "index.html"
    proc = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         index.as_uri()], capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert set(re.findall(r'<tr data-policy="(\w+)"', dom)) >= set(POLICIES)
    for section in ("comparison", "timing", "model-card", "vetoes", "training", "config"):
        assert f'id="{section}"' in dom
    svgs = re.findall(r"<svg\b.*?</svg>", dom, re.DOTALL)
    assert len(svgs) >= 5 and all("<path" in s for s in svgs)
    assert re.search(r'<tr data-rule="[^"]+">', dom), "no veto rows"
    assert not EXTERNAL_REF.search(dom)
