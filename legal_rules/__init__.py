"""Declarative legal rules (YAML) compiled to durable_rules and a vectorised numpy evaluator.

Typical use::

    from legal_rules import load_rules, VectorEvaluator, DurableEvaluator
    rules = load_rules()                                  # packaged rules (RuleSet)
    allowed = VectorEvaluator(rules).mask(facts, as_of)   # (n, 6) bool, simulation hot path
    decision = DurableEvaluator(rules).decide(facts_row, "letter", as_of)  # engine of record
"""

from legal_rules.decision import Decision, RuleHit
from legal_rules.durable_eval import DurableEvaluator, decide, decide_all
from legal_rules.loader import Problem, RuleFileError, load_rules
from legal_rules.model import CapValue, Rule, RuleSet
from legal_rules.vector import BatchDecision, VectorEvaluator

__all__ = [
    "BatchDecision", "CapValue", "Decision", "DurableEvaluator", "Problem", "Rule",
    "RuleFileError", "RuleHit", "RuleSet", "VectorEvaluator", "decide", "decide_all",
    "load_rules",
]
