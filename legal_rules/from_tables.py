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
  are still given, e.g. for ``rules explain``; the daily run no longer recommends for it);
- recorded events (``engine.events``) count from their effective date: a promise to pay
  blocks through its promised date (dunning resumes the day after), a conversation dated
  ``D`` gives ``days_since_conversation == 0``.

Customer data that is missing stays missing (``None``), so a rule that needs it fails
closed. Limitation periods are legal data: ``legal_rules/limitation.json`` (with citations),
loaded and validated by :func:`limitation_periods`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.calendar import day_number, holiday_days
from engine.contract import WRITTEN_REMINDERS
from legal_rules.facts import NEVER_DAYS
from legal_rules.messages import Message

REMINDER_CHANNELS = ("email", "letter", "phone", "final_notice")
WRITTEN_CHANNELS = tuple(a.channel for a in WRITTEN_REMINDERS)  # not phone
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


# --------------------------------------------------------------------------- time of day
# When a recommended action is taken, if the caller does not say: the decision day at 17:00
# UTC (12:00 / 13:00 in New York, 9:00 / 10:00 in Los Angeles, 8:00 / 9:00 in Alaska; 7:00 in
# Hawaii, where Regulation F's call-hours rule then vetoes a call: pass the real call time).
DEFAULT_ACTION_TIME = time(17, 0, tzinfo=UTC)
# IANA time zones with part of each US state or territory (region codes as in the store).
US_TIME_ZONES: dict[str, tuple[str, ...]] = {
    **{s: ("America/New_York",) for s in (
        "CT", "DC", "DE", "GA", "MA", "MD", "ME", "NC", "NH", "NJ", "NY", "OH", "PA", "RI",
        "SC", "VA", "VT", "WV")},
    **{s: ("America/Chicago",) for s in (
        "AL", "AR", "IA", "IL", "LA", "MN", "MO", "MS", "OK", "WI")},
    **{s: ("America/Denver",) for s in ("CO", "MT", "NM", "UT", "WY")},
    "CA": ("America/Los_Angeles",), "WA": ("America/Los_Angeles",),
    "AK": ("America/Anchorage", "America/Adak"), "AZ": ("America/Phoenix", "America/Denver"),
    "FL": ("America/New_York", "America/Chicago"), "HI": ("Pacific/Honolulu",),
    "ID": ("America/Boise", "America/Los_Angeles"),
    "IN": ("America/Indiana/Indianapolis", "America/Chicago"),
    "KS": ("America/Chicago", "America/Denver"),
    "KY": ("America/Kentucky/Louisville", "America/Chicago"),
    "MI": ("America/Detroit", "America/Menominee"), "ND": ("America/Chicago", "America/Denver"),
    "NE": ("America/Chicago", "America/Denver"), "NV": ("America/Los_Angeles", "America/Denver"),
    "OR": ("America/Los_Angeles", "America/Boise"), "SD": ("America/Chicago", "America/Denver"),
    "TN": ("America/Chicago", "America/New_York"), "TX": ("America/Chicago", "America/Denver"),
    "PR": ("America/Puerto_Rico",), "VI": ("America/St_Thomas",), "GU": ("Pacific/Guam",),
    "AS": ("Pacific/Pago_Pago",), "MP": ("Pacific/Saipan",),
}
# Countries (besides the US) whose time zones are known, for the same fact elsewhere.
COUNTRY_TIME_ZONES: dict[str, tuple[str, ...]] = {
    "AT": ("Europe/Vienna",), "BE": ("Europe/Brussels",), "BG": ("Europe/Sofia",),
    "CH": ("Europe/Zurich",), "CY": ("Asia/Nicosia",), "CZ": ("Europe/Prague",),
    "DE": ("Europe/Berlin",), "DK": ("Europe/Copenhagen",), "EE": ("Europe/Tallinn",),
    "ES": ("Europe/Madrid", "Atlantic/Canary"), "FI": ("Europe/Helsinki",),
    "FR": ("Europe/Paris",), "GB": ("Europe/London",), "GR": ("Europe/Athens",),
    "HR": ("Europe/Zagreb",), "HU": ("Europe/Budapest",), "IE": ("Europe/Dublin",),
    "IT": ("Europe/Rome",), "LT": ("Europe/Vilnius",), "LU": ("Europe/Luxembourg",),
    "LV": ("Europe/Riga",), "MT": ("Europe/Malta",), "NL": ("Europe/Amsterdam",),
    "NO": ("Europe/Oslo",), "PL": ("Europe/Warsaw",),
    "PT": ("Europe/Lisbon", "Atlantic/Azores"), "RO": ("Europe/Bucharest",),
    "SE": ("Europe/Stockholm",), "SI": ("Europe/Ljubljana",), "SK": ("Europe/Bratislava",),
}
CALL_HOURS = (8.0, 21.0)  # Regulation F's convenient time; "least convenient" is measured to it


