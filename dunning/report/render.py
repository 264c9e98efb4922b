"""Render ``results.json`` into the self-contained ``index.html`` (see :mod:`dunning.report`)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.contract import SEGMENTS
from engine.errors import InputError

TEMPLATE_NAME = "index.html.j2"
POLICY_ORDER: tuple[str, ...] = ("never", "fixed", "tuned", "rl", "planner", "oracle")

# (key in the policy dict, column label, formatter)
KPI_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("npv", "NPV / invoice", "{:,.2f}"),
    ("mean_days_to_pay", "days to pay", "{:.1f}"),
    ("first_reminder_pay_rate", "paid ≤14 d after 1st reminder", "{:.1%}"),
    ("reminders_per_invoice", "reminders / invoice", "{:.2f}"),
    ("complaints_per_1000", "complaints / 1000", "{:.1f}"),
    ("agency_per_1000", "agency / 1000", "{:.1f}"),
    ("violations", "legal violations", "{:.0f}"),
    ("oracle_gap_closed", "oracle gap closed", "{:.1%}"),
)


def load_results(results_dir: str | Path) -> dict[str, Any]:
    """Read ``results_dir/results.json`` (or the file itself when a file path is given)."""
    path = Path(results_dir)
    if path.is_dir():
        path = path / "results.json"
    if not path.exists():
        raise InputError(f"{path}: no results file; run `dunning demo` first or pass the "
                         "directory that holds results.json")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(results, dict) or not isinstance(results.get("policies"), dict):
        raise InputError(f"{path}: field 'policies' missing; expected the results.json written "
                         "by `dunning demo`")
    return results


def write_report(results: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Render the report into ``out_dir/index.html`` atomically and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html = render_report(results)
    target = out / "index.html"
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(target)
    return target


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )


def render_report(results: Mapping[str, Any]) -> str:
    """Return the report HTML for ``results`` (the ``results.json`` layout)."""
    from dunning.report import charts

    env = _environment()
    policies = _ordered(results["policies"])
    segments = segment_names(results)
    card = results.get("model_card") or {}
    training = results.get("training") or {}
    context = {
        "scenario": results.get("scenario", "?"),
        "created_at": results.get("created_at", "?"),
        "n_eval_invoices": results.get("n_eval_invoices", "?"),
        "n_seeds": results.get("n_seeds", "?"),
        "headline": _shipped(results, policies) + _headline(policies),
        "selection_rows": _selection_rows(results.get("selection") or {}),
        "selection": results.get("selection") or {},
        "kpi_columns": [{"key": k, "label": label} for k, label, _ in present_kpis(policies)],
        "policy_rows": policy_rows(policies),
        "paired": paired_block(results.get("paired_vs_fixed"), "fixed", list(policies),
                               results.get("npv_difference_vs_fixed")),
        "comparison_charts": [
            c for c in (
                charts.policy_bar_chart(policies, "npv", "NPV per invoice"),
                charts.policy_bar_chart(policies, "mean_days_to_pay", "days from due to payment"),
                charts.policy_bar_chart(policies, "complaints_per_1000", "complaints per 1000"),
            ) if c
        ],
        **_robustness(policies, results.get("robustness")),
        "roi": _roi(results),
        "drift": _drift(results.get("drift")),
        "timing_chart": charts.timing_chart(results.get("timing") or {}, segments),
        "timing_rows": timing_rows(results.get("timing") or {}, segments),
        "rl_timing_rules": training.get("timing_rules"),
        **segment_table(results.get("per_segment") or {}, segments),
        **_model_card(card),
        "calibration_chart": charts.calibration_chart(_find(card, "calibration")),
        "importance_chart": charts.importance_chart(
            _find(card, "feature_importance") or _find(card, "importance")
        ),
        "veto_rows": sorted(results.get("vetoes") or [], key=lambda r: -int(r.get("count", 0))),
        "training_chart": charts.training_curve_chart(training.get("curve") or {}),
        "training_facts": [(k, fmt_any(v)) for k, v in training.items() if k != "curve"],
        "evaluation": evaluation_context(results["evaluation"])
        if results.get("evaluation") is not None else None,
        "config_rows": _config_rows(results),
        "step_rows": [(k, f"{float(v):.1f} s")
                      for k, v in (results.get("step_seconds") or {}).items()]
        + [(f"worker beside the RL training: {k}", f"{float(v):.1f} s")
           for k, v in (results.get("worker_seconds") or {}).items()],
    }
    return env.get_template(TEMPLATE_NAME).render(**context)


def _ordered(policies: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    known = [p for p in POLICY_ORDER if p in policies]
    return {p: policies[p] for p in known + sorted(set(policies) - set(known))}


def segment_names(results: Mapping[str, Any]) -> list[str]:
    found: set[str] = set()
    for per_seg in (results.get("timing") or {}).values():
        found.update(per_seg)
    for per_seg in (results.get("per_segment") or {}).values():
        found.update(per_seg)
    return [s for s in SEGMENTS if s in found] + sorted(found - set(SEGMENTS))


def present_kpis(policies: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    return [c for c in KPI_COLUMNS if any(p.get(c[0]) is not None for p in policies.values())]


def fmt_value(value: Any, fmt: str) -> str:
    if value is None:
        return "–"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "–" if math.isnan(v) else fmt.format(v)


def fmt_any(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def policy_rows(policies: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    cols = present_kpis(policies)
    rows = []
    for name, kpis in policies.items():
        cells = []
        for key, _, fmt in cols:
            ci = kpis.get(f"{key}_ci")
            ci_txt = f"[{fmt_value(ci[0], fmt)}, {fmt_value(ci[1], fmt)}]" if ci else ""
            cells.append({"value": fmt_value(kpis.get(key), fmt), "ci": ci_txt})
        rows.append({"name": name, "cells": cells})
    return rows


def _headline(policies: Mapping[str, Mapping[str, Any]]) -> list[dict[str, str]]:
    out = []
    rl, fixed = policies.get("rl"), policies.get("fixed")
    if rl and rl.get("oracle_gap_closed") is not None:
        g = float(rl["oracle_gap_closed"])
        out.append({"value": f"{g:.1%}", "css": "ok" if g >= 0.8 else "miss",
                    "label": "of the oracle's NPV gain over fixed 14/30/45 reached by RL "
                             "(target ≥ 80 %)"})
    if rl and fixed and rl.get("npv") is not None and fixed.get("npv"):
        gain = float(rl["npv"]) / float(fixed["npv"]) - 1
        out.append({"value": f"{gain:+.2%}", "css": "ok" if gain > 0 else "miss",
                    "label": "NPV per invoice, RL vs fixed schedule"})
    for key, label in (("first_reminder_pay_rate", "paid ≤14 days after 1st reminder (RL; "
                        "fixed {f})"), ("mean_days_to_pay", "days due→payment (RL; fixed {f})")):
        if rl and fixed and rl.get(key) is not None and fixed.get(key) is not None:
            fmt = "{:.0%}" if "rate" in key else "{:.1f}"
            out.append({"value": fmt.format(float(rl[key])), "css": "",
                        "label": label.format(f=fmt.format(float(fixed[key])))})
    if rl and rl.get("violations") is not None:
        v = int(rl["violations"])
        out.append({"value": str(v), "css": "ok" if v == 0 else "miss",
                    "label": "legal violations (RL)"})
    return out


def _shipped(results: Mapping[str, Any], policies: Mapping[str, Mapping[str, Any]]
             ) -> list[dict[str, str]]:
    """Headline: the shipped scheduler, how it was chosen, and its gap in the truth."""
    sel = results.get("selection") or {}
    chosen = sel.get("chosen")
    if not chosen:
        return []
    out = [{"value": str(chosen), "css": "",
            "label": f"shipped scheduler, chosen without the ground truth: {sel.get('reason')}"}]
    gap = (policies.get(chosen) or {}).get("oracle_gap_closed")
    if gap is not None:
        out.append({"value": f"{float(gap):.1%}", "css": "ok" if gap >= 0.9 else "miss",
                    "label": f"of the oracle's NPV gain over fixed 14/30/45 reached by the "
                             f"shipped {chosen} in the ground truth (target ≥ 90 %)"})
    return out


def _selection_rows(sel: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per candidate: both truth-free estimates and the truth beside them."""
    rows = []
    for name, c in (sel.get("candidates") or {}).items():
        ci = c.get("dr_ci") or [None, None]
        rows.append({"name": name, "learned": fmt_value(c.get("learned_value"), "{:,.0f}"),
                     "dr": fmt_value(c.get("dr"), "{:,.0f}"),
                     "dr_ci": f"[{fmt_value(ci[0], '{:,.0f}')}, {fmt_value(ci[1], '{:,.0f}')}]",
                     "truth": fmt_value(c.get("truth_npv"), "{:,.0f}"),
                     "gap": fmt_value(c.get("truth_oracle_gap_closed"), "{:.1%}"),
                     "chosen": "yes" if name == sel.get("chosen") else ""})
    return rows


