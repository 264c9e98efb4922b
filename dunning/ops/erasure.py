"""Erasure beyond the store's tables (GDPR art. 17): rendered letters and quarantine files.

``dunning forget`` erases a customer's name in the store and the personal parts of their
audit records (``dunning.ops.audit.forget_customer``). Personal data also lands in files:

- **rendered letters** (``<invoice>_<kind>_<date>.txt|html|pdf``): every letter file the CLI
  writes is registered in ``ops_letter_files`` (path, invoice, customer); ``forget`` redacts
  the customer's personal values in ``.txt``/``.html`` copies in place (atomically) and
  deletes ``.pdf`` copies, which cannot be redacted in place. Letter folders given with
  ``--letters DIR`` are scanned too (letters rendered before the registry existed);
- **quarantine files** (``<store folder>/quarantine/*.csv``): in rows that name the customer
  id every original value is blanked but the ids, and the reason loses the values it
  quoted; the customer's personal values are replaced wherever else they appear;
- **the customer row and its versions**: ``name``, ``email`` and ``address`` of the current
  and every superseded version; event notes of the customer are erased.

What it cannot reach is listed exactly: registered letter files that are gone from their
path (moved or deleted outside dunning), files it may not rewrite, folders that do not
exist; and, always, copies outside dunning's files (sent emails, printed letters, exports,
backups).
"""

from __future__ import annotations

import csv
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.files import atomic_write_text

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from engine.store import Store

ERASED = "[erased]"
PERSONAL = ("name", "email", "address")  # customer columns holding personal data
LETTER_SUFFIXES = (".txt", ".html", ".pdf")
_META = ("source_file", "line", "field")
_SCHEMA = """CREATE TABLE IF NOT EXISTS ops_letter_files (
    path VARCHAR NOT NULL, invoice_id VARCHAR, customer_id VARCHAR, written_at TIMESTAMP)"""
ALWAYS_UNREACHABLE = ("copies outside dunning's files: letters and emails already sent, "
                      "printouts, exports (`dunning export`, --out files) and backups")


@dataclass
class FileErasure:
    """What :func:`erase_files` did: paths per outcome, and what it could not reach."""

    letters_redacted: list[Path] = field(default_factory=list)
    letters_deleted: list[Path] = field(default_factory=list)
    quarantine_files: list[Path] = field(default_factory=list)
    versions: int = 0
    event_notes: int = 0
    unreachable: list[str] = field(default_factory=list)


def register_letter_files(store: Store, paths: Iterable[Path]) -> None:
    """Remember rendered letter files (name ``<invoice>_<kind>_<date>.<fmt>``) so that
    ``forget`` can reach them later."""
    import datetime as dt

    rows = []
    with store.connect() as con:
        con.execute(_SCHEMA)
        for p in paths:
            invoice = Path(p).name.split("_", 1)[0]
            cust = con.execute("SELECT customer_id FROM invoices WHERE invoice_id = ?",
                               [invoice]).fetchone()
            rows.append([str(Path(p).resolve()), invoice, cust[0] if cust else None,
                         dt.datetime.now(dt.UTC).replace(tzinfo=None)])
        if rows:
            con.executemany("INSERT INTO ops_letter_files VALUES (?, ?, ?, ?)", rows)


def erase_files(store: Store, customer_id: str, personal: Sequence[str],
                letter_dirs: Sequence[Path] = ()) -> FileErasure:
    """Erase ``customer_id``'s personal data outside the customers table (module docstring).

    ``personal``: the personal values to redact (every name, e-mail, address the customer
    ever had), collected *before* the store's copies are erased.
    """
    out = FileErasure()
    values = sorted({v for v in personal if v and len(v.strip()) >= 2}, key=len, reverse=True)
    with store.connect() as con:
        con.execute(_SCHEMA)
        invoices = [r[0] for r in con.execute(
            "SELECT invoice_id FROM invoices WHERE customer_id = ?", [customer_id]).fetchall()]
        registered = [Path(r[0]) for r in con.execute(
            "SELECT DISTINCT path FROM ops_letter_files WHERE customer_id = ? ORDER BY 1",
            [customer_id]).fetchall()]
        out.versions = int(con.execute(
            "SELECT count(*) FROM customers_versions WHERE customer_id = ? AND (name IS NOT "
            "NULL OR email IS NOT NULL OR address IS NOT NULL)", [customer_id]).fetchone()[0])
        for table in ("customers", "customers_versions"):
            con.execute(f"UPDATE {table} SET {', '.join(f'{c} = NULL' for c in PERSONAL)} "
                        "WHERE customer_id = ?", [customer_id])
        out.event_notes = int(con.execute(
            "SELECT count(*) FROM events WHERE customer_id = ? AND note IS NOT NULL",
            [customer_id]).fetchone()[0])
        con.execute("UPDATE events SET note = NULL WHERE customer_id = ?", [customer_id])
    letters = set(registered)
    for folder in letter_dirs:
        if not Path(folder).is_dir():
            out.unreachable.append(f"letter folder {folder}: not found")
            continue
        letters |= {p.resolve() for p in Path(folder).iterdir()
                    if p.suffix in LETTER_SUFFIXES and p.name.split("_", 1)[0] in invoices}
    for path in sorted(letters):
        _erase_letter(path, values, out)
    qdir = store.quarantine_dir
    if qdir.is_dir():
        for path in sorted(qdir.glob("*.csv")):
            _erase_quarantine(path, customer_id, values, out)
    out.unreachable.append(ALWAYS_UNREACHABLE)
    return out


