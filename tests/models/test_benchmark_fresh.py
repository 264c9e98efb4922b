"""The committed IBM benchmark figures are not older than the code they measure."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ibm_benchmark_json_matches_the_code_it_measures():
    """``payment_model_ibm.json`` records a content hash of the feature, model, selection
    and training code and of the benchmark script; any change to them without a re-run
    (``python benchmarks/payment_model_ibm.py``, about a minute) fails here."""
    from benchmarks.payment_model_ibm import MEASURED_CODE, code_hash

    figures = json.loads((ROOT / "benchmarks/results/payment_model_ibm.json").read_text())
    assert "code_hash" in figures, "payment_model_ibm.json predates the code hash: re-run it"
    assert figures["code_hash"] == code_hash(ROOT), (
        "benchmarks/results/payment_model_ibm.json is older than "
        f"{', '.join(MEASURED_CODE)}: re-run `python benchmarks/payment_model_ibm.py` and "
        "commit the JSON")
