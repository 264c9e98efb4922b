"""`dunning experiment run --cluster`: the sweep's cells as Dask tasks, the local figures."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from dunning.cli import app
from dunning.experiment import load_experiment, run_experiment

SWEEP = """\
name: tiny
policies: [never, fixed]
scenarios: [default, shifted]
seeds: [3, 4]
invoices: 30
interval: bootstrap
bootstrap_resamples: 200
"""


def _canon(result: dict) -> str:
    d = json.loads(json.dumps(result, default=str))
    d.pop("seconds")
    for run in d["runs"].values():
        run["config"] = {k: v for k, v in run["config"].items()
                         if k not in ("seconds", "cluster")}
    return json.dumps(d, sort_keys=True)


def test_experiment_on_a_local_cluster_equals_the_local_run(client, tmp_path) -> None:
    f = tmp_path / "sweep.yaml"
    f.write_text(SWEEP)
    exp = load_experiment(f)
    local = run_experiment(exp)
    seen: list[tuple[int, int]] = []
    dist = run_experiment(exp, progress=lambda msg, done, total: seen.append((done, total)),
                          client=client)
    assert _canon(dist) == _canon(local)
    # 2 scenarios x 2 policies x 2 seeds cells, each one task
    assert {run["config"]["cluster"]["tasks"] for run in dist["runs"].values()} == {8}
    assert seen[-1] == (8, 8)
    # and the figures are real: the scenarios and the seeds differ
    npv = {sc: run["overall"]["fixed"]["npv"] for sc, run in dist["runs"].items()}
    assert npv["default"]["mean"] != npv["shifted"]["mean"]
    assert len(set(npv["default"]["per_seed"])) == 2
    assert dist["runs"]["default"]["config"]["interval"]["method"] == "bootstrap"


def test_experiment_cli_cluster_errors_are_clear(tmp_path) -> None:
    f = tmp_path / "sweep.yaml"
    f.write_text(SWEEP)
    res = CliRunner().invoke(app, ["experiment", "run", str(f), "--cluster", "nonsense"])
    assert res.exit_code == 2 and "expected `local`" in res.output
    assert "Traceback" not in res.output
