"""HTML reports of ``dunning evaluate``'s ``evaluation.json`` and of an experiment's JSON.

Same page style and chart helpers as the demo's report (:mod:`dunning.report.render`,
:mod:`dunning.report.charts`): one self-contained file, inline CSS and SVG, no script, no
external reference, every string from the data autoescaped.

Inputs (both written by this project)::

    evaluation.json   EvaluationResult.to_dict() (simulations.evaluation.harness):
                      scenario, n_invoices, seeds, policies [names], reference, overall,
                      by_segment, timing, difference, vetoes, config, paired;
                      config.training[policy] = {"curve": {...}, ...} for RL policies
    experiment JSON   {"experiment": {name, policies, scenarios, seeds, invoices, ...},
                       "summary": ..., "runs": {scenario: evaluation dict},
                       "training": {policy: {"curve": {...}, ...}}, "seconds": float}

A report shows per scenario the KPIs per policy (mean and 95 % CI over seeds), the paired
per-invoice differences to the reference policy (interval over invoices x seeds, t or
bootstrap as the run was configured), NPV per segment, the reminder timing and the legal
vetoes; an experiment adds a table and a chart across scenarios; a policy with a stored
training curve (an ``rl:DIR`` artifact's ``training_curve.json``) gets its learning curve.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from dunning.report.render import (
    fmt_any,
    fmt_value,
    load_results,
    paired_block,
    policy_rows,
    present_kpis,
    render_report,
    segment_names,
    segment_table,
    timing_rows,
)
from engine.errors import InputError

KIND_RESULTS, KIND_EVALUATION, KIND_EXPERIMENT = "results", "evaluation", "experiment"
TEMPLATE_NAME = "research.html.j2"
EVALUATION_FIELDS = ("scenario", "n_invoices", "seeds", "policies", "overall")


def load_report_input(path: str | Path) -> tuple[str, dict[str, Any], Path]:
    """``(kind, data, default report directory)`` of what ``dunning report PATH`` renders.

    ``path`` is a directory holding ``results.json`` (the demo) or ``evaluation.json``
    (``dunning evaluate --out``), or one of those files, or an experiment's JSON. Raises
    :class:`InputError` naming the file (and field) when it is none of them.
    """
    from simulations.evaluation.harness import EVALUATION_FILE

    p = Path(path)
    if p.is_dir():
        if (p / "results.json").is_file():
            return KIND_RESULTS, load_results(p), p / "report"
        if (p / EVALUATION_FILE).is_file():
            p = p / EVALUATION_FILE
        else:
            raise InputError(f"{p}: holds neither results.json (`dunning demo`) nor "
                             f"{EVALUATION_FILE} (`dunning evaluate --out`)")
    if not p.is_file():
        raise InputError(f"{p}: no results file there; expected a directory or file written "
                         "by `dunning demo` (results.json), `dunning evaluate --out` "
                         "(evaluation.json) or `dunning experiment run`")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not readable ({exc.__class__.__name__})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise InputError(f"{p}: expected a JSON object")
    default_out = p.parent / ("report" if p.name in ("results.json", EVALUATION_FILE)
                              else f"{p.stem}-report")
    if "experiment" in data or "runs" in data:
        check_experiment(data, str(p))
        return KIND_EXPERIMENT, data, default_out
    if isinstance(data.get("policies"), list):
        check_evaluation(data, str(p))
        return KIND_EVALUATION, data, default_out
    if isinstance(data.get("policies"), dict):
        return KIND_RESULTS, load_results(p), default_out
    raise InputError(f"{p}: not a results.json, evaluation.json or experiment result (no "
                     "field 'policies', 'experiment' or 'runs')")


def check_evaluation(data: Mapping[str, Any], where: str) -> None:
    """Raise :class:`InputError` naming ``where`` and the field an evaluation dict lacks."""
    for key in EVALUATION_FIELDS:
        if key not in data:
            raise InputError(f"{where}: field {key!r} missing; expected the evaluation.json "
                             "written by `dunning evaluate --out`")
    if not isinstance(data["overall"], dict) or not all(
            str(p) in data["overall"] for p in data["policies"]):
        raise InputError(f"{where}: field 'overall' must hold every policy of 'policies'")


def check_experiment(data: Mapping[str, Any], where: str) -> None:
    """Raise :class:`InputError` naming ``where`` and the field an experiment result lacks."""
    for key in ("experiment", "runs"):
        if not isinstance(data.get(key), dict):
            raise InputError(f"{where}: field {key!r} missing or not an object; expected the "
                             "JSON written by `dunning experiment run`")
    for name, run in data["runs"].items():
        if not isinstance(run, dict):
            raise InputError(f"{where}: field 'runs.{name}' is not an object")
        check_evaluation(run, f"{where}: field 'runs.{name}'")


def recompute_paired(eval_dir: str | Path, method: str, n_boot: int, seed: int
                     ) -> dict[str, Any]:
    """The evaluation in ``eval_dir`` with its paired intervals recomputed (``method`` t or
    bootstrap) from the per-invoice outcomes saved beside it (``outcomes.npz``)."""
    from simulations.evaluation.harness import (
        DEFAULT_INTERVAL,
        OUTCOMES_FILE,
        EvaluationResult,
        paired_table,
    )

    res = EvaluationResult.load(eval_dir)
    if not res.outcomes:
        raise InputError(f"{eval_dir}: no {OUTCOMES_FILE} beside the evaluation.json, so the "
                         "paired intervals cannot be recomputed; re-run `dunning evaluate "
                         "--out DIR` (it saves the per-invoice outcomes)")
    cfg = {**DEFAULT_INTERVAL, **res.config.get("interval", {}),
           "method": method, "n_boot": n_boot, "seed": seed}
    res.paired = paired_table(res.outcomes, res.reference, cfg)
    res.config = {**res.config, "interval": cfg}
    from engine.serialization import jsonable

    return jsonable(res.to_dict())


def render_evaluation_report(evaluation: Mapping[str, Any]) -> str:
    """HTML of one evaluation (``EvaluationResult.to_dict()``)."""
    check_evaluation(evaluation, "evaluation")
    training = (evaluation.get("config") or {}).get("training") or {}
    return _render(
        kind=KIND_EVALUATION, title=f"evaluation · scenario {evaluation['scenario']}",
        runs={str(evaluation["scenario"]): evaluation}, experiment=None, training=training,
        seconds=(evaluation.get("config") or {}).get("seconds"))


def render_experiment_report(result: Mapping[str, Any]) -> str:
    """HTML of an experiment result (``dunning.experiment.run_experiment``)."""
    check_experiment(result, "experiment")
    exp = result["experiment"]
    return _render(kind=KIND_EXPERIMENT, title=f"experiment {exp.get('name', '?')}",
                   runs=result["runs"], experiment=exp, training=result.get("training") or {},
                   seconds=result.get("seconds"))


def write_html(html: str, out_dir: str | Path) -> Path:
    """Write ``out_dir/index.html`` atomically and return its path."""
    from engine.files import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(out / "index.html", html)


def render_any(kind: str, data: Mapping[str, Any]) -> str:
    """The report HTML of ``data`` of ``kind`` (see :func:`load_report_input`)."""

    if kind == KIND_EXPERIMENT:
        return render_experiment_report(data)
    if kind == KIND_EVALUATION:
        return render_evaluation_report(data)
    return render_report(data)


# ----------------------------------------------------------------------------- context
def _render(*, kind: str, title: str, runs: Mapping[str, Mapping[str, Any]],
            experiment: Mapping[str, Any] | None, training: Mapping[str, Any],
            seconds: Any) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    sections = [_run_section(i, name, ev) for i, (name, ev) in enumerate(runs.items())]
    first = next(iter(runs.values()))
    context = {
        "kind": kind, "title": title,
        "n_invoices": first.get("n_invoices", "?"),
        "seeds": ", ".join(str(s) for s in first.get("seeds", [])),
        "n_seeds": len(first.get("seeds", [])),
        "reference": first.get("reference"),
        "scenarios": list(runs),
        "runs": sections,
        "summary": _summary(runs) if kind == KIND_EXPERIMENT else None,
        "training": _training(training),
        "experiment_rows": [(k, fmt_any(v)) for k, v in (experiment or {}).items()],
        "seconds": "" if seconds is None else f"{float(seconds):.1f} s",
    }
    return env.get_template(TEMPLATE_NAME).render(**context)


def _run_section(index: int, name: str, ev: Mapping[str, Any]) -> dict[str, Any]:
    """One scenario's tables and charts."""
    from dunning.pipeline import policies_block, timing_block
    from dunning.report import charts

    names = [str(p) for p in ev["policies"]]
    view = SimpleNamespace(overall=ev["overall"], policies=names, timing=ev.get("timing") or {})
    policies = policies_block(view)
    per_segment = {p: {s: {k: v.get("mean") for k, v in kp.items()}
                       for s, kp in segs.items()}
                   for p, segs in (ev.get("by_segment") or {}).items()}
    timing = timing_block(view)
    segments = segment_names({"timing": timing, "per_segment": per_segment})
    config = ev.get("config") or {}
    return {
        "id": f"run-{index}",
        "name": name,
        "n_invoices": ev.get("n_invoices"),
        "n_seeds": len(ev.get("seeds") or []),
        "kpi_columns": [label for _, label, _ in present_kpis(policies)],
        "policy_rows": policy_rows(policies),
        "charts": [c for c in (charts.policy_bar_chart(policies, "npv", "NPV per invoice"),)
                   if c],
        "paired": paired_block(ev.get("paired"), ev.get("reference"), names,
                               ev.get("difference"), config.get("interval")),
        **segment_table(per_segment, segments),
        "timing_chart": charts.timing_chart(timing, segments),
        "timing_rows": timing_rows(timing, segments),
        **_vetoes(ev.get("vetoes") or {}, names),
        "config_rows": [(k, fmt_any(v)) for k, v in config.items() if k != "training"],
    }


