"""Charts of the HTML report, each returned as an inline SVG string (no files, no network).

Every function takes plain Python data (lists/dicts as found in ``results.json``) and returns
``<svg ...>...</svg>`` markup, or ``""`` when there is nothing to draw. matplotlib runs on
the Agg backend; the SVG hash salt and the date metadata are fixed so the same results give
the same bytes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

# Colours per action channel, shared by every chart that draws reminders.
CHANNEL_COLOURS: dict[str, str] = {
    "email": "#4c78a8",
    "letter": "#f58518",
    "phone": "#54a24b",
    "final_notice": "#e45756",
    "agency": "#7f3c8d",
}
CHANNEL_MARKERS: dict[str, str] = {
    "email": "o", "letter": "s", "phone": "^", "final_notice": "D", "agency": "X",
}
POLICY_COLOURS: dict[str, str] = {
    "never": "#9d9d9d",
    "fixed": "#f58518",
    "tuned": "#72b7b2",
    "rl": "#4c78a8",
    "oracle": "#54a24b",
}

_SVG_START = re.compile(r"^.*?(<svg\b)", re.DOTALL)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "dunning-report"
    plt.rcParams["font.size"] = 9
    return plt


def figure_to_svg(fig: Any) -> str:
    """Serialise a matplotlib figure to an inline ``<svg>`` element and close the figure."""
    plt = pyplot()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = _SVG_START.sub(r"\1", buf.getvalue(), count=1)
    # The metadata block only holds creator links; the page must not reference the network.
    return _METADATA.sub("", svg)


def policy_bar_chart(
    policies: Mapping[str, Mapping[str, Any]], metric: str, label: str
) -> str:
    """Bars of ``metric`` per policy with their 95 % CI as error bars.

    ``policies[name][metric]`` is the mean; ``policies[name][metric + "_ci"]`` an optional
    ``[low, high]`` pair (no bar when absent or null: one evaluation seed has no CI).
    """
    names = [n for n, p in policies.items() if p.get(metric) is not None]
    if not names:
        return ""
    plt = pyplot()
    means = [float(policies[n][metric]) for n in names]
    lows, highs = [], []
    for n, m in zip(names, means, strict=True):
        ci = policies[n].get(f"{metric}_ci")
        known = bool(ci) and None not in ci
        lows.append(max(m - float(ci[0]), 0.0) if known else 0.0)
        highs.append(max(float(ci[1]) - m, 0.0) if known else 0.0)
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    colours = [POLICY_COLOURS.get(n, "#888888") for n in names]
    ax.bar(names, means, yerr=[lows, highs], capsize=4, color=colours)
    ax.set_ylabel(label)
    finite = [m for m in means if m == m]
    if finite and min(finite) > 0:
        # Zoom in: the policies differ by a few percent of a large number.
        lo = min(m - e for m, e in zip(means, lows, strict=True))
        hi = max(m + e for m, e in zip(means, highs, strict=True))
        pad = (hi - lo) * 0.25 or abs(hi) * 0.05
        ax.set_ylim(max(lo - pad, 0.0), hi + pad)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(label)
    return figure_to_svg(fig)


def timing_chart(
    timing: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
    segments: Sequence[str],
) -> str:
    """One panel per segment: for each policy, the day after due of each reminder, by channel.

    ``timing[policy][segment]`` is a list of ``{"reminder": k, "day": float, "channel": str}``.
    """
    policies = [p for p in timing if any(timing[p].get(s) for s in segments)]
    if not policies:
        return ""
    plt = pyplot()
    fig, axes = plt.subplots(
        len(segments), 1, figsize=(6.4, 1.2 + 1.0 * len(segments)), sharex=True, squeeze=False,
        layout="constrained",
    )
    seen: set[str] = set()
    for ax, seg in zip(axes[:, 0], segments, strict=True):
        for y, pol in enumerate(policies):
            for r in timing[pol].get(seg, []):
                if r.get("day") is None:
                    continue
                ch = str(r.get("channel", "email"))
                ax.scatter(
                    float(r["day"]), y, s=42, color=CHANNEL_COLOURS.get(ch, "#333333"),
                    marker=CHANNEL_MARKERS.get(ch, "o"), label=ch if ch not in seen else None,
                    zorder=3,
                )
                seen.add(ch)
        ax.set_yticks(range(len(policies)))
        ax.set_yticklabels(policies)
        ax.set_ylim(-0.6, len(policies) - 0.4)
        ax.set_title(seg, loc="left", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("day after due date of the reminder (mean over invoices)")
    if seen:
        fig.legend(loc="outside upper center", ncols=len(seen), fontsize=8, frameon=False)
    return figure_to_svg(fig)


def calibration_chart(calibration: Any) -> str:
    """Reliability diagram: mean predicted probability vs observed frequency per bin.

    Accepts ``{"predicted": [...], "observed": [...]}``, a list of such dicts with a
    ``"class"`` key, or ``{class_name: {"predicted": ..., "observed": ...}}``.
    """
    curves = _calibration_curves(calibration)
    if not curves:
        return ""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.plot([0, 1], [0, 1], ls="--", color="#999999", lw=1, label="perfect")
    for name, pred, obs in curves:
        ax.plot(pred, obs, marker="o", ms=3, label=name)
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, frameon=False)
    ax.set_title("calibration (held-out period)")
    return figure_to_svg(fig)


def _calibration_curves(cal: Any) -> list[tuple[str, list[float], list[float]]]:
    def pair(d: Mapping[str, Any]) -> tuple[list[float], list[float]] | None:
        pk = next((k for k in ("predicted", "mean_predicted", "prob_pred") if k in d), None)
        ok = next((k for k in ("observed", "fraction_positive", "prob_true") if k in d), None)
        if pk is None or ok is None:
            return None
        return [float(x) for x in d[pk]], [float(x) for x in d[ok]]

    out: list[tuple[str, list[float], list[float]]] = []
    if isinstance(cal, Mapping):
        p = pair(cal)
        if p:
            return [("model", *p)]
        for name, d in cal.items():
            if isinstance(d, Mapping) and (p := pair(d)):
                out.append((str(name), *p))
            elif _is_bin_list(d) and (p := pair(_columns(d))):
                out.append((str(name), *p))  # engine.models.metrics.calibration_curve
    elif isinstance(cal, Sequence) and not isinstance(cal, str):
        for i, d in enumerate(cal):
            if isinstance(d, Mapping) and (p := pair(d)):
                out.append((str(d.get("class", d.get("name", i))), *p))
    return out


def _is_bin_list(d: Any) -> bool:
    return (isinstance(d, Sequence) and not isinstance(d, str) and len(d) > 0
            and all(isinstance(b, Mapping) for b in d))


def _columns(bins: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """[{"mean_predicted": .., "observed": ..}, ...] (one dict per bin) -> column lists."""
    return {k: [b.get(k) for b in bins] for k in ("mean_predicted", "observed")
            if all(k in b for b in bins)}


def importance_chart(importance: Any, top_k: int = 15) -> str:
    """Horizontal bars of the ``top_k`` most important features.

    Accepts ``{feature: value}`` or a list of ``{"feature": str, "importance": float}``.
    """
    items: list[tuple[str, float]] = []
    if isinstance(importance, Mapping):
        items = [(str(k), float(v)) for k, v in importance.items()]
    elif isinstance(importance, Sequence) and not isinstance(importance, str):
        for d in importance:
            if isinstance(d, Mapping):
                name = d.get("feature", d.get("name"))
                val = d.get("importance", d.get("gain", d.get("value")))
                if name is not None and val is not None:
                    items.append((str(name), float(val)))
    if not items:
        return ""
    items = sorted(items, key=lambda kv: kv[1], reverse=True)[:top_k][::-1]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 0.6 + 0.22 * len(items)))
    ax.barh([k for k, _ in items], [v for _, v in items], color="#4c78a8")
    ax.set_xlabel("importance (gain)")
    ax.set_title("feature importance")
    return figure_to_svg(fig)


def training_curve_chart(curve: Mapping[str, Sequence[float]],
                         title: str = "RL training curve (learned environment)") -> str:
    """Mean episode reward (per unit of amount) against environment timesteps."""
    xs = [float(x) for x in curve.get("timesteps", [])]
    ys = [float(y) for y in curve.get("mean_reward", [])]
    if not xs or len(xs) != len(ys):
        return ""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    ax.plot(xs, ys, marker="o", ms=3, color=POLICY_COLOURS["rl"])
    ax.set_xlabel("timesteps (invoice-days)")
    ax.set_ylabel("mean episode reward / amount")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return figure_to_svg(fig)


def ece_over_time_chart(calibration: Sequence[Mapping[str, Any]], ece_warning: float) -> str:
    """Calibration drift: ECE of P(on time) per month, with the warning threshold.

    ``calibration`` is the drift block's list of ``{"window_start": "YYYY-MM-DD", "ece",
    "threshold", "status"}`` (see ``dunning.business.drift``). Months of the training period
    (status ``training``) are drawn hollow; warnings in red.
    """
    rows = [r for r in calibration if r.get("ece") is not None]
    if not rows:
        return ""
    plt = pyplot()
    months = [str(r["window_start"])[:7] for r in rows]
    x = list(range(len(rows)))
    ece = [float(r["ece"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    ax.plot(x, ece, color="#4c78a8", lw=1, zorder=2)
    ax.axhline(ece_warning, color="#e45756", ls="--", lw=1, label=f"warning at {ece_warning}")
    if all(r.get("threshold") is not None for r in rows):
        ax.plot(x, [float(r["threshold"]) for r in rows], ls=":", color="#e45756",
                lw=0.8, alpha=0.5, label="threshold incl. sampling noise")
    styles = {"training": ("white", "#4c78a8", "training period (in-sample)"),
              "warning": ("#e45756", "#e45756", "warning"),
              "ok": ("#4c78a8", "#4c78a8", "ok"), "too few": ("#bbbbbb", "#bbbbbb", "too few")}
    for status, (face, edge, label) in styles.items():
        idx = [i for i, r in enumerate(rows) if r.get("status") == status]
        if idx:
            ax.scatter([x[i] for i in idx], [ece[i] for i in idx], s=28, facecolors=face,
                       edgecolors=edge, label=label, zorder=3)
    step = max(1, len(x) // 12)
    ax.set_xticks(x[::step], months[::step], rotation=45, ha="right")
    ax.set_ylabel("ECE of P(on time)")
    ax.set_ylim(0, max([*ece, ece_warning]) * 1.25)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, frameon=False, ncols=2)
    ax.set_title("calibration error per month of invoice date")
    return figure_to_svg(fig)


def paired_interval_chart(rows: Sequence[Mapping[str, Any]], title: str, xlabel: str) -> str:
    """Forest plot of paired differences to a reference: one line per row, the mean as a dot
    and its interval as a bar, a vertical line at zero (no difference).

    ``rows`` are ``{"label": str, "policy": str, "mean": float, "ci_low": float,
    "ci_high": float}`` (policy picks the colour; a NaN interval draws the dot alone);
    optional ``"seed_low"``/``"seed_high"`` add the interval over seeds, thin and grey, for
    comparison.
    """
    rows = [r for r in rows if r.get("mean") is not None and r["mean"] == r["mean"]]
    if not rows:
        return ""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 0.9 + 0.38 * len(rows)))
    ys = list(range(len(rows)))[::-1]
    seen_seed = False
    for y, r in zip(ys, rows, strict=True):
        colour = POLICY_COLOURS.get(str(r.get("policy")), "#4c78a8")
        lo, hi = r.get("seed_low"), r.get("seed_high")
        if lo is not None and hi is not None and lo == lo and hi == hi:
            ax.plot([lo, hi], [y - 0.18, y - 0.18], color="#bbbbbb", lw=1.2,
                    label=None if seen_seed else "95 % CI over seeds")
            seen_seed = True
        lo, hi = r.get("ci_low"), r.get("ci_high")
        if lo is not None and hi is not None and lo == lo and hi == hi:
            ax.plot([lo, hi], [y, y], color=colour, lw=3, solid_capstyle="butt")
        ax.plot([r["mean"]], [y], "o", color=colour, ms=5)
    ax.axvline(0.0, color="#57606a", lw=0.8, ls="--")
    ax.set_yticks(ys, [str(r["label"]) for r in rows])
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    if seen_seed:
        ax.legend(fontsize=7, frameon=False, loc="best")
    ax.set_title(title)
    return figure_to_svg(fig)
