"""Off-policy evaluation from the logged reminder history (obp style).

Dataset / policy / estimator kept apart::

    from simulations.ope import (build_logged_dataset, target_actions, direct_values,
                                 InverseProbabilityWeighting, SelfNormalizedIPS,
                                 DoublyRobust, WeightedDoublyRobust, DirectMethod)
    data = build_logged_dataset(company)                 # logged episodes + propensities
    pi = target_actions(FixedSchedulePolicy(), data)     # (n, H) target actions
    values = direct_values(policy, data, learned_source) # model values for DR / DM
    DoublyRobust().estimate(data, pi, values)            # value estimate
    DoublyRobust().estimate_interval(data, pi, values)   # bootstrap 95 % CI
    FittedQEvaluation().estimate(data, pi)               # FQE: Q fitted on the logs alone
    DoublyRobustFQE().estimate(data, pi)                 # DR with the FQE model
    estimate_all(data, pi, values)                       # all of them + support diagnostics,
                                                         # a warning instead of a number
                                                         # where support is missing
"""

from simulations.ope.dataset import (
    LoggedDataset,
    ReplaySource,
    build_logged_dataset,
    logged_dataset_from_tables,
)
from simulations.ope.direct import direct_values
from simulations.ope.estimators import (
    DirectMethod,
    DoublyRobust,
    InverseProbabilityWeighting,
    SelfNormalizedIPS,
    WeightedDoublyRobust,
    importance_weights,
    match_rate,
    target_actions,
)
from simulations.ope.fqe import (
    DoublyRobustFQE,
    FittedQEvaluation,
    FQEConfig,
    FQEFit,
    fit_fqe,
    fqe_values,
)
from simulations.ope.support import (
    ESTIMATORS,
    SupportDiagnostics,
    SupportThresholds,
    estimate_all,
    support_diagnostics,
)

__all__ = [
    "ESTIMATORS", "DirectMethod", "DoublyRobust", "DoublyRobustFQE", "FQEConfig", "FQEFit",
    "FittedQEvaluation", "InverseProbabilityWeighting", "fit_fqe", "fqe_values",
    "LoggedDataset", "ReplaySource", "SelfNormalizedIPS", "SupportDiagnostics",
    "SupportThresholds", "WeightedDoublyRobust", "build_logged_dataset", "direct_values",
    "estimate_all", "importance_weights", "logged_dataset_from_tables", "match_rate",
    "support_diagnostics", "target_actions",
]
