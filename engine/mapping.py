"""Column mappings: bring any ERP export onto the data contract without code.

A mapping is a YAML file (format in ``docs/data-contract.md``; shipped examples in
``engine/mappings/``). It names, per contract table, which source column (or constant,
template, value code) fills each contract column, the date format, CSV reader options, an
optional row filter (``when``) and extra non-contract columns (``extras``) to keep in the
store. One export file may feed several tables (e.g. the IBM file feeds customers,
invoices and payments).

:meth:`Mapping.apply` turns a raw source frame into a :class:`MappedTable` whose columns
carry contract names; validation happens afterwards in :mod:`engine.ingest`.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.contract import TABLES
from engine.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

BUILTIN_DIR = Path(__file__).resolve().parent / "mappings"
ISO_DATE = "%Y-%m-%d"
EXTRA_DTYPES = ("str", "date", "float", "bool", "int")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TEMPLATE_FIELD = re.compile(r"\{([^{}]+)\}")
# Template token for the row's position among the file's data rows (1 = the first row under
# the header), for exports without any id column.
ROW_TOKEN = "_row"
NUMERIC_WHEN: dict[str, str] = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


@dataclass(frozen=True)
class ReadOptions:
    """How to read a CSV export (ignored for Parquet)."""

    delimiter: str = ","
    encoding: str = "utf-8"
    decimal: str = "."
    thousands: str | None = None
    skip_rows: int = 0
    """Lines before the header line (e.g. the DATEV metadata line)."""


@dataclass(frozen=True)
class ColumnSpec:
    """Where one contract (or extra) column comes from. Exactly one of ``column``,
    ``const`` and ``template`` is set.

    - ``column``: a source column name; ``values`` recodes its raw values (unlisted values
      pass through and are validated as usual); ``format`` is its date format;
      ``plus_days`` adds the integer days of another source column, or of the first of a
      list of columns with non-zero days (SAP net due date: ``ZFBDT`` plus ``ZBD3T``, else
      ``ZBD2T``, else ``ZBD1T``).
    - ``const``: the same value for every row (e.g. ``currency: USD``).
    - ``template``: a string built from source columns, e.g. ``"{BUKRS}-{BELNR}-{GJAHR}"``;
      ``{_row}`` is the row's position among the file's data rows (1 = the first row under
      the header): an id for exports that have none (``"INV-{_row}"``), stable as long as
      the same file is ingested again.
    - ``default``: used where the source value is empty.
    - ``dtype``: only for extras (``str``, ``date``, ``float``, ``bool``, ``int``).
    """

    column: str | None = None
    const: Any = None
    template: str | None = None
    values: dict[str, str] | None = None
    format: str | None = None
    default: str | None = None
    plus_days: str | tuple[str, ...] | None = None
    dtype: str | None = None

    def source_columns(self) -> set[str]:
        cols = set()
        if self.column:
            cols.add(self.column)
        if self.template:
            cols.update(f for f in _TEMPLATE_FIELD.findall(self.template) if f != ROW_TOKEN)
        if self.plus_days:
            cols.update(_day_columns(self.plus_days))
        return cols


@dataclass(frozen=True)
class Condition:
    """Row filter: ``column`` is non-empty (``present``), equals one of ``values`` (``in``)
    or none of them (``not_in``), or is a number ``gt`` / ``ge`` / ``lt`` / ``le`` than
    ``values[0]`` (a cell that is not a number fails a numeric condition: the row is left
    out and counted as filtered, like any other row the filter excludes)."""

    column: str
    kind: str  # "present" | "in" | "not_in" | "gt" | "ge" | "lt" | "le"
    values: tuple[str, ...] = ()

    def mask(self, frame: pd.DataFrame, read: ReadOptions | None = None) -> pd.Series:
        s = _as_text(frame[self.column])
        if self.kind == "present":
            return s.ne("")
        if self.kind in NUMERIC_WHEN:
            x = _as_number(s, read or ReadOptions())
            bound = float(self.values[0])
            return {"gt": x > bound, "ge": x >= bound, "lt": x < bound,
                    "le": x <= bound}[self.kind].fillna(False).astype(bool)
        hit = s.isin(self.values)
        return hit if self.kind == "in" else ~hit


@dataclass(frozen=True)
class TableMapping:
    """How one contract table is filled from a source file."""

    table: str
    columns: dict[str, ColumnSpec]
    extras: dict[str, ColumnSpec] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    """File-name globs this table is read from (empty: every file given)."""
    when: tuple[Condition, ...] = ()
    """Row filter: a row belongs to this table only if every condition holds."""
    unique: bool = False
    """Collapse identical mapped rows (a table derived from a wider export, e.g. one customer
    row per invoice row); the collapsed rows are reported as ``merged``."""

    def matches(self, path: Path) -> bool:
        return not self.files or any(fnmatch.fnmatch(path.name, g) for g in self.files)

    def source_columns(self) -> set[str]:
        cols: set[str] = set()
        for spec in (*self.columns.values(), *self.extras.values()):
            cols |= spec.source_columns()
        cols.update(c.column for c in self.when)
        return cols


@dataclass
class MappedTable:
    """A source file's rows under contract column names, still unvalidated.

    ``frame`` has one column per mapped contract/extra column, raw text (or native Parquet
    values), its index is the row position in the source file. ``formats`` gives the date
    format per date column; ``provided`` the columns the source actually fills.
    """

    table: str
    frame: pd.DataFrame
    formats: dict[str, str]
    extras: dict[str, str]
    provided: set[str]
    skipped: int = 0
    merged: int = 0


@dataclass(frozen=True)
class Mapping:
    """A parsed, validated mapping file. Build with :meth:`load` or :meth:`from_dict`."""

    tables: dict[str, TableMapping]
    name: str = "contract"
    description: str = ""
    read: ReadOptions = ReadOptions()
    date_format: str = ISO_DATE
    true_values: tuple[str, ...] = ()
    false_values: tuple[str, ...] = ()
    source: str = "<contract>"

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path) -> Mapping:
        """Read a mapping file; ``path`` may also name a shipped mapping (``ibm_ar``)."""
        p = Path(path)
        if not p.exists() and (BUILTIN_DIR / f"{p.name}.yaml").exists() and p.suffix == "":
            p = BUILTIN_DIR / f"{p.name}.yaml"
        if not p.is_file():
            shipped = ", ".join(sorted(x.stem for x in BUILTIN_DIR.glob("*.yaml")))
            raise InputError(f"{path}: mapping file not found (shipped mappings: {shipped})")
        try:
            data = _yaml_load(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"{p}: not a readable YAML mapping: {exc}") from None
        return cls.from_dict(data, source=str(p))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<mapping>") -> Mapping:
        """Validate a mapping given as a dict; errors name ``source`` and the key."""
        where = _Where(source)
        if not isinstance(data, dict):
            raise where.error("", "expected a mapping with a 'tables:' key", data)
        where.allowed("", data, {"name", "description", "read", "date_format", "tables",
                                 "true_values", "false_values"})
        read = data.get("read") or {}
        where.allowed("read", read, {"delimiter", "encoding", "decimal", "thousands",
                                     "skip_rows"})
        for k in ("delimiter", "decimal", "thousands"):
            if read.get(k) is not None and len(str(read[k])) != 1:
                raise where.error(f"read.{k}", "expected a single character", read[k])
        if not isinstance(read.get("skip_rows", 0), int) or read.get("skip_rows", 0) < 0:
            raise where.error("read.skip_rows", "expected a whole number >= 0",
                              read.get("skip_rows"))
        date_format = str(data.get("date_format", ISO_DATE))
        if "%" not in date_format:
            raise where.error("date_format", "expected a strptime format such as %d.%m.%Y",
                              date_format)
        options = ReadOptions(**{k: (int(v) if k == "skip_rows" else (None if v is None
                                 else str(v))) for k, v in read.items()})
        tables_data = data.get("tables")
        if not isinstance(tables_data, dict) or not tables_data:
            raise where.error("tables", "expected at least one table "
                              f"({', '.join(TABLES)})", tables_data)
        tables = {}
        for name, spec in tables_data.items():
            if name not in TABLES:
                raise where.error(f"tables.{name}", f"unknown table; expected one of "
                                  f"{', '.join(TABLES)}", name)
            tables[name] = _table_mapping(where, name, spec)
        return cls(
            tables=tables,
            name=str(data.get("name", Path(source).stem)),
            description=str(data.get("description", "")),
            read=options,
            date_format=date_format,
            true_values=tuple(str(v) for v in data.get("true_values", ()) or ()),
            false_values=tuple(str(v) for v in data.get("false_values", ()) or ()),
            source=source,
        )

    @classmethod
    def contract(cls, table: str, columns: list[str]) -> Mapping:
        """The identity mapping for a file already in contract layout."""
        t = TABLES[table]
        specs = {c.name: ColumnSpec(column=c.name) for c in t.columns if c.name in columns}
        return cls(tables={table: TableMapping(table=table, columns=specs)})

    # ----------------------------------------------------------------- applying
    def tables_for(self, path: Path) -> list[TableMapping]:
        return [tm for tm in self.tables.values() if tm.matches(path)]

    def check_source_columns(self, path: Path, columns: list[str]) -> None:
        """Raise :class:`InputError` naming the file, the mapping and every source column
        the mapping needs for this file that the file lacks."""
        need: dict[str, list[str]] = {}
        for tm in self.tables_for(path):
            for col in sorted(tm.source_columns() - set(columns)):
                need.setdefault(col, []).append(tm.table)
        if need:
            detail = ", ".join(f"{c} (for {'/'.join(t)})" for c, t in need.items())
            raise InputError(
                f"{path}: line 1: missing column(s) {detail} needed by mapping {self.source}; "
                f"the file has: {', '.join(map(str, columns)) or 'no columns'}"
            )

    def apply(self, tm: TableMapping, raw: pd.DataFrame, path: Path) -> MappedTable:
        """Map ``raw`` (one source file) onto table ``tm.table``.

        Raises :class:`InputError` naming the file, the mapping key and the missing columns
        when the file lacks a source column the mapping uses.
        """
        import pandas as pd

        self.check_source_columns(path, list(raw.columns))
        rows = raw
        skipped = 0
        if tm.when:
            keep = tm.when[0].mask(raw, self.read)
            for cond in tm.when[1:]:
                keep &= cond.mask(raw, self.read)
            skipped = int((~keep).sum())
            rows = raw.loc[keep]
        out: dict[str, pd.Series] = {}
        formats: dict[str, str] = {}
        table = TABLES[tm.table]
        all_specs = {**tm.columns, **tm.extras}
        for col, spec in all_specs.items():
            dtype = spec.dtype or table.column(col).dtype
            out[col] = _fill(spec, rows, dtype, self)
            if dtype == "date":
                formats[col] = ISO_DATE if spec.const is not None else (
                    spec.format or self.date_format)
        frame = pd.DataFrame(out, index=rows.index)
        merged = 0
        if tm.unique and len(frame):
            dup = frame.astype("str").duplicated(keep="first")
            merged = int(dup.sum())
            frame = frame.loc[~dup]
        extras = {c: s.dtype or "str" for c, s in tm.extras.items()}
        return MappedTable(tm.table, frame, formats, extras, set(all_specs), skipped, merged)


# ---------------------------------------------------------------------- helpers
def _fill(spec: ColumnSpec, rows: pd.DataFrame, dtype: str, mapping: Mapping) -> pd.Series:
    import pandas as pd

    if spec.const is not None:
        return pd.Series(_const_text(spec.const), index=rows.index, dtype="str")
    if spec.template is not None:
        parts = _TEMPLATE_FIELD.split(spec.template)
        s = pd.Series("", index=rows.index, dtype="str")
        for i, part in enumerate(parts):
            if i % 2 and part == ROW_TOKEN:
                s = s + pd.Series(rows.index + 1, index=rows.index).astype("str")
            else:
                s = s + (_as_text(rows[part]) if i % 2 else part)
        return s
    s = rows[spec.column]
    if spec.values or not _is_native(s, dtype):
        s = _as_text(s)  # recoding and parsing work on text; native Parquet values stay
    if spec.values:
        s = s.replace(spec.values)
    if dtype == "bool" and not _is_native(s, dtype):
        s = _bool_tokens(s, mapping)
    if spec.default is not None:
        s = s.mask(_as_text(s).eq(""), spec.default)
    if spec.plus_days:
        fmt = spec.format or mapping.date_format
        base = pd.to_datetime(_as_text(s), format=fmt, errors="coerce")
        days = pd.Series(0.0, index=rows.index)
        for col in reversed(_day_columns(spec.plus_days)):  # first non-zero column wins
            d = pd.to_numeric(_as_text(rows[col]), errors="coerce").fillna(0)
            days = days.where(d == 0, d)
        shifted = base + pd.to_timedelta(days.fillna(0), unit="D")
        s = shifted.dt.strftime(fmt).where(base.notna(), _as_text(s))
        s = s.astype("str").fillna("")
    return s


def _as_number(s: pd.Series, read: ReadOptions) -> pd.Series:
    """Text cells -> float (NaN where not a number), with the export's separators."""
    import pandas as pd

    text = s.str.strip()
    if read.thousands:
        text = text.str.replace(read.thousands, "", regex=False)
    if read.decimal != ".":
        text = text.str.replace(read.decimal, ".", regex=False)
    return pd.to_numeric(text, errors="coerce")