def time_zones(jurisdiction: object, region: object) -> tuple[str, ...]:
    """The IANA time zones the debtor may be in (empty: unknown). US: from the state in
    ``region`` (no state, or an unknown one: unknown); elsewhere from the country."""
    if not isinstance(jurisdiction, str):
        return ()
    if jurisdiction == "US":
        return US_TIME_ZONES.get(region, ()) if isinstance(region, str) else ()
    return COUNTRY_TIME_ZONES.get(jurisdiction, ())


def local_hour(action_time: datetime, zones: tuple[str, ...]) -> float | None:
    """Hours since local midnight (20.5 = 20:30) of ``action_time`` (timezone-aware) in the
    least convenient of ``zones``: the one nearest to or furthest outside
    :data:`CALL_HOURS` (a debtor who may be in several zones is called only at a time that
    is convenient in all of them, Regulation F comment 6(b)(1)(i)). ``None`` if no zone."""
    from zoneinfo import ZoneInfo

    hours = []
    for zone in zones:
        t = action_time.astimezone(ZoneInfo(zone))
        hours.append(t.hour + t.minute / 60 + t.second / 3600)
    if not hours:
        return None
    lo, hi = CALL_HOURS
    return round(min(hours, key=lambda h: min(h - lo, hi - h)), 6)


def action_datetime(as_of: date, action_time: datetime | time | None) -> datetime:
    """When an action on ``as_of`` is taken: ``action_time`` (a datetime, or a time on
    ``as_of``; timezone-aware) or :data:`DEFAULT_ACTION_TIME` on ``as_of``."""
    if isinstance(action_time, datetime):
        when = action_time
    else:
        when = datetime.combine(as_of, action_time or DEFAULT_ACTION_TIME)
    if when.tzinfo is None:
        from engine.errors import InputError

        raise InputError(f"action time {when.isoformat()}: expected a time with its UTC "
                         "offset, e.g. 2026-03-02T14:30+01:00")
    return when


def local_hours(jurisdictions: np.ndarray, regions: np.ndarray,
                when: datetime) -> np.ndarray:
    """(n,) object: :func:`local_hour` per row (``None`` where the time zone is unknown),
    computed once per distinct (jurisdiction, region)."""
    n = len(jurisdictions)
    keys = list(zip(jurisdictions.tolist(), regions.tolist(), strict=True))
    memo = {k: local_hour(when, time_zones(*k)) for k in set(keys)}
    out = np.empty(n, dtype=object)
    out[:] = [memo[k] for k in keys]
    return out


# --------------------------------------------------------------------------- default (Verzug)
DEFAULT_NOTICE_DAYS = 30  # BGB § 286 (3): default 30 days after due date and receipt


