"""docs/simulation.md's OPE tables are benchmarks/results/ope.json (bench_ope.py writes both;
``python benchmarks/bench_ope.py --docs-only`` regenerates the tables from the JSON)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.bench_ope import END, ESTIMATOR_NAMES, START, docs_block, ranking

ROOT = Path(__file__).resolve().parents[2]


def _result() -> dict:
    return json.loads((ROOT / "benchmarks" / "results" / "ope.json").read_text())


def test_docs_ope_tables_are_the_benchmark_json() -> None:
    text = (ROOT / "docs" / "simulation.md").read_text()
    block = text[text.index(START): text.index(END) + len(END)]
    assert block == docs_block(_result()), (
        "docs/simulation.md's OPE tables differ from ope.json: run "
        "`python benchmarks/bench_ope.py --docs-only`")


def test_ope_json_ranking_is_recomputed_from_its_own_rows() -> None:
    for setting in _result()["logging"].values():
        assert len(setting["policies"]) >= 4
        for est in ESTIMATOR_NAMES:
            assert setting["ranking"][est] == ranking(setting["policies"], est)


def test_ranking_accuracy_counts_concordant_pairs() -> None:
    def row(truth: float, est: float, reported: bool = True) -> dict:
        return {"true_value": truth, "x": {"estimate": est, "reported": reported}}

    rows = {"a": row(1, 10), "b": row(2, 30), "c": row(3, 20, reported=False)}
    r = ranking(rows, "x")  # a<b right, a<c right, b<c wrong
    assert r["pairs"] == 3 and abs(r["accuracy"] - 2 / 3) < 1e-12
    assert r["reported_pairs"] == 1 and r["accuracy_reported"] == 1.0
    assert r["wrong_pairs"] == ["b vs c"]
