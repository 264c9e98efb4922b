"""As-of invoice features: ONE pipeline for training, prediction and the simulation.

Time convention (used everywhere in this module): features "as of day D" use only facts
dated strictly before D (the start of day D). An invoice is *open* at D if it was issued on
or before D and was not fully paid before D. An invoice is *settled* on the date its
payments first add up to its amount.

No leakage: a customer's history at D uses only invoices settled before D; the outcome
(payments) of the invoice itself is never a feature; reminders count only if sent before D;
a dispute counts only from its ``dispute_opened`` date.

Training rows are *snapshots*: each historical invoice is featurised as of its invoice date
and, while still unpaid, as of due date + k days for k in ``snapshot_days`` (default
0, 7, 14, 30, 60). Every snapshot uses the point-in-time features of its own date, so the
model learns P(class | state at D) for the same kinds of D it is asked about later
(an invoice 20 days overdue with two reminders). The vectorisation uses sorted integer keys
``customer * 2**17 + day`` and ``np.searchsorted`` on cumulative sums, never a Python loop
per invoice.

Entry points:

- :func:`build_invoice_features` (tables, as_of) -> DataFrame of the invoices open at as_of.
- :func:`build_training_frame` (tables, as_of) -> snapshot features + labels for every
  invoice whose class is known at as_of.
- :func:`settlement` (tables) -> settle date and days late per invoice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from engine.calendar import (
    DAY_BITS,
    NEVER,
    count_holidays,
    count_holidays_at,
    days_to_month_end,
    days_to_quarter_end,
    from_day,
    holiday_table,
    month_of,
    month_phase,
    place_codes,
    quarter_phase,
    to_day,
    to_days,
    weekday,
)
from engine.contract import CHANNELS, CUSTOMERS, INVOICES, Table
from engine.errors import DunningError

DEFAULT_SNAPSHOT_DAYS: tuple[int, ...] = (0, 7, 14, 30, 60)

CATEGORICAL_FEATURES: tuple[str, ...] = (
    "segment", "industry", "jurisdiction", "customer_type", "currency", "last_channel",
)
INVOICE_FEATURES: tuple[str, ...] = (
    "amount", "amount_rel_customer", "terms_days", "invoice_month", "due_weekday",
    "due_days_to_month_end", "due_days_to_quarter_end", "holidays_in_terms",
    "days_due_to_milestone", "dispute_open", "age_days", "days_overdue", "paid_share",
)
COMMUNICATION_FEATURES: tuple[str, ...] = (
    *(f"n_{c}" for c in CHANNELS), "n_reminders", "days_since_last_action",
)
CUSTOMER_FEATURES: tuple[str, ...] = ("tenure_days",)
HISTORY_FEATURES: tuple[str, ...] = (
    "hist_n_issued", "hist_n_paid", "hist_n_late", "hist_share_late", "hist_mean_days_late",
    "hist_mean_days_late_last3", "hist_days_late_trend", "hist_last_days_late",
    "hist_max_days_late_last5", "hist_mean_days_to_pay", "hist_mean_amount",
    "hist_days_since_last_payment", "hist_n_open", "hist_open_amount", "hist_share_disputed",
)
# Counts of the customer's invoices since the history begins. They grow with the calendar
# for every customer, so the latest invoices carry values the earlier rows (those a model
# is fitted on) rarely had, and a model that split on them extrapolates: the hazard model
# with them expected 1.39x the payments the default company's four held-out months showed
# (1.03x without; docs/planner.md, "Counts since the history begins").
WINDOW_COUNT_FEATURES: tuple[str, ...] = ("hist_n_issued", "hist_n_paid", "hist_n_late")
# Opt-in only (``--include-fields``): known after the fact in many ERPs (IBM ``Disputed``).
OPT_IN_FEATURES: tuple[str, ...] = ("disputed_flag",)
DEFAULT_FEATURES: tuple[str, ...] = (
    *INVOICE_FEATURES, *COMMUNICATION_FEATURES, *CUSTOMER_FEATURES, *HISTORY_FEATURES,
    *CATEGORICAL_FEATURES,
)
ALL_FEATURES: tuple[str, ...] = (*DEFAULT_FEATURES, *OPT_IN_FEATURES)
# Extra (non-contract) columns a mapping added become features named ``inv_<column>``
# (invoices) or ``cust_<column>`` (customers): numbers and booleans as values, dates as
# "days from that date to the as-of date" (missing while that date is not yet reached: a
# date in the future of the as-of date would be look-ahead), text as categories. They
# must be facts known at the invoice date (the mapping's responsibility).
EXTRA_PREFIXES: tuple[str, ...] = ("inv_", "cust_")


def _keys(group: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Sortable int64 keys ``group << DAY_BITS | day`` (``0 <= day <= NEVER``: the day
    numbers of :mod:`engine.calendar`, whose ``to_days`` refuses dates outside that range)."""
    return (group.astype(np.int64) << DAY_BITS) + day.astype(np.int64)


# --------------------------------------------------------------------------------------
# Preparation: one pass over the tables, shared by every as-of query.