def default_days(jurisdictions: np.ndarray, customer_types: np.ndarray,
                 days_overdue: np.ndarray, days_since_invoice: np.ndarray,
                 days_since_first_reminder: np.ndarray, notice: np.ndarray,
                 agreed: np.ndarray | None = None) -> np.ndarray:
    """(n,) object: ``days_in_default`` per row (int; ``None`` where it cannot be known).

    Days in default on the decision day counting the first day of default (1 = default began
    today; 0 = not in default). ``days_since_first_reminder``: the first reminder dated after
    the due date (-1: none); ``notice``: the invoice told the consumer of § 286 (3) BGB
    (True / False / None unknown); ``agreed``: the contract fixed the due date by the
    calendar (True / False / None unknown, read as False; ``None`` for the whole array: all
    unknown). Receipt of the invoice is taken as its date.

    * German debtors (BGB § 286): default begins the day after the due date when the parties
      agreed that date by the calendar (§ 286 (2) no. 1, no reminder needed; a payment term
      the creditor only printed on the invoice is no such agreement), else the day after a
      reminder following the due date (§ 286 (1)) or on day 31 after the due date and
      receipt of the invoice (§ 286 (3)) -- for a consumer only if the invoice said so --
      whichever is first. An unknown agreement counts as none (the later default, the
      smaller claim). A consumer whose notice flag is unknown: known where the reminder came
      first or neither has happened yet, else ``None`` (fails closed).
    * Everywhere else: the day after the due date (Directive 2011/7/EU art. 3 (3); national
      consumer rules are caps of their own).
    """
    overdue = np.maximum(days_overdue.astype(np.int64), 0)
    since_receipt = np.minimum(days_overdue, days_since_invoice).astype(np.int64)
    thirty = np.maximum(since_receipt - DEFAULT_NOTICE_DAYS, 0)
    reminded = np.maximum(days_since_first_reminder.astype(np.int64), 0)
    out = overdue.astype(object)
    de = np.asarray(jurisdictions == "DE", dtype=bool)
    b2c = de & np.asarray(customer_types == "b2c", dtype=bool)
    b2b = de & ~b2c
    by_calendar = np.zeros(len(out), dtype=bool) if agreed is None else np.array(
        [v is True or v is np.True_ for v in agreed], dtype=bool)
    out[b2b] = np.maximum(reminded, thirty)[b2b]
    told = np.array([v is True or v is np.True_ for v in notice], dtype=bool)
    untold = np.array([v is False or v is np.False_ for v in notice], dtype=bool)
    consumer = np.where(told, np.maximum(reminded, thirty), reminded).astype(object)
    unknown = ~told & ~untold & (thirty > reminded)  # the notice would decide: unknown
    consumer[unknown] = None
    out[b2c] = consumer[b2c]
    # a date agreed by the calendar: default from the day after it, for every debtor
    out[de & by_calendar] = overdue[de & by_calendar]
    return out


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


def _yes_no(s: pd.Series) -> np.ndarray:
    """(n,) object: True for ``yes``, False for ``no`` (a bool is taken as it is), else None."""
    def one(v: Any) -> bool | None:
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        text = str(v).strip().lower() if isinstance(v, str) else ""
        return {"yes": True, "no": False}.get(text)

    out = np.empty(len(s), dtype=object)
    out[:] = [one(v) for v in s.tolist()]
    return out


