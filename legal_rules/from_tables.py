"""Build the legal facts of invoices from the four contract tables (as known on a date).

``facts_for_invoices(Store(path).tables(as_of), as_of)`` gives, per invoice known on
``as_of``, every fact of :data:`legal_rules.facts.FACTS` as a column array (plus
``invoice_id``), ready for :class:`legal_rules.vector.VectorEvaluator` or, row by row, for
:class:`legal_rules.durable_eval.DurableEvaluator`. Only rows dated on or before ``as_of``
are used (no leakage). Customer data that is missing stays missing (``None``), so a rule
that needs it fails closed.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from legal_rules.facts import NEVER_DAYS

REMINDER_CHANNELS = ("email", "letter", "phone", "final_notice")
CONTACT_WINDOW_DAYS = 7  # "last 7 days" = the decision day and the 6 days before it

# Limitation periods in years (legal-reference.md). ``end_of_year``: the period starts at the
# end of the year the claim arose (DE). Consumer periods where they differ. US: varies by
# state; 3 years is the shortest common period, i.e. the conservative choice for the debtor.
LIMITATION_YEARS: dict[str, dict[str, Any]] = {
    "DE": {"b2b": 3, "b2c": 3, "end_of_year": True},   # BGB §§ 195, 199
    "AT": {"b2b": 3, "b2c": 3},                         # ABGB § 1486
    "SE": {"b2b": 10, "b2c": 3},                        # Preskriptionslag § 2
    "FR": {"b2b": 5, "b2c": 2},                         # C. civ. 2224; C. consom. L218-2
    "GB": {"b2b": 6, "b2c": 6},                         # Limitation Act 1980 s. 5
    "NL": {"b2b": 5, "b2c": 2},                         # BW 3:307, 7:28
    "IT": {"b2b": 10, "b2c": 10},                       # Codice civile 2946
    "ES": {"b2b": 5, "b2c": 5},                         # Código civil 1964
    "US": {"b2b": 3, "b2c": 3},
}


def _dates(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, errors="coerce").dt.normalize()


def _text(s: pd.Series, case: str | None = None, empty: str | None = None) -> np.ndarray:
    """Object array of str; missing -> ``empty`` (``None`` keeps it missing)."""
    obj = s.astype(object)
    out = np.array(obj.where(obj.notna(), None).to_numpy(dtype=object), dtype=object)
    for i, v in enumerate(out):
        if v is None or (isinstance(v, str) and not v.strip()):
            out[i] = empty
        else:
            v = str(v).strip()
            out[i] = v.upper() if case == "upper" else v.lower() if case == "lower" else v
    return out


def _flag(s: pd.Series) -> np.ndarray:
    """Object array of bool; missing -> None."""
    obj = s.astype(object)
    return np.array([None if (v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA)
                     else bool(v) for v in obj], dtype=object)


def bank_holiday_flags(jurisdictions: np.ndarray, regions: np.ndarray,
                       as_of: date) -> np.ndarray:
    """``is_bank_holiday`` per row (``holidays`` package); None for an unknown country."""
    import holidays

    cache: dict[tuple[Any, Any], bool | None] = {}
    out = np.empty(len(jurisdictions), dtype=object)
    for i, (jur, reg) in enumerate(zip(jurisdictions, regions, strict=True)):
        key = (jur, reg or None)
        if key not in cache:
            try:
                cal = holidays.country_holidays(jur, subdiv=reg or None, years=as_of.year)
            except (NotImplementedError, KeyError, TypeError, AttributeError):
                try:  # unknown region: the national calendar
                    cal = holidays.country_holidays(jur, years=as_of.year)
                except (NotImplementedError, KeyError, TypeError, AttributeError):
                    cal = None
            cache[key] = None if cal is None else as_of in cal
        out[i] = cache[key]
    return out


def limitation_flags(due: pd.Series, jurisdictions: np.ndarray, customer_types: np.ndarray,
                     as_of: date) -> np.ndarray:
    """``limitation_passed`` per row; None where the period is not known (fail closed)."""
    out = np.empty(len(due), dtype=object)
    for i, (d, jur, ctype) in enumerate(zip(due, jurisdictions, customer_types, strict=True)):
        spec = LIMITATION_YEARS.get(jur)
        if spec is None or pd.isna(d) or ctype not in ("b2b", "b2c"):
            out[i] = None
            continue
        years = spec[ctype]
        start = d.date()
        if spec.get("end_of_year"):
            expires = date(start.year + years, 12, 31)
        else:
            expires = start.replace(year=start.year + years, day=min(start.day, 28))
        out[i] = as_of > expires
    return out


def facts_for_invoices(tables: dict[str, pd.DataFrame], as_of: date) -> dict[str, np.ndarray]:
    """Every fact of every invoice dated on or before ``as_of`` (one array entry per invoice).

    Parameters
    ----------
    tables : the contract tables (``customers``, ``invoices``, ``payments``, ``actions``),
        e.g. ``engine.store.Store(path).tables(as_of)``.
    as_of : decision date.

    Returns
    -------
    dict fact name -> (n,) array, plus ``invoice_id`` (n,) object. ``amount`` is the open
    amount (invoice amount minus payments up to ``as_of``).
    """
    day = pd.Timestamp(as_of)
    inv = tables["invoices"].copy()
    inv["invoice_date"] = _dates(inv["invoice_date"])
    inv["due_date"] = _dates(inv["due_date"])
    inv = inv[inv["invoice_date"] <= day].reset_index(drop=True)
    ids = inv["invoice_id"].astype(str)

    pay = tables["payments"]
    pay = pay[_dates(pay["payment_date"]) <= day]
    paid = pay.groupby(pay["invoice_id"].astype(str))["amount"].sum()
    open_amount = (inv["amount"].astype(float) - ids.map(paid).fillna(0.0).astype(float)).clip(
        lower=0.0)

    act = tables["actions"].copy()
    act["action_date"] = _dates(act["action_date"])
    act = act[act["action_date"] <= day]
    act["invoice_id"] = act["invoice_id"].astype(str)
    act["days_ago"] = (day - act["action_date"]).dt.days
    reminders = act[act["channel"].astype(str).isin(REMINDER_CHANNELS)]
    recent = reminders[reminders["days_ago"] < CONTACT_WINDOW_DAYS]
    finals = act[act["channel"].astype(str) == "final_notice"]

    def per_invoice(series: pd.Series, default: float) -> np.ndarray:
        return ids.map(series).fillna(default).to_numpy(dtype=np.int64)

    by = reminders.groupby("invoice_id")
    last_contact = per_invoice(by["days_ago"].min(), NEVER_DAYS)
    since_final = per_invoice(finals.groupby("invoice_id")["days_ago"].min(), NEVER_DAYS)

    cust = tables["customers"].copy()
    cust["customer_id"] = cust["customer_id"].astype(str)
    c = inv[["customer_id"]].astype(str).merge(cust, on="customer_id", how="left")
    jurisdiction = _text(c["jurisdiction"], "upper")
    region = _text(c["region"], "upper", empty="") if "region" in c else np.full(len(c), "")
    customer_type = _text(c["customer_type"], "lower")
    opted = c["opted_out_channels"].astype(object).where(c["opted_out_channels"].notna(), "")
    opted_sets = [{x.strip().lower() for x in str(v).split(";") if x.strip()} for v in opted]

    disputed = _flag(inv["disputed"]) if "disputed" in inv else np.full(len(inv), False)
    resolved = _dates(inv["dispute_resolved"]) if "dispute_resolved" in inv else None
    opened = _dates(inv["dispute_opened"]) if "dispute_opened" in inv else None
    disputed_now = np.empty(len(inv), dtype=object)
    for i, flag in enumerate(disputed):
        if flag is None:  # no dispute information: not disputed (the column is optional)
            disputed_now[i] = False
            continue
        known = opened is None or pd.isna(opened.iloc[i]) or opened.iloc[i] <= day
        ended = resolved is not None and not pd.isna(resolved.iloc[i]) and resolved.iloc[i] <= day
        disputed_now[i] = bool(flag) and known and not ended

    milestone = _dates(inv["milestone_date"]) if "milestone_date" in inv else None
    milestone_reached = (np.ones(len(inv), dtype=bool) if milestone is None
                         else (milestone.isna() | (milestone <= day)).to_numpy(dtype=bool))
    weekend = as_of.weekday() >= 5

    return {
        "invoice_id": ids.to_numpy(dtype=object),
        "days_overdue": (day - inv["due_date"]).dt.days.to_numpy(dtype=np.int64),
        "days_since_last_contact": last_contact,
        "contacts_last_7_days": per_invoice(recent.groupby("invoice_id").size(), 0),
        "calls_last_7_days": per_invoice(
            recent[recent["channel"].astype(str) == "phone"].groupby("invoice_id").size(), 0),
        "reminders_sent": per_invoice(by.size(), 0),
        "final_notice_sent": since_final < NEVER_DAYS,
        "days_since_final_notice": since_final,
        "disputed": disputed_now,
        "amount": open_amount.to_numpy(dtype=np.float64),
        "currency": _text(inv["currency"], "upper"),
        "customer_type": customer_type,
        "jurisdiction": jurisdiction,
        "region": region,
        "industry": _text(c["industry"], "lower", empty="") if "industry" in c
        else np.full(len(c), "", dtype=object),
        "is_weekend": np.full(len(inv), weekend),
        "is_bank_holiday": bank_holiday_flags(jurisdiction, region, as_of),
        "limitation_passed": limitation_flags(inv["due_date"], jurisdiction, customer_type,
                                              as_of),
        "opted_out_email": np.array(["email" in s for s in opted_sets], dtype=bool),
        "opted_out_phone": np.array(["phone" in s for s in opted_sets], dtype=bool),
        "opted_out_letter": np.array(["letter" in s for s in opted_sets], dtype=bool),
        "agency_consent": _flag(c["agency_consent"]),
        "reminder_fee_agreed": _flag(c["reminder_fee_agreed"]),
        "milestone_reached": milestone_reached,
    }
