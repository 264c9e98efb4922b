"""The business area's bridge to the store and the payment model (``engine.models``).

Two jobs need a saved model and the store:

- :func:`drift_inputs`: features at invoice date of the model's training period and of a
  recent window, and P(on time) against what happened per month -> a ``DriftReport``;
- :func:`retrain`: train a candidate on data up to now, compare it with the current model
  on a time-ordered holdout (log loss), promote only if at least as good, and log the
  decision (``retrain``'s docstring has the details).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dunning.business.drift import DriftReport, thresholds
from dunning.business.outcomes import load_tables
from engine.errors import DunningError, InputError
from engine.files import atomic_write_json

if TYPE_CHECKING:
    from engine.models.training import TrainConfig

MIN_HOLDOUT_INVOICES = 50


def _load_model(model_dir: Path) -> Any:
    from engine.models import PaymentModel

    if not model_dir.is_dir():
        raise InputError(f"{model_dir}: model directory not found, expected the output of "
                         "`dunning train-model --out DIR`")
    return PaymentModel.load(model_dir)


def _trained_until(model: Any, model_dir: Path) -> dt.date:
    period = getattr(model, "meta_", {}).get("data_period") or {}
    if "as_of" not in period:
        raise InputError(f"{model_dir}: payment_model.json has no data_period.as_of, expected "
                         "a model saved by `dunning train-model`")
    return dt.date.fromisoformat(str(period["as_of"]))


def _p_on_time(model: Any, X: Any) -> Any:
    classes = list(model.classes_)
    return model.predict_proba(X)[:, classes.index("on_time")]


# --------------------------------------------------------------------------------- drift
def drift_inputs(
    db: Path, model_dir: Path, recent_days: int = 90, as_of: dt.date | None = None,
    freq: str = "MS", recent_from: dt.date | None = None, reference_days: int | None = None,
) -> DriftReport:
    """A :class:`DriftReport` of the saved model at ``model_dir`` against the store ``db``.

    Reference: invoices issued in the model's training period (``data_period``; only its
    last ``reference_days`` when given), recent: invoices issued in the ``recent_days`` up
    to ``as_of`` (default the store's latest date), or from ``recent_from`` when given; both
    with their features at the invoice date (what the model saw when it scored them).
    Calibration: P(on time) at invoice date vs paid by the due date, per month, over
    invoices whose due date has passed by ``as_of``; months of the training period are
    shown but not judged (in-sample).
    """
    import numpy as np

    from dunning.business.drift import drift_between
    from engine.calendar import from_day, to_day
    from engine.features import features_at, prepare_tables

    for name, days in (("recent_days", recent_days), ("reference_days", reference_days)):
        if days is not None and days <= 0:
            raise InputError(f"drift: {name} is {days}, expected a number of days > 0")
    model = _load_model(Path(model_dir))
    trained_until = _trained_until(model, Path(model_dir))
    p = prepare_tables(load_tables(db, as_of))
    end = p.last_day + 1 if as_of is None else to_day(as_of) + 1  # exclusive
    start_recent = end - recent_days if recent_from is None else to_day(recent_from)
    ref_start = (to_day(trained_until) - reference_days if reference_days is not None
                 else np.iinfo(np.int64).min)
    ref_rows = np.flatnonzero((p.invoice_day < to_day(trained_until))
                              & (p.invoice_day >= ref_start))
    new_rows = np.flatnonzero((p.invoice_day >= start_recent) & (p.invoice_day < end))
    if len(ref_rows) == 0:
        raise InputError(f"{db}: no invoices before {trained_until} (the model's training "
                         "period) - is this the store the model was trained on?")
    if len(new_rows) == 0:
        raise InputError(f"{db}: no invoices in the {end - start_recent} days before "
                         f"{from_day(end - 1)}; choose a larger --recent-days")
    ref = features_at(p, ref_rows, p.invoice_day[ref_rows])
    new = features_at(p, new_rows, p.invoice_day[new_rows])
    known = np.flatnonzero((p.due_day < end) & (p.invoice_day < end))
    X = features_at(p, known, p.invoice_day[known])
    on_time = (p.settle_day[known] <= p.due_day[known]) & (p.settle_day[known] < end)
    dates = np.array([from_day(int(d)) for d in p.invoice_day[known]], dtype="datetime64[D]")
    return drift_between(
        ref[model.features_], new[model.features_], list(model.features_),
        p_on_time=_p_on_time(model, X), on_time=on_time.astype(float), dates=dates, freq=freq,
        model=f"{model_dir} ({getattr(model, 'hash_', '')})",
        reference_period=(str(from_day(int(p.invoice_day[ref_rows].min()))),
                          str(trained_until)),
        recent_period=(str(from_day(start_recent)), str(from_day(end - 1))),
        judged_from=trained_until,
    )


# ------------------------------------------------------------------------------- retrain
@dataclass
class RetrainDecision:
    """One retraining run: what was compared on which holdout, and what was decided."""

    date: str
    as_of: str
    model_dir: str
    holdout_start: str
    holdout_invoices: int
    current_log_loss: float | None
    candidate_log_loss: float
    promoted: bool
    reason: str
    current_hash: str | None = None
    new_hash: str | None = None
    previous_dir: str | None = None
    policy: str | None = None
    notes: list[str] = field(default_factory=list)


def retrain_log_path(model_dir: Path) -> Path:
    """``<parent>/<model dir name>.retrain-log.json``: a JSON list, one entry per run."""
    model_dir = Path(model_dir)
    return model_dir.parent / f"{model_dir.name}.retrain-log.json"


def _append_log(path: Path, entry: dict[str, Any]) -> None:
    entries = []
    if path.exists():
        try:
            entries = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg}); move it "
                             "away to start a new log") from None
    entries.append(entry)
    atomic_write_json(path, entries)


def retrain(
    db: Path, model_dir: Path, as_of: dt.date | None = None, cfg: TrainConfig | None = None,
    holdout_fraction: float = 0.2, policy_dir: Path | None = None,
    today: dt.date | None = None, tolerance: float = 1e-9,
) -> RetrainDecision:
    """Train a candidate payment model and promote it only if it is at least as good.

    Holdout: invoices issued after the current model's training period (data it never saw)
    when at least 50 of them have a known class; otherwise the latest ``holdout_fraction``
    of invoice dates (then the current model may have seen part of it, which favours it;
    the log says so). The candidate is fitted on what was known at the holdout start, both
    are scored by multi-class log loss at the invoice date of the holdout invoices. If the
    candidate's log loss is <= the current one's (+ ``tolerance`` for float noise), a model
    refitted on all data up to ``as_of`` (``engine.models.training.train_artifact``, with
    the hazard model unless ``cfg`` says otherwise) replaces ``model_dir``; the old one is
    kept as ``<model_dir>.previous``. Every run appends to :func:`retrain_log_path`. A
    policy trained on the old model is marked stale.
    """
    from sklearn.metrics import log_loss

    from engine.calendar import from_day, to_day
    from engine.features import build_training_frame, label_classes, prepare_tables
    from engine.models import PaymentModel
    from engine.models.training import TrainConfig, time_split_day

    model_dir = Path(model_dir)
    current = _load_model(model_dir) if (model_dir / "payment_model.json").exists() else None
    if current is None and model_dir.exists() and any(model_dir.iterdir()):
        raise InputError(f"{model_dir}: exists but holds no payment_model.json; expected a "
                         "model directory or a new path")
    base = cfg or TrainConfig()  # with the hazard model: `train-policy` needs it
    if current is not None:
        base = TrainConfig(**{**asdict(base), "very_late_days": current.very_late_days})
    tables = load_tables(db, as_of)
    p = prepare_tables(tables)
    as_day = p.last_day + 1 if as_of is None else to_day(as_of) + 1
    notes: list[str] = []
    full = build_training_frame(p, from_day(as_day), base.very_late_days)
    at_issue = full.snapshot == -1
    split = None
    if current is not None:
        trained_until = to_day(_trained_until(current, model_dir))
        unseen = at_issue & (full.invoice_day >= trained_until)
        if unseen.sum() >= MIN_HOLDOUT_INVOICES:
            split = trained_until
        else:
            notes.append(f"only {int(unseen.sum())} invoices after the current model's "
                         "training period have a known class; the holdout is the latest "
                         f"{holdout_fraction:.0%} of invoice dates, part of which the current "
                         "model saw (this favours it)")
    if split is None:
        split = time_split_day(p, as_day, base.very_late_days, holdout_fraction)
    hold = at_issue & (full.invoice_day >= split)
    if hold.sum() < 10:
        raise InputError(f"{db}: only {int(hold.sum())} holdout invoices with a known class "
                         f"after {from_day(split)}; need more history to compare models")
    X_hold, y_hold = full.X[hold], label_classes(full.days_late[hold], base.very_late_days)
    train = build_training_frame(p, from_day(split), base.very_late_days)
    candidate = PaymentModel(base.very_late_days, random_state=base.seed, fit_days_late=False,
                             **base.payment_params)
    candidate.fit(train.X, train.days_late, train.ref_day)
    labels = list(range(len(candidate.classes_)))
    cand_ll = float(log_loss(y_hold, candidate.predict_proba(X_hold), labels=labels))
    cur_ll = (float(log_loss(y_hold, current.predict_proba(X_hold), labels=labels))
              if current is not None else None)

    if current is None:
        promote, reason = True, "no current model"
    elif cand_ll <= cur_ll + tolerance:
        promote, reason = True, (f"candidate log loss {cand_ll:.4f} <= current {cur_ll:.4f}")
    else:
        promote, reason = False, (f"candidate log loss {cand_ll:.4f} > current {cur_ll:.4f}; "
                                  "the current model stays")
    decision = RetrainDecision(
        date=str(today or dt.date.today()), as_of=str(from_day(as_day - 1)),
        model_dir=str(model_dir), holdout_start=str(from_day(split)),
        holdout_invoices=int(hold.sum()), current_log_loss=cur_ll,
        candidate_log_loss=cand_ll, promoted=promote, reason=reason,
        current_hash=getattr(current, "hash_", None), notes=notes,
    )
    if promote:
        decision.new_hash, decision.previous_dir = _promote(
            tables, model_dir, from_day(as_day), base, current is not None)
        if policy_dir is not None:
            decision.policy = (f"{policy_dir} was trained on the previous model and is stale: "
                               f"retrain it with `dunning train-policy --db {db} --model "
                               f"{model_dir} --out {policy_dir}`")
    _append_log(retrain_log_path(model_dir), asdict(decision))
    return decision


def _promote(tables: Any, model_dir: Path, as_of: dt.date, cfg: TrainConfig,
             keep_previous: bool) -> tuple[str, str | None]:
    """Train the full artifact beside ``model_dir`` and swap it in (old -> .previous)."""
    from engine.models.training import train_artifact

    staging = model_dir.with_name(f".{model_dir.name}.candidate")
    if staging.exists():
        shutil.rmtree(staging)
    result = train_artifact(tables, staging, as_of=as_of, cfg=cfg)
    previous = model_dir.with_name(f"{model_dir.name}.previous")
    if keep_previous:
        if previous.exists():
            shutil.rmtree(previous)
        model_dir.rename(previous)
    elif model_dir.exists():
        model_dir.rmdir()  # empty (checked by the caller)
    staging.rename(model_dir)
    return result.hash, str(previous) if keep_previous else None


def drift_report(
    db: Path | str, model_dir: Path | str, recent_days: int = 90, as_of: dt.date | None = None,
    freq: str = "MS", warn: bool = True, recent_from: dt.date | None = None,
    reference_days: int | None = None,
) -> DriftReport:
    """Drift of a saved payment model against the store (see ``dunning drift``).

    The recent window is the ``recent_days`` up to ``as_of``, or from ``recent_from`` when
    given; the reference is the model's whole training period, or its last
    ``reference_days``. With ``warn`` every message is also issued as a :class:`DriftWarning`.
    """
    report = drift_inputs(Path(db), Path(model_dir), recent_days, as_of, freq,
                          recent_from=recent_from, reference_days=reference_days)
    if warn:
        report.warn()
    return report


def drift_section(
    db: Path | str | None, model_dir: Path | str | None, recent_from: dt.date | None = None,
    reference_days: int | None = None,
) -> dict[str, Any]:
    """The report's drift block (``results.json["drift"]``): :meth:`DriftReport.to_dict`
    plus ``available: True`` and the thresholds, or ``{"available": False, "reason": str}``
    when the store or the model is missing or unusable (the report says why)."""
    if db is None or not Path(db).exists():
        return {"available": False, "reason": f"no store at {db}"}
    if model_dir is None or not (Path(model_dir) / "payment_model.json").exists():
        return {"available": False, "reason": f"no payment model at {model_dir}"}
    try:
        report = drift_report(db, model_dir, recent_from=recent_from,
                              reference_days=reference_days, warn=False)
    except DunningError as exc:  # InputError included: say why instead of failing the report
        return {"available": False, "reason": str(exc)}
    return {"available": True, **report.to_dict(), **thresholds()}
