"""Plausibility checks on recommendations, before anything is sent.

The recommendation step calls :func:`check_recommendations` on its output and routes every
row with ``flagged == True`` to the human review queue, with ``reasons`` as the note::

    from dunning.business.plausibility import check_recommendations

    checked = check_recommendations(recs, history=store.table("invoices", as_of=as_of))
    to_review = recs[checked["flagged"]]          # reasons: checked.loc[..., "reasons"]

A check never drops or changes a row; it only explains why a person should look at it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.contract import Action
from engine.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

REQUIRED_COLUMNS: tuple[str, ...] = ("invoice_id", "amount", "due_date", "as_of", "p_on_time",
                                     "action")
# Flag code -> what it means (the text shown in the review queue starts with the code).
FLAGS: dict[str, str] = {
    "bad_amount": "amount missing or not > 0",
    "unusual_amount": "amount outside the customer's usual range",
    "due_before_invoice": "due date before invoice date",
    "as_of_before_invoice": "decision date before invoice date",
    "reminder_before_due": "a reminder is recommended before the due date",
    "bad_probability": "p_on_time missing or outside [0, 1]",
    "risk_jump": "P(on time) changed sharply since the previous day",
    "agency_small_amount": "agency handover for a small amount",
    "escalation_likely_payer": "final notice or agency for a customer likely to pay on time",
}


@dataclass(frozen=True)
class PlausibilityConfig:
    """Thresholds of the checks (amounts in the invoice currency).

    Attributes:
        amount_factor: flag an amount above ``factor * median`` or below ``median / factor``
            of the customer's past invoices.
        min_history: past invoices a customer needs before its usual range is judged.
        max_risk_jump: largest plausible day-over-day change of P(on time).
        min_agency_amount: smallest amount worth an agency handover.
        likely_payer: P(on time) above which a final notice or agency handover is odd.
    """

    amount_factor: float = 10.0
    min_history: int = 3
    max_risk_jump: float = 0.4
    min_agency_amount: float = 100.0
    likely_payer: float = 0.8


def _action_codes(actions: pd.Series) -> pd.Series:
    """Actions as :class:`Action` integers; accepts integers or channel names (``"wait"``)."""
    import pandas as pd

    by_name = {a.channel: int(a) for a in Action} | {str(int(a)): int(a) for a in Action}
    mapped = actions.astype(str).str.strip().str.lower().map(by_name)
    if mapped.notna().all():
        return mapped.astype("int64")

    def one(value: object) -> int:
        if isinstance(value, str):
            try:
                return int(Action.from_channel(value))
            except KeyError:
                pass
        else:
            try:
                return int(Action(int(value)))  # type: ignore[call-overload]
            except (TypeError, ValueError):
                pass
        raise InputError(
            f"recommendations: field action is {value!r}, expected one of "
            f"{', '.join(a.channel for a in Action)} or 0..{len(Action) - 1}"
        )

    return pd.Series([one(v) for v in actions], index=actions.index, dtype="int64")


def check_recommendations(
    recs: pd.DataFrame,
    history: pd.DataFrame | None = None,
    config: PlausibilityConfig | None = None,
) -> pd.DataFrame:
    """Flag implausible recommendations.

    Args:
        recs: one row per recommendation with :data:`REQUIRED_COLUMNS` (dates as anything
            ``pd.to_datetime`` reads; ``action`` an :class:`Action` int or channel name) and
            optionally ``customer_id``, ``invoice_date``, ``p_on_time_prev`` (the previous
            day's P(on time), missing when none).
        history: past invoices (``customer_id``, ``amount``) giving each customer's usual
            amount; without it the amount range check is skipped.
        config: thresholds.

    Returns:
        DataFrame with ``recs``' index: ``invoice_id``, ``flagged`` (bool), ``reasons``
        (``"; "``-joined ``code: detail`` texts, ``""`` when not flagged) and one bool
        column per code in :data:`FLAGS`.
    """
    import numpy as np
    import pandas as pd

    config = config or PlausibilityConfig()
    missing = [c for c in REQUIRED_COLUMNS if c not in recs.columns]
    if missing:
        raise InputError(f"recommendations: column(s) {', '.join(missing)} missing, expected "
                         f"{', '.join(REQUIRED_COLUMNS)}")
    amount = pd.to_numeric(recs["amount"], errors="coerce")
    due = pd.to_datetime(recs["due_date"])
    as_of = pd.to_datetime(recs["as_of"])
    invoice_date = (pd.to_datetime(recs["invoice_date"]) if "invoice_date" in recs
                    else pd.Series(pd.NaT, index=recs.index))
    p = pd.to_numeric(recs["p_on_time"], errors="coerce")
    p_prev = (pd.to_numeric(recs["p_on_time_prev"], errors="coerce") if "p_on_time_prev" in recs
              else pd.Series(np.nan, index=recs.index))
    action = _action_codes(recs["action"])

    # Flags for every row; the detail texts (slow string work) only for flagged rows.
    flags: dict[str, pd.Series] = {}
    details: dict[str, Callable[[pd.Series], pd.Series]] = {}

    def day(d: pd.Series) -> pd.Series:
        return d.dt.strftime("%Y-%m-%d")

    def num(x: pd.Series) -> pd.Series:
        return x.round(2).astype(str)

    flags["bad_amount"] = amount.isna() | (amount <= 0)
    details["bad_amount"] = lambda m: "amount " + recs["amount"][m].astype(str)

    usual = _usual_amounts(history, config) if history is not None and "customer_id" in recs \
        else None
    median = recs["customer_id"].map(usual) if usual is not None \
        else pd.Series(np.nan, index=recs.index)
    high = amount > config.amount_factor * median
    low = amount < median / config.amount_factor
    flags["unusual_amount"] = (high | low).fillna(False).astype(bool)
    details["unusual_amount"] = lambda m: "amount " + num(amount[m]) + " vs usual " + num(
        median[m])
    flags["due_before_invoice"] = (due < invoice_date).fillna(False)
    details["due_before_invoice"] = lambda m: ("due " + day(due[m]) + " < invoice "
                                               + day(invoice_date[m]))
    flags["as_of_before_invoice"] = (as_of < invoice_date).fillna(False)
    details["as_of_before_invoice"] = lambda m: ("as of " + day(as_of[m]) + " < invoice "
                                                 + day(invoice_date[m]))
    flags["reminder_before_due"] = (action != int(Action.WAIT)) & (as_of < due)
    details["reminder_before_due"] = lambda m: (_channel_names(action[m]) + " on "
                                                + day(as_of[m]) + ", due " + day(due[m]))
    flags["bad_probability"] = p.isna() | (p < 0) | (p > 1)
    details["bad_probability"] = lambda m: "p_on_time " + recs["p_on_time"][m].astype(str)
    flags["risk_jump"] = ((p - p_prev).abs() > config.max_risk_jump).fillna(False)
    details["risk_jump"] = lambda m: "p_on_time " + num(p_prev[m]) + " -> " + num(p[m])
    flags["agency_small_amount"] = (action == int(Action.AGENCY)) & (
        amount < config.min_agency_amount)
    details["agency_small_amount"] = lambda m: ("amount " + num(amount[m]) + " < "
                                                + f"{config.min_agency_amount:g}")
    strong = action.isin([int(Action.FINAL_NOTICE), int(Action.AGENCY)])
    flags["escalation_likely_payer"] = strong & (p >= config.likely_payer)
    details["escalation_likely_payer"] = lambda m: (_channel_names(action[m]) + " at p_on_time "
                                                    + num(p[m]))

    out = pd.DataFrame({"invoice_id": recs["invoice_id"]}, index=recs.index)
    reasons = np.full(len(recs), "", dtype=object)
    for code in FLAGS:
        flag = flags[code].astype(bool)
        out[code] = flag
        rows = np.flatnonzero(flag.to_numpy())
        if len(rows):
            # pandas 3: astype(str) keeps missing values missing; name them instead.
            detail = details[code](flag).astype(str).fillna("missing")
            text = (code + ": " + detail).to_numpy(dtype=object)
            sep = np.where(reasons[rows] == "", "", "; ").astype(object)
            reasons[rows] = reasons[rows] + sep + text
    out.insert(1, "flagged", out[list(FLAGS)].any(axis=1))
    out.insert(2, "reasons", pd.Series(reasons, index=recs.index, dtype=str))
    return out


def _channel_names(codes: pd.Series) -> pd.Series:
    """Channel names of action codes."""
    names = {int(a): a.channel for a in Action}
    return codes.map(names)


def _usual_amounts(history: pd.DataFrame, config: PlausibilityConfig) -> pd.Series:
    """Median past amount per customer with at least ``min_history`` invoices."""
    for col in ("customer_id", "amount"):
        if col not in history.columns:
            raise InputError(f"history: column {col!r} missing, expected customer_id, amount")
    grouped = history.groupby("customer_id")["amount"]
    counts = grouped.size()
    return grouped.median()[counts >= config.min_history]
