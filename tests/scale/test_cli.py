"""`--cluster local` on train-model, predict and simulate: same files as the local run."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from dunning.cli import app

runner = CliRunner()


@pytest.mark.slow
def test_train_and_predict_on_cluster(client, store_dir, tmp_path, wide_console):
    """On the session's running cluster by its scheduler address (``--cluster local``
    starting one of its own: test_simulate_on_cluster_writes_the_same_json)."""
    db = store_dir / "dunning.duckdb"
    model = tmp_path / "model"
    address = client.scheduler.address
    res = runner.invoke(app, ["train-model", "--db", str(db), "--out", str(model),
                              "--cluster", address, "--no-hazard"])
    assert res.exit_code == 0, res.output
    card = json.loads((model / "model_card.json").read_text())
    assert card["trained_on"]["workers"] == 2
    ll = {k: v["at_invoice_date"]["log_loss"] for k, v in card["evaluation"]["models"].items()}
    assert set(ll) == {"lightgbm_dask", "logistic_regression", "history_rule"}
    assert 0 < ll["lightgbm_dask"] < 1.1
    # the local artifact's files (the hazard model: test_distributed_model.py)
    for name in ("payment_model.txt", "payment_days_late.txt", "model_card.md"):
        assert (model / name).is_file(), name
    assert not (model / "hazard_model.txt").exists()
    assert json.loads((model / "artifact.json").read_text())["hazard_hash"] is None
    assert (db.parent / "dunning.duckdb.parquet" / "invoices").is_dir()
    local_csv, dist_csv = tmp_path / "local.csv", tmp_path / "dist.csv"
    dist = runner.invoke(app, ["predict", "--db", str(db), "--model", str(model), "--top",
                               "5", "--out", str(dist_csv), "--cluster", address],
                         terminal_width=250)
    assert dist.exit_code == 0, dist.output
    local = runner.invoke(app, ["predict", "--db", str(db), "--model", str(model), "--top",
                                "5", "--out", str(local_csv)], terminal_width=250)
    assert local.exit_code == 0, local.output
    pd.testing.assert_frame_equal(pd.read_csv(dist_csv), pd.read_csv(local_csv))
    # the printed tables too, the needs-attention list included (only the output file's
    # path differs)
    assert "needs attention" in local.output
    strip = lambda out, path: out.replace(str(path), "OUT")  # noqa: E731
    assert strip(dist.output, dist_csv) == strip(local.output, local_csv)


def test_simulate_on_cluster_writes_the_same_json(tmp_path):
    outs = {}
    for name, extra in (("local", []), ("dist", ["--cluster", "local"])):
        outs[name] = tmp_path / name
        res = runner.invoke(app, ["simulate", "--policy", "fixed", "--invoices", "150",
                                  "--seeds", "2", "--out", str(outs[name]), *extra])
        assert res.exit_code == 0, res.output
    a, b = (json.loads((outs[n] / "evaluation.json").read_text()) for n in ("local", "dist"))
    for d in (a, b):
        d["config"].pop("seconds")
    assert b["config"].pop("cluster")["tasks"] == 2
    assert a == b


def test_bad_cluster_address_is_one_line_error():
    res = runner.invoke(app, ["simulate", "--invoices", "10", "--cluster", "nowhere"])
    assert res.exit_code == 2
    assert "expected `local` or a scheduler address" in res.output
    assert "Traceback" not in res.output
