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
    "record-action", "record", "audit", "forget", "serve", "roi", "pilot", "drift", "retrain",
    "what-if",
}
# Each package may import only itself and the packages below it (docs/architecture.md).
LAYERS = ("engine", "legal_rules", "simulations", "policies", "dunning")
ALLOWED_IMPORTS = {pkg: set(LAYERS[: i + 1]) for i, pkg in enumerate(LAYERS)}


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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for pkg in LAYERS for p in sorted((ROOT / pkg).rglob("*.py"))}


def imported_modules(path: Path, module: str | None = None) -> list[tuple[str, int]]:
    """Every module ``path`` imports, with its line: module level, inside functions and
    under ``TYPE_CHECKING`` alike (a lazy import is still a dependency). Relative imports
    are resolved; ``from pkg import name`` also counts ``pkg.name`` when that is a module."""
    module = module or _module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((name, node.lineno))
            found += [(f"{name}.{alias.name}", node.lineno) for alias in node.names
                      if f"{name}.{alias.name}" in MODULES]
    return found


def _known_module(name: str) -> str | None:
    """The deepest project module ``name`` refers to (``a.b.func`` -> ``a.b``), if any."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """module -> project modules it imports (a package's own parents left out: importing
    ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first, which is not a cycle)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for name, _ in imported_modules(path):
            target = _known_module(name)
            if target and target != module and not module.startswith(target + "."):
                graph[module].add(target)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


@pytest.mark.parametrize("package", LAYERS)
def test_packages_import_downwards_only(package: str) -> None:
    forbidden = set(LAYERS) - ALLOWED_IMPORTS[package]
    offenders = [f"{path.relative_to(ROOT)}:{line}: imports {name}"
                 for module, path in MODULES.items() if module.split(".")[0] == package
                 for name, line in imported_modules(path) if name.split(".")[0] in forbidden]
    assert not offenders, "\n".join(offenders)


def test_no_import_cycles_between_modules() -> None:
    assert import_cycles(import_graph()) == []


def test_the_layering_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    # The check itself: a lazy relative upward import and a cycle must both be found.
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from ..dunning import cli\n    return cli\n")
    assert ("dunning.cli", 2) in imported_modules(probe, module="engine.probe")
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_nothing_below_imports_the_application() -> None:
    importers = {m for m, targets in import_graph().items() for t in targets
                 if t.split(".")[0] == "dunning" and m.split(".")[0] != "dunning"}
    assert not importers, importers


def private_imports(path: Path) -> list[tuple[str, int]]:
    """``(module.name, line)`` of every ``from <project module> import _name`` in ``path``
    (a private name reached from another module; dunder names are public)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level \
                and node.module.split(".")[0] in LAYERS:
            found += [(f"{node.module}.{a.name}", node.lineno) for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_no_private_names_are_imported_across_modules(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from engine.models.payment import _calibrate\n")
    assert private_imports(probe) == [("engine.models.payment._calibrate", 2)]
    offenders = [f"{path.relative_to(ROOT)}:{line}: imports {name}"
                 for path in MODULES.values() for name, line in private_imports(path)]
    assert not offenders, "\n".join(offenders)


def test_ruff_is_clean() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    out = subprocess.run([str(ruff), "check", "engine", "policies", "legal_rules", "dunning",
                          "simulations", "tests", "benchmarks"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