def _robustness(
    base: Mapping[str, Mapping[str, Any]], rob: Mapping[str, Any] | None
) -> dict[str, Any]:
    if not rob or not rob.get("policies"):
        return {"robustness_rows": [], "robustness_scenario": ""}
    shifted = _ordered(rob["policies"])
    rows = []
    for name, k in shifted.items():
        b = base.get(name, {}).get("npv")
        s = k.get("npv")
        change = (f"{float(s) / float(b) - 1:+.2%}" if b and s is not None else "–")
        rows.append({"name": name, "base": fmt_value(b, "{:,.2f}"),
                     "shifted": fmt_value(s, "{:,.2f}"), "change": change,
                     "gap": fmt_value(k.get("oracle_gap_closed"), "{:.1%}")})
    return {"robustness_rows": rows, "robustness_scenario": rob.get("scenario", "shifted")}


def timing_rows(timing: Mapping[str, Any], segments: list[str]) -> list[dict[str, Any]]:
    rows = []
    for seg in segments:
        for pol in _ordered(timing):
            rem = {int(r["reminder"]): r for r in timing[pol].get(seg, [])
                   if r.get("day") is not None}
            if not rem:
                continue
            cells = []
            for k in (1, 2, 3):
                r = rem.get(k)
                share = f" ({float(r['share']):.0%})" if r and r.get("share") is not None else ""
                cells.append(f"day {float(r['day']):.1f} {r.get('channel', '')}{share}"
                             if r else "–")
            rows.append({"segment": seg, "policy": pol, "cells": cells})
    return rows


