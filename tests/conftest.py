"""Fixtures shared by several test areas: the packaged legal rules and the default world."""

from __future__ import annotations

import os
from typing import Any

import pytest

# The audit chain is keyed (dunning.ops.audit): tests write it with this fixed test key from
# the environment, as a deployment would with its own secret. Tests of a missing or wrong key
# change the environment with monkeypatch.
TEST_AUDIT_KEY = "test-audit-key-7f3c9a1e5b2d48c6a0e9f1b3d5c7e9a2"
os.environ["DUNNING_AUDIT_KEY"] = TEST_AUDIT_KEY
os.environ.pop("DUNNING_AUDIT_KEY_FILE", None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with a ``slow`` test run first, each module's tests still together and in
    order (module fixtures are set up once). Why: ``make test`` runs on 2 xdist workers
    that take tests in this order; a minute-long pipeline test collected late (the README's
    examples) kept one worker busy alone at the end."""
    slow = {item.module.__name__ for item in items
            if item.get_closest_marker("slow") is not None and item.module is not None}
    items.sort(key=lambda item: item.module is None or item.module.__name__ not in slow)


@pytest.fixture(scope="session")
def legal_mask() -> Any:
    """``simulations.env.LegalMask`` over the packaged rules."""
    from simulations.env import LegalMask

    return LegalMask()


@pytest.fixture(scope="session")
def gt_source() -> Any:
    """The default ground-truth world with a seeded 4,000-invoice pool."""
    from simulations.env import GroundTruthSource

    return GroundTruthSource("default", pool_size=4000, seed=0)


@pytest.fixture()
def wide_console(monkeypatch) -> int:
    """The CLI's rich consoles at 400 columns for a test that looks for figures or paths in
    the printed tables: a console's width is fixed once something sized it (``COLUMNS`` at
    import, or the 80-column fallback), so ``CliRunner``'s ``env``/``terminal_width`` alone
    do not reach it, and a long path or a table row would wrap at a run-dependent place."""
    from dunning.commands.common import console, err_console

    for c in (console, err_console):
        monkeypatch.setattr(c, "_width", 400)
    return 400
