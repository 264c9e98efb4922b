"""The one builder of the legal facts of invoices from the four contract tables (as of a date).

``facts_for_invoices(Store(path).tables(as_of), as_of)`` gives, per invoice known on
``as_of``, every fact of :data:`legal_rules.facts.FACTS` as a column array (plus
``invoice_id``), ready for :class:`legal_rules.vector.VectorEvaluator` or, row by row, for
:class:`legal_rules.durable_eval.DurableEvaluator`. The daily recommendation
(``dunning.ops.recommend``) and ``dunning rules explain --invoice`` both use it, so an invoice has
the same facts in both. The two steps are public so a caller can keep the per-invoice frame:
``state = invoice_states(tables, as_of)`` then ``facts_from_state(state, as_of)``.

When is an event known? (the semantics of the decision date ``D``)
-------------------------------------------------------------------
Every row dated **on or before D** is used, the same cut as ``Store.tables(as_of=D)``;
rows dated after ``D`` are ignored (no leakage). Each choice is the one that cannot cause an
extra reminder:

- an action dated ``D`` counts: a reminder already sent today gives
  ``days_since_last_contact == 0`` and is in ``contacts_last_7_days``, so the min-gap and
  frequency rules veto a second one the same day (a re-run later on ``D`` is safe);
- a payment dated ``D`` reduces the open amount (``amount``): money received today is not
  dunned; an invoice paid in full on ``D`` is not open on ``D``;
- an invoice dated ``D`` is known (not yet due, so no rule allows dunning it);
- a dispute is open from its ``dispute_opened`` day **through** its ``dispute_resolved`` day
  inclusive: a dispute opened on ``D`` blocks on ``D``; one resolved on ``D`` still blocks on
  ``D`` and dunning may resume on ``D + 1`` (a restriction takes effect on its date, lifting
  it takes effect the day after);
- "last 7 days" is ``D`` and the 6 days before (``days_since_* < 7``);
- a project milestone dated ``D`` is reached on ``D`` (as in the simulation's facts);
- an invoice with an ``agency`` action on or before ``D`` is ``handed_to_agency`` (its facts
  are still given, e.g. for ``rules explain``; the daily run no longer recommends for it).

Customer data that is missing stays missing (``None``), so a rule that needs it fails
closed. Limitation periods are legal data: ``legal_rules/limitation.json`` (with citations),
loaded and validated by :func:`limitation_periods`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.calendar import day_number, holiday_days
from legal_rules.facts import NEVER_DAYS

REMINDER_CHANNELS = ("email", "letter", "phone", "final_notice")
CONTACT_WINDOW_DAYS = 7  # "last 7 days" = the decision day and the 6 days before it
OPEN_EPSILON = 0.005  # an open amount at or below this (half a cent) is settled
LIMITATION_FILE = "limitation.json"


# --------------------------------------------------------------------------- limitation data
@dataclass(frozen=True)
class LimitationPeriod:
    """The limitation period of one jurisdiction (whole years, from ``starts``)."""

    jurisdiction: str
    b2b_years: int
    b2c_years: int
    starts: str  # "due_date" | "end_of_year" (of the year the claim arose)
    citation: str

    def years(self, customer_type: str) -> int:
        return self.b2c_years if customer_type == "b2c" else self.b2b_years


def limitation_periods(path: str | Path | None = None) -> dict[str, LimitationPeriod]:
    """Limitation periods by jurisdiction, from ``path`` (default: the packaged file).

    Raises :class:`legal_rules.loader.RuleFileError` naming the entry and field of a bad value.
    """
    if path is None:
        return _packaged_periods()
    return _parse_periods(Path(path).read_text(encoding="utf-8"), str(path))


@lru_cache(maxsize=1)
def _packaged_periods() -> dict[str, LimitationPeriod]:
    text = (resources.files("legal_rules") / LIMITATION_FILE).read_text("utf-8")
    return _parse_periods(text, f"legal_rules/{LIMITATION_FILE}")


def _parse_periods(text: str, file: str) -> dict[str, LimitationPeriod]:
    from legal_rules.loader import Problem, RuleFileError

    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RuleFileError([Problem(file, exc.lineno, "", f"invalid JSON: {exc.msg}")]) from None
    entries = doc.get("periods") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise RuleFileError([Problem(file, 1, "periods", "expected a list of periods")])
    problems, out = [], {}
    for i, e in enumerate(entries):
        where = f"periods[{i}]"
        if not isinstance(e, dict):
            problems.append(Problem(file, 0, where, f"expected an object, found {e!r}"))
            continue
        jur = e.get("jurisdiction")
        checks = [
            ("jurisdiction", isinstance(jur, str) and len(jur) == 2 and jur.isupper(),
             "an ISO 3166-1 alpha-2 code in upper case"),
            ("b2b_years", _positive_int(e.get("b2b_years")), "a whole number of years >= 1"),
            ("b2c_years", _positive_int(e.get("b2c_years")), "a whole number of years >= 1"),
            ("starts", e.get("starts") in ("due_date", "end_of_year"),
             "due_date or end_of_year"),
            ("citation", isinstance(e.get("citation"), str) and e["citation"].strip() != "",
             "the statute, e.g. 'BGB §§ 195, 199'"),
        ]
        bad = [(f, exp) for f, ok, exp in checks if not ok]
        for f, exp in bad:
            problems.append(Problem(file, 0, f"{where}.{f}",
                                    f"found {e.get(f)!r}, expected {exp}"))
        if not bad and jur in out:
            problems.append(Problem(file, 0, f"{where}.jurisdiction", f"{jur} listed twice"))
        elif not bad:
            out[jur] = LimitationPeriod(jur, e["b2b_years"], e["b2c_years"], e["starts"],
                                        e["citation"])
    if problems:
        raise RuleFileError(problems)
    return out


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


# --------------------------------------------------------------------------- column helpers
def _dates(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, errors="coerce").dt.normalize()


def _text(s: pd.Series, case: str | None = None, empty: str | None = None) -> np.ndarray:
    """(n,) object array of str, stripped; missing or blank -> ``empty`` (``None``: missing)."""
    t = s.astype("string").str.strip()
    if case == "upper":
        t = t.str.upper()
    elif case == "lower":
        t = t.str.lower()
    missing = (t.isna() | t.eq("")).fillna(True).to_numpy(dtype=bool)
    out = t.astype(object).to_numpy(dtype=object, copy=True)
    out[missing] = empty
    return out


def _flag(s: pd.Series) -> np.ndarray:
    """(n,) object array of Python bool; missing -> ``None``."""
    b = s.astype("boolean")
    out = b.fillna(False).to_numpy(dtype=bool).astype(object)
    out[b.isna().to_numpy(dtype=bool)] = None
    return out


def _optional(frame: pd.DataFrame, col: str) -> pd.Series:
    return frame[col] if col in frame else pd.Series(None, index=frame.index, dtype=object)


# --------------------------------------------------------------------------- single facts
def bank_holiday_flags(jurisdictions: np.ndarray, regions: np.ndarray,
                       as_of: date) -> np.ndarray:
    """``is_bank_holiday`` per row (the engine's one holiday source,
    :func:`engine.calendar.holiday_days`); None for an unknown country, the national calendar
    for an unknown region.

    One calendar lookup per distinct (jurisdiction, region), not per row.
    """
    keys = pd.MultiIndex.from_arrays([pd.Series(jurisdictions, dtype=object).fillna(""),
                                      pd.Series(regions, dtype=object).fillna("")])
    codes, uniq = pd.factorize(keys)
    values = np.empty(len(uniq), dtype=object)
    day = day_number(as_of)
    for k, (jur, reg) in enumerate(uniq):
        days = holiday_days(jur, reg, as_of.year, as_of.year)
        values[k] = None if days is None else bool(np.isin(day, days))
    return values[codes] if len(codes) else np.empty(0, dtype=object)


def limitation_flags(due: pd.Series, jurisdictions: np.ndarray, customer_types: np.ndarray,
                     as_of: date,
                     periods: dict[str, LimitationPeriod] | None = None) -> np.ndarray:
    """``limitation_passed`` per row; None where the period is not known (fail closed).

    The claim arises on the due date; the period ends on the same calendar day ``years``
    later (29 Feb -> 28 Feb), or on 31 Dec of ``year + years`` for ``end_of_year`` (DE).
    Time-barred from the day after the end. Unknown jurisdiction, customer type or due date:
    None. Vectorised: one pass per (jurisdiction, customer type) present.
    """
    periods = limitation_periods() if periods is None else periods
    due = _dates(pd.Series(due)).reset_index(drop=True)
    jur = _text(pd.Series(jurisdictions, dtype=object), "upper")
    ctype = _text(pd.Series(customer_types, dtype=object), "lower")
    out = np.full(len(due), None, dtype=object)
    known_due = due.notna().to_numpy()
    where = np.flatnonzero(known_due)
    # one vectorised pass per (jurisdiction, customer type); missing keys are left out (None)
    groups = pd.Series(where).groupby([jur[where], ctype[where]]).indices if len(where) else {}
    for (code, kind), members in groups.items():
        p = periods.get(code)
        if p is None or kind not in ("b2b", "b2c"):
            continue
        rows = where[members]
        d = due.iloc[rows]
        year = d.dt.year + p.years(kind)
        if p.starts == "end_of_year":
            month, day = pd.Series(12, index=d.index), pd.Series(31, index=d.index)
        else:
            month = d.dt.month
            first = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": 1}))
            day = np.minimum(d.dt.day, first.dt.days_in_month)
        expires = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day}))
        out[rows] = (pd.Timestamp(as_of) > expires).to_numpy(dtype=bool).astype(object)
    return out


# --------------------------------------------------------------------------- state and facts
def invoice_states(tables: dict[str, pd.DataFrame], as_of: date) -> pd.DataFrame:
    """One row per invoice dated on or before ``as_of``, sorted by ``invoice_id``.

    Columns: the invoice's columns (dates normalised), its customer's columns (left join on
    ``customer_id``), and the legal state on ``as_of`` (module docstring for the cut):
    ``open_amount`` (float, invoice currency), ``days_overdue``, ``n_email``, ``n_letter``,
    ``n_phone``, ``n_final_notice`` (reminders per channel), ``reminders_sent`` (their sum),
    ``days_since_last_contact``, ``contacts_last_7_days``, ``calls_last_7_days``,
    ``final_notice_sent``, ``days_since_final_notice`` (int days; ``NEVER_DAYS`` if none),
    ``disputed_now``, ``handed_to_agency`` (bool) and ``is_open`` (open amount above half a
    cent and not handed to an agency).
    """
    day = pd.Timestamp(as_of)
    inv = tables["invoices"].copy()
    inv["invoice_id"] = inv["invoice_id"].astype(str)
    inv["customer_id"] = inv["customer_id"].astype(str)
    for col in ("invoice_date", "due_date", "dispute_opened", "dispute_resolved",
                "milestone_date"):
        if col in inv:
            inv[col] = _dates(inv[col])
    inv = inv[inv["invoice_date"] <= day].sort_values("invoice_id", kind="stable")
    inv = inv.reset_index(drop=True)
    ids = inv["invoice_id"].to_numpy()
    n = len(inv)
    index = pd.Index(ids)

    pay = tables["payments"]
    pay_pos = index.get_indexer(pay["invoice_id"].astype(str))
    known = (pay_pos >= 0) & (_dates(pay["payment_date"]) <= day).to_numpy(dtype=bool)
    paid = np.bincount(pay_pos[known], weights=pay["amount"].to_numpy(dtype=np.float64)[known],
                       minlength=n)
    inv["open_amount"] = (inv["amount"].to_numpy(dtype=np.float64) - paid).clip(min=0.0)

    # Actions as integer positions of their invoice: counts and minima are bincount /
    # minimum.at over those positions (no per-row Python, no string joins).
    act = tables["actions"]
    pos = index.get_indexer(act["invoice_id"].astype(str))
    days_ago = (day - _dates(act["action_date"])).dt.days.to_numpy(dtype=np.float64)
    channel = act["channel"].astype(str).str.strip().str.lower().to_numpy(dtype=object)
    keep = (pos >= 0) & (days_ago >= 0)  # NaN (no date) compares False: not known
    pos, days_ago, channel = pos[keep], days_ago[keep].astype(np.int64), channel[keep]

    def count(rows: np.ndarray) -> np.ndarray:
        return np.bincount(pos[rows], minlength=n).astype(np.int64)

    def days_since(rows: np.ndarray) -> np.ndarray:
        out = np.full(n, NEVER_DAYS, dtype=np.int64)
        np.minimum.at(out, pos[rows], days_ago[rows])
        return out

    reminder = np.isin(channel, REMINDER_CHANNELS)
    recent = reminder & (days_ago < CONTACT_WINDOW_DAYS)
    for ch in REMINDER_CHANNELS:  # per channel, for the policy's observations
        inv[f"n_{ch}"] = count(channel == ch)
    inv["days_overdue"] = (day - inv["due_date"]).dt.days.astype(np.int64)
    inv["reminders_sent"] = count(reminder)
    inv["days_since_last_contact"] = days_since(reminder)
    inv["contacts_last_7_days"] = count(recent)
    inv["calls_last_7_days"] = count(recent & (channel == "phone"))
    inv["days_since_final_notice"] = days_since(channel == "final_notice")
    inv["final_notice_sent"] = inv["days_since_final_notice"] < NEVER_DAYS
    inv["handed_to_agency"] = count(channel == "agency") > 0

    # Open from the opening day through the resolution day, both inclusive. No dispute
    # information (flag missing, or no column): not disputed (the columns are optional).
    flag = inv["disputed"].astype("boolean").fillna(False) if "disputed" in inv \
        else pd.Series(False, index=inv.index)
    opened, resolved = _optional(inv, "dispute_opened"), _optional(inv, "dispute_resolved")
    opened, resolved = pd.to_datetime(opened), pd.to_datetime(resolved)
    inv["disputed_now"] = (flag & (opened.isna() | (opened <= day))
                           & (resolved.isna() | (resolved >= day))).to_numpy(dtype=bool)
    inv["is_open"] = (inv["open_amount"] > OPEN_EPSILON) & ~inv["handed_to_agency"]

    cust = tables["customers"]
    cust = cust[~cust["customer_id"].astype(str).duplicated()].reset_index(drop=True)
    rows = pd.Index(cust["customer_id"].astype(str)).get_indexer(inv["customer_id"])
    found = rows >= 0
    extra = {}
    for col in cust.columns:
        if col in inv:
            continue
        values = cust[col].to_numpy(dtype=object)[np.where(found, rows, 0)] if len(cust) \
            else np.full(n, None, dtype=object)
        values[~found] = None  # unknown customer: its data is missing (rules fail closed)
        extra[col] = values
    return pd.concat([inv, pd.DataFrame(extra, index=inv.index)], axis=1)


def facts_from_state(state: pd.DataFrame, as_of: date) -> dict[str, np.ndarray]:
    """Every fact of :data:`~legal_rules.facts.FACTS` per row of :func:`invoice_states`
    (any subset of its rows, e.g. the open ones), plus ``invoice_id``: dict name -> (n,)."""
    n = len(state)
    jurisdiction = _text(_optional(state, "jurisdiction"), "upper")
    region = _text(_optional(state, "region"), "upper", empty="")
    customer_type = _text(_optional(state, "customer_type"), "lower")
    opted = _optional(state, "opted_out_channels").astype("string").fillna("").str.lower()
    opted = opted.str.replace(" ", "", regex=False)
    opted = ";" + opted.str.replace(",", ";", regex=False) + ";"
    milestone = pd.to_datetime(_optional(state, "milestone_date"))

    def ints(col: str) -> np.ndarray:
        return state[col].to_numpy(dtype=np.int64)

    return {
        "invoice_id": state["invoice_id"].astype(str).to_numpy(dtype=object),
        "days_overdue": ints("days_overdue"),
        "days_since_last_contact": ints("days_since_last_contact"),
        "contacts_last_7_days": ints("contacts_last_7_days"),
        "calls_last_7_days": ints("calls_last_7_days"),
        "reminders_sent": ints("reminders_sent"),
        "final_notice_sent": state["final_notice_sent"].to_numpy(dtype=bool),
        "days_since_final_notice": ints("days_since_final_notice"),
        "disputed": state["disputed_now"].to_numpy(dtype=bool),
        "amount": state["open_amount"].to_numpy(dtype=np.float64),
        "currency": _text(state["currency"], "upper"),
        "customer_type": customer_type,
        "jurisdiction": jurisdiction,
        "region": region,
        "industry": _text(_optional(state, "industry"), "lower", empty=""),
        "is_weekend": np.full(n, as_of.weekday() >= 5),
        "is_bank_holiday": bank_holiday_flags(jurisdiction, region, as_of),
        "limitation_passed": limitation_flags(state["due_date"], jurisdiction, customer_type,
                                              as_of),
        "opted_out_email": opted.str.contains(";email;", regex=False).to_numpy(dtype=bool),
        "opted_out_phone": opted.str.contains(";phone;", regex=False).to_numpy(dtype=bool),
        "opted_out_letter": opted.str.contains(";letter;", regex=False).to_numpy(dtype=bool),
        "agency_consent": _flag(_optional(state, "agency_consent")),
        "reminder_fee_agreed": _flag(_optional(state, "reminder_fee_agreed")),
        "milestone_reached": (milestone.isna() | (milestone <= pd.Timestamp(as_of)))
        .to_numpy(dtype=bool),
    }


def facts_for_invoices(tables: dict[str, pd.DataFrame], as_of: date,
                       state: pd.DataFrame | None = None) -> dict[str, np.ndarray]:
    """Every fact of every invoice dated on or before ``as_of`` (one array entry per invoice).

    Parameters
    ----------
    tables : the contract tables (``customers``, ``invoices``, ``payments``, ``actions``),
        e.g. ``engine.store.Store(path).tables(as_of)``.
    as_of : decision date (semantics: module docstring; events dated ``as_of`` count).
    state : the frame of :func:`invoice_states` for ``(tables, as_of)`` if already built
        (or a subset of its rows); then ``tables`` is not read again.

    Returns
    -------
    dict fact name -> (n,) array, plus ``invoice_id`` (n,) object, sorted by invoice id.
    ``amount`` is the open amount (invoice amount minus payments up to ``as_of``).
    """
    if state is None:
        state = invoice_states(tables, as_of)
    return facts_from_state(state, as_of)
