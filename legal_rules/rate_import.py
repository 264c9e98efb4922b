"""Import published reference rates (ECB, Bundesbank CSV downloads) as rate periods.

``dunning rates import FILE --name base_rate --jurisdiction DE`` reads one time series and
appends the periods it proves to a rates file, so a legal team updates rates without code.

Formats read (detected from the text, one series per file):

* **SDMX-CSV** (the ECB Data API ``format=csvdata`` and the Bundesbank web service): a header
  row with ``TIME_PERIOD`` and ``OBS_VALUE`` columns.
* **ECB Data Portal download**: a header ``"DATE","TIME PERIOD","<title> (<series key>)"``;
  the last column holds the values.
* **Bundesbank time-series CSV** (BBK-CSV, e.g. ``BBIN1.M.DE.BBK.BBKBAS2.EUR.ME``, the base
  rate under § 247 BGB): ``;`` or ``,`` separated, some lines of titles and metadata, then
  rows ``2026-01;1,27;`` (decimal comma allowed; ``.`` or an empty cell is no value).

Dates are ``YYYY-MM-DD`` (daily, or the day a rate changed) or ``YYYY-MM`` (monthly; the
value holds for that month). Two ways to turn observations into periods (``mode``):

* ``half-year`` (default; § 247 BGB, Directive 2011/7/EU art. 2(7)-(8), the UK Order): the
  rate in force on 1 January / 1 July applies to the whole half-year. A half-year is written
  only when an observation covers its first day.
* ``change``: a period from each change to the day before the next one; the last period ends
  where the observations end (nothing is assumed beyond the data).

Nothing is guessed: a row that is neither metadata nor a date with a number is an error
naming its line.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from engine.errors import InputError

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")
MODES = ("half-year", "change")


@dataclass(frozen=True)
class Observation:
    """A value (percent) in force from ``start`` through ``end`` (inclusive)."""

    start: date
    end: date
    value: float
    line: int


@dataclass(frozen=True)
class Period:
    value: float
    valid_from: date
    valid_to: date


def _month_end(d: date) -> date:
    nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def _span(text: str) -> tuple[date, date] | None:
    text = text.strip().strip('"')
    try:
        if _DAY.match(text):
            d = date.fromisoformat(text)
            return d, d
        if _MONTH.match(text):
            d = date.fromisoformat(text + "-01")
            return d, _month_end(d)
    except ValueError:
        return None
    return None


def _number(text: str) -> float | None:
    """A value cell: ``1.27``, ``1,27``, or None for no value (``.``, ``-``, empty)."""
    text = text.strip().strip('"').replace("\u00a0", "")
    if text in ("", ".", "-", "NaN", "n/a"):
        return None
    return float(text.replace(",", "."))


def read_observations(text: str, source: str = "file") -> list[Observation]:
    """Observations of the one series in ``text`` (any supported format), sorted by date."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines:
        raise InputError(f"{source}: empty file; expected an ECB or Bundesbank CSV download")
    # Bundesbank files use ";" (and "," as the decimal mark); the ECB's use ","
    semis = sum(ln.count(";") for ln in lines[:20])
    delim = ";" if semis and semis >= sum(ln.count(",") for ln in lines[:20]) else ","
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delim))
    date_col, value_col, first = 0, 1, 0
    header = [c.strip().upper() for c in rows[0]]
    if "TIME_PERIOD" in header and "OBS_VALUE" in header:  # SDMX-CSV
        date_col, value_col, first = header.index("TIME_PERIOD"), header.index("OBS_VALUE"), 1
    elif header[:2] == ["DATE", "TIME PERIOD"]:  # ECB Data Portal download
        date_col, value_col, first = 0, len(header) - 1, 1
    out: list[Observation] = []
    for i, row in enumerate(rows[first:], start=first + 1):
        if len(row) <= max(date_col, value_col):
            continue  # a title or blank line
        span = _span(row[date_col])
        if span is None:
            if out:  # after the data: footnotes only, never more data
                if any(_span(c) for c in row):
                    raise InputError(f"{source}:{i}: expected a date YYYY-MM-DD or YYYY-MM in "
                                     f"column {date_col + 1}, found {row[date_col]!r}")
            continue  # metadata before the data (titles, unit, source)
        try:
            value = _number(row[value_col])
        except ValueError:
            raise InputError(f"{source}:{i}: expected a rate in percent in column "
                             f"{value_col + 1}, found {row[value_col]!r}") from None
        if value is not None:
            out.append(Observation(span[0], span[1], value, i))
    if not out:
        raise InputError(f"{source}: no observations found; expected rows of a date "
                         "(YYYY-MM-DD or YYYY-MM) and a rate, as in the ECB or Bundesbank "
                         "CSV downloads")
    out.sort(key=lambda o: o.start)
    for a, b in zip(out, out[1:], strict=False):
        if b.start <= a.end:
            raise InputError(f"{source}:{b.line}: {b.start} is given twice (also line {a.line})")
    return out


