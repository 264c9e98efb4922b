"""Ingestion: read ERP exports, validate every row, load clean rows, quarantine the rest.

::

    from engine.ingest import ingest

    report = ingest(["invoices.csv", "payments.csv"], db="dunning-data/dunning.duckdb")
    report.tables["invoices"].loaded, report.tables["invoices"].quarantined

Each input file is a CSV or Parquet table. Which contract table it is comes from its name
(``customers``, ``invoices``, ``payments``, ``actions``, optionally with a prefix such as
``acme_invoices.csv``) or from a :class:`~engine.mapping.Mapping`. Every row is checked
(types, date formats, choices, ISO codes, amounts, date order, references, duplicate ids,
cumulative payments, propensities) with vectorised pandas; nothing is silently dropped:

- valid new rows are loaded into the :class:`~engine.store.Store`;
- rows identical to rows already in the store are counted as ``already_present``
  (re-ingesting a file is a no-op);
- a customer or invoice row whose id is stored with other values is ``updated``: a new
  version effective ``effective`` (the old one kept in ``<table>_versions``), unless it
  changes a field of :data:`IMMUTABLE_FIELDS` or the amount of a paid invoice;
- payments above an invoice's amount are loaded, the part above it being interest and fees,
  up to :data:`MAX_SURPLUS_SHARE` of the amount;
- a CSV's last row without a final line break is taken as cut short (quarantined);
- every other row goes to ``<store folder>/quarantine/<UTC timestamp>-<table>.csv`` with
  the source file, its line (header = line 1), the failing field(s), the reason(s) and
  the original values.

Per table ``rows_in == loaded + already_present + updated + quarantined`` always holds.
The whole ingest is one DuckDB transaction: if anything fails, the store is left as it was.
A file that is not a table at all (binary, empty, not decodable, missing required
columns) raises :class:`~engine.errors.InputError`.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from engine.contract import CHANNELS, TABLE_ORDER, TABLES, Table
from engine.errors import InputError
from engine.mapping import ISO_DATE, MappedTable, Mapping, ReadOptions
from engine.store import Store, isin_strings

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pandas as pd

PARQUET_SUFFIXES = (".parquet", ".pq")
AMOUNT_TOLERANCE = 0.005
"""Rounding slack (currency units) when summing payments against the invoice amount."""
MAX_SURPLUS_SHARE = 1.0
"""Payments above an invoice's amount are booked against its interest and fees, up to this
share of the amount (1.0: all payments together at most twice the amount); beyond that a
payment is quarantined as a likely wrong amount or a payment of another invoice."""
IMMUTABLE_FIELDS: dict[str, tuple[str, ...]] = {
    "customers": (),
    "invoices": ("customer_id", "invoice_date", "currency"),
}
"""Fields of a master-data row that a re-ingest may not change (quarantined, field named):
another debtor, issue date or currency is another claim, not a new version of this one.
An invoice's ``amount`` may change only while nothing was paid, credited or written off."""
TRUNCATED_LAST_LINE = ("last line has no line break at its end: the file may be cut short "
                       "(e.g. 12 for 12.50); complete or re-export the file")
_MALFORMED = "__malformed__"
_OVERFLOW = "__extra_fields__"
_TRUE = ("true", "t", "1", "yes", "y")
_FALSE = ("false", "f", "0", "no", "n")

# ISO 3166-1 alpha-2 (officially assigned, plus XK Kosovo which ERPs use).
ISO_3166_ALPHA2 = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK
""".split())

# ISO 4217 active currency codes.
ISO_4217 = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR
FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES
KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
""".split())


# ============================================================================ reports
@dataclass
class TableReport:
    """What happened to one table's rows.
    ``rows_in = loaded + already_present + updated + quarantined``.

    ``updated`` rows are new versions of stored master data (customers, invoices): the
    stored row was changed, its old version kept (``Store.versions``); ``changes`` lists
    ``(key, changed fields)`` per updated row. ``top_reasons`` are the most frequent
    quarantine reasons, ``(field: reason, count)``, most frequent first.
    ``interest_fees`` is the sum of payment parts above their invoice's amount (booked
    against interest and fees) in ``overpaid`` loaded rows.

    ``merged`` rows were identical copies collapsed by a mapping's ``unique: true`` (e.g. one
    customer row per IBM invoice row) and ``skipped`` rows were excluded by its ``when:``
    filter (e.g. no payment row for an unsettled invoice); neither is part of ``rows_in``.
    """

    table: str
    rows_in: int = 0
    loaded: int = 0
    already_present: int = 0
    quarantined: int = 0
    merged: int = 0
    skipped: int = 0
    quarantine_file: Path | None = None
    updated: int = 0
    changes: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    top_reasons: list[tuple[str, int]] = field(default_factory=list)
    interest_fees: float = 0.0
    overpaid: int = 0


@dataclass
class IngestReport:
    """Result of :func:`ingest`: one :class:`TableReport` per contract table."""

    db: Path
    files: list[Path]
    tables: dict[str, TableReport] = field(
        default_factory=lambda: {t: TableReport(t) for t in TABLE_ORDER}
    )
    warnings: list[str] = field(default_factory=list)
    effective: date | None = None  # the day changed master-data rows take effect

    @property
    def rows_in(self) -> int:
        return sum(t.rows_in for t in self.tables.values())

    @property
    def loaded(self) -> int:
        return sum(t.loaded for t in self.tables.values())

    @property
    def already_present(self) -> int:
        return sum(t.already_present for t in self.tables.values())

    @property
    def quarantined(self) -> int:
        return sum(t.quarantined for t in self.tables.values())

    @property
    def updated(self) -> int:
        return sum(t.updated for t in self.tables.values())

    @property
    def quarantine_files(self) -> list[Path]:
        return [t.quarantine_file for t in self.tables.values() if t.quarantine_file]


# ============================================================================ reading
def read_table_file(path: Path, options: ReadOptions = ReadOptions()) -> pd.DataFrame:
    """Read one CSV or Parquet file as a raw frame (CSV: every cell as stripped text).

    The index is the 0-based data-row position. Rows with the wrong number of fields are
    kept (cells padded with ``""``, surplus fields in ``__extra_fields__``) and marked in
    ``__malformed__`` so validation quarantines them. Raises :class:`InputError` if the
    file is missing, empty, binary or not decodable.
    """
    import pandas as pd

    if not path.is_file():
        raise InputError(f"{path}: file not found")
    with path.open("rb") as fh:
        head = fh.read(65536)
    if not head:
        raise InputError(f"{path}: empty file; expected a CSV with a header line or a "
                         "Parquet file")
    if head[:4] == b"PAR1" or path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            return pd.read_parquet(path).reset_index(drop=True)
        except Exception as exc:  # pyarrow raises many types for a broken file
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    if b"\x00" in head:
        raise InputError(f"{path}: binary data (NUL bytes), not a CSV table; expected text "
                         "with a header line")
    return _read_csv(path, options)


