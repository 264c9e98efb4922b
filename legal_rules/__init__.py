"""Declarative legal rules (YAML) compiled to durable_rules and a vectorised numpy evaluator.

Typical use::

    from legal_rules import load_rules, VectorEvaluator, DurableEvaluator
    rules = load_rules()                                  # packaged rules (RuleSet)
    allowed = VectorEvaluator(rules).mask(facts, as_of)   # (n, 6) bool, simulation hot path
    decision = DurableEvaluator(rules).decide(facts_row, "letter", as_of)  # engine of record

Names are imported lazily, so ``import legal_rules.facts`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BatchDecision": "legal_rules.vector",
    "VectorEvaluator": "legal_rules.vector",
    "CapValue": "legal_rules.model",
    "Rule": "legal_rules.model",
    "RuleSet": "legal_rules.model",
    "Decision": "legal_rules.decision",
    "RuleHit": "legal_rules.decision",
    "DurableEvaluator": "legal_rules.durable_eval",
    "decide": "legal_rules.durable_eval",
    "decide_all": "legal_rules.durable_eval",
    "Problem": "legal_rules.loader",
    "RuleFileError": "legal_rules.loader",
    "load_rules": "legal_rules.loader",
    "facts_for_invoices": "legal_rules.from_tables",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'legal_rules' has no attribute {name!r}")
