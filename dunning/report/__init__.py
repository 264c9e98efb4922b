"""Self-contained HTML report of a pipeline run (``dunning-data/report/index.html``).

(Evaluations and experiments have their own page in the same style:
:mod:`dunning.report.research`.)

The report is rendered from ``results.json`` alone (written by :mod:`dunning.pipeline`), so
``dunning report --results DIR`` can re-render it at any time. The page has no external
references: CSS is inline and every chart is an inline SVG made with matplotlib.

``results.json`` layout (keys the report reads; every section is optional except
``policies``)::

    {
      "schema": "dunning.results/1",
      "created_at": "2026-11-23T10:00:00Z",
      "scenario": "default",
      "n_eval_invoices": 4000, "n_seeds": 5,
      "policies": {                       # ground-truth KPIs, mean over seeds
        "<name>": {"npv": float, "npv_ci": [lo, hi], "mean_days_to_pay": float,
                   "first_reminder_pay_rate": float, "reminders_per_invoice": float,
                   "complaints_per_1000": float, "agency_per_1000": float,
                   "violations": int, "oracle_gap_closed": float (rl only), ...}},
      "per_segment": {"<policy>": {"<segment>": {"npv": float, ...}}},
      "timing": {"<policy>": {"<segment>": [{"reminder": 1, "day": 7.2, "channel": "email"}]}},
      "robustness": {"scenario": "shifted", "policies": {<same as policies>}},
      "model_card": {...},                # the payment model's JSON card, as written
      "vetoes": [{"rule_id": str, "count": int, "title": str, "citation": str}],
      "paired_vs_fixed": {"<policy>": {"<kpi>": {"mean", "ci_low", "ci_high", "n",
                                                  "method", "level"}}},  # per invoice
      "npv_difference_vs_fixed": {"<policy>": {"npv_minus_reference", "ci_low", "ci_high"}},
      "training": {"curve": {"timesteps": [...], "mean_reward": [...]}, ...facts},
      "config": {...}, "hashes": {...}, "step_seconds": {"<step>": float},
      "worker_seconds": {"<step of the worker beside the RL training>": float},
      "evaluation": {...},                # optional: `dunning evaluate-model --out` JSON
      "drift": {"available": true, "drifted": bool, "warnings": [str],
                "reference_period": [start, end], "recent_period": [start, end],
                "features": [{"feature", "psi", "status"}],
                "calibration": [{"window_start", "n", "mean_p", "observed", "ece",
                                 "ece_noise", "threshold", "status"}],
                "psi_watch": 0.1, "psi_warning": 0.2, "ece_warning": 0.05}
                # or {"available": false, "reason": str} (dunning.business.drift.drift_section)
    }
"""

from dunning.report.render import (
    load_results,
    render_evaluation,
    render_report,
    write_evaluation_report,
    write_report,
)

__all__ = ["load_results", "render_evaluation", "render_report", "write_evaluation_report",
           "write_report"]