def _read_csv(path: Path, options: ReadOptions) -> pd.DataFrame:

    raw = path.read_bytes()
    encoding = "utf-8-sig" if options.encoding.lower().replace("_", "-") in ("utf-8", "utf8") \
        else options.encoding
    try:
        raw.decode(encoding)  # fail early, naming the line, instead of deep in the parser
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}: line {line}: not valid {options.encoding} text; set "
                         "read.encoding in a mapping (e.g. cp1252)") from None
    except LookupError:
        raise InputError(f"{path}: unknown encoding {options.encoding!r}") from None
    if not raw.strip():
        raise InputError(f"{path}: empty file; expected a header line")
    try:
        frame = _read_csv_arrow(raw, encoding, options)
    except _RaggedRows:
        frame = _read_csv_lenient(raw.decode(encoding), options)
    except (ValueError, csv.Error) as exc:
        raise InputError(f"{path}: not a CSV table ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if not len(frame.columns) or all(c == "" for c in frame.columns):
        raise InputError(f"{path}: line 1: no header; expected column names")
    # blank lines at the very end of a file are not rows (blank lines inside are)
    tail = raw[len(raw.rstrip(b" \t\r\n")):]
    n_blank = max(tail.count(b"\n") - 1, 0)
    while n_blank and len(frame) and all(str(v).strip() == "" for v in frame.iloc[-1]):
        frame = frame.iloc[:-1]
        n_blank -= 1
    if len(frame) and not raw.endswith((b"\n", b"\r")):
        frame = _mark_last_row(frame, TRUNCATED_LAST_LINE)
    return frame


def _mark_last_row(frame: pd.DataFrame, reason: str) -> pd.DataFrame:
    """Mark the last data row as malformed (quarantined with ``reason``)."""
    import pandas as pd

    frame = frame.copy()
    if _MALFORMED not in frame.columns:
        frame[_MALFORMED] = pd.Series("", index=frame.index, dtype="str")
        frame[_OVERFLOW] = pd.Series("", index=frame.index, dtype="str")
    prior = str(frame[_MALFORMED].iloc[-1] or "")
    frame.loc[frame.index[-1], _MALFORMED] = f"{prior}; {reason}" if prior else reason
    return frame


class _RaggedRows(Exception):
    """A row has more fields than the header: take the slow, lenient reader."""


def _read_csv_arrow(raw: bytes, encoding: str, options: ReadOptions) -> pd.DataFrame:
    """Fast path: pyarrow's multi-threaded CSV reader, every column as text."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    first = raw[:65536].decode(encoding, errors="replace").splitlines()[options.skip_rows:]
    header = next(csv.reader(first[:1], delimiter=options.delimiter), [])
    if len(set(header)) != len(header) or not header:
        raise _RaggedRows  # duplicate or no column names: the lenient reader names them
    try:
        table = pacsv.read_csv(
            io.BytesIO(raw),
            read_options=pacsv.ReadOptions(skip_rows=options.skip_rows,
                                           encoding=encoding.replace("utf-8-sig", "utf8")),
            parse_options=pacsv.ParseOptions(delimiter=options.delimiter,
                                             ignore_empty_lines=False, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header}, strings_can_be_null=False,
                quoted_strings_can_be_null=False),
        )
    except pa.ArrowInvalid as exc:
        if "Expected" in str(exc) and "columns" in str(exc):
            raise _RaggedRows from None
        raise ValueError(str(exc).splitlines()[0]) from None
    frame = table.to_pandas()
    for col in frame.columns:
        if frame[col].dtype != "str":
            frame[col] = frame[col].astype("str")
    return frame


def _read_csv_lenient(text: str, options: ReadOptions) -> pd.DataFrame:
    """Slow path for files with ragged rows: keep every row, mark the malformed ones."""
    import pandas as pd

    lines = io.StringIO(text, newline="")
    for _ in range(options.skip_rows):
        lines.readline()
    reader = csv.reader(lines, delimiter=options.delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError("empty file") from None
    n = len(header)
    rows, marks, overflow = [], [], []
    for rec in reader:
        marks.append("" if len(rec) == n else f"row has {len(rec)} fields, header has {n}")
        overflow.append(options.delimiter.join(rec[n:]))
        rows.append((rec + [""] * n)[:n])
    seen: dict[str, int] = {}
    names = []
    for h in header:  # name duplicate columns like pandas: a, a.1, a.2
        names.append(h if h not in seen else f"{h}.{seen[h]}")
        seen[h] = seen.get(h, 0) + 1
    frame = pd.DataFrame(rows, columns=names, dtype="str")
    frame[_MALFORMED] = pd.Series(marks, dtype="str")
    frame[_OVERFLOW] = pd.Series(overflow, dtype="str")
    return frame


def table_of_file(path: Path) -> str | None:
    """Contract table named by a file name (``invoices.csv``, ``acme-payments.parquet``)."""
    stem = path.name.lower()
    for suffix in (*PARQUET_SUFFIXES, ".csv", ".txt"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    for name in TABLE_ORDER:
        if stem == name or stem.endswith(("_" + name, "-" + name, "." + name)):
            return name
    return None


# ============================================================================ coercion
@dataclass
class _Batch:
    """One mapped source file's rows for one table, with its raw rows for quarantine."""

    path: Path
    raw: pd.DataFrame
    mapped: MappedTable
    line_offset: int  # user-facing line of data row 0 (CSV: 2 + skipped lines)


class _Errors:
    """Collects (row position, field, reason) triples without per-row Python on the happy
    path: each check adds a boolean mask and a reason (one string or one per failing row)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.parts: list[tuple[np.ndarray, str, object]] = []

    def add(self, mask: pd.Series | np.ndarray, fld: str,
            reason: str | Callable[[np.ndarray], object]) -> None:
        """Record ``reason`` for the rows where ``mask`` is true. A callable reason gets the
        failing row positions and returns one text per position (built only on failure)."""
        import numpy as np

        m = np.asarray(mask, dtype=bool)
        if m.any():
            pos = np.flatnonzero(m)
            if not isinstance(reason, str):
                reason = np.asarray(reason(pos), dtype=object)
            self.parts.append((pos, fld, reason))

    def bad(self) -> np.ndarray:
        import numpy as np

        m = np.zeros(self.n, dtype=bool)
        for pos, _, _ in self.parts:
            m[pos] = True
        return m

    def frame(self) -> pd.DataFrame:
        """One row per failing position: ``pos``, ``field`` (joined by ``;``) and ``reason``
        (joined by `` | ``)."""
        import numpy as np
        import pandas as pd

        if not self.parts:
            return pd.DataFrame({"pos": [], "field": [], "reason": []})
        pos = np.concatenate([p for p, _, _ in self.parts])
        fields = np.concatenate([np.full(len(p), f, dtype=object) for p, f, _ in self.parts])
        reasons = np.concatenate([
            np.full(len(p), r, dtype=object) if isinstance(r, str) else r
            for p, _, r in self.parts
        ])
        long = pd.DataFrame({"pos": pos, "field": fields, "reason": reasons})
        return long.groupby("pos", sort=True).agg(
            field=("field", lambda s: ";".join(dict.fromkeys(s))),
            reason=("reason", " | ".join),
        ).reset_index()


def _text(s: pd.Series) -> pd.Series:
    return s.astype("str").fillna("").str.strip()


def _found(reason: str, values: pd.Series) -> Callable[[np.ndarray], object]:
    """A lazy reason: ``reason; found '<value>'`` for the failing positions only."""
    return lambda pos: (reason + "; found '" + _text(values.iloc[pos]).str.slice(0, 60)
                        + "'").to_numpy(dtype=object)


def _at(parts: Callable[[np.ndarray], list[pd.Series | str]]) -> Callable[[np.ndarray], object]:
    """A lazy reason concatenated from texts and Series taken at the failing positions."""
    def build(pos: np.ndarray) -> object:
        out = ""
        for part in parts(pos):
            out = out + (part if isinstance(part, str) else
                         part.astype("str").fillna("").to_numpy(dtype=object))
        return out
    return build


def _coerce(
    s: pd.Series, dtype: str, fmt: str, read: ReadOptions
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parse a raw column. Returns (typed values, missing mask, unparsable mask)."""
    import numpy as np
    import pandas as pd

    if dtype == "date":
        if pd.api.types.is_datetime64_any_dtype(s):
            typed = s.dt.tz_localize(None) if getattr(s.dt, "tz", None) else s
            typed = typed.dt.normalize().astype("datetime64[ns]")
            missing = typed.isna()
            return typed, missing, pd.Series(False, index=s.index)
        if s.dtype == object and _holds_dates(s):  # Parquet date32 arrives as datetime.date
            s = s.map(lambda v: v.isoformat() if hasattr(v, "isoformat") else v)
            fmt = ISO_DATE
        text = _text(s)
        missing = text.eq("")
        typed = pd.to_datetime(text.where(~missing), format=fmt, errors="coerce")
        typed = typed.astype("datetime64[ns]")
        return typed, missing, ~missing & typed.isna()
    if dtype in ("float", "int"):
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            typed = s.astype("float64")
            missing = typed.isna()
        else:
            text = _text(s)
            missing = text.eq("")
            if read.thousands:
                text = text.str.replace(read.thousands, "", regex=False)
            if read.decimal != ".":
                text = text.str.replace(read.decimal, ".", regex=False)
            typed = _to_float(text.where(~missing))
        bad = ~missing & ~np.isfinite(typed.fillna(0.0)) | (~missing & typed.isna())
        if dtype == "int":
            bad |= ~missing & typed.notna() & (typed.round() != typed)
            typed = typed.where(~bad).astype("Int64")
        return typed, missing, bad
    if dtype == "bool":
        if pd.api.types.is_bool_dtype(s):
            missing = s.isna()
            return s.astype("boolean").fillna(False).astype(bool), missing, missing & False
        text = _text(s).str.lower()
        missing = text.eq("")
        true, false = text.isin(_TRUE), text.isin(_FALSE)
        return true, missing, ~missing & ~true & ~false
    text = _text(s)
    missing = text.eq("")
    return text.where(~missing), missing, pd.Series(False, index=s.index)


def _holds_dates(s: pd.Series) -> bool:
    first = s.dropna()
    return len(first) > 0 and hasattr(first.iloc[0], "isoformat")


def _to_float(text: pd.Series) -> pd.Series:
    """Text to float64, NaN where not a number; pyarrow's cast on the happy path."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        arr = pc.cast(pa.array(text, type=pa.string(), from_pandas=True), pa.float64())
        return pd.Series(arr.to_numpy(zero_copy_only=False), index=text.index, dtype="float64")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.to_numeric(text, errors="coerce").astype("float64")


def _typed_batch(
    batch: _Batch, table: Table, read: ReadOptions, errors_out: list[pd.DataFrame]
) -> pd.DataFrame:
    """Coerce one batch to contract dtypes; parse errors are appended to ``errors_out``."""
    import pandas as pd

    mt = batch.mapped
    frame = mt.frame
    n = len(frame)
    errs = _Errors(n)
    out: dict[str, pd.Series] = {}
    spec = {c.name: c.dtype for c in table.columns} | mt.extras
    for col, dtype in spec.items():
        if col not in frame.columns:
            if dtype == "bool":
                out[col] = pd.Series(False, index=frame.index)
            elif dtype == "date":
                out[col] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
            elif dtype == "float":
                out[col] = pd.Series(float("nan"), index=frame.index)
            elif dtype == "int":
                out[col] = pd.Series(pd.NA, index=frame.index, dtype="Int64")
            else:
                out[col] = pd.Series(pd.NA, index=frame.index, dtype="str")
            out[f"_missing_{col}"] = pd.Series(True, index=frame.index)
            continue
        fmt = mt.formats.get(col, ISO_DATE)
        typed, missing, bad = _coerce(frame[col], dtype, fmt, read)
        out[col] = typed
        out[f"_missing_{col}"] = missing
        if bad.any():
            what = {"date": f"not a date in format {fmt}", "float": "not a number",
                    "int": "not a whole number", "bool": "not a boolean (true/false)"}[dtype]
            errs.add(bad, col, _found(what, frame[col]))
    typed_frame = pd.DataFrame(out, index=frame.index)
    if _MALFORMED in batch.raw.columns:
        marks = _text(batch.raw[_MALFORMED].reindex(frame.index).fillna(""))
        errs.add(marks.ne(""), "(row)", lambda pos: marks.iloc[pos].to_numpy(dtype=object))
    typed_frame["_file"] = str(batch.path)
    typed_frame["_line"] = frame.index.to_numpy() + batch.line_offset
    typed_frame = typed_frame.reset_index(names="_raw_pos")
    e = errs.frame()
    e["pos"] = e["pos"].astype("int64")
    errors_out.append(e)
    return typed_frame


# ============================================================================ validation
class _TableValidator:
    """Validates the combined rows of one table against the contract and the store."""

    def __init__(self, table: Table, rows: pd.DataFrame, parse_errors: pd.DataFrame,
                 con: duckdb.DuckDBPyConnection, provided: set[str]) -> None:
        import numpy as np

        self.table = table
        self.rows = rows
        self.con = con
        self.provided = provided
        self.errors = _Errors(len(rows))
        self.surplus = np.zeros(len(rows), dtype=np.float64)  # payments: above the amount
        self.updates = np.zeros(len(rows), dtype=bool)  # master data: a new version
        self.changed: dict[int, tuple[str, ...]] = {}  # position -> changed fields
        if len(parse_errors):
            for fld, grp in parse_errors.groupby("field", sort=False):
                self.errors.parts.append((grp["pos"].to_numpy(), str(fld),
                                          grp["reason"].to_numpy(dtype=object)))

    # -- helpers
    def missing(self, col: str) -> pd.Series:
        return self.rows[f"_missing_{col}"]

    def ok(self) -> np.ndarray:
        return ~self.errors.bad()

    # -- checks on single rows
    def check_columns(self) -> None:
        rows, add = self.rows, self.errors.add
        for c in self.table.columns:
            if c.required:
                add(self.missing(c.name), c.name, "missing required value")
            present = ~self.missing(c.name)
            if c.choices:
                norm = rows[c.name].str.lower().str.replace(" ", "_", regex=False)
                bad = present & ~norm.isin(c.choices)
                add(bad, c.name, _found(f"expected one of {', '.join(c.choices)}",
                                        rows[c.name]))
                rows[c.name] = norm
        if self.table.name == "customers":
            j = rows["jurisdiction"].str.upper()
            add(~self.missing("jurisdiction") & ~j.isin(ISO_3166_ALPHA2), "jurisdiction",
                _found("expected an ISO 3166-1 alpha-2 country code (e.g. DE, GB, US)",
                       rows["jurisdiction"]))
            rows["jurisdiction"] = j
            opted = rows["opted_out_channels"].fillna("").str.lower().str.replace(" ", "")
            tokens = opted.str.split(";").explode()
            bad_tok = tokens.ne("") & ~tokens.isin(CHANNELS)
            bad = bad_tok.groupby(level=0).any().reindex(rows.index, fill_value=False)
            add(bad, "opted_out_channels", _found(
                f"expected ;-separated channels from {', '.join(CHANNELS)}",
                rows["opted_out_channels"]))
            rows["opted_out_channels"] = opted.where(opted.ne(""))
            rows["language"] = rows["language"].str.lower()
        if self.table.name == "invoices":
            cur = rows["currency"].str.upper()
            add(~self.missing("currency") & ~cur.isin(ISO_4217), "currency",
                _found("expected an ISO 4217 currency code (e.g. EUR, USD)", rows["currency"]))
            rows["currency"] = cur
            add(rows["due_date"] < rows["invoice_date"], "due_date",
                _at(lambda pos: ["due_date is before invoice_date (",
                                 _date_text(rows["due_date"].iloc[pos]), " < ",
                                 _date_text(rows["invoice_date"].iloc[pos]), ")"]))
            add(rows["dispute_resolved"] < rows["dispute_opened"], "dispute_resolved",
                "dispute_resolved is before dispute_opened")
            add(rows["dispute_opened"] < rows["invoice_date"], "dispute_opened",
                "dispute_opened is before invoice_date")
            opened = rows["dispute_opened"].notna() | rows["dispute_resolved"].notna()
            add(opened & ~self.missing("disputed") & ~rows["disputed"], "disputed",
                "disputed is false but a dispute date is given")
            rows["disputed"] = rows["disputed"] | opened
        if "amount" in rows:
            add(rows["amount"].le(0).to_numpy() & ~self.missing("amount").to_numpy(),
                "amount", _found("amount must be > 0", rows["amount"]))
        if self.table.name == "actions":
            p = rows["propensity"]
            add((p.le(0) | p.gt(1)).to_numpy() & ~self.missing("propensity").to_numpy(),
                "propensity", _found("propensity must be in (0, 1]", p))

    # -- derived ids
    def derive_ids(self) -> None:
        """payment_id / action_id from a hash of the row's content when missing."""
        import pandas as pd

        key = self.table.key
        if self.table.name not in ("payments", "actions"):
            return
        need = self.missing(key)
        if not need.any():
            return
        date_col = "payment_date" if self.table.name == "payments" else "action_date"
        second = "amount" if self.table.name == "payments" else "channel"
        basis = pd.DataFrame({
            "i": self.rows["invoice_id"].fillna(""),
            "d": self.rows[date_col].dt.strftime("%Y-%m-%d").fillna(""),
            "x": self.rows[second].astype("str").fillna(""),
        })
        # identical rows in one file are distinct events (two equal partial payments)
        basis["k"] = basis.groupby(["i", "d", "x"], sort=False).cumcount().astype("str")
        h = pd.util.hash_pandas_object(basis, index=False).to_numpy()
        prefix = "p-" if self.table.name == "payments" else "a-"
        ids = pd.Series([f"{prefix}{v:016x}" for v in h[need.to_numpy()]],
                        index=self.rows.index[need.to_numpy()], dtype="str")
        self.rows.loc[need, key] = ids
        self.rows[f"_missing_{key}"] = False

    # -- duplicates, store, references
    def check_duplicates(self) -> None:
        """Same id twice in this ingest: an exact copy is quarantined as a duplicate of the
        first line; different contents are a conflict and every such row is quarantined."""
        import numpy as np

        key = self.table.key
        ok = self.ok() & self.rows[key].notna().to_numpy()
        dup_any = ok & _duplicated_strings(self.rows[key], ok)
        if not dup_any.any():
            return
        grp = self.rows.loc[dup_any]
        content = _content_hash(grp, self.compare_columns())
        n_versions = content.groupby(grp[key]).transform("nunique")
        first = grp.groupby(key)["_line"].transform("first")
        first_file = grp.groupby(key)["_file"].transform("first")
        conflict = n_versions.gt(1)
        later_copy = ~conflict & grp[key].duplicated(keep="first")
        mask = np.zeros(len(self.rows), dtype=bool)
        mask[grp.index[conflict.to_numpy()]] = True
        first_file = first_file.reindex(self.rows.index)
        first = first.reindex(self.rows.index)
        self.errors.add(mask, key, _at(lambda pos: [
            f"conflict: the same {key} appears with different values in this ingest (first at ",
            first_file.iloc[pos], " line ", first.iloc[pos].astype("int64"), ")"]))
        mask = np.zeros(len(self.rows), dtype=bool)
        mask[grp.index[later_copy.to_numpy()]] = True
        self.errors.add(mask, key, _at(lambda pos: [
            f"duplicate row: same {key} as ", first_file.iloc[pos], " line ",
            first.iloc[pos].astype("int64")]))

    def compare_columns(self) -> list[str]:
        return [c for c in self.rows.columns if not c.startswith("_")
                and (c in self.provided or c == self.table.key)]

    def check_store(self, effective: date | None = None) -> np.ndarray:
        """Rows whose id is already stored: identical -> returned mask (already present).

        Different values: for master data (customers, invoices) a new version
        (``self.updates``, changed fields in ``self.changed``) effective on ``effective``,
        unless a field of :data:`IMMUTABLE_FIELDS` differs, an invoice with payments changes
        its amount, or a later change is already stored (conflicts, quarantined with the
        fields named); other tables: a conflict naming the differing fields. The comparison
        runs in DuckDB as one join; the per-field diff only for the differing rows.
        """
        import numpy as np
        import pyarrow as pa

        from engine.store import SQL_TYPES

        key = self.table.key
        ok = self.ok() & self.rows[key].notna().to_numpy()
        present = np.zeros(len(self.rows), dtype=bool)
        if not ok.any():
            return present
        stored = _stored_columns(self.con, self.table.name)
        cols = [c for c in self.compare_columns() if c in stored and c != key]
        batch = self.rows.loc[ok, [key, *cols]].assign(_pos=np.flatnonzero(ok))
        self.con.register("_batch", pa.Table.from_pandas(batch, preserve_index=False))
        same = " AND ".join(_same_sql(c, SQL_TYPES[stored[c]]) for c in cols) or "TRUE"
        join = f'FROM _batch b JOIN "{self.table.name}" t ON b."{key}" = t."{key}"'
        found = self.con.execute(
            f"SELECT b._pos, coalesce({same}, FALSE) AS same {join}").fetchnumpy()
        pos = np.asarray(found["_pos"], dtype=np.int64)
        same_mask = np.asarray(found["same"], dtype=bool)
        present[pos[same_mask]] = True
        differ = pos[~same_mask]
        diffs: dict[int, tuple[str, ...]] = {}
        if len(differ):
            flags = ", ".join(f"coalesce({_same_sql(c, SQL_TYPES[stored[c]])}, FALSE)"
                              for c in cols)
            self.con.register("_differ", pa.table({"p": differ}))
            for p, *f in self.con.execute(
                    f"SELECT b._pos, {flags} {join} WHERE b._pos IN (SELECT p FROM _differ)"
            ).fetchall():
                diffs[int(p)] = tuple(c for c, eq in zip(cols, f, strict=True) if not eq)
            self.con.unregister("_differ")
        self.con.unregister("_batch")
        if self.table.name in IMMUTABLE_FIELDS:
            self._classify_changes(diffs, effective)
        else:
            self._conflicts(diffs, "")
        return present

    def _conflicts(self, diffs: dict[int, tuple[str, ...]], why: str) -> None:
        """Quarantine ``diffs`` (position -> differing fields) as conflicts naming them."""
        import numpy as np

        if not diffs:
            return
        key = self.table.key
        by_fields: dict[tuple[str, ...], list[int]] = {}
        for p, fields in diffs.items():
            by_fields.setdefault(fields, []).append(p)
        for fields, positions in by_fields.items():
            mask = np.zeros(len(self.rows), dtype=bool)
            mask[positions] = True
            names = ", ".join(fields) or "(none)"
            self.errors.add(mask, ";".join(fields) or key,
                            f"conflict: a row with this {key} is already in the store with "
                            f"a different {names}{why}")

    def _classify_changes(self, diffs: dict[int, tuple[str, ...]],
                          effective: date | None) -> None:
        """Master data: a changed row is a new version unless it changes a fact that
        makes it another record (see :meth:`check_store`)."""
        import numpy as np
        import pyarrow as pa

        key, name = self.table.key, self.table.name
        fixed = {p: tuple(f for f in fields if f in IMMUTABLE_FIELDS[name])
                 for p, fields in diffs.items()}
        bad = {p: f for p, f in fixed.items() if f}
        self._conflicts(bad, ": it identifies another record, not a new version of this one")
        rest = {p: f for p, f in diffs.items() if p not in bad}
        if not rest:
            return
        keys = self.rows[key].to_numpy(dtype=object)
        ids = pa.table({"k": [keys[p] for p in rest]})
        self.con.register("_changed_keys", ids)
        latest = dict(self.con.execute(
            f'SELECT "{key}", max(valid_to) FROM "{name}_versions" '
            f'WHERE "{key}" IN (SELECT k FROM _changed_keys) GROUP BY 1').fetchall())
        settled: set[str] = set()
        if name == "invoices":
            settled = {r[0] for r in self.con.execute(
                "SELECT invoice_id FROM payments WHERE invoice_id IN "
                "(SELECT k FROM _changed_keys) UNION SELECT invoice_id FROM events WHERE "
                "kind IN ('credit_note', 'write_off') AND invoice_id IN "
                "(SELECT k FROM _changed_keys)").fetchall()}
        self.con.unregister("_changed_keys")
        paid = {p: f for p, f in rest.items() if "amount" in f and keys[p] in settled}
        self._conflicts(paid, ": the invoice has payments, credit notes or write-offs; "
                        "record a credit note (`dunning record credit-note`) instead")
        day = effective or datetime.now(UTC).date()
        late = {p: f for p, f in rest.items() if p not in paid and keys[p] in latest
                and latest[keys[p]] is not None and latest[keys[p]] > day}
        for p, fields in late.items():
            mask = np.zeros(len(self.rows), dtype=bool)
            mask[p] = True
            self.errors.add(mask, ";".join(fields), f"change of {', '.join(fields)} effective "
                            f"{day} is older than a stored change effective "
                            f"{latest[keys[p]]}; give a later --effective date")
        for p, fields in rest.items():
            if p not in paid and p not in late:
                self.updates[p] = True
                self.changed[p] = fields

    def check_reference(self, column: str, parent: str, parent_key: str,
                        quarantined: Mapping[str, str] | None = None) -> None:
        """Every ``column`` value must be a ``parent_key`` in the store or this ingest.

        ``quarantined``: parent keys whose row this ingest quarantined -> where that row is
        (``file line N``); a row referring to one names it, so the follow-on error points
        at its cause instead of only saying "unknown"."""
        ok = self.ok() & self.rows[column].notna().to_numpy()
        refs = self.rows.loc[ok, [column]].drop_duplicates()
        if refs.empty:
            return
        self.con.register("_refs", refs)
        known = self.con.execute(
            f'SELECT "{parent_key}" FROM "{parent}" WHERE "{parent_key}" IN '
            f'(SELECT "{column}" FROM _refs)'
        ).df()[parent_key]
        self.con.unregister("_refs")
        unknown = ok & ~isin_strings(self.rows[column], known)
        where = self.rows[column].map(quarantined or {})
        follow = unknown & where.notna().to_numpy()
        self.errors.add(follow, column, _at(lambda pos: [
            f"{column} '", self.rows[column].iloc[pos], f"' was not loaded: its {parent} row (",
            where.iloc[pos], ") was quarantined by this ingest; fix that row first"]))
        self.errors.add(unknown & ~follow, column, _found(
            f"unknown {column} (not in the store nor loaded by this ingest)", self.rows[column]))

    def check_against_invoice(self, date_col: str, present: np.ndarray) -> None:
        """Event not before the invoice date; payments not above the invoice amount.
        Rows already in the store (``present``) are skipped: their amounts are counted."""
        import numpy as np

        ok = self.ok() & ~present & self.rows["invoice_id"].notna().to_numpy()
        sel = self.rows.loc[ok]
        if sel.empty:
            return
        refs = sel[["invoice_id"]].drop_duplicates()
        self.con.register("_refs", refs)
        inv = self.con.execute(
            "SELECT i.invoice_id, i.invoice_date, i.amount, "
            "coalesce((SELECT sum(p.amount) FROM payments p WHERE p.invoice_id = i.invoice_id),"
            " 0) AS paid FROM invoices i WHERE i.invoice_id IN (SELECT invoice_id FROM _refs)"
        ).df()
        self.con.unregister("_refs")
        inv["invoice_date"] = inv["invoice_date"].astype("datetime64[ns]")
        inv = inv.set_index("invoice_id")
        idate = sel["invoice_id"].map(inv["invoice_date"])
        early = np.zeros(len(self.rows), dtype=bool)
        early[sel.index[(sel[date_col] < idate).to_numpy()]] = True
        self.errors.add(early, date_col, f"{date_col} is before the invoice_date of the "
                        "invoice")
        if self.table.name != "payments":
            return
        sel = self.rows.loc[self.ok() & ~present & self.rows["invoice_id"].notna().to_numpy()]
        order = sel.sort_values(["invoice_id", "payment_date", "_file", "_line"], kind="stable")
        cum = order.groupby("invoice_id", sort=False)["amount"].cumsum()
        total = cum + order["invoice_id"].map(inv["paid"]).fillna(0.0)
        limit = order["invoice_id"].map(inv["amount"])
        bound = limit * (1.0 + MAX_SURPLUS_SHARE)
        over = np.zeros(len(self.rows), dtype=bool)
        over[order.index[(total > bound + AMOUNT_TOLERANCE).to_numpy()]] = True
        # the part of each accepted payment above the invoice amount: interest and fees
        before = total - order["amount"]
        surplus = (total - np.maximum(before, limit)).clip(lower=0.0)
        surplus = surplus.where(surplus > AMOUNT_TOLERANCE, 0.0).reindex(self.rows.index)
        self.surplus = surplus.fillna(0.0).to_numpy(dtype=np.float64, copy=True)
        self.surplus[over] = 0.0
        total = total.reindex(self.rows.index).round(2)
        bound = bound.reindex(self.rows.index).round(2)
        self.errors.add(over, "amount", _at(lambda pos: [
            "payments of this invoice would exceed twice its amount (", total.iloc[pos],
            " > ", bound.iloc[pos], "): the part above the amount is booked against interest"
            " and fees only up to the amount itself; a wrong amount or another invoice?"]))


def _same_sql(col: str, sql_type: str) -> str:
    """SQL: batch ``b`` and stored ``t`` agree on ``col`` (NULLs equal, floats to 1e-9)."""
    b, t = f'b."{col}"', f't."{col}"'
    if sql_type == "DOUBLE":
        return (f"(({b} IS NULL AND {t} IS NULL) OR "
                f"abs({b} - {t}) <= 1e-9 * greatest(1.0, abs({t})))")
    return f"(CAST({b} AS {sql_type}) IS NOT DISTINCT FROM {t})"


def _duplicated_strings(values: pd.Series, among: np.ndarray) -> np.ndarray:
    """Rows whose value occurs more than once among the rows ``among`` (pyarrow counts;
    pandas' ``duplicated`` on a million Arrow strings factorizes slowly)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values.astype("str"), from_pandas=True)
    counts = pc.value_counts(arr.filter(pa.array(among)))
    repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    if len(repeated) == 0:
        return np.zeros(len(values), dtype=bool)
    return pc.fill_null(pc.is_in(arr, value_set=repeated), False).to_numpy(
        zero_copy_only=False)


def _content_hash(frame: pd.DataFrame, cols: list[str]) -> pd.Series:
    """One uint64 per row over ``cols`` (typed values; floats rounded to 1e-6)."""
    import pandas as pd

    canon = pd.DataFrame({
        c: frame[c].round(6) if pd.api.types.is_float_dtype(frame[c]) else frame[c]
        for c in cols
    }, index=frame.index)
    return pd.util.hash_pandas_object(canon, index=False)


def _date_text(s: pd.Series) -> pd.Series:
    return s.dt.strftime("%Y-%m-%d").astype("str").fillna("")


def _stored_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    spec = {c.name: c.dtype for c in TABLES[table].columns}
    extras = con.execute(
        "SELECT column_name, dtype FROM dunning_extra_columns WHERE table_name = ?", [table]
    ).fetchall()
    return spec | dict(extras)


# ============================================================================ ingest
def ingest(
    paths: list[str | os.PathLike[str]] | str | os.PathLike[str],
    db: str | os.PathLike[str] | Store | None = None,
    mapping: str | os.PathLike[str] | Mapping | None = None,
    effective: date | None = None,
) -> IngestReport:
    """Validate and load export files into the store; return what happened per table.

    Parameters
    ----------
    paths:
        CSV or Parquet files. Without ``mapping`` each file's name says its table.
    db:
        Store file or :class:`Store` (default ``dunning-data/dunning.duckdb``).
    mapping:
        A mapping YAML path, a shipped mapping name (``"ibm_ar"``) or a :class:`Mapping`.
    effective:
        The day a changed customer or invoice row takes effect (default: today, UTC):
        ``Store.tables(as_of)`` returns the old version before it, the new one from it on.

    Raises :class:`InputError` when a file is not a table (missing, empty, binary, not
    decodable, missing required columns) or its table cannot be told; the store is then
    unchanged. Rejected rows never raise: they are quarantined and counted.
    """
    store = db if isinstance(db, Store) else (Store(db) if db is not None else Store())
    files = [Path(p) for p in ([paths] if isinstance(paths, str | os.PathLike) else paths)]
    if not files:
        raise InputError("no input files given")
    if mapping is not None and not isinstance(mapping, Mapping):
        mapping = Mapping.load(mapping)
    report = IngestReport(db=store.path, files=files,
                          effective=effective or datetime.now(UTC).date())
    batches = _map_files(files, mapping, report)
    if report.rows_in == 0:
        raise InputError(f"{', '.join(map(str, files))}: no data rows; expected a header line "
                         "followed by rows")
    _load(store, batches, mapping, report, report.effective)
    return report


def _map_files(
    files: list[Path], mapping: Mapping | None, report: IngestReport
) -> dict[str, list[_Batch]]:
    batches: dict[str, list[_Batch]] = {t: [] for t in TABLE_ORDER}
    for path in files:
        read = mapping.read if mapping else ReadOptions()
        if mapping is None:
            name = table_of_file(path)
            if name is None:
                raise InputError(
                    f"{path}: cannot tell which table this is; name the file customers, "
                    "invoices, payments or actions (.csv or .parquet), or pass --mapping")
        elif not mapping.tables_for(path):
            raise InputError(f"{path}: mapping {mapping.source} has no table for this file "
                             "(check the 'files:' globs)")
        raw = read_table_file(path, read)
        if mapping is None:
            file_mapping = _contract_mapping(path, name, raw, report)
        else:
            file_mapping = mapping
            mapping.check_source_columns(path, list(raw.columns))
        offset = 2 + read.skip_rows if path.suffix.lower() not in PARQUET_SUFFIXES else 1
        for tm in file_mapping.tables_for(path):
            mapped = file_mapping.apply(tm, raw, path)
            t = report.tables[tm.table]
            t.rows_in += len(mapped.frame)
            t.merged += mapped.merged
            t.skipped += mapped.skipped
            batches[tm.table].append(_Batch(path, raw, mapped, offset))
    return batches


def _contract_mapping(path: Path, name: str, raw: pd.DataFrame,
                      report: IngestReport) -> Mapping:
    table = TABLES[name]
    cols = [c for c in raw.columns if c not in (_MALFORMED, _OVERFLOW)]
    required = [c.name for c in table.columns if c.required]
    missing = [c for c in required if c not in cols]
    if missing:
        raise InputError(
            f"{path}: line 1: missing required column(s) {', '.join(missing)} for table "
            f"{name}; expected columns {', '.join(table.column_names)} (found: "
            f"{', '.join(cols) or 'none'})")
    unknown = [c for c in cols if c not in table.column_names]
    if unknown:
        report.warnings.append(f"{path}: ignored column(s) not in the {name} contract: "
                               f"{', '.join(unknown)} (use a mapping with extras to keep them)")
    return Mapping.contract(name, cols)


def _load(store: Store, batches: dict[str, list[_Batch]], mapping: Mapping | None,
          report: IngestReport, effective: date | None = None) -> None:
    import numpy as np
    import pandas as pd

    read = mapping.read if mapping else ReadOptions()
    quarantines: list[tuple[Path, Path]] = []
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    quarantined_keys: dict[str, dict[str, str]] = {}  # table -> key -> where its row is
    with store.connect() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            for name in TABLE_ORDER:
                if not batches[name]:
                    continue
                table = TABLES[name]
                parse_errors: list[pd.DataFrame] = []
                typed = []
                offset = 0
                for b in batches[name]:
                    typed.append(_typed_batch(b, table, read, parse_errors))
                    parse_errors[-1]["pos"] += offset
                    offset += len(typed[-1])
                rows = pd.concat(typed, ignore_index=True) if len(typed) > 1 else typed[0]
                rows["_batch"] = _batch_ids(batches[name])
                extras = {}
                provided: set[str] = set()
                for b in batches[name]:
                    extras |= b.mapped.extras
                    provided |= b.mapped.provided
                store.add_extra_columns(con, name, extras)
                v = _TableValidator(table, rows, pd.concat(parse_errors, ignore_index=True),
                                    con, provided)
                v.check_columns()
                v.derive_ids()
                if name == "invoices":
                    v.check_reference("customer_id", "customers", "customer_id",
                                      quarantined_keys.get("customers"))
                if name in ("payments", "actions"):
                    v.check_reference("invoice_id", "invoices", "invoice_id",
                                      quarantined_keys.get("invoices"))
                v.check_duplicates()
                present = v.check_store(effective)
                if name in ("payments", "actions"):
                    v.check_against_invoice("payment_date" if name == "payments"
                                            else "action_date", present)
                bad = v.errors.bad()
                quarantined_keys[name] = _where_quarantined(rows, table.key, bad)
                update = v.updates & ~bad
                new = ~bad & ~present & ~update
                t = report.tables[name]
                t.loaded = int(new.sum())
                t.already_present = int((present & ~bad).sum())
                t.quarantined = int(bad.sum())
                t.updated = int(update.sum())
                paid_extra = v.surplus[new]
                t.overpaid = int((paid_extra > 0).sum())
                t.interest_fees = round(float(paid_extra.sum()), 2)
                _insert(con, name, rows.loc[new], _stored_columns(con, name))
                if t.updated:
                    changed = {p: v.changed[p] for p in np.flatnonzero(update).tolist()}
                    _update(con, table, rows, changed, v.compare_columns(), effective)
                    keys = rows[table.key].to_numpy(dtype=object)
                    t.changes = [(str(keys[p]), f) for p, f in changed.items()]
                if t.quarantined:
                    errors = v.errors.frame()
                    t.top_reasons = top_reasons(errors)
                    final = _quarantine_path(store.quarantine_dir, stamp, name)
                    tmp = _write_quarantine(final, batches[name], rows, errors)
                    quarantines.append((tmp, final))
                    t.quarantine_file = final
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            for tmp, _ in quarantines:
                tmp.unlink(missing_ok=True)
            raise
    for tmp, final in quarantines:
        os.replace(tmp, final)


def _where_quarantined(rows: pd.DataFrame, key: str, bad: np.ndarray) -> dict[str, str]:
    """Key -> ``file line N`` of the quarantined rows that have a key (the first such row
    of a key), for the follow-on errors of the tables that refer to them."""
    hit = rows.loc[bad & rows[key].notna().to_numpy(), [key, "_file", "_line"]]
    hit = hit.drop_duplicates(subset=key)
    return {str(k): f"{Path(str(f)).name} line {int(n)}"
            for k, f, n in zip(hit[key], hit["_file"], hit["_line"], strict=True)}


def top_reasons(errors: pd.DataFrame, n: int = 3) -> list[tuple[str, int]]:
    """The ``n`` most frequent quarantine reasons as ``("field: reason", rows)``; values
    found in a row (``; found '...'``, numbers in parentheses, line numbers) are cut so
    that rows with the same problem count together."""
    import re
    from collections import Counter

    counts: Counter[str] = Counter()
    for fld, reason in zip(errors["field"], errors["reason"], strict=True):
        parts = []
        for part in str(reason).split(" | "):
            part = re.sub(r"; found '.*$", "", part)
            part = re.sub(r"\([^)]*\d[^)]*\)", "(...)", part)  # quoted numbers, dates
            parts.append(re.sub(r" line \d+", "", part).strip())
        counts[f"{fld}: {' | '.join(parts)}"] += 1
    return counts.most_common(n)


def _update(con: duckdb.DuckDBPyConnection, table: Table, rows: pd.DataFrame,
            changed: dict[int, tuple[str, ...]], provided: list[str],
            effective: date | None) -> None:
    """Write new versions of master-data rows: the stored row goes to ``<table>_versions``
    (valid until ``effective``), then the provided columns are overwritten."""
    import pyarrow as pa

    from engine.store import SQL_TYPES

    name, key = table.name, table.key
    day = effective or datetime.now(UTC).date()
    now = datetime.now(UTC).replace(tzinfo=None)
    stored = _stored_columns(con, name)
    cols = [c for c in provided if c in stored and c != key]
    frame = rows.iloc[list(changed)][[key, *cols]].copy()
    frame["_changed"] = [";".join(f) for f in changed.values()]
    con.register("_upd", pa.Table.from_pandas(frame, preserve_index=False))
    all_cols = ", ".join(f't."{c}"' for c in stored)
    names = ", ".join(f'"{c}"' for c in stored)
    latest = (f'(SELECT max(v.valid_to) FROM "{name}_versions" v '
              f'WHERE v."{key}" = t."{key}")')
    con.execute(
        f'INSERT INTO "{name}_versions" ({names}, valid_from, valid_to, recorded_at, '
        f"changed_fields) SELECT {all_cols}, {latest}, CAST(? AS DATE), "
        f'CAST(? AS TIMESTAMP), u._changed FROM "{name}" t JOIN _upd u '
        f'ON t."{key}" = u."{key}"', [day, now])
    sets = ", ".join(f'"{c}" = CAST(u."{c}" AS {SQL_TYPES[stored[c]]})' for c in cols)
    con.execute(f'UPDATE "{name}" AS t SET {sets} FROM _upd u WHERE t."{key}" = u."{key}"')
    con.unregister("_upd")


def _batch_ids(batches: list[_Batch]) -> np.ndarray:
    import numpy as np

    return np.repeat(np.arange(len(batches)), [len(b.mapped.frame) for b in batches])


def _insert(con: duckdb.DuckDBPyConnection, name: str, rows: pd.DataFrame,
            columns: dict[str, str]) -> None:
    if rows.empty:
        return
    import pyarrow as pa

    from engine.store import SQL_TYPES

    frame = pa.Table.from_pandas(rows[list(columns)], preserve_index=False)
    con.register("_new_rows", frame)
    select = ", ".join(f'CAST("{c}" AS {SQL_TYPES[d]})' for c, d in columns.items())
    cols = ", ".join(f'"{c}"' for c in columns)
    con.execute(f'INSERT INTO "{name}" ({cols}) SELECT {select} FROM _new_rows')
    con.unregister("_new_rows")


def _quarantine_path(folder: Path, stamp: str, table: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stamp}-{table}.csv"
    i = 1
    while path.exists():
        path = folder / f"{stamp}-{i}-{table}.csv"
        i += 1
    return path


def _write_quarantine(final: Path, batches: list[_Batch], rows: pd.DataFrame,
                      errors: pd.DataFrame) -> Path:
    """Write rejected rows (source file, line, field, reason, original values) to a temp
    file next to ``final``; the caller renames it after the store commit."""
    import pandas as pd

    errors = errors.set_index("pos")
    parts = []
    for i, b in enumerate(batches):
        sel = rows.loc[rows["_batch"].eq(i).to_numpy() & rows.index.isin(errors.index)]
        if sel.empty:
            continue
        original = b.raw.loc[sel["_raw_pos"].to_numpy()].reset_index(drop=True)
        original = original.astype("str")
        head = pd.DataFrame({
            "source_file": sel["_file"].to_numpy(),
            "line": sel["_line"].to_numpy(),
            "field": errors.loc[sel.index, "field"].to_numpy(),
            "reason": errors.loc[sel.index, "reason"].to_numpy(),
        })
        original.columns = [c if c not in head.columns else f"source_{c}"
                            for c in original.columns]
        parts.append(pd.concat([head, original], axis=1))
    out = pd.concat(parts, ignore_index=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", dir=final.parent)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        # quote every cell: raw values may hold separators, quotes or bare line breaks
        out.to_csv(fh, index=False, quoting=csv.QUOTE_ALL)
    return Path(tmp)


# ============================================================================ docs
def contract_markdown() -> str:
    """The four contract tables as Markdown (the generated part of docs/data-contract.md)."""
    from engine.store import SQL_TYPES

    out = []
    for table in (TABLES[n] for n in TABLE_ORDER):
        out.append(f"### `{table.name}`\n\n{table.description} Key: `{table.key}`.\n")
        out.append("| column | type | required | meaning |")
        out.append("|---|---|---|---|")
        for c in table.columns:
            extra = []
            if c.choices:
                extra.append("one of " + ", ".join(f"`{v}`" for v in c.choices))
            if c.references:
                extra.append(f"references `{c.references}`")
            meaning = " ".join([c.description, *(f"({e})" for e in extra)])
            out.append(f"| `{c.name}` | {c.dtype} ({SQL_TYPES[c.dtype]}) | "
                       f"{'yes' if c.required else 'no'} | {meaning} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
