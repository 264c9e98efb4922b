"""Evaluation harness: policies on the same invoices with common random numbers, KPIs with
95 % confidence intervals over seeds, overall and per segment, plus reminder timing.

    from simulations.evaluation import evaluate_policies, EvaluationResult
"""

from simulations.evaluation.harness import EvaluationResult, evaluate_policies, run_policy
from simulations.evaluation.metrics import KPI_DOC

__all__ = ["KPI_DOC", "EvaluationResult", "evaluate_policies", "run_policy"]