def _compact(values: np.ndarray) -> np.ndarray:
    """An object array of ints as int64 when none is missing (the fast path of the rules)."""
    if all(v is not None for v in values):
        return values.astype(np.int64)
    return values


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
    ``written_reminders_sent``, ``days_since_last_written_reminder`` (email, letter, final
    notice: not calls),
    ``final_notice_sent``, ``days_since_final_notice`` (int days; ``NEVER_DAYS`` if none),
    ``days_since_first_reminder`` (the first reminder dated after the due date; -1 if none),
    ``disputed_now``, ``handed_to_agency`` (bool) and ``is_open`` (open amount above half a
    cent and not handed to an agency); from the optional ``tables["events"]``
    (``Store.tables(as_of, names=(..., "events"))``, kinds in ``engine.events``):
    ``open_amount`` also net of credit notes and write-offs, ``interest_fees_paid``
    (payments above the claim, booked against interest and fees), ``days_since_conversation``,
    ``promise_to_pay_pending`` and ``promised_date`` (the latest promise), dispute events in
    ``disputed_now``, recorded calls in ``calls_last_7_days`` / ``contacts_last_7_days`` /
    ``days_since_last_contact`` (a call logged both as a phone action and as a call event
    the same day counts once).
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
    ev = _known_events(tables.get("events"), index, day)
    credited = _event_sum(ev, "credit_note", n)
    written_off = _event_sum(ev, "write_off", n)
    claim = inv["amount"].to_numpy(dtype=np.float64) - credited - written_off
    inv["open_amount"] = (claim - paid).clip(min=0.0)
    inv["interest_fees_paid"] = (paid - claim.clip(min=0.0)).clip(min=0.0)

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
    # the first reminder dated after the due date (one before it creates no default)
    after_due = reminder & (days_ago < inv["days_overdue"].to_numpy()[pos])
    first = np.full(n, -1, dtype=np.int64)
    np.maximum.at(first, pos[after_due], days_ago[after_due])
    inv["days_since_first_reminder"] = first
    inv["reminders_sent"] = count(reminder)
    inv["days_since_last_contact"] = days_since(reminder)
    written = np.isin(channel, WRITTEN_CHANNELS)
    inv["written_reminders_sent"] = count(written)
    inv["days_since_last_written_reminder"] = days_since(written)
    inv["contacts_last_7_days"] = count(recent)
    inv["calls_last_7_days"] = count(recent & (channel == "phone"))
    inv["days_since_final_notice"] = days_since(channel == "final_notice")
    inv["final_notice_sent"] = inv["days_since_final_notice"] < NEVER_DAYS
    inv["handed_to_agency"] = count(channel == "agency") > 0
    inv["days_since_conversation"] = np.full(n, NEVER_DAYS, dtype=np.int64)
    if ev is not None:
        _add_calls(inv, ev, pos[channel == "phone"], days_ago[channel == "phone"])

    # Open from the opening day through the resolution day, both inclusive. No dispute
    # information (flag missing, or no column): not disputed (the columns are optional).
    flag = inv["disputed"].astype("boolean").fillna(False) if "disputed" in inv \
        else pd.Series(False, index=inv.index)
    opened, resolved = _optional(inv, "dispute_opened"), _optional(inv, "dispute_resolved")
    opened, resolved = pd.to_datetime(opened), pd.to_datetime(resolved)
    inv["disputed_now"] = (flag & (opened.isna() | (opened <= day))
                           & (resolved.isna() | (resolved >= day))).to_numpy(dtype=bool)
    inv["promise_to_pay_pending"] = np.zeros(n, dtype=bool)
    inv["promised_date"] = pd.Series(pd.NaT, index=inv.index, dtype="datetime64[ns]")
    if ev is not None:
        inv["disputed_now"] = _disputed_with_events(flag, opened, resolved, ev, day)
        _add_promises(inv, ev, day)
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


# --------------------------------------------------------------------------- events
def _known_events(events: pd.DataFrame | None, index: pd.Index,
                  day: pd.Timestamp) -> pd.DataFrame | None:
    """Events effective on or before ``day`` of the invoices in ``index``, with ``pos``
    (row of the invoice) and ``days_ago``; ``None`` when there are none (the fast path)."""
    if events is None or len(events) == 0:
        return None
    when = _dates(events["effective_date"])
    pos = index.get_indexer(events["invoice_id"].astype("string").fillna("").astype(str))
    keep = ((pos >= 0) & (when <= day).to_numpy(dtype=bool))
    if not keep.any():
        return None
    out = events.loc[keep].assign(pos=pos[keep], when=when[keep])
    out["days_ago"] = (day - out["when"]).dt.days.astype(np.int64)
    order = ["when", "recorded_at"] if "recorded_at" in out else ["when"]
    return out.sort_values(order, kind="stable")


def _event_sum(ev: pd.DataFrame | None, kind: str, n: int) -> np.ndarray:
    """(n,) sum of ``amount`` of the events of ``kind`` per invoice."""
    if ev is None:
        return np.zeros(n)
    sel = ev[ev["kind"].eq(kind).to_numpy(dtype=bool)]
    return np.bincount(sel["pos"].to_numpy(), minlength=n,
                       weights=sel["amount"].astype("float64").fillna(0.0).to_numpy())