def segment_table(per_segment: Mapping[str, Any], segments: list[str]) -> dict[str, Any]:
    pols = list(_ordered(per_segment))
    rows = []
    for seg in segments:
        cells = [fmt_value((per_segment[p].get(seg) or {}).get("npv"), "{:,.2f}") for p in pols]
        rows.append({"segment": seg, "cells": cells})
    return {"segment_rows": rows if pols else [], "segment_policies": pols}


def _find(obj: Any, key: str) -> Any:
    """First value stored under ``key`` anywhere in a nested dict (model cards vary in depth)."""
    if isinstance(obj, Mapping):
        if key in obj:
            return obj[key]
        for v in obj.values():
            found = _find(v, key)
            if found is not None:
                return found
    return None


def _model_card(card: Mapping[str, Any]) -> dict[str, Any]:
    metrics = _find(card, "metrics") or {}
    models: list[str] = []
    table: dict[str, dict[str, Any]] = {}
    if isinstance(metrics, Mapping):
        flat = all(not isinstance(v, Mapping) for v in metrics.values())
        by_model = {"model": metrics} if flat else {
            k: v for k, v in metrics.items() if isinstance(v, Mapping)
        }
        for model, ms in by_model.items():
            models.append(str(model))
            for m, v in ms.items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    table.setdefault(str(m), {})[str(model)] = v
    rows = [{"metric": m, "cells": [fmt_value(vals.get(mod), "{:.4f}") for mod in models]}
            for m, vals in table.items()]
    facts = []
    for key in ("model_hash", "hash", "content_hash", "classes", "very_late_days",
                "data_period", "train_period", "test_period", "n_train", "n_test"):
        v = card.get(key) if isinstance(card, Mapping) else None
        if v is not None:
            facts.append((key, fmt_any(v)))
    return {"model_metrics": rows, "model_metric_models": models, "model_facts": facts}


