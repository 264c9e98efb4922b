"""Project-wide checks: the CLI surface, its start-up cost, lint, import layering."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dunning.cli import app

ROOT = Path(__file__).resolve().parents[1]
EXPECTED_COMMANDS = {
    "generate", "ingest", "export", "train-model", "predict", "customers", "rules",
    "simulate", "evaluate", "train-policy", "demo", "report", "recommend", "review",
    "record-action", "audit", "forget", "serve", "roi", "pilot", "drift", "retrain", "what-if",
}
# Packages may import only from packages below them (ARCHITECTURE.md).
ALLOWED_IMPORTS = {
    "engine": {"engine"},
    "legal_rules": {"engine", "legal_rules"},
    "simulations": {"engine", "legal_rules", "simulations"},
    "policies": {"engine", "legal_rules", "simulations", "policies"},
}


def test_every_documented_command_is_registered() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    listed = {line.split()[1] for line in result.output.splitlines()
              if line.startswith("│ ") and len(line.split()) > 1}
    assert EXPECTED_COMMANDS <= listed, EXPECTED_COMMANDS - listed


def test_help_does_not_import_the_heavy_stack() -> None:
    # `dunning --help` must stay fast: no numpy/pandas/torch/lightgbm at CLI import time.
    code = ("import sys, dunning.cli; heavy = [m for m in ('numpy', 'pandas', 'torch', "
            "'lightgbm', 'duckdb', 'stable_baselines3') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout


def _top_level_imports(path: Path) -> set[str]:
    """Packages imported at module level (not inside functions: those are lazy, allowed)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED_IMPORTS))
def test_packages_import_downwards_only(package: str) -> None:
    forbidden = set(ALLOWED_IMPORTS) - ALLOWED_IMPORTS[package]
    offenders = {
        str(p.relative_to(ROOT)): sorted(_top_level_imports(p) & forbidden)
        for p in (ROOT / package).rglob("*.py")
        if _top_level_imports(p) & forbidden
    }
    assert not offenders, offenders


def test_ruff_is_clean() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    out = subprocess.run([str(ruff), "check", "engine", "policies", "legal_rules", "dunning",
                          "simulations", "tests", "benchmarks"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
