"""The generated contract doc is up to date; the CLI commands behave as documented."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dunning.cli import app
from engine.ingest import contract_markdown

ROOT = Path(__file__).resolve().parents[2]
DOCS_WITH_CONTRACT = (ROOT / "docs" / "data-contract.md", ROOT / "README.md")
runner = CliRunner()


@pytest.mark.parametrize("doc", DOCS_WITH_CONTRACT, ids=lambda p: p.name)
def test_contract_doc_is_generated_from_the_contract(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    begin, end = "<!-- contract:begin -->\n", "<!-- contract:end -->"
    generated = text[text.index(begin) + len(begin): text.index(end)]
    assert generated == contract_markdown(), (
        f"{doc.name} is stale: regenerate it with engine.ingest.contract_markdown()")


def test_cli_ingest_prints_summary_and_is_idempotent(tmp_path, contract_files) -> None:
    db = tmp_path / "s" / "d.duckdb"
    result = runner.invoke(app, ["ingest", *map(str, contract_files), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "invoices" in result.output and "loaded" in result.output
    again = runner.invoke(app, ["ingest", *map(str, contract_files), "--db", str(db)])
    assert again.exit_code == 0
    assert "already" in again.output


def test_cli_exits_4_when_a_table_loads_nothing(tmp_path, samples) -> None:
    bad = samples.write(tmp_path, "customers.csv",
                        "customer_id,jurisdiction,customer_type\nA,XX,b2b\n")
    result = runner.invoke(app, ["ingest", str(bad), "--db", str(tmp_path / "d.duckdb")])
    assert result.exit_code == 4
    assert "nothing could be loaded into customers" in " ".join(result.output.split())
    q = list((tmp_path / "quarantine").glob("*-customers.csv"))
    assert len(q) == 1 and "jurisdiction" in pd.read_csv(q[0])["field"].tolist()


def test_cli_not_a_table_is_one_line_without_traceback(tmp_path) -> None:
    path = tmp_path / "invoices.csv"
    path.write_bytes(b"\x00\x00\x00")
    result = runner.invoke(app, ["ingest", str(path), "--db", str(tmp_path / "d.duckdb")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "binary data" in result.output


def test_cli_export_writes_monthly_parquet(tmp_path, contract_files) -> None:
    db = tmp_path / "d.duckdb"
    assert runner.invoke(app, ["ingest", *map(str, contract_files), "--db", str(db)]).exit_code \
        == 0
    out = tmp_path / "pq"
    result = runner.invoke(app, ["export", "--parquet", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(out / "payments")) == 3
    missing = runner.invoke(app, ["export", "--parquet", str(out), "--db",
                                  str(tmp_path / "none.duckdb")])
    assert missing.exit_code == 2 and "store not found" in missing.output