def _add_calls(inv: pd.DataFrame, ev: pd.DataFrame, phone_pos: np.ndarray,
               phone_days: np.ndarray) -> None:
    """Recorded calls (``contact_attempt``, ``conversation``) into the call facts.

    A call may be logged twice: as a phone action (the reminder log) and as a call event.
    Per invoice and day the calls are the larger of the two counts, so a call is never
    counted twice and never missed. ``days_since_conversation``: the last call that
    reached the debtor.
    """
    calls = ev[ev["kind"].isin(("contact_attempt", "conversation")).to_numpy(dtype=bool)]
    if calls.empty:
        return
    talk = calls[calls["kind"].eq("conversation").to_numpy(dtype=bool)]
    if len(talk):
        since = inv["days_since_conversation"].to_numpy(copy=True)
        np.minimum.at(since, talk["pos"].to_numpy(), talk["days_ago"].to_numpy())
        inv["days_since_conversation"] = since
    since = inv["days_since_last_contact"].to_numpy(copy=True)
    np.minimum.at(since, calls["pos"].to_numpy(), calls["days_ago"].to_numpy())
    inv["days_since_last_contact"] = since
    recent = calls[(calls["days_ago"] < CONTACT_WINDOW_DAYS).to_numpy(dtype=bool)]
    if recent.empty:
        return
    per_day = recent.groupby(["pos", "days_ago"]).size().rename("events")
    logged = pd.Series(1, index=pd.MultiIndex.from_arrays(
        [phone_pos, phone_days], names=["pos", "days_ago"])).groupby(level=[0, 1]).size()
    both = pd.concat([per_day, logged.rename("actions")], axis=1).fillna(0)
    both = both[both["events"] > 0]
    extra = (both["events"] - both["actions"]).clip(lower=0).groupby(level=0).sum()
    add = np.zeros(len(inv), dtype=np.int64)
    add[extra.index.to_numpy(dtype=np.int64)] = extra.to_numpy(dtype=np.int64)
    for col in ("calls_last_7_days", "contacts_last_7_days"):
        inv[col] = inv[col].to_numpy() + add


def _disputed_with_events(flag: pd.Series, opened: pd.Series, resolved: pd.Series,
                          ev: pd.DataFrame, day: pd.Timestamp) -> np.ndarray:
    """Open disputes from the invoice columns and the dispute events together: the latest
    opening (a flag without a date opens at the start) against the latest resolution
    known on ``day``; a resolution dated ``day`` still blocks ``day``."""
    n = len(flag)
    start = pd.Timestamp("1900-01-01")  # "opened at some point before any event"
    col_open = flag.to_numpy(dtype=bool) & (opened.isna() | (opened <= day)).to_numpy(bool)
    last_open = pd.Series(opened.where(opened.notna(), start).where(col_open),
                          dtype="datetime64[ns]").reset_index(drop=True)
    last_res = pd.Series(resolved.where(resolved <= day),
                         dtype="datetime64[ns]").reset_index(drop=True)
    for kind, target in (("dispute_opened", last_open), ("dispute_resolved", last_res)):
        sel = ev[ev["kind"].eq(kind).to_numpy(dtype=bool)]
        if len(sel):
            latest = sel.groupby("pos")["when"].max()
            cur = target.iloc[latest.index.to_numpy()]
            target.iloc[latest.index.to_numpy()] = np.where(
                cur.isna() | (cur.to_numpy() < latest.to_numpy()), latest.to_numpy(),
                cur.to_numpy())
    lo, lr = last_open.to_numpy(), last_res.to_numpy()
    has_open = ~np.isnat(lo)
    out = has_open & (np.isnat(lr) | (lr < lo) | (lr >= np.datetime64(day)))
    return out.astype(bool).reshape(n)


