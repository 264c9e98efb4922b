"""Shared fixtures of the legal-rules tests: the packaged rules and both evaluators."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from legal_rules.durable_eval import DurableEvaluator
from legal_rules.loader import load_rules
from legal_rules.model import RuleSet
from legal_rules.testing import NEUTRAL_FACTS
from legal_rules.vector import VectorEvaluator

DAY = date(2026, 3, 2)  # a Monday; the DE base rate 1.27 % is in force


@pytest.fixture(scope="session")
def ruleset() -> RuleSet:
    return load_rules()


@pytest.fixture(scope="session")
def durable(ruleset: RuleSet) -> DurableEvaluator:
    return DurableEvaluator(ruleset)


@pytest.fixture(scope="session")
def vector(ruleset: RuleSet) -> VectorEvaluator:
    return VectorEvaluator(ruleset)


def _facts(**overrides: Any) -> dict[str, Any]:
    out = dict(NEUTRAL_FACTS)
    out.update(overrides)
    return {k: v for k, v in out.items() if v is not None}


@pytest.fixture()
def facts() -> Any:
    """``facts(**overrides)``: neutral facts (a DE b2b invoice 20 days overdue); None removes."""
    return _facts


@pytest.fixture()
def write() -> Any:
    """``write(path, text) -> path``."""

    def _write(path: Path, text: str) -> Path:
        path.write_text(text, encoding="utf-8")
        return path

    return _write
