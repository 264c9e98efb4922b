"""End to end: `dunning demo --tiny` through the real CLI, then the report in Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

POLICIES = ("never", "fixed", "tuned", "rl", "oracle")
KPIS = ("npv", "mean_days_to_pay", "first_reminder_pay_rate", "reminders_per_invoice",
        "complaints_per_1000", "violations")
EXTERNAL_REF = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage")


pytestmark = pytest.mark.slow  # the whole pipeline, tiny: about a minute on an idle machine


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    dunning = Path(sys.executable).with_name("dunning")
    proc = subprocess.run([str(dunning), "demo", "--tiny", "--out", str(out), "--seed", "1"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "report:" in proc.stdout and "oracle" in proc.stdout
    return out


def test_demo_writes_results_for_every_policy(demo_dir: Path):
    results = json.loads((demo_dir / "results.json").read_text())
    assert list(results["policies"]) == list(POLICIES)
    for name in POLICIES:
        for k in KPIS:
            assert k in results["policies"][name], (name, k)
        assert results["policies"][name]["violations"] == 0
    rl = results["policies"]["rl"]
    fixed, oracle = results["policies"]["fixed"]["npv"], results["policies"]["oracle"]["npv"]
    assert rl["oracle_gap_closed"] == pytest.approx(
        (rl["npv"] - fixed) / (oracle - fixed), rel=0.25, abs=0.05)  # mean of per-seed ratios
    assert oracle >= fixed
    assert results["hashes"]["rl_policy"] and results["hashes"]["ruleset"]
    assert results["hashes"]["payment_model"] and results["hashes"]["hazard_model"]
    assert results["training"]["curve"]["timesteps"]
    assert set(results["robustness"]["policies"]) == set(POLICIES)
    assert results["timing"]["rl"]  # per-segment timing of the learned policy
    assert (demo_dir / "dunning.duckdb").is_file()
    assert (demo_dir / "policy" / "policy.zip").is_file()
    assert (demo_dir / "evaluation.json").is_file()
    # the evaluation never saw a training invoice: all are due on/after the cut
    assert results["holdout"]["invoices"] > 0


def test_report_rerender_is_identical(demo_dir: Path):
    before = (demo_dir / "report" / "index.html").read_text()
    dunning = Path(sys.executable).with_name("dunning")
    proc = subprocess.run([str(dunning), "report", "--results", str(demo_dir)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (demo_dir / "report" / "index.html").read_text() == before


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (make chromium)")
def test_demo_report_renders_in_chromium(demo_dir: Path, tmp_path: Path):
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