def _add_promises(inv: pd.DataFrame, ev: pd.DataFrame, day: pd.Timestamp) -> None:
    """The latest promise to pay per invoice; pending through its promised date."""
    promises = ev[ev["kind"].eq("promise_to_pay").to_numpy(dtype=bool)]
    if promises.empty:
        return
    latest = promises.groupby("pos").tail(1)
    promised = _dates(latest["promised_date"])
    rows = latest["pos"].to_numpy()
    dates = inv["promised_date"].to_numpy(copy=True)
    dates[rows] = promised.to_numpy(dtype="datetime64[ns]")
    inv["promised_date"] = dates
    pending = inv["promise_to_pay_pending"].to_numpy(copy=True)
    pending[rows] = (promised >= day).to_numpy(dtype=bool)
    inv["promise_to_pay_pending"] = pending


def facts_from_state(state: pd.DataFrame, as_of: date,
                     action_time: datetime | time | None = None) -> dict[str, np.ndarray]:
    """Every fact of :data:`~legal_rules.facts.FACTS` per row of :func:`invoice_states`
    (any subset of its rows, e.g. the open ones), plus ``invoice_id``: dict name -> (n,).

    ``action_time``: when the action is taken (:func:`action_datetime`; default
    :data:`DEFAULT_ACTION_TIME` on ``as_of``), for ``local_hour``."""
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
        "written_reminders_sent": ints("written_reminders_sent"),
        "days_since_last_written_reminder": ints("days_since_last_written_reminder"),
        "final_notice_sent": state["final_notice_sent"].to_numpy(dtype=bool),
        "days_since_final_notice": ints("days_since_final_notice"),
        "disputed": state["disputed_now"].to_numpy(dtype=bool),
        "amount": state["open_amount"].to_numpy(dtype=np.float64),
        "currency": _text(state["currency"], "upper"),
        "customer_type": customer_type,
        "jurisdiction": jurisdiction,
        "region": region,
        # no industry on file is missing (not ""): rules that depend on it fail closed
        "industry": _text(_optional(state, "industry"), "lower"),
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
        "days_since_conversation": ints("days_since_conversation"),
        "local_hour": local_hours(jurisdiction, region, action_datetime(as_of, action_time)),
        "days_in_default": _compact(default_days(
            jurisdiction, customer_type, ints("days_overdue"),
            (pd.Timestamp(as_of) - state["invoice_date"]).dt.days.to_numpy(dtype=np.int64),
            ints("days_since_first_reminder"),
            _yes_no(_optional(state, "consumer_notice_on_invoice")),
            _yes_no(_optional(state, "due_date_agreed_by_calendar")))),
        "promise_to_pay_pending": state["promise_to_pay_pending"].to_numpy(dtype=bool),
    }


def facts_for_invoices(tables: dict[str, pd.DataFrame], as_of: date,
                       state: pd.DataFrame | None = None,
                       action_time: datetime | time | None = None) -> dict[str, np.ndarray]:
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
    return facts_from_state(state, as_of, action_time)


# --------------------------------------------------------------------------- one case by hand
DATE_FACTS = ("is_weekend", "is_bank_holiday", "days_overdue", "limitation_passed",
              "local_hour", "days_in_default")


