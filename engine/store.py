"""The store: one embedded DuckDB file holding the four contract tables.

Every other part of dunning reads its data from here::

    from engine.store import Store

    store = Store("dunning-data/dunning.duckdb")   # creates the folder and the schema
    t = store.tables(as_of=date(2024, 6, 30))      # only what was known on 2024-06-30
    t["invoices"]                                   # DataFrame, one row per invoice
    store.latest_date()                             # date of the latest event, or None
    with store.connect() as con:                    # your own tables in the same file
        con.execute("CREATE TABLE IF NOT EXISTS review_queue (...)")

Frames returned by :meth:`Store.tables` have the contract columns (``engine.contract``) in
contract order, followed by any *extra* columns a mapping declared (e.g. ``paperless_bill``
for the IBM file), with these dtypes:

========  ======================  ====================================================
contract  pandas dtype            missing values
========  ======================  ====================================================
str       ``str`` (pandas 3)      ``NaN``
date      ``datetime64[ns]``      ``NaT``
float     ``float64``             ``NaN``
bool      ``bool``                never: ingest stores a missing bool as ``False``
int       ``Int64`` (nullable)    ``<NA>``
========  ======================  ====================================================

Rows are sorted by the table key. The store opens a DuckDB connection per call (DuckDB lets
one process write a file at a time), so keep :meth:`connect` blocks short.

Several processes, one file: every opener takes the store's cross-process lock first
(``fcntl.flock`` on ``<store>.lock``, :class:`StoreLock`), shared by the threads of a
process, and the DuckDB file is open only while it is held. A process that finds the lock
taken waits (``$DUNNING_STORE_WAIT`` seconds, default 600; :func:`configure_lock`) and can
say who holds it (the holder writes its command, pid and start time into the lock file),
instead of failing on DuckDB's own lock; when the wait runs out it raises
:class:`StoreBusy` naming the holder. A *yielding* process (``dunning serve``) gives the
store up as soon as another process waits (a waiter holds a shared ``flock`` on
``<store>.lock.wait``) and takes no new lease until that process has had its turn.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from engine.config import DEFAULT_DB
from engine.contract import TABLE_ORDER, TABLES, Table
from engine.errors import DunningError, InputError

if TYPE_CHECKING:  # heavy imports stay out of `dunning --help`
    import duckdb
    import numpy as np
    import pandas as pd


SQL_TYPES: dict[str, str] = {
    "str": "VARCHAR",
    "date": "DATE",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "int": "BIGINT",
}
_DTYPE_OF_SQL = {v: k for k, v in SQL_TYPES.items()}

# The date column that places each table's rows in time (None: customers have no event date).
EVENT_DATE: dict[str, str | None] = {
    "customers": None,
    "invoices": "invoice_date",
    "payments": "payment_date",
    "actions": "action_date",
}
# Columns whose dates count as events for :meth:`Store.latest_date`.
_EVENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "invoices": ("invoice_date", "dispute_opened", "dispute_resolved"),
    "payments": ("payment_date",),
    "actions": ("action_date",),
    "events": ("effective_date",),
}
_META_TABLE = "dunning_extra_columns"
WITH_EVENTS: tuple[str, ...] = (*TABLE_ORDER, "events")
"""``Store.tables(as_of, names=WITH_EVENTS)``: the contract tables and the events, what
``legal_rules.from_tables.invoice_states`` needs to see everything recorded."""
# Master-data tables whose rows may change (ingest of a changed row, `dunning record`); the
# superseded versions live in ``<table>_versions`` (see :meth:`Store.tables`).
VERSIONED: tuple[str, ...] = ("customers", "invoices")
VERSION_COLUMNS: dict[str, str] = {
    "valid_from": "DATE",       # first day this version applied (NULL: from the start)
    "valid_to": "DATE",         # first day the next version applies (its effective date)
    "recorded_at": "TIMESTAMP",  # when the next version was recorded (UTC)
    "changed_fields": "VARCHAR",  # fields the next version changed, `;`-separated
}
EVENTS_TABLE = "events"
EVENTS_SQL = """
CREATE TABLE IF NOT EXISTS events (
    event_id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    effective_date DATE NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    customer_id VARCHAR NOT NULL,
    invoice_id VARCHAR,
    amount DOUBLE,
    principal DOUBLE,
    interest_fees DOUBLE,
    promised_date DATE,
    channel VARCHAR,
    changed_fields VARCHAR,
    recorded_by VARCHAR,
    note VARCHAR
)"""
EVENT_COLUMNS: dict[str, str] = {
    "event_id": "str", "kind": "str", "effective_date": "date", "recorded_at": "datetime",
    "customer_id": "str", "invoice_id": "str", "amount": "float", "principal": "float",
    "interest_fees": "float", "promised_date": "date", "channel": "str",
    "changed_fields": "str", "recorded_by": "str", "note": "str",
}


def create_table_sql(table: Table) -> str:
    """``CREATE TABLE IF NOT EXISTS`` statement for one contract table."""
    cols = []
    for c in table.columns:
        null = " NOT NULL" if (c.required or c.dtype == "bool" or c.name == table.key) else ""
        cols.append(f'"{c.name}" {SQL_TYPES[c.dtype]}{null}')
    return f'CREATE TABLE IF NOT EXISTS "{table.name}" ({", ".join(cols)})'


class StoreError(DunningError):
    """The store file cannot be opened (locked by another process, corrupted, not DuckDB)."""


class StoreBusy(StoreError):
    """Another process held the store longer than this process was willing to wait.

    ``holder``: who holds it (``"dunning recommend, pid 4242, since 04:10:03 UTC"``);
    ``waited_s``: how long this opener waited; ``retry_after_s``: a polite pause before
    trying again (whole seconds, for an HTTP ``Retry-After``).
    """

    def __init__(self, path: Path, holder: str, waited_s: float) -> None:
        self.path, self.holder, self.waited_s = path, holder, waited_s
        self.retry_after_s = 5
        super().__init__(f"store {path}: in use by {holder}; waited {waited_s:.0f} s for it "
                         f"(set ${LOCK_WAIT_ENV} to wait longer, or stop that process)")


LOCK_WAIT_ENV = "DUNNING_STORE_WAIT"
DEFAULT_LOCK_WAIT_S = 600.0
LOCK_POLL_S = 0.02  # how often a waiter tries the lock again (seconds)


@dataclass
class LockSettings:
    """How this process shares the store with others (one instance: :data:`LOCK`).

    ``label``: who this process is, shown to waiters (``dunning ingest``); ``wait_s``: how
    long an opener waits for another process before :class:`StoreBusy` (``None``:
    ``$DUNNING_STORE_WAIT`` or :data:`DEFAULT_LOCK_WAIT_S`); ``yielding``: give the store
    up as soon as another process waits (the server); ``on_wait(holder, waited_s)``: called
    about every 0.2 s while waiting, and once with ``waited_s = -1`` when the wait ends.
    """

    label: str = ""
    wait_s: float | None = None
    yielding: bool = False
    on_wait: Callable[[str, float], None] | None = None

    def wait_seconds(self) -> float:
        override = _WAIT_OVERRIDE.get()
        if override is not None:
            return override
        if self.wait_s is not None:
            return self.wait_s
        raw = os.environ.get(LOCK_WAIT_ENV, "")
        try:
            return float(raw) if raw else DEFAULT_LOCK_WAIT_S
        except ValueError:
            raise InputError(f"${LOCK_WAIT_ENV}: {raw!r}; expected seconds, e.g. 600") from None


LOCK = LockSettings()
_WAIT_OVERRIDE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "dunning_store_wait", default=None)


def configure_lock(*, label: str | None = None, wait_s: float | None = None,
                   yielding: bool | None = None,
                   on_wait: Callable[[str, float], None] | None = None) -> LockSettings:
    """Set how this process shares stores with others (see :class:`LockSettings`)."""
    if label is not None:
        LOCK.label = label
    if wait_s is not None:
        LOCK.wait_s = wait_s
    if yielding is not None:
        LOCK.yielding = yielding
    if on_wait is not None:
        LOCK.on_wait = on_wait
    return LOCK


@contextlib.contextmanager
def lock_wait(seconds: float) -> Iterator[None]:
    """Inside the block (this thread or task), openers wait up to ``seconds`` for the store
    (e.g. a page read 3 s, a clerk's decision 20 s)."""
    token = _WAIT_OVERRIDE.set(seconds)
    try:
        yield
    finally:
        _WAIT_OVERRIDE.reset(token)


class StoreLock:
    """The cross-process lock of one store file, shared by the threads of this process.

    The first lease of the process takes an exclusive ``flock`` on ``<store>.lock`` and
    writes who holds it there; the last lease given back releases it. Get the one instance
    per file with :func:`store_lock`. Leases nest within a thread (a lease held by the
    calling thread is always extended, so nested :meth:`Store.connect` never waits on
    itself).
    """

    def __init__(self, db: Path) -> None:
        self.db = db
        self.path = db.with_name(db.name + ".lock")
        self.wait_path = db.with_name(db.name + ".lock.wait")
        self._cond = threading.Condition()
        self._users = 0
        self._fd: int | None = None
        self._taking = False
        self._mine = threading.local()

    @property
    def held(self) -> bool:
        """This process holds the lock now."""
        return self._fd is not None

    def acquire(self, wait_s: float | None = None, nested: bool = True) -> None:
        """Take a lease, waiting up to ``wait_s`` seconds (default: :data:`LOCK`) for other
        processes; raises :class:`StoreBusy` naming the holder when the wait runs out.
        ``nested=False``: a lease not tied to the calling thread (released by another)."""
        wait_s = LOCK.wait_seconds() if wait_s is None else wait_s
        start = time.monotonic()
        deadline = start + wait_s
        with self._cond:
            while True:
                depth = getattr(self._mine, "depth", 0) if nested else 0
                if self._fd is not None and (depth or not self._give_way()):
                    self._grant(nested)
                    return
                if self._fd is None and not self._taking and not self._give_way():
                    self._taking = True
                    break
                if time.monotonic() >= deadline:
                    raise StoreBusy(self.db, self.holder(), time.monotonic() - start)
                self._cond.wait(LOCK_POLL_S)
        fd = None
        try:
            fd = self._take(deadline, start)
        finally:
            with self._cond:
                self._taking = False
                if fd is not None:
                    self._fd = fd
                    self._grant(nested)
                self._cond.notify_all()

    def release(self, nested: bool = True) -> None:
        """Give a lease back; the last one releases the file lock."""
        with self._cond:
            if nested:
                self._mine.depth -= 1
            self._users -= 1
            if self._users == 0 and self._fd is not None:
                os.close(self._fd)  # closing the descriptor releases the flock
                self._fd = None
            self._cond.notify_all()

    @contextlib.contextmanager
    def lease(self, wait_s: float | None = None) -> Iterator[None]:
        self.acquire(wait_s)
        try:
            yield
        finally:
            self.release()

    def others_waiting(self) -> bool:
        """Another process waits for this store (holds ``<store>.lock.wait`` shared)."""
        import fcntl

        fd = _open_lock_file(self.wait_path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # also releases the probe's lock
        return False

    def holder(self) -> str:
        """Who holds the lock, as its holder wrote it (``"?"`` when unreadable)."""
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return "?"
        return text[:200] or "another process"

    def _give_way(self) -> bool:
        return LOCK.yielding and self.others_waiting()

    def _grant(self, nested: bool) -> None:
        self._users += 1
        if nested:
            self._mine.depth = getattr(self._mine, "depth", 0) + 1

    def _take(self, deadline: float, start: float) -> int:
        """Poll the file lock until ``deadline``; while waiting, a non-yielding process
        marks itself as waiting (so a yielding holder lets go) and reports progress."""
        import fcntl

        fd = _open_lock_file(self.path)
        marker, told = None, 0.0
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
                if marker is None and not LOCK.yielding:
                    marker = _open_lock_file(self.wait_path)
                    fcntl.flock(marker, fcntl.LOCK_SH)
                now = time.monotonic()
                if now >= deadline:
                    raise StoreBusy(self.db, self.holder(), now - start)
                if LOCK.on_wait is not None and now - told >= 0.2:
                    LOCK.on_wait(self.holder(), now - start)
                    told = now
                time.sleep(LOCK_POLL_S)
            since = datetime.now().astimezone().strftime("%H:%M:%S %Z")
            with contextlib.suppress(OSError):  # opened read-only (another user's file)
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{LOCK.label or _process_label()}, pid {os.getpid()}, "
                              f"since {since}\n".encode(), 0)
            return fd
        except BaseException:
            os.close(fd)
            raise
        finally:
            if marker is not None:
                os.close(marker)
            if told and LOCK.on_wait is not None:
                LOCK.on_wait("", -1.0)


_LOCKS: dict[Path, StoreLock] = {}
_LOCKS_GUARD = threading.Lock()


def store_lock(db: str | os.PathLike[str]) -> StoreLock:
    """The one :class:`StoreLock` of this process for the store file ``db``."""
    key = Path(os.path.abspath(db))
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = StoreLock(key)
        return lock


def _open_lock_file(path: Path) -> int:
    """A descriptor of a lock file beside the store (created, mode 0666 less the umask, so
    that every user who may open the store may lock it); read-only when the file is another
    user's (``flock`` works on it all the same). Raises :class:`StoreError` saying why not."""
    store = path.with_name(path.name.rsplit(".lock", 1)[0])
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:
        try:
            return os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise StoreError(f"store {store}: cannot open its lock file {path} "
                             f"({exc.strerror}); every process that opens the store needs "
                             "to read it") from None
    except OSError as exc:
        raise StoreError(f"store {store}: cannot create its lock file {path} "
                         f"({exc.strerror}); the store's folder must be writable") from None


def _forget_locks_in_child() -> None:
    """After ``fork``: the child starts without leases. Its copies of the parent's lock
    descriptors are closed (the parent's own stay open, so the parent keeps the lock); a
    child that opens the store takes the lock as a process of its own."""
    for lock in _LOCKS.values():
        if lock._fd is not None:
            os.close(lock._fd)
        lock._fd, lock._users, lock._taking = None, 0, False
        lock._cond = threading.Condition()
        lock._mine = threading.local()


os.register_at_fork(after_in_child=_forget_locks_in_child)


def _process_label() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return " ".join([name, *sys.argv[1:2]]) if name in ("dunning", "__main__.py") \
        else name


class Store:
    """An embedded DuckDB file with the four contract tables, the ``events`` table and the
    superseded versions of master data (``customers_versions``, ``invoices_versions``).

    Parameters
    ----------
    path:
        The DuckDB file; its parent folder and the schema are created when missing.
        Default ``dunning-data/dunning.duckdb`` (relative to the working directory).
    """

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_DB) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as con:
            for name in TABLE_ORDER:
                con.execute(create_table_sql(TABLES[name]))
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {_META_TABLE} "
                "(table_name VARCHAR, column_name VARCHAR, dtype VARCHAR)"
            )
            con.execute(EVENTS_SQL)
            for name in VERSIONED:
                con.execute(_versions_sql(con, name))
            _add_new_contract_columns(con)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @property
    def quarantine_dir(self) -> Path:
        """Where ingest writes rejected rows: ``<folder of the db>/quarantine``."""
        return self.path.parent / "quarantine"

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A DuckDB connection to the store file, closed when the block ends.

        Holds a lease of the store's cross-process lock (:class:`StoreLock`) for the block:
        it may wait for another process (see the module docstring) and raises
        :class:`StoreBusy` when that takes longer than the configured wait.

        Other areas may keep their own tables in the same file (prefix their names with the
        area, e.g. ``ops_review_queue``) and must not write to the contract tables.
        """
        import duckdb

        with store_lock(self.path).lease():  # other processes wait (or are told who holds it)
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.Error as exc:
                raise StoreError(_open_problem(self.path, exc)) from None
            try:
                yield con
            except (duckdb.IOException, duckdb.SerializationException,
                    duckdb.FatalException) as exc:  # a file damaged after it opened
                raise StoreError(_open_problem(self.path, exc)) from None
            finally:
                con.close()

    # ---------------------------------------------------------------- reading
    def extra_columns(self, table: str) -> dict[str, str]:
        """Extra (non-contract) columns a mapping added to ``table``: ``{name: dtype}``."""
        with self.connect() as con:
            return self._extra_columns(con, table)

    @staticmethod
    def _extra_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
        rows = con.execute(
            f"SELECT column_name, dtype FROM {_META_TABLE} WHERE table_name = ? ORDER BY rowid",
            [table],
        ).fetchall()
        return dict(rows)

    def columns(self, table: str) -> dict[str, str]:
        """All columns of ``table`` in order (contract first, then extras): ``{name: dtype}``."""
        spec = {c.name: c.dtype for c in _table(table).columns}
        return spec | self.extra_columns(table)

    def counts(self) -> dict[str, int]:
        """Number of rows per contract table."""
        with self.connect() as con:
            return {
                n: con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in TABLE_ORDER
            }

    def table(self, name: str, as_of: date | None = None) -> pd.DataFrame:
        """One contract table as a DataFrame (see :meth:`tables` for ``as_of``)."""
        return self.tables(as_of=as_of, names=(name,))[name]

    def tables(
        self, as_of: date | None = None, names: tuple[str, ...] = TABLE_ORDER,
        invoice_ids: list[str] | None = None, known_at: datetime | None = None,
    ) -> dict[str, pd.DataFrame]:
        """The contract tables as DataFrames, keyed by table name.

        With ``as_of`` only the facts known at the end of that day are returned:

        - ``invoices`` with ``invoice_date <= as_of``;
        - ``payments`` with ``payment_date <= as_of`` and ``actions`` with
          ``action_date <= as_of`` (of those invoices);
        - ``customers`` and ``invoices``: the version of each row that applied on ``as_of``
          (a changed row keeps its superseded versions with ``valid_from``/``valid_to``; a
          change takes effect on its effective date, see :meth:`versions`); customers have
          no event date, so every customer is returned;
        - ``events`` (only when named in ``names``): events effective on or before ``as_of``
          (:meth:`events`);
        - dispute fields: ``dispute_opened`` / ``dispute_resolved`` after ``as_of`` become NaT;
          ``disputed`` is ``True`` only if the dispute was known by ``as_of``: its
          ``dispute_opened`` is on or before ``as_of`` or, when the export gives no opening
          date (e.g. IBM ``Disputed`` Yes/No), the invoice was fully paid by ``as_of`` (the
          flag is an after-the-fact record, known at settlement at the latest).

        Shapes: ``customers`` (n_customers, 14 + extras), ``invoices`` (n_invoices, 10 + extras),
        ``payments`` (n_payments, 4 + extras), ``actions`` (n_actions, 7 + extras).

        With ``invoice_ids`` only those invoices, their payments, actions and events and
        their customers are read (a cheap view of a few invoices, e.g. to check one event).

        With ``known_at`` (a UTC datetime, naive) the store is read as it was known then
        (bitemporal): events recorded later, the payments they made and master-data changes
        recorded later are left out, whatever their effective date (rows loaded by ingest
        carry no recording time and are always included). E.g. "what did the run of
        2026-03-02 know about March 1st", after a back-dated change was recorded on the 5th.
        """
        with self.connect(read_only=False) as con:
            out = {}
            for name in names:
                out[name] = self._read(con, name, as_of, invoice_ids, known_at)
            return out

    def _read(
        self, con: duckdb.DuckDBPyConnection, name: str, as_of: date | None,
        invoice_ids: list[str] | None = None, known_at: datetime | None = None,
    ) -> pd.DataFrame:
        if name == EVENTS_TABLE:
            return self._read_events(con, as_of, invoice_ids, known_at)
        table = _table(name)
        spec = {c.name: c.dtype for c in table.columns} | self._extra_columns(con, name)
        cols = ", ".join(f'"{c}"' for c in spec)
        source, params = f'"{name}"', []
        if name in VERSIONED and (as_of is not None or known_at is not None):
            cond, cparams = _superseded_later(as_of, known_at)
            if con.execute(f'SELECT count(*) FROM "{name}_versions" WHERE {cond}',
                           cparams).fetchone()[0]:
                source = _as_of_versions_sql(name, table.key, cols, cond)
                params = [*cparams, *cparams]
        where: list[str] = []
        if known_at is not None and name == "payments":  # recorded later by `dunning record`
            where.append("payment_id NOT IN (SELECT event_id FROM events WHERE kind = "
                         "'payment' AND recorded_at > ?)")
            params = [*params, known_at]
        if as_of is not None:
            if name == "invoices":
                where, params = [*where, "invoice_date <= ?"], [*params, as_of]
            elif name in ("payments", "actions"):
                col = EVENT_DATE[name]
                where = [*where, f"{col} <= ?", "invoice_id IN "
                         "(SELECT invoice_id FROM invoices WHERE invoice_date <= ?)"]
                params = [*params, as_of, as_of]
        if invoice_ids is not None:
            ids = "(SELECT unnest(CAST(? AS VARCHAR[])))"
            where.append(f"invoice_id IN {ids}" if name != "customers" else
                         f"customer_id IN (SELECT customer_id FROM invoices "
                         f"WHERE invoice_id IN {ids})")
            params = [*params, list(invoice_ids)]
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        frame = con.execute(
            f'SELECT {cols} FROM {source} {clause} ORDER BY "{table.key}"', params
        ).df()
        frame = normalize_dtypes(frame, spec)
        if as_of is not None and name == "invoices":
            frame = self._hide_future_disputes(con, frame, as_of)
        return frame

    def events(self, as_of: date | None = None,
               known_at: datetime | None = None) -> pd.DataFrame:
        """The ``events`` table (what a clerk recorded after a recommendation), one row per
        event, sorted by ``effective_date`` then ``recorded_at``; with ``as_of`` only events
        effective on or before it. Columns and dtypes: :data:`EVENT_COLUMNS`
        (``datetime`` = ``datetime64[ns]`` UTC-naive); ``known_at``: only events recorded by
        then. See ``engine.events``."""
        with self.connect() as con:
            return self._read_events(con, as_of, known_at=known_at)

    @staticmethod
    def _read_events(con: duckdb.DuckDBPyConnection, as_of: date | None,
                     invoice_ids: list[str] | None = None,
                     known_at: datetime | None = None) -> pd.DataFrame:
        import pandas as pd

        cols = ", ".join(f'"{c}"' for c in EVENT_COLUMNS)
        where, params = (["effective_date <= ?"], [as_of]) if as_of is not None else ([], [])
        if known_at is not None:
            where.append("recorded_at <= ?")
            params.append(known_at)
        if invoice_ids is not None:
            where.append("invoice_id IN (SELECT unnest(CAST(? AS VARCHAR[])))")
            params.append(list(invoice_ids))
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        frame = con.execute(f"SELECT {cols} FROM events {clause} "
                            "ORDER BY effective_date, recorded_at, event_id", params).df()
        spec = {c: ("date" if d == "datetime" else d) for c, d in EVENT_COLUMNS.items()}
        out = normalize_dtypes(frame, {c: d for c, d in spec.items() if c != "recorded_at"})
        out.insert(3, "recorded_at", pd.to_datetime(frame["recorded_at"]).astype(
            "datetime64[ns]"))
        return out

    def versions(self, name: str, key: str | None = None) -> pd.DataFrame:
        """Superseded versions of a master-data table (``customers`` or ``invoices``): the
        table's columns plus ``valid_from`` (NaT: from the start), ``valid_to`` (the day
        the next version took effect), ``recorded_at`` (when it was recorded, UTC) and
        ``changed_fields`` (``;``-separated); optionally of one ``key``. Sorted by key and
        ``valid_to``."""
        if name not in VERSIONED:
            raise KeyError(f"{name!r} keeps no versions; expected one of {VERSIONED}")
        k = TABLES[name].key
        with self.connect() as con:
            where, params = (f'WHERE "{k}" = ?', [key]) if key is not None else ("", [])
            return con.execute(f'SELECT * FROM "{name}_versions" {where} '
                               f'ORDER BY "{k}", valid_to', params).df()

    @staticmethod
    def _hide_future_disputes(
        con: duckdb.DuckDBPyConnection, invoices: pd.DataFrame, as_of: date
    ) -> pd.DataFrame:
        import pandas as pd

        cutoff = pd.Timestamp(as_of)
        paid = con.execute(
            "SELECT p.invoice_id FROM payments p JOIN invoices i USING (invoice_id) "
            "WHERE p.payment_date <= ? GROUP BY p.invoice_id, i.amount "
            "HAVING sum(p.amount) >= i.amount - 0.005",
            [as_of],
        ).df()["invoice_id"]
        opened = invoices["dispute_opened"]
        known = opened.le(cutoff) | (opened.isna() & isin_strings(invoices["invoice_id"], paid))
        invoices = invoices.assign(
            disputed=invoices["disputed"] & known,
            dispute_opened=opened.where(opened.le(cutoff)),
            dispute_resolved=invoices["dispute_resolved"].where(
                invoices["dispute_resolved"].le(cutoff)
            ),
        )
        return invoices

    def latest_date(self) -> date | None:
        """The latest date of any event (invoice, payment, action, dispute), or ``None``."""
        parts = [
            f'SELECT max("{c}") AS d FROM "{t}"' for t, cs in _EVENT_COLUMNS.items() for c in cs
        ]
        with self.connect() as con:
            value = con.execute(f"SELECT max(d) FROM ({' UNION ALL '.join(parts)})").fetchone()[0]
        return value

    # ---------------------------------------------------------------- writing
    def add_extra_columns(
        self, con: duckdb.DuckDBPyConnection, table: str, extras: dict[str, str]
    ) -> None:
        """Add mapping-declared extra columns to ``table`` (inside the caller's transaction).

        Raises :class:`InputError` if an extra column exists with another dtype or shadows a
        contract column.
        """
        known = self._extra_columns(con, table)
        contract = set(_table(table).column_names)
        for col, dtype in extras.items():
            if col in contract:
                raise InputError(f"extra column {col!r} is a contract column of {table}")
            if col in known:
                if known[col] != dtype:
                    raise InputError(
                        f"extra column {table}.{col} is stored as {known[col]}, not {dtype}; "
                        "keep the dtype of the first mapping that added it"
                    )
                continue
            con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{col}" {SQL_TYPES[dtype]}')
            if table in VERSIONED:  # superseded versions keep every column of the table
                con.execute(f'ALTER TABLE "{table}_versions" ADD COLUMN "{col}" '
                            f"{SQL_TYPES[dtype]}")
            con.execute(f"INSERT INTO {_META_TABLE} VALUES (?, ?, ?)", [table, col, dtype])

    def export_parquet(self, directory: str | os.PathLike[str]) -> dict[str, int]:
        """Write the four tables as Parquet under ``directory``, atomically.

        Layout: ``<dir>/customers/data.parquet`` (no event date) and, for the other tables,
        hive partitions by month of the event date, ``<dir>/invoices/month=2024-01/*.parquet``
        (``invoice_date``, ``payment_date``, ``action_date``). Readable with
        ``pandas.read_parquet(dir / "invoices")`` or ``dask.dataframe.read_parquet``.
        The tree is written to a temporary folder next to ``directory`` and renamed into
        place; an existing ``directory`` is replaced only after the new one is complete.
        Returns the number of rows written per table.
        """
        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        counts: dict[str, int] = {}
        try:
            with self.connect() as con:
                for name in TABLE_ORDER:
                    cols = ", ".join(f'"{c}"' for c in self.columns(name))
                    counts[name] = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
                    event = EVENT_DATE[name]
                    out = tmp / name
                    if event is None:
                        out.mkdir()
                        con.execute(
                            f"COPY (SELECT {cols} FROM \"{name}\" ORDER BY 1) "
                            f"TO '{_sql_path(out / 'data.parquet')}' (FORMAT PARQUET)"
                        )
                        continue
                    out.mkdir()
                    if counts[name] == 0:  # keep the schema readable for an empty table
                        con.execute(
                            f'COPY (SELECT {cols}, \'\' AS month FROM "{name}") '
                            f"TO '{_sql_path(out / 'empty.parquet')}' (FORMAT PARQUET)"
                        )
                        continue
                    con.execute(
                        f"COPY (SELECT {cols}, strftime(\"{event}\", '%Y-%m') AS month "
                        f'FROM "{name}" ORDER BY "{event}") '
                        f"TO '{_sql_path(out)}' (FORMAT PARQUET, PARTITION_BY (month), "
                        "OVERWRITE_OR_IGNORE)"
                    )
            _replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return counts


def normalize_dtypes(frame: pd.DataFrame, spec: dict[str, str]) -> pd.DataFrame:
    """Give ``frame`` the documented dtypes (see the module docstring) for ``spec``;
    keeps the index."""
    import pandas as pd

    out = {}
    for col, dtype in spec.items():
        s = frame[col]
        if dtype == "date":
            s = pd.to_datetime(s).astype("datetime64[ns]")
        elif dtype == "float":
            s = s.astype("float64")
        elif dtype == "bool":
            s = s.astype("boolean").fillna(False).astype(bool)
        elif dtype == "int":
            s = s.astype("Int64")
        else:
            s = s.astype("str")
        out[col] = s
    return pd.DataFrame(out, index=frame.index)


def isin_strings(values: pd.Series, candidates: pd.Series | list[str]) -> np.ndarray:
    """``values.isin(candidates)`` for string columns as a bool array, via pyarrow.

    pandas' ``isin`` on its Arrow-backed ``str`` dtype builds one Python scalar per
    candidate, which takes seconds for a million ids; ``pyarrow.compute.is_in`` does not.
    Missing values never match.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    arr = pa.array(values.astype("str"), from_pandas=True)
    pool = pa.array(pd_to_list(candidates), type=pa.string(), from_pandas=True)
    hit = pc.is_in(arr, value_set=pool, skip_nulls=True)
    return pc.fill_null(hit, False).to_numpy(zero_copy_only=False)


def pd_to_list(values: object) -> object:
    """Candidates as something ``pyarrow.array`` takes (a str Series or a list)."""
    import pandas as pd

    if isinstance(values, pd.Series | pd.Index):
        return values.astype("str")
    return list(values)  # type: ignore[call-overload]


def _versions_sql(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """``CREATE TABLE IF NOT EXISTS <name>_versions``: the table's columns (contract and
    extras) plus :data:`VERSION_COLUMNS`."""
    table = TABLES[name]
    spec = {c.name: c.dtype for c in table.columns} | Store._extra_columns(con, name)
    cols = [f'"{c}" {SQL_TYPES[d]}' for c, d in spec.items()]
    cols += [f'"{c}" {t}' for c, t in VERSION_COLUMNS.items()]
    return f'CREATE TABLE IF NOT EXISTS "{name}_versions" ({", ".join(cols)})'


def _add_new_contract_columns(con: duckdb.DuckDBPyConnection) -> None:
    """A store made by an older version lacks contract columns added since (optional ones,
    e.g. ``customers.email``): add them, empty (at the end; reads select columns by name)."""
    def have(table: str) -> set[str]:
        return {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
            [table]).fetchall()}

    for name in TABLE_ORDER:
        targets = [name, f"{name}_versions"] if name in VERSIONED else [name]
        for target in targets:
            present = have(target)
            for c in TABLES[name].columns:
                if c.name not in present and not c.required:
                    con.execute(f'ALTER TABLE "{target}" ADD COLUMN "{c.name}" '
                                f"{SQL_TYPES[c.dtype]}")


def _superseded_later(as_of: date | None,
                      known_at: datetime | None) -> tuple[str, list[object]]:
    """SQL condition on a superseded version (and its parameters): it still applied on
    ``as_of`` (superseded from a later day on) or its successor was recorded after
    ``known_at`` (not known yet then)."""
    parts, params = [], []
    if as_of is not None:
        parts.append("valid_to > ?")
        params.append(as_of)
    if known_at is not None:
        parts.append("recorded_at > ?")
        params.append(known_at)
    return "(" + " OR ".join(parts) + ")", params


def _as_of_versions_sql(name: str, key: str, cols: str, cond: str) -> str:
    """A relation with the version of every row of ``name`` that applied (``cond`` of
    :func:`_superseded_later`, whose parameters are needed twice): the current row unless
    a superseded version matches ``cond``; of those, the earliest."""
    return (f'(SELECT {cols} FROM "{name}" WHERE "{key}" NOT IN '
            f'(SELECT "{key}" FROM "{name}_versions" WHERE {cond}) '
            f"UNION ALL SELECT {cols} FROM "
            f'(SELECT * FROM "{name}_versions" WHERE {cond} '
            f'QUALIFY row_number() OVER (PARTITION BY "{key}" '
            "ORDER BY valid_to, recorded_at) = 1))")


def _open_problem(path: Path, exc: Exception) -> str:
    """One line saying why the store file cannot be opened, and what to do."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    low = text.lower()
    if "lock" in low:
        return (f"store {path}: locked by another process (another dunning command or the "
                "API is writing it); wait for it to finish or stop it, then retry")
    if any(w in low for w in ("not a valid", "corrupt", "invalid", "serializ", "checksum",
                              "magic", "version")):
        return (f"store {path}: not a readable DuckDB store (corrupted or another file "
                f"type: {text[:160]}); restore it from a backup or point --db elsewhere")
    return f"store {path}: cannot be opened ({text[:200]})"


def _table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; expected one of {', '.join(TABLE_ORDER)}") \
            from None


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _replace_dir(new: Path, target: Path) -> None:
    """Rename ``new`` to ``target``; an existing ``target`` is removed only afterwards."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)
