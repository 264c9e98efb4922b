"""docs/simulation.md's OPE table is benchmarks/results/ope.json (regenerate the rows with
``ope_table_rows()`` after re-running benchmarks/bench_ope.py)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LABELS = {"fixed": "fixed 14/30/45", "tuned": "tuned (learned env)", "oracle": "oracle"}


def ope_table_rows() -> list[str]:
    """The markdown rows of the OPE table from ope.json (relative errors, match shares)."""
    data = json.loads((ROOT / "benchmarks" / "results" / "ope.json").read_text())
    rows = []
    for name, p in data["policies"].items():
        errs = " | ".join(f"{100 * p[e]['relative_error']:.1f} %"
                          for e in ("ips", "snips", "dr", "dm"))
        rows.append(f"| {LABELS.get(name, name)} | {p['true_value']:,.0f} | "
                    f"{100 * p['matching_episodes']:.1f} % | {errs} |")
    return rows


def test_docs_ope_table_is_the_benchmark_json() -> None:
    text = (ROOT / "docs" / "simulation.md").read_text()
    for row in ope_table_rows():
        assert row in text, f"docs/simulation.md lacks the ope.json row: {row}"
