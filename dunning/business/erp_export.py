"""Write a day's recommendations back in a layout an ERP can import (CSV).

The column names, date format, delimiter, decimal sign and encoding of each layout are those
of the mapping file the ERP's export is ingested with (``engine/mappings/<name>.yaml``),
used in reverse: the ``invoices`` table's contract columns go back to the ERP's source
columns, so the ERP finds its own invoice reference again. In reverse:

- a source column (``amount: WRBTR``) takes the stored value (dates and decimals in the
  ERP's format, recoded ``values`` mapped back);
- a template (SAP ``invoice_id: "{BUKRS}-{BELNR}-{GJAHR}"``) is split back into its fields;
  an invoice id that does not have the template's shape is an error naming it;
- ``plus_days`` (SAP net due date = ``ZFBDT`` + ``ZBD3T``/``ZBD2T``/``ZBD1T``): the due
  date with 0 in every days column;
- extra columns (``extras``) take the stored value, empty when the store has none;
- a row filter (``when``: e.g. SAP ``SHKZG`` in ``[S]``) gets its first allowed value, so the
  file reads back through the same mapping.

After those columns come the recommendation's: ``dunning_as_of``, ``dunning_action``,
``dunning_status``, ``dunning_p_on_time`` (empty without a model), ``dunning_review_id``.
Layout ``generic``: contract column names, ISO dates, comma, UTF-8.

The human review gate (:func:`dunning.ops.gate.review_gate`): a row whose status is
``needs_review`` is exported only once its review is approved (then with status
``approved``); while the review is pending or rejected the row is left OUT of the file, so
that the ERP never executes it, and listed in :attr:`ErpExport.held` (the CLI prints them).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from engine.mapping import Mapping

# Layout name -> shipped mapping file (None: the data contract's own columns).
LAYOUTS: dict[str, str | None] = {"generic": None, "sap_fi": "sap_fi",
                                  "business_central": "business_central",
                                  "datev": "datev_opos", "lexware": "lexware"}
INVOICE_COLUMNS: tuple[str, ...] = ("invoice_id", "customer_id", "invoice_date", "due_date",
                                    "amount", "currency")
REC_EXPORT_COLUMNS: tuple[str, ...] = ("dunning_as_of", "dunning_action", "dunning_status",
                                       "dunning_p_on_time", "dunning_review_id")


@dataclass
class ErpExport:
    """What :func:`export_recommendations` wrote."""

    path: Path
    layout: str
    as_of: dt.date
    rows: int
    columns: list[str]
    held: list[dict[str, str | None]] = field(default_factory=list)  # left out: review


def layout_mapping(layout: str) -> Mapping | None:
    """The mapping a layout reverses (``None`` for ``generic``); InputError if unknown."""
    from engine.mapping import Mapping

    if layout not in LAYOUTS:
        raise InputError(f"--layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    name = LAYOUTS[layout]
    return None if name is None else Mapping.load(name)


def recommendations_with_invoices(db: str | Path, as_of: dt.date | None = None
                                  ) -> tuple[dt.date, pd.DataFrame]:
    """The stored recommendations of ``as_of`` (default: the latest day) joined with their
    invoices (all stored columns, extras included), sorted by invoice id."""
    from dunning.ops.recommend import ensure_schema
    from engine.store import Store

    with Store(db).connect() as con:
        ensure_schema(con)
        if as_of is None:
            as_of = con.execute("SELECT max(as_of) FROM ops_recommendations").fetchone()[0]
            if as_of is None:
                raise InputError(f"{db}: no recommendations stored; run `dunning recommend` "
                                 "first")
        frame = con.execute(
            "SELECT i.*, r.as_of AS dunning_as_of, r.action AS dunning_action, "
            "r.status AS dunning_status, r.p_on_time AS dunning_p_on_time, "
            "r.review_id AS dunning_review_id FROM ops_recommendations r "
            "JOIN invoices i USING (invoice_id) WHERE r.as_of = ? ORDER BY i.invoice_id",
            [as_of]).df()
    if frame.empty:
        raise InputError(f"{db}: no recommendations stored for {as_of}; run `dunning recommend "
                         f"--as-of {as_of}` first")
    return as_of, frame


def erp_frame(frame: pd.DataFrame, mapping: Mapping | None) -> pd.DataFrame:
    """``frame`` (:func:`recommendations_with_invoices`) as text columns in the layout."""
    import pandas as pd

    date_fmt = "%Y-%m-%d" if mapping is None else mapping.date_format
    decimal = "." if mapping is None else mapping.read.decimal

    def text(col: str, values: pd.Series) -> pd.Series:
        if col in ("invoice_date", "due_date", "dunning_as_of") or (
                pd.api.types.is_datetime64_any_dtype(values)):
            return pd.to_datetime(values).dt.strftime(date_fmt)
        if col in ("amount", "dunning_p_on_time"):
            digits = 2 if col == "amount" else 4
            num = pd.to_numeric(values, errors="coerce")
            out = num.map(lambda x: "" if x != x else f"{x:.{digits}f}").astype(str)
            return out.str.replace(".", decimal, regex=False)
        return values.astype(object).where(values.notna(), "").astype(str)

    recs = {c: text(c, frame[c]) for c in REC_EXPORT_COLUMNS}
    if mapping is None:
        return pd.DataFrame({**{c: text(c, frame[c]) for c in INVOICE_COLUMNS}, **recs})
    tm = mapping.tables.get("invoices")
    if tm is None:
        raise InputError(f"{mapping.source}: has no invoices table to reverse")
    out: dict[str, pd.Series] = {}
    for col, spec in tm.columns.items():
        if spec.const is not None or col not in frame:
            continue
        values = text(col, frame[col])
        if spec.template:
            out.update(_split_template(spec.template, values, col))
            continue
        if spec.values:
            back = {v: k for k, v in spec.values.items()}
            values = values.map(lambda v, b=back: b.get(v, v))
        if spec.format:
            values = pd.to_datetime(frame[col]).dt.strftime(spec.format)
        out[spec.column] = values
        if spec.plus_days:  # the due date itself, plus 0 days in every days column
            days = (spec.plus_days,) if isinstance(spec.plus_days, str) else spec.plus_days
            for day_col in days:
                out[day_col] = pd.Series("0", index=frame.index)
    for col, spec in tm.extras.items():  # e.g. the ledger entry number, if the store has it
        if spec.column and spec.column not in out:
            out[spec.column] = (text(col, frame[col]) if col in frame
                                else pd.Series("", index=frame.index))
    for cond in tm.when:
        if cond.column not in out:
            if cond.kind == "present":
                raise InputError(f"{mapping.source}: invoices filter needs {cond.column!r} "
                                 "present; no value to write back")
            if cond.kind == "in":
                out[cond.column] = pd.Series(cond.values[0], index=frame.index)
    return pd.DataFrame({**out, **recs})


def _split_template(template: str, ids: pd.Series, col: str) -> dict[str, pd.Series]:
    """Split ``ids`` back into the fields of ``template`` (``"{A}-{B}"`` -> A, B)."""
    fields = re.findall(r"\{([^{}]+)\}", template)
    parts = re.split(r"\{[^{}]+\}", template)
    pattern = "^" + "".join(re.escape(p) + (f"(?P<f{i}>.+?)" if i < len(fields) else "")
                            for i, p in enumerate(parts)) + "$"
    got = ids.str.extract(pattern)
    bad = got.isna().any(axis=1)
    if bad.any():
        raise InputError(f"{col} {ids[bad].iloc[0]!r} (and {int(bad.sum()) - 1} more): does not "
                         f"have the layout's shape {template!r}; expected ids ingested with "
                         "that mapping")
    return {f: got[f"f{i}"].astype(str) for i, f in enumerate(fields)}


def export_recommendations(db: str | Path, out: str | Path, as_of: dt.date | None = None,
                           layout: str = "generic") -> ErpExport:
    """Write the recommendations of ``as_of`` (default: latest) for the ERP; atomic."""
    from engine.files import atomic_write_text

    mapping = layout_mapping(layout)
    as_of, frame = recommendations_with_invoices(db, as_of)
    frame, held = gate_reviews(db, frame, as_of)
    table = erp_frame(frame, mapping)
    sep = "," if mapping is None else mapping.read.delimiter
    encoding = "utf-8" if mapping is None else mapping.read.encoding
    text = table.to_csv(index=False, sep=sep, lineterminator="\n")
    if mapping is not None and mapping.read.skip_rows:
        # e.g. DATEV: a format line precedes the column names
        text = "".join(f"EXTF{sep}dunning recommendations {as_of}\n"
                       for _ in range(mapping.read.skip_rows)) + text
    try:
        text.encode(encoding)
    except UnicodeEncodeError as exc:
        raise InputError(f"{out}: a value cannot be written in the layout's encoding "
                         f"{encoding}: {exc}") from None
    path = atomic_write_text(out, text, encoding=encoding)
    return ErpExport(Path(path), layout, as_of, len(table), list(table.columns), held)


def gate_reviews(db: str | Path, frame: pd.DataFrame, as_of: dt.date
                 ) -> tuple[pd.DataFrame, list[dict[str, str | None]]]:
    """``frame`` without the rows whose review is not approved, and those rows' review.

    A ``needs_review`` row with an approved review item (:func:`dunning.ops.gate.review_gate`)
    stays, its status set to ``approved`` and its review id to the approving item's.
    """
    from dunning.ops.gate import ReviewRequired, review_gate
    from engine.store import Store

    frame = frame.copy()
    keep = [True] * len(frame)
    held: list[dict[str, str | None]] = []
    with Store(db).connect() as con:
        for k, (inv, action, status) in enumerate(zip(
                frame["invoice_id"], frame["dunning_action"], frame["dunning_status"],
                strict=True)):
            if status != "needs_review":
                continue
            try:
                item = review_gate(con, str(inv), str(action), as_of)
            except ReviewRequired as exc:
                keep[k] = False
                held.append({"invoice_id": str(inv), "action": str(action),
                             "review_id": exc.review_id, "status": exc.status or "none"})
                continue
            frame.iat[k, frame.columns.get_loc("dunning_status")] = "approved"
            frame.iat[k, frame.columns.get_loc("dunning_review_id")] = item["review_id"]
    return frame[keep].reset_index(drop=True), held
