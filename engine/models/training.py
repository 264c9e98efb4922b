"""Train, evaluate (time-ordered) and save the model artifact behind `dunning train-model`.

The artifact directory holds::

    payment_model.txt / payment_days_late.txt / payment_model.json   (PaymentModel.save)
    hazard_model.txt / hazard_model.json                               (HazardModel.save)
    model_card.json / model_card.md                                    (this module)
    artifact.json   {"hash": ..., "payment_hash": ..., "hazard_hash": ...}

Evaluation: the invoices whose class is known at ``as_of`` are split at the 80 % quantile
of their invoice dates. Models (LightGBM + baselines) are fitted on the rows known at the
split date and scored on the invoices issued on or after it ("future period"). The saved
model is then refitted on everything known at ``as_of``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.calendar import from_day, to_day
from engine.errors import DunningError
from engine.features import (
    PreparedTables,
    build_hazard_frame,
    build_training_frame,
    class_known,
    classes_for,
    label_classes,
    prepare_tables,
)
from engine.models.baselines import HistoryRuleBaseline, LogisticBaseline
from engine.models.hazard import HazardModel
from engine.models.metrics import calibration_curve, classification_metrics
from engine.models.payment import PaymentModel, _atomic_write, select_features

Progress = Callable[[str], None]


@dataclass
class TrainConfig:
    """Options of `dunning train-model` (see docs/payment-model.md)."""

    very_late_days: int = 30
    include_fields: Sequence[str] = ()
    exclude_fields: Sequence[str] = ()
    test_fraction: float = 0.2
    hazard: bool = True
    seed: int = 0
    payment_params: dict[str, Any] = field(default_factory=dict)
    hazard_params: dict[str, Any] = field(default_factory=dict)


def time_split_day(p: PreparedTables, as_day: int, very_late_days: int,
                   test_fraction: float) -> int:
    """Day at the (1 - test_fraction) quantile of the invoice dates with a known class."""
    days = np.sort(p.invoice_day[class_known(p, as_day, very_late_days)])
    if len(days) < 50:
        raise DunningError(f"only {len(days)} invoices have a known outcome before "
                           f"{from_day(as_day)}; need at least 50 to train and evaluate "
                           "(choose a later --as-of date or add history)")
    return int(days[int(len(days) * (1.0 - test_fraction))])


def evaluate_payment(p: PreparedTables, as_day: int, cfg: TrainConfig,
                     progress: Progress | None = None) -> dict[str, Any]:
    """Time-ordered evaluation of LightGBM vs baselines; returns the metrics dict."""
    split = time_split_day(p, as_day, cfg.very_late_days, cfg.test_fraction)
    train = build_training_frame(p, from_day(split), cfg.very_late_days)
    test = build_training_frame(p, from_day(as_day), cfg.very_late_days, since=None)
    sel = test.invoice_day >= split
    Xte, dl_te, snap = test.X[sel], test.days_late[sel], test.snapshot[sel]
    features = select_features(train.X.columns, cfg.include_fields, cfg.exclude_fields)
    if progress:
        progress(f"evaluation: {len(train.X):,} training rows before {from_day(split)}, "
                 f"{len(Xte):,} test rows after")
    models: dict[str, Any] = {
        "lightgbm": PaymentModel(cfg.very_late_days, features=features, fit_days_late=False,
                                 random_state=cfg.seed, **cfg.payment_params),
        "logistic_regression": LogisticBaseline(cfg.very_late_days, features=features,
                                                random_state=cfg.seed),
        "history_rule": HistoryRuleBaseline(cfg.very_late_days),
    }
    classes = classes_for(cfg.very_late_days)
    y = label_classes(dl_te, cfg.very_late_days)
    at_issue = snap == -1
    out: dict[str, Any] = {
        "split_date": str(from_day(split)), "as_of": str(from_day(as_day)),
        "train_rows": int(len(train.X)), "test_rows": int(len(Xte)),
        "test_invoices": int(at_issue.sum()), "models": {},
    }
    for name, model in models.items():
        if name == "lightgbm":
            model.fit(train.X, train.days_late, train.ref_day)
        else:
            model.fit(train.X, train.days_late)
        proba = model.predict_proba(Xte)
        out["models"][name] = {
            "at_invoice_date": classification_metrics(proba[at_issue], y[at_issue], classes),
            "all_snapshots": classification_metrics(proba, y, classes),
        }
        if name == "lightgbm":
            out["calibration"] = calibration_curve(proba[at_issue], y[at_issue], classes)
            imp = model.booster_.feature_importance("gain")
            order = np.argsort(-imp)
            out["feature_importance"] = [
                {"feature": model.features_[j], "gain_share": float(imp[j] / imp.sum())}
                for j in order if imp[j] > 0]
    ll = {k: v["at_invoice_date"]["log_loss"] for k, v in out["models"].items()}
    out["lightgbm_beats_baselines_on_log_loss"] = bool(
        ll["lightgbm"] < min(ll["logistic_regression"], ll["history_rule"]))
    return out


def empirical_survival(days_to_event: np.ndarray, observed: np.ndarray, days: int
                       ) -> np.ndarray:
    """Kaplan-Meier S(d) for d = 0..days: P(unpaid at the start of day d after due)."""
    s = np.ones(days + 1)
    for d in range(days):
        at_risk = (days_to_event >= d).sum()
        events = ((days_to_event == d) & observed).sum()
        s[d + 1] = s[d] * (1.0 - events / at_risk) if at_risk else s[d]
    return s


def evaluate_hazard(p: PreparedTables, as_day: int, cfg: TrainConfig, split: int,
                    days: int = 90) -> dict[str, Any]:
    """Fit the hazard model before ``split``; on invoices due later compare the mean
    predicted survival (with their logged reminders and calendar) against Kaplan-Meier,
    overall and per segment, at days 0..``days`` after due; plus weighted log loss."""
    model = HazardModel(random_state=cfg.seed, **cfg.hazard_params)
    model.fit_tables(p, from_day(split))
    test = build_hazard_frame(p, from_day(as_day), horizon_days=days, max_rows=10**9,
                              max_invoices=50_000, seed=cfg.seed)
    due = p.due_day[test.rows]
    keep = due >= split
    h = model.predict_hazard(model.static_matrix(test.static)[test.static_index[keep]],
                             {k: v[keep] for k, v in test.dynamic.items()})
    rows, d_over, ev = test.rows[keep], (test.day - due)[keep], test.event[keep]
    if len(rows) == 0:
        return {"note": "no invoices due after the split date"}
    from sklearn.metrics import log_loss

    base = float(ev.mean())
    out: dict[str, Any] = {
        "test_invoice_days": int(len(rows)), "test_payments": int(ev.sum()),
        "log_loss": float(log_loss(ev, np.clip(h, 1e-9, 1 - 1e-9), labels=[0, 1])),
        "log_loss_constant_rate": float(log_loss(ev, np.full(len(ev), base), labels=[0, 1])),
        "survival": {},
    }
    seg = p.customers["segment"].astype(object).fillna("unknown").astype(str).to_numpy()
    seg_rows = seg[p.cust[rows]]
    for name in ["all", *sorted(set(seg_rows))]:
        m = np.ones(len(rows), bool) if name == "all" else seg_rows == name
        # predicted survival per invoice: cumulative product of (1 - h) over its days
        pred = _mean_predicted_survival(rows[m], d_over[m], h[m], days)
        r_inv = np.unique(rows[m])
        last = pd.Series(d_over[m]).groupby(rows[m]).max().reindex(r_inv).to_numpy()
        paid = pd.Series(ev[m]).groupby(rows[m]).max().reindex(r_inv).to_numpy() > 0
        km = empirical_survival(last, paid, days)
        pts = [0, 7, 14, 30, 45, 60, 90]
        out["survival"][name] = {
            "invoices": int(len(r_inv)),
            "days": pts, "predicted": [float(pred[d]) for d in pts if d <= days],
            "kaplan_meier": [float(km[d]) for d in pts if d <= days],
            "max_abs_gap": float(np.abs(pred - km).max()),
        }
    return out


def _mean_predicted_survival(rows: np.ndarray, d_over: np.ndarray, h: np.ndarray,
                             days: int) -> np.ndarray:
    """Average over invoices of prod_{d' < d}(1 - h) with the risk-set weighting of KM:
    the hazard of day d averaged over the invoices still at risk at d, chained."""
    s = np.ones(days + 1)
    for d in range(days):
        at = d_over == d
        s[d + 1] = s[d] * (1.0 - (h[at].mean() if at.any() else 0.0))
    return s


@dataclass
class TrainResult:
    out_dir: Path
    hash: str
    card: dict[str, Any]


def train_artifact(tables: Mapping[str, pd.DataFrame] | PreparedTables, out_dir: str | Path,
                   as_of: object | None = None, cfg: TrainConfig | None = None,
                   progress: Progress | None = None) -> TrainResult:
    """Evaluate on a time split, refit on all history known at ``as_of``, save everything.

    ``as_of`` defaults to the day after the latest date in the data.
    """
    cfg = cfg or TrainConfig()
    p = tables if isinstance(tables, PreparedTables) else prepare_tables(tables)
    as_day = p.last_day + 1 if as_of is None else to_day(as_of)
    if as_day <= int(p.invoice_day.min()):
        raise DunningError(f"as-of date {from_day(as_day)} is before any data (the first "
                           f"invoice is dated {from_day(int(p.invoice_day.min()))})")
    say = progress or (lambda _msg: None)
    say("evaluating on a time-ordered split")
    evaluation = evaluate_payment(p, as_day, cfg, progress)
    say("training the payment model on all history")
    full = build_training_frame(p, from_day(as_day), cfg.very_late_days)
    features = select_features(full.X.columns, cfg.include_fields, cfg.exclude_fields)
    model = PaymentModel(cfg.very_late_days, features=features, random_state=cfg.seed,
                         **cfg.payment_params)
    model.fit(full.X, full.days_late, full.ref_day)
    period = {"first_invoice": str(from_day(int(p.invoice_day.min()))),
              "as_of": str(from_day(as_day)), "training_rows": int(len(full.X)),
              "training_invoices": int(len(np.unique(full.invoice_pos)))}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payment_hash = model.save(out, extra={"data_period": period,
                                          "metrics": evaluation["models"]["lightgbm"]})
    card: dict[str, Any] = {
        "model": "payment_model", "payment_hash": payment_hash,
        "classes": model.classes_.tolist(), "very_late_days": cfg.very_late_days,
        "features": model.features_, "excluded_fields": list(cfg.exclude_fields),
        "included_fields": list(cfg.include_fields), "data_period": period,
        "calibration_params": {"temperature": model.temperature_,
                               "bias": model.bias_.tolist()},
        "evaluation": evaluation,
    }
    if cfg.hazard:
        say("training the daily hazard model")
        split = time_split_day(p, as_day, cfg.very_late_days, cfg.test_fraction)
        card["hazard_evaluation"] = evaluate_hazard(p, as_day, cfg, split)
        hazard = HazardModel(random_state=cfg.seed, **cfg.hazard_params).fit_tables(
            p, from_day(as_day))
        card["hazard_hash"] = hazard.save(out)
        card["hazard"] = {"static_features": hazard.static_features_,
                          "dynamic_features": hazard.dynamic_features_,
                          "rows": hazard.n_rows_, "payments": hazard.n_events_}
    return write_artifact_files(out, card, payment_hash)


def write_artifact_files(out: Path, card: dict[str, Any], payment_hash: str) -> TrainResult:
    """Seal an artifact directory whose models are saved: the artifact hash (payment hash
    + hazard hash, so either model changing changes it) into ``card``, then
    ``model_card.json``, ``model_card.md`` and ``artifact.json``, each written atomically.
    The one writer for local and distributed (``engine.scale.train``) training."""
    h = hashlib.sha256(payment_hash.encode())
    h.update(str(card.get("hazard_hash", "")).encode())
    card["hash"] = h.hexdigest()[:16]
    _atomic_write(out / "model_card.json", json.dumps(card, indent=2, default=str))
    _atomic_write(out / "model_card.md", render_card(card))
    _atomic_write(out / "artifact.json", json.dumps(
        {"hash": card["hash"], "payment_hash": payment_hash,
         "hazard_hash": card.get("hazard_hash")}, indent=2))
    return TrainResult(out_dir=out, hash=card["hash"], card=card)


def render_card(card: Mapping[str, Any]) -> str:
    """The model card as Markdown (the JSON twin is the machine-readable source)."""
    ev = card["evaluation"]
    lines = [
        f"# Payment model card `{card['hash']}`", "",
        f"- classes: {', '.join(card['classes'])} (very late = more than "
        f"{card['very_late_days']} days after due)",
        f"- data: invoices from {card['data_period']['first_invoice']} known at "
        f"{card['data_period']['as_of']}; {card['data_period']['training_invoices']:,} "
        f"invoices, {card['data_period']['training_rows']:,} snapshot rows",
        f"- evaluation: trained on outcomes known before {ev['split_date']}, tested on "
        f"{ev['test_invoices']:,} invoices issued from {ev['split_date']} "
        f"(predicted at their invoice date)",
        f"- features ({len(card['features'])}): {', '.join(card['features'])}",
        "", "## Held-out future period (at invoice date)", "",
        "| model | log loss | accuracy | macro F1 | Brier | ECE | " +
        " | ".join(f"AUC {c}" for c in card["classes"]) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(card["classes"]),
    ]
    for name, m in ev["models"].items():
        r = m["at_invoice_date"]
        aucs = " | ".join("-" if r["auc"][c] is None else f"{r['auc'][c]:.3f}"
                          for c in card["classes"])
        lines.append(f"| {name} | {r['log_loss']:.4f} | {r['accuracy']:.3f} | "
                     f"{r['macro_f1']:.3f} | {r['brier']:.4f} | {r['ece']:.4f} | {aucs} |")
    verdict = "beats" if ev["lightgbm_beats_baselines_on_log_loss"] else "does NOT beat"
    lines += ["", f"LightGBM {verdict} both baselines on log loss.", "",
              "## Feature importance (share of gain, top 15)", ""]
    lines += [f"- {f['feature']}: {f['gain_share']:.3f}" for f in ev["feature_importance"][:15]]
    if "hazard_evaluation" in card and "survival" in card["hazard_evaluation"]:
        he = card["hazard_evaluation"]
        lines += ["", "## Daily hazard model", "",
                  f"Log loss on later invoice-days {he['log_loss']:.4f} (constant rate "
                  f"{he['log_loss_constant_rate']:.4f}). Mean predicted vs Kaplan-Meier "
                  "survival (P unpaid d days after due):", "",
                  "| segment | invoices | " + " | ".join(
                      f"d{d}" for d in he["survival"]["all"]["days"]) + " |",
                  "|---|---|" + "---|" * len(he["survival"]["all"]["days"])]
        for seg, s in he["survival"].items():
            cells = " | ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(s["predicted"],
                                                                  s["kaplan_meier"], strict=True))
            lines.append(f"| {seg} | {s['invoices']} | {cells} |")
    lines += ["", "Calibration curve data: `model_card.json` -> evaluation.calibration.", ""]
    return "\n".join(lines)