def _bool_tokens(s: pd.Series, mapping: Mapping) -> pd.Series:
    if not (mapping.true_values or mapping.false_values):
        return s
    recode = {v: "true" for v in mapping.true_values} | {v: "false" for v in
                                                         mapping.false_values}
    return _as_text(s).replace(recode)


def _is_native(s: pd.Series, dtype: str) -> bool:
    import pandas as pd

    if dtype == "date":
        return pd.api.types.is_datetime64_any_dtype(s)
    if dtype in ("float", "int"):
        return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
    if dtype == "bool":
        return pd.api.types.is_bool_dtype(s)
    return False


def _as_text(s: pd.Series) -> pd.Series:
    """Stripped text of a column; missing values become ``""``."""
    return s.astype("str").fillna("").str.strip()


def _const_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


class _Where:
    """Builds mapping errors that name the file and the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, key: str, expected: str, found: Any) -> InputError:
        at = f" key '{key}'" if key else ""
        return InputError(f"{self.source}:{at}: {expected}; found {found!r}")

    def allowed(self, key: str, data: Any, keys: set[str]) -> None:
        if not isinstance(data, dict):
            raise self.error(key, "expected a mapping of keys", data)
        unknown = sorted(set(map(str, data)) - keys)
        if unknown:
            raise self.error(f"{key + '.' if key else ''}{unknown[0]}",
                             f"unknown key; expected one of {', '.join(sorted(keys))}",
                             unknown[0])


def _column_spec(where: _Where, key: str, value: Any, extra: bool) -> ColumnSpec:
    if isinstance(value, str):
        if extra:
            raise where.error(key, "an extra column needs a dtype: "
                              "{column: NAME, dtype: str|date|float|bool|int}", value)
        return ColumnSpec(column=value)
    where.allowed(key, value, {"column", "const", "template", "values", "format", "default",
                               "plus_days", "dtype"})
    sources = [k for k in ("column", "const", "template") if value.get(k) is not None]
    if len(sources) != 1:
        raise where.error(key, "expected exactly one of column, const, template", value)
    values = value.get("values")
    if values is not None:
        if not isinstance(values, dict):
            raise where.error(f"{key}.values", "expected a mapping raw value -> value", values)
        values = {_const_text(k): _const_text(v) for k, v in values.items()}
    dtype = value.get("dtype")
    if extra and dtype not in EXTRA_DTYPES:
        raise where.error(f"{key}.dtype", f"expected one of {', '.join(EXTRA_DTYPES)}", dtype)
    if not extra and dtype is not None:
        raise where.error(f"{key}.dtype", "dtype is fixed by the contract; only extras "
                          "take a dtype", dtype)
    fmt = value.get("format")
    if fmt is not None and "%" not in str(fmt):
        raise where.error(f"{key}.format", "expected a strptime format such as %d.%m.%Y", fmt)
    return ColumnSpec(
        column=None if value.get("column") is None else str(value["column"]),
        const=value.get("const"),
        template=value.get("template"),
        values=values,
        format=None if fmt is None else str(fmt),
        default=None if value.get("default") is None else _const_text(value["default"]),
        plus_days=_plus_days(where, key, value.get("plus_days")),
        dtype=dtype,
    )


def _day_columns(plus_days: str | tuple[str, ...]) -> tuple[str, ...]:
    return (plus_days,) if isinstance(plus_days, str) else tuple(plus_days)


def _plus_days(where: _Where, key: str, value: Any) -> str | tuple[str, ...] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise where.error(f"{key}.plus_days", "expected a column name or a list of them", value)


def _table_mapping(where: _Where, name: str, spec: Any) -> TableMapping:
    key = f"tables.{name}"
    where.allowed(key, spec, {"columns", "extras", "files", "when", "unique"})
    table = TABLES[name]
    cols_data = spec.get("columns")
    if not isinstance(cols_data, dict):
        raise where.error(f"{key}.columns", "expected a mapping contract column -> source",
                          cols_data)
    columns = {}
    for col, value in cols_data.items():
        if col not in table.column_names:
            raise where.error(f"{key}.columns.{col}", f"not a column of {name}; expected one of "
                              f"{', '.join(table.column_names)}", col)
        columns[col] = _column_spec(where, f"{key}.columns.{col}", value, extra=False)
    missing = [c.name for c in table.columns if c.required and c.name not in columns]
    if missing:
        raise where.error(f"{key}.columns", f"required column(s) {', '.join(missing)} "
                          "not mapped", sorted(columns))
    extras = {}
    for col, value in (spec.get("extras") or {}).items():
        if not _NAME.match(str(col)) or col in table.column_names:
            raise where.error(f"{key}.extras.{col}", "expected a new lower_snake_case column "
                              "name that is not a contract column", col)
        extras[col] = _column_spec(where, f"{key}.extras.{col}", value, extra=True)
    files = spec.get("files") or ()
    if isinstance(files, str):
        files = (files,)
    when = spec.get("when") or []
    conditions = []
    for i, cond in enumerate(when if isinstance(when, list) else [when]):
        at = f"{key}.when" + (f"[{i}]" if isinstance(when, list) else "")
        kinds_known = ("present", "in", "not_in", *NUMERIC_WHEN)
        where.allowed(at, cond, {"column", *kinds_known})
        kinds = [k for k in kinds_known if k in cond]
        if "column" not in cond or len(kinds) != 1:
            raise where.error(at, "expected {column: NAME, present: true} or "
                              "{column: NAME, in: [...]} or {column: NAME, not_in: [...]} or "
                              "{column: NAME, gt|ge|lt|le: NUMBER}", cond)
        vals = cond[kinds[0]]
        if kinds[0] in NUMERIC_WHEN:
            if isinstance(vals, bool) or not isinstance(vals, int | float):
                raise where.error(f"{at}.{kinds[0]}", "expected a number, e.g. "
                                  f"{{column: {cond['column']}, {kinds[0]}: 0}}", vals)
            vals = (repr(float(vals)),)
        else:
            vals = () if kinds[0] == "present" else tuple(_const_text(v) for v in (
                vals if isinstance(vals, list) else [vals]))
        conditions.append(Condition(str(cond["column"]), kinds[0], vals))
    return TableMapping(table=name, columns=columns, extras=extras,
                        files=tuple(map(str, files)), when=tuple(conditions),
                        unique=bool(spec.get("unique", False)))


def _yaml_load(text: str) -> Any:
    """YAML with only ``true``/``false`` as booleans (so ``Yes``/``No`` stay strings)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ValueError(str(exc).replace("\n", " ")) from None
