"""The family of companies (simulations.world.family, `dunning scenarios sample`): every
sampled file is valid, the draw is reproducible, the ranges hold, and a small company of a
sampled scenario runs through generation and the fixed-schedule evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import yaml
from typer.testing import CliRunner

from dunning.cli import app
from engine.contract import SEGMENTS
from simulations import world
from simulations.world.family import (
    EVALUATION_SAMPLER_SEED,
    RANGES,
    TUNING_SAMPLER_SEEDS,
    range_names,
    sample_scenario,
    write_family,
)
from simulations.world.scenario import scenario_schema

ROOT = Path(__file__).resolve().parents[2]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.yaml"))}


def test_sampled_files_load_and_validate_against_the_schema(tmp_path: Path) -> None:
    validator = jsonschema.Draft202012Validator(scenario_schema())
    paths = write_family(6, 11, tmp_path)
    assert [p.name for p in paths] == [f"sampled-11-{i:03d}.yaml" for i in range(6)]
    for path in paths:
        sc = world.load_scenario(path)
        assert sc.name == path.stem
        data = json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))
        assert list(validator.iter_errors(data)) == [], path.name


def test_many_draws_are_valid_and_stay_in_their_ranges() -> None:
    """sample_scenario validates with the strict loader itself; here the ranges are checked."""
    pool = {code for code, _, _ in RANGES.jurisdiction_pool}
    calendars, peaks = set(), []
    for seed in (0, 1, EVALUATION_SAMPLER_SEED):
        for i in range(15):
            sc = world.scenario.scenario_from_dict(sample_scenario(seed, i))
            assert min(s.weight for s in sc.segments) >= RANGES.segment_floor - 1e-4
            assert {j.code for j in sc.jurisdictions} <= pool
            assert RANGES.jurisdiction_count[0] <= len(sc.jurisdictions) \
                <= RANGES.jurisdiction_count[1]
            days = [day for _, day in sc.logging_policy.schedule]
            assert RANGES.first_reminder_day[0] <= days[0] <= RANGES.first_reminder_day[1]
            assert days == sorted(days) and days[-1] < sc.horizon_days
            assert RANGES.epsilon[0] <= sc.logging_policy.epsilon <= RANGES.epsilon[1]
            lo, hi = sc.segment("construction").milestone_days
            assert RANGES.milestone_first[0] <= lo and hi <= RANGES.milestone_last[1]
            corp = sc.segment("corporate").reminder_timing
            assert len(corp) == 3 and corp[1][1] == 1.0
            peaks.append(corp[1][0])
            calendars.add((sc.segment("startup").calendar, sc.segment("saas").calendar))
    # the structure moves, not only the numbers: peaks and calendars vary across companies
    assert len(set(peaks)) >= 8 and min(peaks) >= RANGES.timing_peak_day[0]
    assert len(calendars) >= 3


def test_same_seed_same_bytes_other_seed_other_files(tmp_path: Path) -> None:
    a, b, c, d = (write_family(n, s, tmp_path / k)
                  for k, n, s in (("a", 3, 5), ("b", 3, 5), ("c", 3, 6), ("d", 5, 5)))
    fa, fb, fc, fd = (_files(tmp_path / k) for k in "abcd")
    assert fa == fb
    assert set(fa.values()).isdisjoint(fc.values())
    # company i does not depend on how many were drawn
    assert {k: fd[k] for k in fa} == fa and len(fd) == 5
    assert len(set(fd.values())) == 5


def test_evaluation_seed_is_not_a_tuning_seed() -> None:
    assert EVALUATION_SAMPLER_SEED not in TUNING_SAMPLER_SEEDS


def test_docs_table_names_every_range_with_its_numbers() -> None:
    """The ranges table of docs/world.md has a row naming each field of FamilyRanges, and
    the row shows the field's numbers (so the table cannot drift from the code)."""
    text = (ROOT / "docs" / "world.md").read_text()
    section = text.split("## A family of companies", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    for name in range_names():
        row = next((r for r in rows if f"`{name}`" in r), None)
        assert row is not None, f"docs/world.md: no ranges row for {name}"
        value = getattr(RANGES, name)
        numbers = value if isinstance(value, tuple) else (value,)
        for x in numbers:
            if isinstance(x, int | float):
                assert f"{x:g}" in row.replace("−", "-"), (name, x, row)
            elif isinstance(x, str):
                assert x in row, (name, x, row)
            else:  # the jurisdiction pool: (code, currency, language)
                assert x[0] in row, (name, x, row)


def test_cli_sample_writes_checkable_files(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["scenarios", "sample", "--n", "2", "--seed", "9",
                              "--out", str(tmp_path / "x")])
    assert res.exit_code == 0, res.output
    files = sorted((tmp_path / "x").glob("*.yaml"))
    assert [p.name for p in files] == ["sampled-9-000.yaml", "sampled-9-001.yaml"]
    res = runner.invoke(app, ["scenarios", "check", *map(str, files)])
    assert res.exit_code == 0 and res.output.count(": ok") == 2, res.output
    res = runner.invoke(app, ["scenarios", "sample", "--n", "0", "--seed", "9",
                              "--out", str(tmp_path / "y")])
    assert res.exit_code == 2 and not (tmp_path / "y").exists()
    (tmp_path / "file").write_text("")
    res = runner.invoke(app, ["scenarios", "sample", "--n", "1", "--seed", "9",
                              "--out", str(tmp_path / "file")])
    assert res.exit_code == 2 and "not a folder" in res.output
    assert "Traceback" not in res.output


def test_small_company_of_a_sampled_scenario_runs(tmp_path: Path) -> None:
    from policies.baselines.factory import make_policy
    from simulations.evaluation.harness import evaluate_policies

    path = write_family(1, EVALUATION_SAMPLER_SEED + 1, tmp_path)[0]
    sc = world.load_scenario(path)
    company = world.generate_company(sc, n_customers=150, months=4, seed=0)
    assert set(company.customers["segment"]) == set(SEGMENTS)
    assert set(company.customers["jurisdiction"]) <= {j.code for j in sc.jurisdictions}
    assert len(company.invoices) > 200 and len(company.payments) > 0
    ev = evaluate_policies(dict([make_policy("fixed")]), sc, n_invoices=120, seeds=[0])
    kpi = {k: v["mean"] for k, v in ev.overall["fixed"].items()}
    assert 0.0 < kpi["first_reminder_pay_rate"] < 1.0
    assert kpi["violations"] == 0
    assert 0.0 < kpi["mean_days_to_pay"] < sc.horizon_days
    assert np.isfinite(kpi["npv"]) and kpi["npv"] > 0