@dataclass
class PreparedTables:
    """The contract tables as sorted numpy arrays, ready for point-in-time lookups.

    Invoice arrays are aligned with ``invoice_id`` (n_inv,). Days are int64 day numbers;
    ``settle_day`` is NEVER for invoices not fully paid.
    """

    invoice_id: np.ndarray
    cust: np.ndarray  # customer index per invoice
    invoice_day: np.ndarray
    due_day: np.ndarray
    settle_day: np.ndarray
    amount: np.ndarray
    days_late: np.ndarray  # settle - due; NaN when not settled
    currency: tuple[np.ndarray, pd.Index]  # codes per invoice, categories
    dispute_opened: np.ndarray
    dispute_resolved: np.ndarray
    disputed_flag: np.ndarray
    milestone_day: np.ndarray
    extras: dict[str, tuple[str, np.ndarray, bool]]  # name -> (kind, values, per customer)
    customers: pd.DataFrame  # indexed by customer index, contract columns
    customer_categories: dict[str, tuple[np.ndarray, pd.Index]]  # codes per customer
    jurisdiction: np.ndarray  # (n_customers,) upper-case code per customer
    region: np.ndarray  # (n_customers,) upper-case subdivision per customer ('' = none)
    customer_since_day: np.ndarray
    # customer history, sorted by (cust, settle_day) over settled invoices
    set_keys: np.ndarray
    set_cum: dict[str, np.ndarray]  # cumulative sums with a leading 0
    set_days_late: np.ndarray
    set_settle_day: np.ndarray
    # issued invoices sorted by (cust, invoice_day)
    iss_keys: np.ndarray
    iss_cum_amount: np.ndarray
    cust_start_set: np.ndarray  # first position of each customer in set_keys
    cust_start_iss: np.ndarray
    # payments sorted by (invoice, day)
    pay_keys: np.ndarray
    pay_cum: np.ndarray
    # actions sorted by (invoice, day)
    act_keys: np.ndarray
    act_cum: np.ndarray  # (n_act + 1, n_channels) one-hot cumulative counts
    act_day: np.ndarray
    act_channel: np.ndarray  # Action value 1..5
    holidays: dict[tuple[str, str], np.ndarray | None]  # engine.calendar.holiday_table
    last_day: int  # latest invoice, payment or action date: the export date
    # ``invoice_id`` as an Arrow text array for :meth:`rows_of` (built on first use)
    invoice_text: pa.Array | None = field(default=None, repr=False, compare=False)

    def rows_of(self, invoice_ids: object) -> np.ndarray:
        """(n,) positions of ``invoice_ids`` (any sequence, compared as text), -1 where
        unknown: :func:`lookup` against the invoice ids, converted to text once."""
        if self.invoice_text is None:
            self.invoice_text = _text(self.invoice_id)
        return lookup(self.invoice_text, invoice_ids)


def _col(df: pd.DataFrame, name: str, default: object = None) -> pd.Series:
    if name in df.columns:
        return df[name]
    return pd.Series([default] * len(df), index=df.index, dtype=object)


def _text(values: object) -> pa.Array:
    """Ids as an Arrow text array, compared as text (missing stays missing). An Arrow array
    from this function or a pandas text column is taken as it is (no round trip through a
    million Python strings)."""
    if isinstance(values, pa.Array) and values.type == pa.large_string():
        return values
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.StringDtype):
        s = values
    else:
        s = pd.Series(np.asarray(values, dtype=object)).astype(str)
    out = pa.array(s)
    if isinstance(out, pa.ChunkedArray):  # an Arrow-backed pandas column comes chunked
        out = out.combine_chunks()
    return out.cast(pa.large_string())


def lookup(keys: object, queries: object) -> np.ndarray:
    """Position of each query id in ``keys`` (unique ids), -1 if absent or missing; ids
    compared as text; for a duplicated key the first occurrence wins.

    One Arrow hash lookup (``pyarrow.compute.index_in``) over text arrays: no per-row Python
    objects; about twice as fast as ``Index.get_indexer`` on a million object strings, and
    a pandas text column needs no conversion at all.
    """
    pos = pc.index_in(_text(queries), value_set=_text(keys), skip_nulls=True)
    return pos.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _per_value(col: pd.Series, fn: Callable[[pd.Series], object]) -> np.ndarray:
    """``np.asarray(fn(col))`` computed on the distinct values of ``col`` only (a handful in
    a million-row column) and spread back by their codes: the same values, since ``fn``
    works value by value. An ``object`` column is mapped row by row: its values may hash
    alike yet print differently (1, 1.0 and True are one distinct value)."""
    if col.dtype == object:
        return np.asarray(fn(col))
    codes, uniques = pd.factorize(col, use_na_sentinel=False)
    return np.asarray(fn(pd.Series(uniques)))[codes]


