"""Decisions made while a job holds the store: journalled durably, applied exactly once.

``dunning serve`` shares the store with CLI jobs (``engine.store.StoreLock``). A clerk's
decision (a review approve/reject, an event) waits a bounded time for the store; when a long
nightly job still holds it, the decision is not refused but appended to the journal
``<store>.journal`` (one JSON line per decision, ``O_APPEND`` + ``fsync`` before the clerk
is told "queued") and applied as soon as the store is free, by :meth:`Journal.apply` in a
background thread of the server (and at its next start, after a crash).

Exactly once: every entry is applied through an idempotent path, so applying it again
(after a crash between the store's commit and the journal's own "done" line) adds nothing:

- a review decision goes through ``ReviewQueue.decide``, which decides only a *pending*
  item (a conditional update in the audit record's transaction); found already decided by
  the same reviewer the same way, the entry counts as applied; decided by someone else, it
  is refused (``409`` had it been made directly) and logged;
- an event carries its ``event_id`` from the moment it is journalled; ``dunning.ops.events
  .record`` records an id once (the same event again is a no-op).

Applied entries are listed in ``<store>.journal.done`` (``{"id", "outcome", "message"}``
lines, fsynced); when nothing is pending both files are emptied, so a clerk's free-text
reason does not outlive its audit record (which ``dunning forget`` can erase). Files are
mode 0600, beside the store. One server process writes a store's journal.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import InputError

log = logging.getLogger("dunning.journal")
Applier = Callable[[dict[str, Any]], str]


class Journal:
    """The decision journal of the store file ``db`` (see the module docstring)."""

    def __init__(self, db: str | os.PathLike[str]) -> None:
        db = Path(db)
        self.path = db.with_name(db.name + ".journal")
        self.done_path = db.with_name(db.name + ".journal.done")
        self._lock = threading.Lock()  # appends (and emptying the files)
        self._applying = threading.Lock()  # one apply at a time
        self.recent: list[dict[str, Any]] = []  # outcomes of this process, newest last

    def append(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        """Journal one decision (``kind``: ``review`` or ``event``) durably; returns the
        entry with its ``id`` and ``queued_at`` (UTC)."""
        entry = {"id": uuid.uuid4().hex, "kind": kind,
                 "queued_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **data}
        with self._lock:
            _append_line(self.path, entry)
        return entry

    def entries(self) -> list[dict[str, Any]]:
        """Every journalled entry, oldest first (a last line cut short by a crash, never
        acknowledged to the clerk, is skipped)."""
        return _read_lines(self.path)

    def pending(self) -> list[dict[str, Any]]:
        """Entries not applied yet, oldest first."""
        done = {d["id"] for d in _read_lines(self.done_path)}
        return [e for e in self.entries() if e["id"] not in done]

    def apply(self, appliers: dict[str, Applier]) -> list[dict[str, Any]]:
        """Apply the pending entries in order with ``appliers[kind](entry)`` (returns a
        message; raises ``InputError`` to refuse the entry, ``engine.store.StoreBusy`` to
        stop until the store is free). Returns the outcomes of this call."""
        out = []
        with self._applying:
            for entry in self.pending():
                try:
                    message, outcome = appliers[entry["kind"]](entry), "applied"
                except InputError as exc:
                    message, outcome = str(exc), "refused"
                    log.warning("journalled %s %s by %s refused: %s", entry["kind"],
                                entry["id"], entry.get("by"), message)
                done = {"id": entry["id"], "outcome": outcome, "message": message,
                        "kind": entry["kind"], "by": entry.get("by"),
                        "subject": entry.get("review_id") or entry.get("event_id")}
                with self._lock:
                    _append_line(self.done_path, done)
                out.append(done)
            with self._lock:  # no append can slip in between the check and the emptying
                if out and not self.pending():  # all applied: keep no personal text around
                    for path in (self.path, self.done_path):
                        with open(path, "r+b") as f:
                            f.truncate(0)
                            os.fsync(f.fileno())
        self.recent = (self.recent + out)[-200:]
        return out


class JournalRunner:
    """Applies a journal in a background thread whenever there is something pending:
    :meth:`kick` after an append and once at start-up. The thread waits for the store as
    long as a job holds it (``engine.store.StoreBusy`` -> try again) and ends when nothing
    is pending."""

    def __init__(self, journal: Journal, appliers: dict[str, Applier],
                 retry_s: float = 1.0, wait_s: float = 5.0) -> None:
        self.journal, self.appliers, self.retry_s = journal, appliers, retry_s
        self.wait_s = wait_s  # one round's wait for the store; then the next round
        self._running = threading.Lock()
        self._stop = threading.Event()

    def kick(self) -> None:
        if self.journal.pending() and self._running.acquire(blocking=False):
            threading.Thread(target=self._run, daemon=True, name="journal").start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        from engine.store import StoreBusy, lock_wait

        try:
            while not self._stop.is_set() and self.journal.pending():
                try:
                    with lock_wait(self.wait_s):
                        self.journal.apply(self.appliers)
                except StoreBusy:
                    self._stop.wait(self.retry_s)
                except Exception:  # noqa: BLE001 - keep the entries; the log says why
                    log.exception("applying the decision journal failed; retrying")
                    self._stop.wait(self.retry_s * 10)
        finally:
            self._running.release()
        if not self._stop.is_set() and self.journal.pending():  # appended meanwhile
            self.kick()


def _append_line(path: Path, record: dict[str, Any]) -> None:
    """One JSON line appended and fsynced (mode 0600 when created)."""
    data = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # cut short by a crash before the fsync returned: never acknowledged
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            log.error("%s: unreadable line skipped: %r", path, line[:80])
    return out