def _vetoes(vetoes: Mapping[str, Mapping[str, int]], names: list[str]) -> dict[str, Any]:
    rules = sorted({r for counts in vetoes.values() for r in counts},
                   key=lambda r: -sum(int(vetoes[p].get(r, 0)) for p in vetoes))
    pols = [p for p in names if p in vetoes]
    rows = [{"rule": r, "cells": [int(vetoes[p].get(r, 0)) for p in pols]} for r in rules]
    return {"veto_rows": rows, "veto_policies": pols}


def _summary(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Across scenarios: NPV per policy (CI over seeds) and its paired difference to the
    reference (interval over invoices x seeds), plus one forest chart of those differences."""
    from dunning.report import charts

    names: list[str] = []
    for ev in runs.values():
        names += [str(p) for p in ev["policies"] if str(p) not in names]
    rows, chart_rows = [], []
    for name in names:
        cells = []
        for sc, ev in runs.items():
            npv = (ev["overall"].get(name) or {}).get("npv") or {}
            pr = ((ev.get("paired") or {}).get(name) or {}).get("npv") \
                if name != ev.get("reference") else None
            cell = {"npv": fmt_value(npv.get("mean"), "{:,.0f}"),
                    "npv_ci": (f"[{fmt_value(npv.get('ci_low'), '{:,.0f}')}, "
                               f"{fmt_value(npv.get('ci_high'), '{:,.0f}')}]") if npv else "",
                    "paired": "", "paired_ci": "", "css": ""}
            if pr:
                lo, hi = pr.get("ci_low"), pr.get("ci_high")
                cell["paired"] = fmt_value(pr.get("mean"), "{:+,.0f}")
                cell["paired_ci"] = f"[{fmt_value(lo, '{:+,.0f}')}, {fmt_value(hi, '{:+,.0f}')}]"
                if lo is not None and hi is not None and lo == lo and hi == hi:
                    cell["css"] = "better" if lo > 0 else "worse" if hi < 0 else ""
                chart_rows.append({"label": f"{sc} · {name}", "policy": name, **pr})
            elif name == ev.get("reference"):
                cell["paired"] = "reference"
            cells.append(cell)
        rows.append({"name": name, "cells": cells})
    refs = sorted({str(ev.get("reference")) for ev in runs.values() if ev.get("reference")})
    return {"rows": rows, "references": ", ".join(refs),
            "chart": charts.paired_interval_chart(
                chart_rows, f"NPV per invoice minus the reference's ({', '.join(refs)}), "
                "paired", "difference in NPV per invoice")}


def _training(training: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Learning curves of the policies that were trained (RL artifacts' stored curves)."""
    from dunning.report import charts

    out = []
    for name, info in training.items():
        if not isinstance(info, Mapping):
            continue
        curve = info.get("curve") or {}
        out.append({
            "name": str(name),
            "chart": charts.training_curve_chart(
                curve, f"{name}: mean episode reward during training"),
            "facts": [(k, fmt_any(v)) for k, v in info.items() if k != "curve"],
            "points": len(curve.get("timesteps") or []),
        })
    return out