def _codes(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes (-1 = missing or empty) and the sorted categories of a text column."""
    def text(c: pd.Series) -> pd.Series:
        return c.astype(object).where(c.notna() & (c.astype(str).str.strip() != ""), None)

    if col.dtype == object:
        cat = pd.Categorical(text(col))
        return cat.codes.astype(np.int64), cat.categories
    codes, uniques = pd.factorize(col, use_na_sentinel=False)
    cat = pd.Categorical(text(pd.Series(uniques)))  # the same categories: the same values
    return cat.codes.astype(np.int64)[codes], cat.categories


def _days(df: pd.DataFrame, name: str) -> np.ndarray:
    """(n,) day numbers of date column ``name`` of ``df``; all NEVER if there is none."""
    if name not in df.columns:
        return np.full(len(df), NEVER, dtype=np.int64)
    return to_days(df[name].to_numpy())


def _require(tables: Mapping[str, pd.DataFrame]) -> None:
    needed = {"customers": ("customer_id", "jurisdiction", "customer_type"),
              "invoices": ("invoice_id", "customer_id", "invoice_date", "due_date", "amount"),
              "payments": ("invoice_id", "payment_date", "amount")}
    for table, cols in needed.items():
        if table not in tables:
            raise DunningError(f"table {table!r} is missing; expected the four contract tables "
                               "(customers, invoices, payments, actions)")
        missing = [c for c in cols if c not in tables[table].columns]
        if missing:
            raise DunningError(f"table {table!r} has no column(s) {missing}; expected the "
                               "contract layout (see engine/contract.py)")
    if len(tables["invoices"]) == 0:
        raise DunningError("there are no invoices; ingest data first (`dunning ingest`) or "
                           "generate a company (`dunning generate`)")


def _cumsum0(x: np.ndarray) -> np.ndarray:
    out = np.zeros((len(x) + 1, *x.shape[1:]), dtype=np.float64)
    np.cumsum(x, axis=0, out=out[1:])
    return out


def settlement(invoice_ids: object, amount: np.ndarray, payments: pd.DataFrame,
               inv_pos: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Settle day of each invoice and its payments sorted for lookups.

    ``inv_pos`` (n_pay,): ``lookup(invoice_ids, payments["invoice_id"])`` if the caller has
    it already. Returns ``settle_day`` (n_inv,) (NEVER if the payments never reach the
    amount, with a 0.5 % / 0.01 tolerance for rounding), ``pay_keys`` (sorted),
    ``pay_cum`` (cumulative amounts with a leading 0) and ``pay_inv`` (invoice index of
    each sorted payment).
    """
    if inv_pos is None:
        inv_pos = lookup(invoice_ids, payments["invoice_id"])
    keep = inv_pos >= 0  # payments of unknown invoices cannot settle anything
    inv_pos = inv_pos[keep]
    pday = to_days(payments["payment_date"].to_numpy()[keep])
    pamt = pd.to_numeric(payments["amount"], errors="coerce").to_numpy(np.float64)[keep]
    pamt = np.nan_to_num(pamt)
    keys = _keys(inv_pos, pday)
    order = np.argsort(keys, kind="stable")
    keys, inv_pos, pday, pamt = keys[order], inv_pos[order], pday[order], pamt[order]
    cum = _cumsum0(pamt)
    start = np.searchsorted(inv_pos, np.arange(len(invoice_ids)), side="left")
    paid_so_far = cum[1:] - cum[start[inv_pos]]
    target = amount[inv_pos] - np.maximum(0.01, 0.005 * amount[inv_pos])
    done = paid_so_far >= target
    settle = np.full(len(invoice_ids), NEVER, dtype=np.int64)
    # first payment of each invoice at which it is fully paid (payments sorted by day)
    first = np.flatnonzero(done)
    if first.size:
        inv_done = inv_pos[first]
        # payments are sorted by invoice: the first of each run of equal invoices
        where = np.flatnonzero(np.r_[True, inv_done[1:] != inv_done[:-1]])
        settle[inv_done[where]] = pday[first[where]]
    return settle, keys, cum, inv_pos


def prepare_tables(tables: Mapping[str, pd.DataFrame]) -> PreparedTables:
    """Sort and index the four contract tables once (O(n log n)) for as-of queries.

    ``tables`` maps ``customers``, ``invoices``, ``payments`` (and optionally ``actions``)
    to DataFrames in the contract layout. Raises :class:`DunningError` on an empty or
    malformed input.
    """
    _require(tables)
    inv = tables["invoices"]
    cus = tables["customers"].drop_duplicates("customer_id").reset_index(drop=True)
    cust = lookup(cus["customer_id"], inv["customer_id"])
    if (cust < 0).any():
        bad = inv["customer_id"].to_numpy()[cust < 0][0]
        raise DunningError(f"table 'invoices': customer_id {bad!r} is not in the customers "
                           "table; expected every invoice to reference a known customer")
    invoice_id = inv["invoice_id"].astype(str).to_numpy()
    invoice_text = _text(inv["invoice_id"])  # for the lookups of payments and actions
    amount = pd.to_numeric(inv["amount"], errors="coerce").to_numpy(np.float64)
    invoice_day = to_days(inv["invoice_date"].to_numpy())
    due_day = to_days(inv["due_date"].to_numpy())
    acts = tables.get("actions")
    if acts is None or len(acts) == 0:
        acts = pd.DataFrame({"invoice_id": pd.Series([], dtype=str), "action_date": [],
                             "channel": pd.Series([], dtype=str)})
    # the invoices of payments and actions in one hash lookup (one table of a million ids)
    n_pay = len(tables["payments"])
    both = lookup(invoice_text, pa.concat_arrays([_text(tables["payments"]["invoice_id"]),
                                                  _text(acts["invoice_id"])]))
    settle_day, pay_keys, pay_cum, _ = settlement(invoice_text, amount, tables["payments"],
                                                  inv_pos=both[:n_pay])
    days_late = np.where(settle_day == NEVER, np.nan, (settle_day - due_day).astype(float))
    disputed_flag = np.zeros(len(inv))
    if "disputed" in inv.columns:
        disputed_flag = _per_value(inv["disputed"], lambda c: c.astype(str).str.strip()
                                   .str.lower().isin(["true", "1", "1.0", "yes", "y"])
                                   ).astype(np.float64)

    # customer history over settled invoices, by settle day
    settled = np.flatnonzero(settle_day != NEVER)
    set_keys = _keys(cust[settled], settle_day[settled])
    o = np.argsort(set_keys, kind="stable")
    settled, set_keys = settled[o], set_keys[o]
    dl = days_late[settled]
    set_cum = {
        "n": _cumsum0(np.ones(len(settled))),
        "late": _cumsum0((dl > 0).astype(float)),
        "days_late": _cumsum0(dl),
        "days_to_pay": _cumsum0((settle_day[settled] - invoice_day[settled]).astype(float)),
        "amount": _cumsum0(amount[settled]),
        "disputed": _cumsum0(disputed_flag[settled]),
    }
    n_cust = len(cus)
    iss_keys = _keys(cust, invoice_day)
    oi = np.argsort(iss_keys, kind="stable")
    iss_keys = iss_keys[oi]
    iss_cum_amount = _cumsum0(amount[oi])
    cust_start_set = np.searchsorted(set_keys, _keys(np.arange(n_cust), np.zeros(n_cust)))
    cust_start_iss = np.searchsorted(iss_keys, _keys(np.arange(n_cust), np.zeros(n_cust)))

    a_inv = both[n_pay:]
    ch_map = {c: i + 1 for i, c in enumerate(CHANNELS)}
    a_ch = _per_value(acts["channel"], lambda c: c.astype(str).str.strip().str.lower()
                      .map(ch_map).to_numpy())
    a_ch = pd.to_numeric(pd.Series(a_ch), errors="coerce").fillna(0).to_numpy(np.int64)
    keep = (a_inv >= 0) & (a_ch > 0)
    a_day = to_days(acts["action_date"].to_numpy()[keep])
    act_keys = _keys(a_inv[keep], a_day)
    oa = np.argsort(act_keys, kind="stable")
    act_keys, a_day, a_ch = act_keys[oa], a_day[oa], a_ch[keep][oa]
    onehot = np.zeros((len(a_ch), len(CHANNELS)))
    onehot[np.arange(len(a_ch)), a_ch - 1] = 1.0

    extras = {**_extras(inv, INVOICES, "inv_", False), **_extras(cus, CUSTOMERS, "cust_", True)}
    jur = cus["jurisdiction"].astype(str).str.upper().to_numpy()
    region = _col(cus, "region", "").astype(object).where(_col(cus, "region", "").notna(), "")
    region = region.astype(str).str.strip().str.upper().to_numpy()
    valid_days = np.concatenate([invoice_day, due_day[due_day != NEVER]])
    return PreparedTables(
        invoice_id=invoice_id, cust=cust, invoice_day=invoice_day, due_day=due_day,
        settle_day=settle_day, amount=amount, days_late=days_late,
        currency=_codes(_col(inv, "currency")),
        dispute_opened=_days(inv, "dispute_opened"),
        dispute_resolved=_days(inv, "dispute_resolved"),
        disputed_flag=disputed_flag,
        milestone_day=_days(inv, "milestone_date"),
        extras=extras, customers=cus, jurisdiction=jur, region=region,
        customer_categories={
            "segment": _codes(_col(cus, "segment")), "industry": _codes(_col(cus, "industry")),
            "jurisdiction": _codes(_col(cus, "jurisdiction").str.upper()),
            "customer_type": _codes(_col(cus, "customer_type"))},
        customer_since_day=to_days(_col(cus, "customer_since").to_numpy()),
        set_keys=set_keys, set_cum=set_cum, set_days_late=dl,
        set_settle_day=settle_day[settled], iss_keys=iss_keys, iss_cum_amount=iss_cum_amount,
        cust_start_set=cust_start_set, cust_start_iss=cust_start_iss,
        pay_keys=pay_keys, pay_cum=pay_cum,
        act_keys=act_keys, act_cum=_cumsum0(onehot), act_day=a_day, act_channel=a_ch,
        # distinct places only (first-seen order): the table normalises each one in Python
        holidays=holiday_table(pd.DataFrame({"j": jur, "r": region}).drop_duplicates()
                               .itertuples(index=False, name=None), int(valid_days.min()),
                               int(valid_days.max()) + 400),
        invoice_text=invoice_text,
        # due dates lie in the future of the export: the last known day is the latest
        # invoice, payment or action date
        last_day=int(max(invoice_day.max(), settle_day[settle_day != NEVER].max(initial=0),
                         a_day.max(initial=0), pay_keys.max(initial=0) & (2**DAY_BITS - 1))),
    )


# --------------------------------------------------------------------------------------
# Point-in-time features


def features_at(p: PreparedTables, rows: np.ndarray, ref_day: np.ndarray,
                extra_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Features of invoices ``rows`` (positions, (m,)) as of days ``ref_day`` ((m,) or scalar).

    Only facts dated before each row's ref day are used. Returns a DataFrame (m, n_features)
    with the columns of :data:`ALL_FEATURES` (categoricals as strings, missing as NaN/None)
    followed by the ``x_`` extras, indexed by invoice id.
    """
    rows = np.asarray(rows, dtype=np.int64)
    ref = np.broadcast_to(np.asarray(ref_day, dtype=np.int64), rows.shape).copy()
    m = len(rows)
    cust = p.cust[rows]
    f: dict[str, np.ndarray] = {}
    amount = p.amount[rows]
    inv_day, due = p.invoice_day[rows], p.due_day[rows]

    # -- customer history: invoices settled strictly before ref
    pos, ipos = _customer_positions(p, cust, ref)
    start = p.cust_start_set[cust]
    n = (pos - start).astype(float)
    c = p.set_cum

    def window(arr: np.ndarray, k: int | None) -> np.ndarray:
        lo = start if k is None else np.maximum(pos - k, start)
        return arr[pos] - arr[lo]

    with np.errstate(invalid="ignore", divide="ignore"):
        f["hist_n_paid"] = n
        f["hist_n_late"] = window(c["late"], None)
        f["hist_share_late"] = f["hist_n_late"] / n
        f["hist_mean_days_late"] = window(c["days_late"], None) / n
        k3 = np.minimum(n, 3)
        f["hist_mean_days_late_last3"] = window(c["days_late"], 3) / k3
        f["hist_days_late_trend"] = f["hist_mean_days_late_last3"] - f["hist_mean_days_late"]
        has = n > 0
        last = np.where(has, pos - 1, 0)
        f["hist_last_days_late"] = np.where(has, p.set_days_late[last] if len(last) and
                                            len(p.set_days_late) else np.nan, np.nan)
        f["hist_max_days_late_last5"] = _window_max(p.set_days_late, pos, start, 5)
        f["hist_mean_days_to_pay"] = window(c["days_to_pay"], None) / n
        f["hist_days_since_last_payment"] = np.where(
            has, ref - (p.set_settle_day[last] if len(p.set_settle_day) else 0), np.nan)
        # issued strictly before ref (the invoice itself is excluded when ref = its date)
        istart = p.cust_start_iss[cust]
        n_iss = (ipos - istart).astype(float)
        iss_amt = p.iss_cum_amount[ipos] - p.iss_cum_amount[istart]
        f["hist_n_issued"] = n_iss
        f["hist_mean_amount"] = iss_amt / n_iss
        f["hist_n_open"] = n_iss - n
        # a difference of two running sums: round to cents so float residue (±1e-8) of
        # different summation orders never shows up as a phantom open balance
        f["hist_open_amount"] = np.round(iss_amt - window(c["amount"], None), 2)
        f["hist_share_disputed"] = window(c["disputed"], None) / n

        # -- the invoice itself
        f["amount"] = amount
        f["amount_rel_customer"] = amount / f["hist_mean_amount"]
        f["terms_days"] = (due - inv_day).astype(float)
        f["invoice_month"] = _by_day(month_of, inv_day).astype(float)
        f["due_weekday"] = weekday(due).astype(float)
        f["due_days_to_month_end"] = _by_day(days_to_month_end, due).astype(float)
        f["due_days_to_quarter_end"] = _by_day(days_to_quarter_end, due).astype(float)
        # places coded per customer (thousands) when there are more rows (millions)
        if m > len(p.jurisdiction):
            place, places = place_codes(p.jurisdiction, p.region)
            place = place[cust]
        else:
            place, places = place_codes(p.jurisdiction[cust], p.region[cust])
        f["holidays_in_terms"] = count_holidays_at(place, places, inv_day, due, p.holidays)
        ms = p.milestone_day[rows]
        f["days_due_to_milestone"] = np.where(ms == NEVER, np.nan, (ms - due).astype(float))
        dopen, dres = p.dispute_opened[rows], p.dispute_resolved[rows]
        f["dispute_open"] = ((dopen < ref) & ~(dres < ref)).astype(float)
        f["disputed_flag"] = p.disputed_flag[rows]
        f["age_days"] = (ref - inv_day).astype(float)
        f["days_overdue"] = (ref - due).astype(float)
        ppos = np.searchsorted(p.pay_keys, _keys(rows, ref), side="left")
        pstart = np.searchsorted(p.pay_keys, _keys(rows, np.zeros(m)), side="left")
        f["paid_share"] = (p.pay_cum[ppos] - p.pay_cum[pstart]) / amount

        # -- communication: actions strictly before ref
        apos = np.searchsorted(p.act_keys, _keys(rows, ref), side="left")
        astart = np.searchsorted(p.act_keys, _keys(rows, np.zeros(m)), side="left")
        counts = np.take(p.act_cum, apos, axis=0) - np.take(p.act_cum, astart, axis=0)
        for j, ch in enumerate(CHANNELS):
            f[f"n_{ch}"] = counts[:, j]
        f["n_reminders"] = counts[:, : len(CHANNELS) - 1].sum(axis=1)  # agency is no reminder
        any_act = apos > astart
        lasta = np.where(any_act, apos - 1, 0)
        if len(p.act_day):
            f["days_since_last_action"] = np.where(any_act, ref - p.act_day[lasta], np.nan)
            last_ch = np.where(any_act, p.act_channel[lasta], 0)
        else:
            f["days_since_last_action"] = np.full(m, np.nan)
            last_ch = np.zeros(m, dtype=np.int64)

        # -- customer
        since = p.customer_since_day[cust]
        f["tenure_days"] = np.where(since == NEVER, np.nan, (ref - since).astype(float))

    numeric = [name for name in ALL_FEATURES if name not in CATEGORICAL_FEATURES]
    # one float64 column per feature, taken as they are: no copy into one 2-D block (a
    # fifth of this function's time at a million rows; encode makes the model's matrix)
    df = pd.DataFrame({name: np.asarray(f[name], dtype=np.float64) for name in numeric},
                      copy=False, index=_invoice_index(p, rows))
    # categoricals as pandas Categorical built from integer codes: no per-row Python objects
    for col, (codes, cats) in p.customer_categories.items():
        df[col] = pd.Categorical.from_codes(codes[cust], categories=cats)
    codes, cats = p.currency
    df["currency"] = pd.Categorical.from_codes(codes[rows], categories=cats)
    df["last_channel"] = pd.Categorical.from_codes(last_ch, categories=["none", *CHANNELS])
    for name in (extra_names if extra_names is not None else sorted(p.extras)):
        kind, values, per_customer = p.extras[name]
        v = values[cust] if per_customer else values[rows]
        if kind == "date":  # a date on/after ref is not known yet (no look-ahead): NaN
            v = np.where((v == NEVER) | (v >= ref), np.nan, (ref - v).astype(float))
        df[name] = v
    return df


def _invoice_index(p: PreparedTables, rows: np.ndarray) -> pd.Index:
    """``pd.Index(p.invoice_id[rows], name="invoice_id")``; when that is an Arrow text index
    (pandas' default), taken from the Arrow ids directly: no million Python strings."""
    plain = pd.Index(p.invoice_id[rows[:1]], name="invoice_id")
    dtype = plain.dtype
    if (p.invoice_text is None or not isinstance(dtype, pd.StringDtype)
            or dtype.storage != "pyarrow"):
        return pd.Index(p.invoice_id[rows], name="invoice_id")
    return pd.Index(pd.array(p.invoice_text.take(pa.array(rows)), dtype=dtype),
                    name="invoice_id")


def _customer_positions(p: PreparedTables, cust: np.ndarray, ref: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(m,) positions of key ``(cust, ref)`` in ``p.set_keys`` and in ``p.iss_keys``
    (``searchsorted`` left: the customer's invoices settled / issued before ``ref``).

    With one ``ref`` for every row (scoring at an as-of date) and more rows than
    customers, the position depends on the customer only: search once per customer (sorted
    queries, cache-friendly) and gather, instead of a million random binary searches.
    """
    n_cust = len(p.cust_start_set)
    if len(ref) > n_cust and ref.min() == ref.max():
        q = _keys(np.arange(n_cust), np.full(n_cust, ref[0]))
        return (np.searchsorted(p.set_keys, q, side="left")[cust],
                np.searchsorted(p.iss_keys, q, side="left")[cust])
    q = _keys(cust, ref)
    return (np.searchsorted(p.set_keys, q, side="left"),
            np.searchsorted(p.iss_keys, q, side="left"))


def _by_day(fn: Callable[[np.ndarray], np.ndarray], day: np.ndarray) -> np.ndarray:
    """``fn(day)`` for an elementwise calendar function ``fn`` of (n,) day numbers,
    evaluated once per day of the range ``day`` spans (a few thousand days for a million
    invoices) and gathered; the direct call when the range is wider than ``day`` is long."""
    if len(day) == 0:
        return fn(day)
    lo, hi = int(day.min()), int(day.max())
    if hi - lo >= len(day):
        return fn(day)
    return fn(np.arange(lo, hi + 1, dtype=np.int64))[day - lo]


def _extras(df: pd.DataFrame, table: Table, prefix: str, per_customer: bool
            ) -> dict[str, tuple[str, np.ndarray, bool]]:
    """Non-contract columns of ``df`` as (kind, values, per_customer) by feature name."""
    out: dict[str, tuple[str, np.ndarray, bool]] = {}
    for c in df.columns:
        if c in table.column_names:
            continue
        col = df[c]
        name = f"{prefix}{c}"
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            out[name] = ("num", pd.to_numeric(col, errors="coerce").to_numpy(np.float64),
                         per_customer)
        elif pd.api.types.is_datetime64_any_dtype(col):
            out[name] = ("date", to_days(col.to_numpy()), per_customer)
        else:
            vals = col.astype(object).where(col.notna(), None).to_numpy(dtype=object)
            out[name] = ("cat", vals, per_customer)
    return out


def _window_max(values: np.ndarray, pos: np.ndarray, start: np.ndarray, k: int) -> np.ndarray:
    """Max of values[max(pos-k, start):pos] per row (NaN for an empty window); k small."""
    out = np.full(len(pos), -np.inf)
    for j in range(1, k + 1):
        idx = pos - j
        ok = idx >= start
        if len(values):
            out = np.where(ok, np.maximum(out, values[np.where(ok, idx, 0)]), out)
    out[np.isinf(out)] = np.nan
    return out


# --------------------------------------------------------------------------------------
# Public entry points


def open_invoices(p: PreparedTables, as_of_day: int) -> np.ndarray:
    """Positions of the invoices open at the start of ``as_of_day``."""
    return np.flatnonzero((p.invoice_day <= as_of_day) & (p.settle_day >= as_of_day))


def build_invoice_features(tables: Mapping[str, pd.DataFrame] | PreparedTables,
                           as_of: object, invoice_ids: Sequence[str] | None = None
                           ) -> pd.DataFrame:
    """Features of the invoices open at ``as_of`` (or of ``invoice_ids``), as of that date.

    Parameters
    ----------
    tables : the contract tables (dict of DataFrames) or a :class:`PreparedTables`.
    as_of : date; facts dated before it are used.
    invoice_ids : optional subset; default every invoice open at ``as_of``.

    Returns
    -------
    DataFrame (n_open, n_features) indexed by ``invoice_id`` (open balances:
    :func:`open_balance`).
    """
    p = tables if isinstance(tables, PreparedTables) else prepare_tables(tables)
    day = to_day(as_of)
    first = int(p.invoice_day.min())
    if day < first:
        raise DunningError(f"as-of date {from_day(day)} is before any data (the first invoice "
                           f"is dated {from_day(first)}); choose a later --as-of date")
    if invoice_ids is None:
        rows = open_invoices(p, day)
    else:
        rows = p.rows_of(invoice_ids)
        if (rows < 0).any():
            raise DunningError(f"unknown invoice id {np.asarray(invoice_ids)[rows < 0][0]!r}")
    df = features_at(p, rows, np.full(len(rows), day))
    return df


def open_balance(p: PreparedTables, invoice_ids: Sequence[str], as_of: object) -> np.ndarray:
    """(n,) amount minus the payments dated before ``as_of`` (invoice currency)."""
    return open_balance_at(p, p.rows_of(invoice_ids), as_of)


def open_balance_at(p: PreparedTables, rows: np.ndarray, as_of: object) -> np.ndarray:
    """:func:`open_balance` of the invoices at positions ``rows`` (n,)."""
    day = np.full(len(rows), to_day(as_of))
    ppos = np.searchsorted(p.pay_keys, _keys(rows, day), side="left")
    pstart = np.searchsorted(p.pay_keys, _keys(rows, np.zeros(len(rows))), side="left")
    return p.amount[rows] - (p.pay_cum[ppos] - p.pay_cum[pstart])


@dataclass
class TrainingFrame:
    """Snapshot rows for training: features X (n, k), labels and their dates.

    ``days_late`` is settle - due in days (for never-settled invoices known to be more than
    ``label_days`` late at the as-of date it is a lower bound, flagged by ``censored``);
    ``ref_day`` is the snapshot date of each row (the time order for splits and calibration);
    ``snapshot`` is -1 for the invoice-date snapshot, -2 for the one between invoice and due
    date, else the k of due + k.
    """

    X: pd.DataFrame
    days_late: np.ndarray
    censored: np.ndarray
    ref_day: np.ndarray
    invoice_day: np.ndarray
    snapshot: np.ndarray
    invoice_pos: np.ndarray


def build_training_frame(tables: Mapping[str, pd.DataFrame] | PreparedTables, as_of: object,
                         very_late_days: int = 30,
                         snapshot_days: Sequence[int] = DEFAULT_SNAPSHOT_DAYS,
                         since: object | None = None, seed: int = 0,
                         stable_draw: bool = False) -> TrainingFrame:
    """Point-in-time training rows of every invoice whose class is known at ``as_of``.

    Only invoices due more than ``very_late_days`` + 1 days before ``as_of`` are used: their
    class is known whatever happened (settled: exact days late; still open: very late, with
    ``days_late`` the lower bound as_of - 1 - due). Taking also the recent invoices that
    happen to be settled would over-represent fast payers at the end of the period, exactly
    where the calibration slice lies. Each such invoice yields a row as of its
    invoice date, one at a random day (``seed``) between invoice and due date, and one per
    ``due + k`` (k in ``snapshot_days``), each only if the invoice was still unpaid then and
    the day lies before ``as_of`` and after ``since`` (optional earliest snapshot).
    ``stable_draw``: that random day is drawn per invoice position, the same whatever
    ``as_of`` (what :func:`frame_known_at` needs), instead of per invoice known at
    ``as_of`` (the pipeline's draw, kept so its models keep their bytes and hashes).
    """
    p = tables if isinstance(tables, PreparedTables) else prepare_tables(tables)
    day = to_day(as_of)
    lo = -1 if since is None else to_day(since)
    settled = p.settle_day < day
    known = np.flatnonzero(class_known(p, day, very_late_days))
    end = np.where(settled[known], p.settle_day[known], day)  # unpaid until end (exclusive)
    parts_rows, parts_ref, parts_snap = [known], [p.invoice_day[known]], [np.full(len(known), -1)]
    for k in snapshot_days:
        r = p.due_day[known] + k
        ok = (r <= end) & (r < day) & (r > p.invoice_day[known])
        parts_rows.append(known[ok])
        parts_ref.append(r[ok])
        parts_snap.append(np.full(int(ok.sum()), k))
    # one seeded random day strictly between issue and due: the model also sees invoices
    # that are partway through their payment terms (as open invoices at a prediction date are)
    rng = np.random.default_rng(seed)
    pre = rng.random(len(p.invoice_id))[known] if stable_draw else rng.random(len(known))
    r = p.invoice_day[known] + 1 + (pre * (p.due_day[known] - p.invoice_day[known] - 1)
                                    ).astype(np.int64)
    ok = (r < p.due_day[known]) & (r <= end) & (r < day)
    parts_rows.append(known[ok])
    parts_ref.append(r[ok])
    parts_snap.append(np.full(int(ok.sum()), -2))
    rows = np.concatenate(parts_rows)
    ref = np.concatenate(parts_ref)
    snap = np.concatenate(parts_snap)
    keep = ref > lo
    rows, ref, snap = rows[keep], ref[keep], snap[keep]
    order = np.lexsort((rows, ref))
    rows, ref, snap = rows[order], ref[order], snap[order]
    dl = p.days_late[rows].copy()
    # not settled before as_of (never, or later in the data): the class is known, the days
    # late only as a lower bound; the exact figure would be an outcome from after as_of
    censored = ~settled[rows]
    dl[censored] = (day - 1 - p.due_day[rows][censored]).astype(float)
    X = features_at(p, rows, ref)
    X = X.reset_index()
    return TrainingFrame(X=X.drop(columns="invoice_id"), days_late=dl, censored=censored,
                         ref_day=ref, invoice_day=p.invoice_day[rows], snapshot=snap,
                         invoice_pos=rows)


def frame_known_at(p: PreparedTables, frame: TrainingFrame, as_of: object,
                   very_late_days: int) -> TrainingFrame:
    """The rows ``build_training_frame(p, as_of, very_late_days, seed=s,
    stable_draw=True)`` returns, cut out of ``frame`` = the same call at a ``later`` date,
    without computing a feature again: features are as of each row's own
    date, so a row's features do not depend on the frame's date; only which rows exist
    (class known at ``as_of``, dated before it) and the lower bound of the censored labels
    do. Same rows, order and values (tested)."""
    day = to_day(as_of)
    pos = frame.invoice_pos
    keep = np.flatnonzero(class_known(p, day, very_late_days)[pos] & (frame.ref_day < day))
    rows = pos[keep]
    dl = p.days_late[rows].copy()
    censored = ~(p.settle_day[rows] < day)
    dl[censored] = (day - 1 - p.due_day[rows][censored]).astype(float)
    return TrainingFrame(X=frame.X.iloc[keep].reset_index(drop=True), days_late=dl,
                         censored=censored, ref_day=frame.ref_day[keep],
                         invoice_day=frame.invoice_day[keep], snapshot=frame.snapshot[keep],
                         invoice_pos=rows)


def class_known(p: PreparedTables, as_day: int, very_late_days: int) -> np.ndarray:
    """(n_inv,) bool: the invoice's class is known at the start of ``as_day`` whatever its
    outcome (due more than ``very_late_days`` days before the last known day)."""
    return (p.due_day + very_late_days + 1 < as_day) & (p.invoice_day < as_day)


def classes_for(very_late_days: int) -> tuple[str, ...]:
    """Class names: binary (on_time, late) for N = 0, else (on_time, late, very_late)."""
    return ("on_time", "late") if very_late_days == 0 else ("on_time", "late", "very_late")


def label_classes(days_late: np.ndarray, very_late_days: int) -> np.ndarray:
    """(n,) int class: 0 on time (<= 0 days late), 1 late (1..N), 2 very late (> N)."""
    dl = np.asarray(days_late, dtype=float)
    y = np.where(dl > 0, 1, 0)
    if very_late_days > 0:
        y = np.where(dl > very_late_days, 2, y)
    return y.astype(np.int64)


# --------------------------------------------------------------------------------------
# Daily hazard rows: one row per (invoice, day overdue) while unpaid

NO_REMINDER_DAYS = 10_000  # "never" for days since the last reminder (as legal facts do)
REMINDER_CHANNELS: tuple[str, ...] = tuple(c for c in CHANNELS if c != "agency")
DYNAMIC_FEATURES: tuple[str, ...] = (
    "days_overdue", *(f"n_{c}" for c in REMINDER_CHANNELS), "days_since_last_reminder",
    "last_reminder_overdue", "last_channel", "weekday", "days_to_month_end",
    "days_to_quarter_end", "is_holiday", "month_phase", "quarter_phase",
)
# Features of the payment model that change day by day: the hazard model gets them from
# DYNAMIC_FEATURES instead, so they are not part of its static vector.
STATE_FEATURES: tuple[str, ...] = (
    "age_days", "days_overdue", "paid_share", *(f"n_{c}" for c in CHANNELS), "n_reminders",
    "days_since_last_action", "last_channel",
)


def dynamic_features_at(p: PreparedTables, rows: np.ndarray, day: np.ndarray
                        ) -> dict[str, np.ndarray]:
    """The :data:`DYNAMIC_FEATURES` of invoices ``rows`` on days ``day`` ((m,) each).

    Reminders count if sent on or before ``day``: a reminder goes out in the morning and
    acts on that day's payments (the simulation's decision precedes the day's outcome), so
    a payment on the day of a reminder is attributed to the reminder, not to the days
    without one. All values float64, see
    :meth:`engine.models.hazard.HazardModel.predict_hazard` for units.
    """
    rows = np.asarray(rows, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    m = len(rows)
    apos = np.searchsorted(p.act_keys, _keys(rows, day + 1), side="left")
    astart = np.searchsorted(p.act_keys, _keys(rows, np.zeros(m)), side="left")
    counts = p.act_cum[apos] - p.act_cum[astart]
    overdue = (day - p.due_day[rows]).astype(float)
    channels = {f"n_{ch}": counts[:, j] for j, ch in enumerate(CHANNELS)
                if ch in REMINDER_CHANNELS}
    # the episode rows end before an agency handover, so the last action is a reminder
    any_act = apos > astart
    last = np.where(any_act, apos - 1, 0)
    last_day = p.act_day[last] if len(p.act_day) else np.zeros(m, dtype=np.int64)
    last_channel = p.act_channel[last] if len(p.act_day) else np.zeros(m)
    return reminder_dynamics(
        overdue, channels,
        since=np.where(any_act, day - last_day, NO_REMINDER_DAYS).astype(float),
        last_channel=np.where(any_act, last_channel, 0).astype(float),
        calendar=calendar_dynamics(day, p.jurisdiction[p.cust[rows]], p.region[p.cust[rows]],
                                   p.holidays))


def calendar_dynamics(day: np.ndarray, jurisdiction: np.ndarray, region: np.ndarray,
                      holidays: dict[tuple[str, str], np.ndarray | None]
                      ) -> dict[str, np.ndarray]:
    """The calendar part of :data:`DYNAMIC_FEATURES` for day numbers ``day`` (m,) at each
    row's (jurisdiction, region); ``holidays`` from :func:`engine.calendar.holiday_table`."""
    return {"weekday": weekday(day).astype(float),
            "days_to_month_end": days_to_month_end(day).astype(float),
            "days_to_quarter_end": days_to_quarter_end(day).astype(float),
            "is_holiday": (count_holidays(jurisdiction, region, day, day, holidays) > 0
                           ).astype(float),
            "month_phase": month_phase(day).astype(float),
            "quarter_phase": quarter_phase(day).astype(float)}


def reminder_dynamics(days_overdue: np.ndarray, counts: Mapping[str, np.ndarray],
                      since: np.ndarray, last_channel: np.ndarray,
                      calendar: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Assemble :data:`DYNAMIC_FEATURES` ((m,) float64 each) - the one place that derives
    ``last_reminder_overdue`` (days overdue when the last reminder was sent, -1 = none):
    the effect of a reminder depends on when it was sent, which trees learn more easily
    from the send day than from the difference of two inputs.

    ``counts``: ``n_email`` .. ``n_final_notice``; ``since``: days since the last reminder
    (:data:`NO_REMINDER_DAYS` = none); ``calendar``: from :func:`calendar_dynamics`.
    """
    overdue = np.asarray(days_overdue, dtype=np.float64)
    since = np.minimum(np.asarray(since, dtype=np.float64), NO_REMINDER_DAYS)
    out = {"days_overdue": overdue,
           **{f"n_{c}": np.asarray(counts[f"n_{c}"], dtype=np.float64)
              for c in REMINDER_CHANNELS},
           "days_since_last_reminder": since,
           "last_reminder_overdue": np.where(since >= NO_REMINDER_DAYS, -1.0, overdue - since),
           "last_channel": np.asarray(last_channel, dtype=np.float64)}
    out.update({k: np.asarray(v, dtype=np.float64) for k, v in calendar.items()})
    return out


@dataclass
class HazardFrame:
    """Invoice-day rows for the hazard model.

    ``rows`` (m,) invoice positions, ``day`` (m,) day numbers, ``event`` (m,) 1 if the
    invoice was fully paid that day, ``weight`` (m,) 1/sampling rate of the row, ``static``
    features per *invoice* (as of its due date) and ``static_index`` (m,) into it.
    """

    rows: np.ndarray
    day: np.ndarray
    event: np.ndarray
    weight: np.ndarray
    static: pd.DataFrame
    static_index: np.ndarray
    dynamic: dict[str, np.ndarray]


def risk_days(p: PreparedTables, as_day: int, horizon_days: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """``(invoice positions (k,), last day at risk (n_inv,))``: the invoices with at least
    one overdue day at risk before ``as_day`` and, per invoice, the last such day (from the
    due date until payment - the settle day included -, the day before an agency handover,
    ``as_day - 1`` or ``horizon_days`` after due). The hazard model's risk set (optionally
    less the days of an open dispute, :func:`in_dispute`)."""
    # first agency handover per invoice ends its dunning episode
    agency = np.full(len(p.invoice_id), NEVER, dtype=np.int64)
    a_inv = (p.act_keys >> DAY_BITS).astype(np.int64)
    sel = p.act_channel == len(CHANNELS)  # agency is the last channel
    np.minimum.at(agency, a_inv[sel], p.act_day[sel])
    due = p.due_day
    # the day of an agency handover is not at risk any more (the world pays nothing then)
    stop = np.minimum.reduce([p.settle_day, np.where(agency < NEVER, agency - 1, NEVER),
                              np.full_like(due, as_day - 1), due + horizon_days])
    inv = np.flatnonzero((due < as_day) & (p.settle_day >= due) & (stop >= due))
    return inv, stop


def risk_rows(p: PreparedTables, inv: np.ndarray, stop: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, day)`` (m,) each: every day from the due date to ``stop`` of the invoices
    ``inv`` (from :func:`risk_days`)."""
    due = p.due_day
    length = stop[inv] - due[inv] + 1
    rows = np.repeat(inv, length)
    offset = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length)
    return rows, due[rows] + offset


def in_dispute(p: PreparedTables, rows: np.ndarray, day: np.ndarray) -> np.ndarray:
    """(m,) whether a dispute was open on day ``day`` of invoice ``rows``: from
    ``dispute_opened`` up to the day before ``dispute_resolved`` (unresolved: to the end).

    A disputed invoice is not paid until the dispute is settled, which the learned
    environment also draws with its own dispute rates (``simulations.env.learned``).
    Counting the disputed days as at risk counts disputes twice and biases the hazard of
    *not reminding* low (a schedule stops reminding a disputed invoice, so the days long
    after the last reminder hold many disputed ones); leaving them out
    (``HazardModel(exclude_disputed_days=True)``) removes that bias but made the planner
    collect less on the evaluation companies, so it is an option (``docs/planner.md``,
    "Disputed days").
    """
    return (day >= p.dispute_opened[rows]) & (day < p.dispute_resolved[rows])


def build_hazard_frame(tables: Mapping[str, pd.DataFrame] | PreparedTables, as_of: object,
                       horizon_days: int = 120, max_rows: int = 1_500_000,
                       max_invoices: int = 200_000, seed: int = 0,
                       exclude_disputed: bool = False) -> HazardFrame:
    """Invoice-day rows from the due date until payment, agency handover, censoring at
    ``as_of`` or ``horizon_days`` after due, of invoices due before ``as_of``.

    Invoices paid before their due date never enter (the risk set starts at the due date);
    with ``exclude_disputed`` the days of an open dispute are left out (:func:`in_dispute`;
    the subsampling draws are the same either way). When the rows exceed
    ``max_rows``, non-event days are subsampled at rate q and carry weight 1/q, so
    weighted training gives unbiased daily probabilities; at most ``max_invoices``
    invoices (random, seeded) are used.
    """
    p = tables if isinstance(tables, PreparedTables) else prepare_tables(tables)
    as_day = to_day(as_of)
    rng = np.random.default_rng(seed)
    due = p.due_day
    inv, stop = risk_days(p, as_day, horizon_days)
    if len(inv) > max_invoices:
        inv = np.sort(rng.choice(inv, max_invoices, replace=False))
    rows, day = risk_rows(p, inv, stop)
    total = len(rows)
    q = min(1.0, max_rows / max(total, 1))
    event = (day == p.settle_day[rows]).astype(np.float64)
    keep = (event == 1) | (rng.random(total) < q)
    if exclude_disputed:  # after the draws: the other rows are the same either way
        keep &= ~in_dispute(p, rows, day)
    rows, day, event = rows[keep], day[keep], event[keep]
    weight = np.where(event == 1, 1.0, 1.0 / q)
    static = features_at(p, inv, due[inv]).reset_index(drop=True)
    static_index = np.searchsorted(inv, rows)
    return HazardFrame(rows=rows, day=day, event=event, weight=weight, static=static,
                       static_index=static_index, dynamic=dynamic_features_at(p, rows, day))