def _in_force(obs: list[Observation], day: date) -> Observation | None:
    """The observation in force on ``day``: the last one starting on or before it, if the
    data reach ``day`` (its own span, or a later observation exists)."""
    found = None
    for o in obs:
        if o.start > day:
            return found
        found = o
    return found if found is not None and day <= found.end else None


def to_periods(obs: list[Observation], mode: str = "half-year",
               since: date | None = None) -> list[Period]:
    """Rate periods proven by ``obs`` (see the module docstring for ``mode``), those ending
    on or after ``since`` only."""
    periods = _periods(obs, mode)
    return [p for p in periods if since is None or p.valid_to >= since]


def _periods(obs: list[Observation], mode: str) -> list[Period]:
    if mode not in MODES:
        raise InputError(f"--mode: expected one of {', '.join(MODES)}, found {mode!r}")
    if mode == "change":
        out: list[Period] = []
        for o in obs:
            if out and out[-1].value == o.value:  # the same rate still (e.g. after a weekend)
                out[-1] = Period(o.value, out[-1].valid_from, o.end)
                continue
            if out:  # a change: the previous rate held until the day before it
                prev = out[-1]
                out[-1] = Period(prev.value, prev.valid_from, o.start - timedelta(1))
            out.append(Period(o.value, o.start, o.end))
        return out
    periods = []
    year, half = obs[0].start.year, 1 if obs[0].start.month <= 6 else 2
    while True:
        first = date(year, 1 if half == 1 else 7, 1)
        if first > obs[-1].end:
            break
        last = date(year, 6, 30) if half == 1 else date(year, 12, 31)
        o = _in_force(obs, first)
        if o is not None:
            periods.append(Period(o.value, first, last))
        year, half = (year, 2) if half == 1 else (year + 1, 1)
    return periods


def rate_yaml(periods: list[Period], name: str, jurisdiction: str, citation: str) -> str:
    """YAML list items for the ``rates:`` section (indented like ``rates.yaml``)."""
    out = []
    for p in periods:
        out.append(f"  - name: {name}\n    jurisdiction: {jurisdiction}\n"
                   f"    value: {p.value:g}\n    valid_from: {p.valid_from}\n"
                   f"    valid_to: {p.valid_to}\n    citation: \"{citation}\"\n")
    return "".join(out)


def import_rates(csv_path: Path, rates_path: Path, name: str, jurisdiction: str,
                 citation: str, mode: str = "half-year", since: date | None = None,
                 write: bool = True) -> tuple[list[Period], int]:
    """Append the periods of ``csv_path`` to ``rates_path`` (atomically), skipping periods
    already there with the same value. Returns ``(added, skipped)``.

    Raises :class:`InputError` (nothing written) when a period overlaps one already in the
    file with a different value, or the result does not load (``rules check`` semantics).
    """
    from legal_rules.loader import load_rules, parse_file

    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = csv_path.read_text(encoding="latin-1")
    except OSError as exc:
        raise InputError(f"{csv_path}: cannot read: {exc.strerror}") from None
    periods = to_periods(read_observations(text, str(csv_path)), mode, since)
    if not periods:
        raise InputError(f"{csv_path}: the observations prove no complete {mode} period "
                         "(a half-year needs a value in force on 1 January or 1 July)")
    _, existing, problems, _ = parse_file(rates_path)
    if problems:
        raise InputError(f"{rates_path}: fix the file first: {problems[0]}")
    have = [r for r in existing if getattr(r, "value", None) is not None
            and (r.name, r.jurisdiction) == (name, jurisdiction)]
    added, skipped = [], 0
    for p in periods:
        same = [r for r in have if r.valid_from <= p.valid_to
                and (r.valid_to is None or p.valid_from <= r.valid_to)]
        if any(r.value != p.value for r in same):
            r = next(r for r in same if r.value != p.value)
            raise InputError(f"{csv_path}: {name}({jurisdiction}) {p.value:g} for "
                             f"{p.valid_from}..{p.valid_to} contradicts {r.value:g} at "
                             f"{r.source}; nothing written")
        if same:
            skipped += 1
        else:
            added.append(p)
    if added and write:
        original = rates_path.read_text(encoding="utf-8")
        tops = re.findall(r"^([a-z_]+):", original, flags=re.M)
        if "rates" not in tops:
            original = original.rstrip("\n") + "\nrates:\n"
        elif tops[-1] != "rates":
            raise InputError(f"{rates_path}: put the rates: section last in the file, so "
                             "imported periods can be appended to it; nothing written")
        new = original.rstrip("\n") + "\n" + rate_yaml(added, name, jurisdiction, citation)
        tmp = rates_path.with_name(f".{rates_path.name}.tmp")
        tmp.write_text(new, encoding="utf-8")
        try:
            load_rules(tmp)  # the result must load on its own (overlaps, schema)
        except InputError as exc:
            tmp.unlink()
            raise InputError(f"{rates_path}: the imported periods do not load: {exc}") from None
        tmp.replace(rates_path)
    return added, skipped