def _erase_letter(path: Path, values: Sequence[str], out: FileErasure) -> None:
    if not path.exists():
        out.unreachable.append(f"letter {path}: registered but no longer there (moved or "
                               "deleted outside dunning)")
        return
    try:
        if path.suffix == ".pdf":
            path.unlink()
            out.letters_deleted.append(path)
            return
        text = path.read_text(encoding="utf-8")
        new = _redact(text, values, escape=path.suffix == ".html")
        if new != text:
            atomic_write_text(path, new)
        out.letters_redacted.append(path)
    except OSError as exc:
        out.unreachable.append(f"letter {path}: {exc.strerror or exc}")


def _redact(text: str, values: Sequence[str], escape: bool = False) -> str:
    for v in values:
        text = text.replace(v, ERASED)
        if escape:
            text = text.replace(html.escape(v), ERASED).replace(html.escape(v, quote=False),
                                                                ERASED)
    return text


def _erase_quarantine(path: Path, customer_id: str, values: Sequence[str],
                      out: FileErasure) -> None:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        out.unreachable.append(f"quarantine file {path}: not readable ({exc})")
        return
    if not rows:
        return
    header, changed = rows[0], False
    for row in rows[1:]:
        new = _erase_row(header, row, customer_id, values)
        if new != row:
            row[:] = new
            changed = True
    if not changed:
        return
    buf = _csv_text(rows)
    try:
        atomic_write_text(path, buf)
    except OSError as exc:
        out.unreachable.append(f"quarantine file {path}: cannot rewrite ({exc.strerror})")
        return
    out.quarantine_files.append(path)


def _erase_row(header: list[str], row: list[str], customer_id: str,
               values: Sequence[str]) -> list[str]:
    """A row naming the customer id keeps only its meta columns and the ids; any other
    row only loses the customer's personal values."""
    if customer_id not in row:
        return [_redact(c, values) for c in row]
    keep = []
    for name, cell in zip(header, row, strict=False):
        if name in _META or cell == customer_id or name.endswith("_id"):
            keep.append(_redact(cell, values))
        elif name == "reason":
            keep.append(" | ".join(p.split("; found '")[0] for p in cell.split(" | ")))
        else:
            keep.append(ERASED if cell else cell)
    return keep + row[len(header):]


def _csv_text(rows: list[list[str]]) -> str:
    import io

    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_ALL).writerows(rows)
    return buf.getvalue()


def personal_values(store: Store, customer_id: str) -> list[str]:
    """Every personal value the store holds for the customer: current and past names,
    e-mail addresses and postal addresses (each address line too)."""
    cols = ", ".join(PERSONAL)
    with store.connect() as con:
        rows = con.execute(
            f"SELECT {cols} FROM customers WHERE customer_id = ? UNION "
            f"SELECT {cols} FROM customers_versions WHERE customer_id = ?",
            [customer_id, customer_id]).fetchall()
    values = {str(v) for r in rows for v in r if v}
    values |= {line.strip() for v in list(values) for line in v.split(";") if line.strip()}
    return sorted(values)


def summary(report: FileErasure) -> list[str]:
    """Console lines for :class:`FileErasure`."""
    lines = [f"letters: {len(report.letters_redacted)} redacted, "
             f"{len(report.letters_deleted)} PDF(s) deleted; quarantine files: "
             f"{len(report.quarantine_files)} redacted; past versions: {report.versions}, "
             f"event notes: {report.event_notes} erased"]
    lines += [f"not reached: {u}" for u in report.unreachable]
    return lines