def date_facts(facts: dict[str, Any], as_of: date, due_date: date | None = None,
               action_time: datetime | None = None, invoice_date: date | None = None,
               first_reminder: date | None = None, notice: bool | None = None,
               agreed: bool | None = None) -> tuple[dict[str, Any], list[Message]]:
    """The facts that follow from the decision date, computed as :func:`facts_from_state` does.

    ``is_weekend`` from ``as_of``; ``is_bank_holiday`` from ``as_of``, ``jurisdiction`` and
    ``region`` (``holidays``); ``days_overdue`` from ``due_date``; ``limitation_passed``
    from the due date (given, or ``as_of - days_overdue``), jurisdiction and customer type
    (``limitation.json``); ``local_hour`` from ``action_time`` (timezone-aware), jurisdiction
    and region (:func:`local_hour`); ``days_in_default`` from the due date, ``invoice_date``
    (default: the due date), the ``first_reminder`` after the due date, the consumer's
    § 286 (3) ``notice`` and whether the due date was ``agreed`` by the calendar (§ 286 (2)
    no. 1; :func:`default_days`). A fact that cannot be computed (no
    jurisdiction, no due date, no action time, an unknown time zone) is left out. Returns
    ``(computed, contradictions)``: each contradiction is a message for a fact in ``facts``
    whose value differs from the computed one (``is_weekend`` false on a Sunday), which the
    caller must refuse.
    """
    out: dict[str, Any] = {"is_weekend": as_of.weekday() >= 5}
    jur, region = facts.get("jurisdiction"), facts.get("region")
    if isinstance(jur, str) and jur:
        flag = bank_holiday_flags(np.array([jur], dtype=object),
                                  np.array([region if isinstance(region, str) else ""],
                                           dtype=object), as_of)[0]
        if flag is not None:
            out["is_bank_holiday"] = bool(flag)
    overdue = facts.get("days_overdue")
    due_given = due_date is not None
    if due_date is not None:
        out["days_overdue"] = (as_of - due_date).days
    elif isinstance(overdue, int) and not isinstance(overdue, bool):
        due_date = as_of - timedelta(days=overdue)
    ctype = facts.get("customer_type")
    if due_date is not None and isinstance(jur, str) and isinstance(ctype, str):
        flag = limitation_flags(pd.Series([pd.Timestamp(due_date)]),
                                np.array([jur], dtype=object), np.array([ctype], dtype=object),
                                as_of)[0]
        if flag is not None:
            out["limitation_passed"] = bool(flag)
    # a German debtor's default needs the first reminder (or that there was none), unless
    # the due date was agreed by the calendar (§ 286 (2) no. 1); a consumer's also the
    # § 286 (3) notice: derived only when the case says them, never guessed
    needs_reminders = jur == "DE" and agreed is not True
    knows_reminders = (first_reminder is not None
                       or (notice is not None and ctype == "b2c")
                       or facts.get("reminders_sent") == 0)
    if due_given and isinstance(jur, str) and isinstance(ctype, str) and (
            not needs_reminders or knows_reminders):
        since_invoice = (as_of - (invoice_date or due_date)).days
        reminded = (as_of - first_reminder).days if first_reminder is not None else -1
        if first_reminder is not None and not due_date < first_reminder <= as_of:
            reminded = -1  # a reminder before the due date creates no default
        days = default_days(np.array([jur], dtype=object), np.array([ctype], dtype=object),
                            np.array([(as_of - due_date).days]), np.array([since_invoice]),
                            np.array([reminded]), np.array([notice], dtype=object),
                            np.array([agreed], dtype=object))[0]
        if days is not None:
            out["days_in_default"] = int(days)
    if action_time is not None:
        hour = local_hour(action_time, time_zones(jur, region if region is not None else ""))
        if hour is not None:
            out["local_hour"] = hour
    problems = []
    why = {"is_weekend": Message("case.why_weekend", day=str(as_of),
                                 weekday=Message(f"weekday.{as_of.weekday()}")),
           "is_bank_holiday": Message("case.why_holiday", day=str(as_of),
                                      calendar=f"{jur}{'-' + region if region else ''}"),
           "days_overdue": Message("case.why_overdue", due=str(due_date), day=str(as_of)),
           "limitation_passed": Message("case.why_limitation", due=str(due_date),
                                        jurisdiction=jur, file=LIMITATION_FILE),
           "days_in_default": Message("case.why_default", due=str(due_date),
                                      first_reminder=str(first_reminder), notice=str(notice)),
           "local_hour": Message("case.why_local_hour", time=str(action_time),
                                 zones=", ".join(time_zones(jur, region or "")))}
    for name, value in out.items():
        given = facts.get(name)
        if name == "local_hour" and type(given) is int:
            given = float(given)
        if type(given) is type(value) and given != value:  # a wrong type is the rules' error
            problems.append(Message("case.contradiction", name=name, given=json.dumps(given),
                                    why=why[name], value=json.dumps(value)))
    return out, problems
