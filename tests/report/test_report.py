"""The HTML report: rendered from results.json, self-contained, readable in a real browser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dunning.report import load_results, render_report, write_report
from engine.errors import InputError

from .conftest import chromium_path, run_chromium

EXTERNAL_REF = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def test_report_has_every_section_and_policy(sample_results):
    html = render_report(sample_results)
    for section in ("comparison", "robustness", "timing", "model-card", "drift", "vetoes",
                    "training", "config"):
        assert f'id="{section}"' in html
    for policy in sample_results["policies"]:
        assert f'data-policy="{policy}"' in html
    assert "practice.weekend" in html and "BGB § 286" in html
    # 3 comparison bars, timing, calibration, importance, curve, ROI tornado, ECE over time
    assert html.count("<svg") >= 8
    # the steps' seconds, the worker's beside the RL training among them
    assert "train_policy" in html and "30.0 s" in html
    assert "worker beside the RL training: tune" in html and "12.5 s" in html


def test_report_names_the_rl_timing_rules(sample_results):
    html = render_report(sample_results)
    rules = re.search(r'id="rl-timing-rules">(.*?)</p>', html, re.S)
    assert rules and "corporate: first reminder from day 6, &gt;= 10 days apart" in rules[1]
    del sample_results["training"]["timing_rules"]
    assert 'id="rl-timing-rules"' not in render_report(sample_results)


def test_report_is_self_contained(sample_results):
    html = render_report(sample_results)
    assert not EXTERNAL_REF.search(html)
    assert "<script" not in html and "<link" not in html and "@import" not in html


def test_report_is_deterministic(sample_results):
    assert render_report(sample_results) == render_report(sample_results)


def test_report_escapes_text(sample_results):
    sample_results["vetoes"][0]["title"] = "<b>bold</b>"
    html = render_report(sample_results)
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def test_report_renders_without_optional_sections(sample_results):
    minimal = {"policies": sample_results["policies"]}
    html = render_report(minimal)
    assert 'data-policy="rl"' in html
    assert "No model card found" in html


def test_load_results_errors_name_the_file(tmp_path: Path):
    with pytest.raises(InputError, match="no results file"):
        load_results(tmp_path)
    bad = tmp_path / "results.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match=r"results.json, line 1"):
        load_results(tmp_path)
    bad.write_text(json.dumps({"x": 1}))
    with pytest.raises(InputError, match="policies"):
        load_results(tmp_path)


def test_report_cli_rerenders(sample_results, tmp_path: Path):
    from typer.testing import CliRunner

    from dunning.cli import app

    (tmp_path / "results.json").write_text(json.dumps(sample_results))
    res = CliRunner().invoke(app, ["report", "--results", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "report" / "index.html").stat().st_size > 10_000
    res = CliRunner().invoke(app, ["report", "--results", str(tmp_path / "missing")])
    assert res.exit_code == 2
    assert "no results file" in res.output
    assert 'id="evaluation"' not in (tmp_path / "report" / "index.html").read_text()
    for bad, msg in (("nope.json", "no such file"), ("bad.json", "not valid JSON"),
                     ("empty.json", "field 'models' missing")):
        if bad != "nope.json":
            (tmp_path / bad).write_text("{" if bad == "bad.json" else "{}")
        res = CliRunner().invoke(app, ["report", "--results", str(tmp_path), "--evaluation",
                                       str(tmp_path / bad)])
        assert res.exit_code == 2 and msg in res.output and "Traceback" not in res.output


@pytest.mark.browser
@pytest.mark.skipif(chromium_path() is None, reason="needs chromium (make chromium)")
def test_report_renders_in_headless_chromium(sample_results, tmp_path: Path):
    index = write_report(sample_results, tmp_path / "report")
    dom = run_chromium(["--dump-dom", index.as_uri()], tmp_path)
    rows = re.findall(r'<tr data-policy="(\w+)"', dom)
    assert set(sample_results["policies"]) <= set(rows)
    svgs = re.findall(r"<svg\b.*?</svg>", dom, re.DOTALL)
    assert len(svgs) >= 8
    # the drift section: warning banner, highlighted PSI row, ECE chart, thresholds
    assert re.search(r'<div class="banner warn" id="drift-banner">', dom)
    assert re.search(r'<tr data-feature="amount" class="psi-warning">', dom)
    assert re.search(r'<div class="chart" id="ece-chart"><svg\b', dom)
    assert re.search(r'<tr data-month="2025-06" class="psi-warning">', dom)
    assert "&gt; 0.2 warning" in dom
    assert all("<path" in s or "<use" in s for s in svgs)  # non-empty drawings
    assert not EXTERNAL_REF.search(dom)
    shot = tmp_path / "shot.png"
    run_chromium([f"--screenshot={shot}", "--window-size=1200,2400", index.as_uri()], tmp_path)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000


def test_report_has_the_business_case(sample_results):
    html = render_report(sample_results)
    assert '<section id="roi">' in html
    section = html[html.index('<section id="roi">'):]
    section = section[: section.index("</section>")]
    assert "yearly benefit" in section and "payback" in section
    # without an RL policy there is no business case to show
    del sample_results["policies"]["rl"]
    assert '<section id="roi">' not in render_report(sample_results)


def _section(html: str, name: str) -> str:
    start = html.index(f'<section id="{name}">')
    return html[start: html.index("</section>", start)]


def test_drift_section_shows_psi_ece_thresholds_and_the_warning(sample_results):
    section = _section(render_report(sample_results), "drift")
    assert 'class="banner warn" id="drift-banner"' in section
    assert "feature amount: PSI" in section  # the planted shift is named in the banner
    assert '<tr data-feature="amount" class="psi-warning">' in section
    assert '<tr data-feature="segment" class="psi-ok">' in section
    assert '<tr data-feature="invoice_month" class="psi-seasonal">' in section
    # calibration: in-sample months not judged, the planted break warns from May
    assert '<tr data-month="2025-01" class="psi-training">' in section
    assert '<tr data-month="2025-04" class="psi-ok">' in section
    assert '<tr data-month="2025-05" class="psi-warning">' in section
    assert 'id="ece-chart"><svg' in section
    assert "&gt; 0.2 warning" in section and "exceeds 0.05" in section


def test_drift_section_without_drift_says_so(sample_results):
    sample_results["drift"]["features"] = [
        {**r, "status": "ok"} for r in sample_results["drift"]["features"]]
    sample_results["drift"]["calibration"] = []
    sample_results["drift"].update(drifted=False, warnings=[])
    section = _section(render_report(sample_results), "drift")
    assert 'class="banner fine" id="drift-banner"' in section and "psi-warning" not in section


def test_drift_section_missing_inputs_gives_the_reason(sample_results):
    del sample_results["drift"]
    section = _section(render_report(sample_results), "drift")
    assert 'id="drift-missing"' in section and "dunning drift" in section
    sample_results["drift"] = {"available": False, "reason": "no store at /x/dunning.duckdb"}
    section = _section(render_report(sample_results), "drift")
    assert "no store at /x/dunning.duckdb" in section


def _paired(mean: float, half: float, n: int = 5000) -> dict:
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": n,
            "method": "t", "level": 0.95}


def test_report_shows_the_paired_differences_to_fixed(sample_results):
    sample_results["paired_vs_fixed"] = {
        p: {"npv": _paired(d, 4.0), "pay_rate": _paired(d / 1000, 0.01),
            "complaints_per_1000": _paired(-d / 10, 0.5)}
        for p, d in (("never", -50.0), ("fixed", 0.0), ("tuned", 10.0), ("rl", 18.0),
                     ("oracle", 1.0))}
    sample_results["npv_difference_vs_fixed"] = {
        p: {"npv_minus_reference": d, "ci_low": d - 30, "ci_high": d + 30}
        for p, d in (("never", -50.0), ("tuned", 10.0), ("rl", 18.0), ("oracle", 1.0))}
    html = render_report(sample_results)
    table = re.search(r'<table id="paired-table"[^>]*>(.*?)</table>', html, re.S)[1]
    assert 'data-policy="fixed"' not in table  # the reference is not compared with itself
    rl = re.search(r'<tr data-policy="rl">(.*?)</tr>', table, re.S)[1]
    assert "+18" in rl and "[+14, +22]" in rl and "[+0.008, +0.028]" in rl
    # the better direction is green for NPV (up) and for complaints (down); 'oracle' +1 ± 4
    # is not significant
    assert re.search(r'<td class="better">\+18<br>', rl)
    assert re.search(r'<td class="better">-1.8<br>', rl)
    never = re.search(r'<tr data-policy="never">(.*?)</tr>', table, re.S)[1]
    assert re.search(r'<td class="worse">-50<br>', never)
    oracle = re.search(r'<tr data-policy="oracle">(.*?)</tr>', table, re.S)[1]
    assert re.search(r'<td class="">\+1<br>', oracle)
    assert "over 5000" in html and "paired t-interval" in html
    assert html.count("<svg") >= 9  # the forest chart of the paired NPV differences too
    del sample_results["paired_vs_fixed"]
    assert 'id="paired-table"' not in render_report(sample_results)


def test_a_malformed_paired_block_is_skipped_not_fatal(sample_results):
    sample_results["paired_vs_fixed"] = {
        "rl": {"npv": {"mean": "12.5", "ci_low": [1], "ci_high": None, "n": "x"},
               "pay_rate": "nonsense", "complaints_per_1000": {"mean": None}},
        "never": ["not", "a", "mapping"], "tuned": {"npv": {"mean": True}}}
    sample_results["npv_difference_vs_fixed"] = "nonsense"
    html = render_report(sample_results)
    table = re.search(r'<table id="paired-table"[^>]*>(.*?)</table>', html, re.S)[1]
    assert re.findall(r'<tr data-policy="(\w+)"', table) == ["rl"]
    assert "+12" in table and "over ?" in html


def test_report_renders_a_run_with_one_evaluation_seed(sample_results):
    """One seed has no confidence interval: results.json holds [null, null] for it, and
    the charts draw the bars without error bars instead of failing."""
    one_seed = json.loads(json.dumps(sample_results))
    for policy in one_seed["policies"].values():
        for key in [k for k in policy if k.endswith("_ci")]:
            policy[key] = [None, None]
    html = render_report(one_seed)
    assert "NPV per invoice" in html