def _config_rows(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [(f"hash: {k}", str(v)) for k, v in (results.get("hashes") or {}).items()]
    rows += [(k, fmt_any(v)) for k, v in (results.get("config") or {}).items()]
    return rows


def _roi(results: Mapping[str, Any]) -> dict[str, Any] | None:
    """The business case of moving from the fixed schedule to RL, with default inputs."""
    from dunning.business.roi import roi_section

    if not {"fixed", "rl"} <= set(results.get("policies") or {}):
        return None
    section = roi_section(results, current="fixed", proposed="rl")
    labels = {
        "yearly_benefit": "yearly benefit", "liquidity": "liquidity gained",
        "reminders_saved": "reminders saved", "staff_time_saved": "staff time saved",
        "losses_avoided": "losses avoided", "running_cost": "running cost",
        "one_off_cost": "one-off cost", "three_year_net": "net over three years",
    }
    figures = section["figures"]
    section["rows"] = [
        {"label": label, "value": "–" if figures.get(key) is None else f"{figures[key]:,.0f}"}
        for key, label in labels.items()
    ]
    payback = figures.get("payback_months")
    section["payback"] = "never" if payback is None else f"{payback:.1f} months"
    return section



DRIFT_MISSING = ("results.json has no drift block: it is computed when `dunning demo` builds "
                 "the report (it needs the store and the payment model); run `dunning drift "
                 "--db STORE --model MODEL` for this run's data")


def _drift(block: Mapping[str, Any] | None) -> dict[str, Any]:
    """The drift section: PSI per feature, ECE per month (chart) and the warnings.

    ``block`` is ``results["drift"]`` as written by ``dunning.business.drift.drift_section``
    (``available`` False with a ``reason`` when it could not be computed), or None.
    """
    from dunning.report import charts

    if not block:
        return {"available": False, "reason": DRIFT_MISSING}
    if not block.get("available", True):
        return {"available": False, "reason": str(block.get("reason") or DRIFT_MISSING)}
    ece_warning = float(block.get("ece_warning", 0.05))
    features = [
        {"feature": r["feature"], "psi": fmt_value(r.get("psi"), "{:.3f}"),
         "status": str(r.get("status", ""))}
        for r in block.get("features") or []
    ]
    calibration = [
        {"month": str(r.get("window_start", ""))[:7], "n": r.get("n", ""),
         "predicted": fmt_value(r.get("mean_p"), "{:.2f}"),
         "observed": fmt_value(r.get("observed"), "{:.2f}"),
         "ece": fmt_value(r.get("ece"), "{:.3f}"),
         "threshold": fmt_value(r.get("threshold"), "{:.3f}"),
         "status": str(r.get("status", ""))}
        for r in block.get("calibration") or []
    ]
    return {
        "available": True,
        "drifted": bool(block.get("drifted")),
        "warnings": [str(w) for w in block.get("warnings") or []],
        "model": str(block.get("model", "")),
        "reference_period": " .. ".join(map(str, block.get("reference_period") or [])),
        "recent_period": " .. ".join(map(str, block.get("recent_period") or [])),
        "psi_watch": block.get("psi_watch", 0.1),
        "psi_warning": block.get("psi_warning", 0.2),
        "ece_warning": ece_warning,
        "feature_rows": features,
        "calibration_rows": calibration,
        "ece_chart": charts.ece_over_time_chart(block.get("calibration") or [], ece_warning),
    }


# Which sign of a paired difference is an improvement (0: neither, e.g. reminders sent).
BETTER_SIGN: dict[str, int] = {"npv": 1, "pay_rate": 1, "reminders_per_invoice": 0,
                               "complaints_per_1000": -1, "agency_per_1000": -1,
                               "write_off_rate": -1}


def interval_method(stats: Mapping[str, Any], interval: Mapping[str, Any] | None) -> str:
    """How a paired interval was computed, in words (from the stats or the run's config)."""
    cfg = {**(interval or {}), **{k: stats[k] for k in ("method", "level") if k in stats}}
    level = f"{100 * float(cfg.get('level', 0.95)):g} %"
    if cfg.get("method", "t") == "bootstrap":
        boot = f", {cfg['n_boot']} resamples" if cfg.get("n_boot") else ""
        seed = f", seed {cfg['seed']}" if cfg.get("seed") is not None else ""
        return f"{level} percentile bootstrap (invoices resampled within seeds{boot}{seed})"
    return f"{level} paired t-interval over all per-invoice differences"


def paired_block(paired: Mapping[str, Any] | None, reference: str | None,
                 order: list[str] | None = None,
                 seed_intervals: Mapping[str, Any] | None = None,
                 interval: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The paired-differences table and chart: every policy minus ``reference`` per invoice
    on the same invoices and draws, mean and interval over invoices x seeds.

    ``paired[policy][kpi]`` is ``{"mean", "ci_low", "ci_high", "n", "method", "level"}``
    (``EvaluationResult.paired``, ``results.json``'s ``paired_vs_fixed``);
    ``seed_intervals[policy]`` the NPV difference's interval over seeds
    (``EvaluationResult.difference``: ``npv_minus_reference``, ``ci_low``, ``ci_high``),
    drawn beside it for comparison. None when there is nothing to show.
    """
    from dunning.report import charts
    from simulations.evaluation.tables import HEADLINE, PAIRED_FORMATS

    if not isinstance(paired, Mapping) or not paired or not reference:
        return None
    # results.json is read back from disk: keep only well-formed intervals (a file edited by
    # hand must not break the page), every figure a float
    paired = {str(p): {str(k): s for k, v in kpis.items() if (s := _interval_stats(v))}
              for p, kpis in paired.items() if isinstance(kpis, Mapping)}
    paired = {p: kpis for p, kpis in paired.items() if kpis}
    seed_intervals = seed_intervals if isinstance(seed_intervals, Mapping) else {}
    interval = interval if isinstance(interval, Mapping) else None
    names = [p for p in (order or list(_ordered(paired))) if p in paired and p != reference]
    kpis = [k for k in PAIRED_FORMATS if any(k in (paired[p] or {}) for p in names)]
    if not names or not kpis:
        return None
    titles = {k: label for k, label, _ in KPI_COLUMNS}
    titles.update({k: t for k, t, _ in HEADLINE if k not in titles})
    titles.update({"pay_rate": "pay rate", "write_off_rate": "write-off rate"})
    rows, first = [], None
    for name in names:
        cells = []
        for k in kpis:
            st = (paired[name] or {}).get(k)
            if not st:
                cells.append({"value": "–", "ci": "", "css": ""})
                continue
            first = first or st
            fmt = PAIRED_FORMATS[k]
            lo, hi = st.get("ci_low"), st.get("ci_high")
            has_ci = lo is not None and hi is not None and lo == lo and hi == hi
            sign = 1 if has_ci and lo > 0 else -1 if has_ci and hi < 0 else 0
            good = BETTER_SIGN.get(k, 0) * sign
            cells.append({"value": fmt_value(st.get("mean"), fmt),
                          "ci": f"[{fmt_value(lo, fmt)}, {fmt_value(hi, fmt)}]" if has_ci else "",
                          "css": "better" if good > 0 else "worse" if good < 0 else ""})
        rows.append({"name": name, "cells": cells})
    chart_rows = []
    for name in names:
        st = (paired[name] or {}).get("npv")
        if st:
            seed = seed_intervals.get(name)
            seed = seed if isinstance(seed, Mapping) else {}
            chart_rows.append({"label": name, "policy": name, **st,
                               "seed_low": _number(seed.get("ci_low")),
                               "seed_high": _number(seed.get("ci_high"))})
    return {
        "reference": reference,
        "columns": [titles.get(k, k) for k in kpis],
        "rows": rows,
        "n": (first or {}).get("n"),
        "method": interval_method(first or {}, interval),
        "chart": charts.paired_interval_chart(
            chart_rows, f"NPV per invoice minus {reference}'s (paired)",
            "difference in NPV per invoice"),
    }


def _number(value: Any) -> float | None:
    """``value`` as a float, None when it is not a number (NaN stays NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _interval_stats(st: Any) -> dict[str, Any] | None:
    """A paired interval ``{"mean", "ci_low", "ci_high", "n", "method", "level"}`` with float
    figures, or None when ``st`` is not one (no numeric mean)."""
    if not isinstance(st, Mapping) or _number(st.get("mean")) is None:
        return None
    n = st.get("n")
    return {"mean": _number(st.get("mean")), "ci_low": _number(st.get("ci_low")),
            "ci_high": _number(st.get("ci_high")),
            "n": n if isinstance(n, int) and not isinstance(n, bool) else None,
            "method": "bootstrap" if st.get("method") == "bootstrap" else "t",
            "level": _number(st.get("level")) or 0.95}


# --------------------------------------------------------------- evaluate-model section
BASELINES: tuple[str, ...] = ("global_mean", "customer_mean")
# (key in the evaluation's per-model metrics, column label, formatter)
EVALUATION_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("accuracy", "accuracy", "{:.3f}"),
    ("late_f1", "late F1 (0.5)", "{:.3f}"),
    ("auc_late", "AUC late", "{:.3f}"),
    ("log_loss", "log loss", "{:.4f}"),
    ("brier", "Brier", "{:.4f}"),
    ("mae_days_to_pay", "MAE days to pay", "{:.2f}"),
    ("mae_days_late", "MAE days late", "{:.2f}"),
)


def evaluation_context(ev: Mapping[str, Any]) -> dict[str, Any]:
    """Template context of the evaluation section from ``dunning evaluate-model``'s JSON
    (:func:`engine.models.evaluation.evaluate_cut`): the metrics table with the baselines
    first and the shipped model marked, a calibration plot, MAE bars of days to pay and
    days late, and the later horizons of the shipped model."""
    from dunning.report import charts

    models = ev.get("models") if isinstance(ev, Mapping) else None
    if not isinstance(models, Mapping) or not models:
        raise InputError("evaluation: field 'models' missing; expected the JSON written by "
                         "`dunning evaluate-model --out FILE.json`")
    shipped = str(ev.get("shipped", ""))
    order = [n for n in BASELINES if n in models] + [n for n in models if n not in BASELINES]
    rows = []
    for name in order:
        m = models[name]
        kind = "baseline" if name in BASELINES else "shipped" if name == shipped else \
            "candidate"
        rows.append({"name": name, "label": f"{name} ({kind})", "shipped": name == shipped,
                     "cells": [fmt_value(m.get(k), fmt) for k, _, fmt in EVALUATION_COLUMNS]})
    mae_charts = [c for c in (
        charts.policy_bar_chart({n: models[n] for n in order}, key, label)
        for key, label in (("mae_days_to_pay", "MAE of days to pay (days)"),
                           ("mae_days_late", "MAE of days late, late invoices (days)"))) if c]
    horizons = []
    for h, r in (ev.get("horizons") or {}).items():
        m = (r.get("models") or {}).get(shipped) or {}
        horizons.append({"horizon": str(h), "n": r.get("n", ""),
                         "late_share": fmt_value(r.get("late_share"), "{:.0%}"),
                         "accuracy": fmt_value(m.get("accuracy"), "{:.3f}"),
                         "log_loss": fmt_value(m.get("log_loss"), "{:.4f}"),
                         "auc": fmt_value(m.get("auc_late"), "{:.3f}")})
    f1 = (models.get(shipped) or {}).get("late_f1_at_threshold")
    return {
        "cut": str(ev.get("cut", "?")), "data_end": str(ev.get("data_end", "?")),
        "train_invoices": fmt_value(ev.get("train_invoices"), "{:,.0f}"),
        "test_invoices": fmt_value(ev.get("test_invoices"), "{:,.0f}"),
        "test_late_share": fmt_value(ev.get("test_late_share"), "{:.0%}"),
        "shipped": shipped, "threshold": fmt_value(ev.get("threshold"), "{:.2f}"),
        "columns": [label for _, label, _ in EVALUATION_COLUMNS], "rows": rows,
        "shipped_f1": None if f1 is None else (
            f"{shipped}'s late F1 at its cross-validated threshold "
            f"{fmt_value(ev.get('threshold'), '{:.2f}')}: {fmt_value(f1, '{:.3f}')}"),
        "calibration_chart": charts.calibration_chart(ev.get("calibration")),
        "mae_charts": mae_charts, "horizon_rows": horizons,
        "note": str(ev.get("note", "")),
    }


def render_evaluation(ev: Mapping[str, Any]) -> str:
    """A self-contained HTML page holding only the evaluation section."""
    return _environment().get_template("evaluation.html.j2").render(
        evaluation=evaluation_context(ev))


def write_evaluation_report(ev: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Render :func:`render_evaluation` into ``out_dir/index.html`` atomically."""
    from engine.files import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "index.html"
    atomic_write_text(target, render_evaluation(ev))
    return target
